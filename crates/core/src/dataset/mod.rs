//! Every dataset the importer knows, described once: what it is called (one text form, the
//! key of its progress records and of `data status`), where the API serves it and with which
//! parameters, the database table and key it lands in, how a range of it is cut into shards
//! (New York session days or calendar months), and where the Parquet store keeps it.
//!
//! Everything downstream asks the [`DatasetId`] instead of matching on strings: the client
//! builds its request from [`DatasetId::api_path`] and [`DatasetId::api_params`], the
//! planner shards by [`DatasetId::unit`], the SQL sinks write [`DatasetId::table`], and the
//! Parquet store files rows under [`DatasetId::dir`].

pub mod calendar;
mod columns;
use crate::time::DateRange;
pub use calendar::ShardUnit;
use chrono::NaiveDate;
pub use columns::*;
use std::fmt;
use std::str::FromStr;

/// The kinds of market data the importer can fetch (the `KIND` argument).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Kind {
    /// NBBO quotes (bid/ask)
    Quotes,
    /// Trades (price, size, exchange, trade id, conditions, corrections)
    Trades,
    /// OHLCV bars (needs --timeframe)
    Bars,
    /// Corporate actions: splits, dividends, name changes, mergers, spin-offs, ...
    #[value(name = "corporate-actions")]
    CorporateActions,
}

/// An enum with one text form per variant (as the API, the tables and the store spell it),
/// parsed back with `FromStr` (the error names the flag and the choices) and shown with
/// `Display`.
macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident, $flag:literal, $choices:literal { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(text: &str) -> Result<Self, String> {
                $name::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == text)
                    .ok_or_else(|| format!(concat!("invalid ", $flag, " {:?}: must be ", $choices), text))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum!(
    /// A bar width Alpaca serves and the importer stores.
    Timeframe, "--timeframe", "1Min, 5Min, 15Min, 1Hour or 1Day" {
        Min1 => "1Min",
        Min5 => "5Min",
        Min15 => "15Min",
        Hour1 => "1Hour",
        Day1 => "1Day",
    }
);

text_enum!(
    /// The price adjustment asked of the API for bars.
    Adjustment, "--adjustment", "raw, split, dividend or all" {
        Raw => "raw",
        Split => "split",
        Dividend => "dividend",
        All => "all",
    }
);

impl Timeframe {
    /// Bars in one 04:00-20:00 session at most (a daily bar: one).
    pub fn bars_per_session(self) -> usize {
        match self {
            Timeframe::Min1 => 960,
            Timeframe::Min5 => 192,
            Timeframe::Min15 => 64,
            Timeframe::Hour1 => 16,
            Timeframe::Day1 => 1,
        }
    }
}

pub use crate::model::Asset;

/// Which parameters follow a dataset's name in its key and its store folders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Params {
    None,
    /// `/{timeframe}` (`timeframe=` folders).
    Timeframe,
    /// `/{timeframe}/{adjustment}` (`timeframe=` and `adjustment=` folders).
    TimeframeAdjustment,
}

/// One row of the dataset table: everything about a dataset family written once, from
/// which its key, parsing, messages, paths, table and shards are derived.
#[derive(Debug)]
pub struct Descriptor {
    /// The key's first segment and the store's folder: `quotes`, `bars`, `crypto_bars`.
    pub name: &'static str,
    pub asset: Asset,
    pub kind: Kind,
    pub params: Params,
    /// The database table its raw rows land in.
    pub table: &'static TableSpec,
    /// How a range is cut into shards, and what one Parquet file holds.
    pub unit: ShardUnit,
    /// A range covers whole days, midnight to midnight (New York for stock bars: a daily
    /// bar opens at midnight; UTC for crypto), rather than the 04:00-20:00 session.
    pub whole_days: bool,
    /// The columns identifying a row within its symbol's unit, when not its kind's.
    pub identity: Option<&'static [&'static str]>,
    /// The dataset of this family with these parameters.
    make: fn(Timeframe, Adjustment) -> DatasetId,
}

/// Every dataset family, one row each. A new dataset is a variant of [`DatasetId`], a row
/// here and its arm in [`DatasetId::descriptor`] (the compiler asks for it), its row list
/// (`columns.rs`), its endpoint, its migration and the stand-in.
pub static DATASETS: [Descriptor; 9] = [
    Descriptor {
        name: "quotes",
        asset: Asset::Stocks,
        kind: Kind::Quotes,
        params: Params::None,
        table: &QUOTES,
        unit: ShardUnit::Session,
        whole_days: false,
        identity: None,
        make: |_, _| DatasetId::Quotes,
    },
    Descriptor {
        name: "trades",
        asset: Asset::Stocks,
        kind: Kind::Trades,
        params: Params::None,
        table: &TRADES,
        unit: ShardUnit::Session,
        whole_days: false,
        identity: None,
        make: |_, _| DatasetId::Trades,
    },
    Descriptor {
        name: "bars",
        asset: Asset::Stocks,
        kind: Kind::Bars,
        params: Params::TimeframeAdjustment,
        table: &BARS,
        unit: ShardUnit::Month,
        whole_days: true,
        identity: None,
        make: |timeframe, adjustment| DatasetId::Bars {
            timeframe,
            adjustment,
        },
    },
    Descriptor {
        name: "crypto_quotes",
        asset: Asset::Crypto,
        kind: Kind::Quotes,
        params: Params::None,
        table: &CRYPTO_QUOTES,
        unit: ShardUnit::UtcDay,
        whole_days: true,
        identity: None,
        make: |_, _| DatasetId::CryptoQuotes,
    },
    Descriptor {
        name: "crypto_trades",
        asset: Asset::Crypto,
        kind: Kind::Trades,
        params: Params::None,
        table: &CRYPTO_TRADES,
        unit: ShardUnit::UtcDay,
        whole_days: true,
        identity: Some(&["t", "id"]),
        make: |_, _| DatasetId::CryptoTrades,
    },
    Descriptor {
        name: "crypto_bars",
        asset: Asset::Crypto,
        kind: Kind::Bars,
        params: Params::Timeframe,
        table: &CRYPTO_BARS,
        unit: ShardUnit::UtcMonth,
        whole_days: true,
        identity: None,
        make: |timeframe, _| DatasetId::CryptoBars { timeframe },
    },
    Descriptor {
        name: "option_trades",
        asset: Asset::Options,
        kind: Kind::Trades,
        params: Params::None,
        table: &OPTION_TRADES,
        unit: ShardUnit::Session,
        whole_days: false,
        identity: Some(&["t", "seq"]),
        make: |_, _| DatasetId::OptionTrades,
    },
    Descriptor {
        name: "option_bars",
        asset: Asset::Options,
        kind: Kind::Bars,
        params: Params::Timeframe,
        table: &OPTION_BARS,
        unit: ShardUnit::Month,
        whole_days: true,
        identity: None,
        make: |timeframe, _| DatasetId::OptionBars { timeframe },
    },
    Descriptor {
        name: "corporate_actions",
        asset: Asset::Stocks,
        kind: Kind::CorporateActions,
        params: Params::None,
        table: &CORPORATE_ACTIONS,
        unit: ShardUnit::Month,
        whole_days: true,
        identity: None,
        make: |_, _| DatasetId::CorporateActions,
    },
];

impl Descriptor {
    /// This family's dataset with `timeframe` and `adjustment` where it takes them.
    pub fn with(&self, timeframe: Timeframe, adjustment: Adjustment) -> DatasetId {
        (self.make)(timeframe, adjustment)
    }
}

/// One dataset: raw quotes, trades, or bars of one timeframe and adjustment, of stocks,
/// crypto or options, or corporate actions. (Thinned quotes are raw quotes through a
/// transform into a table of their own: see [`TableSpec`].)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DatasetId {
    Quotes,
    Trades,
    Bars {
        timeframe: Timeframe,
        adjustment: Adjustment,
    },
    CryptoQuotes,
    CryptoTrades,
    CryptoBars {
        timeframe: Timeframe,
    },
    OptionTrades,
    OptionBars {
        timeframe: Timeframe,
    },
    /// Every corporate action of a stock (`/v1/corporate-actions`), matched on its process
    /// date.
    CorporateActions,
}

impl DatasetId {
    /// Its row of [`DATASETS`]: the one match on which dataset it is.
    pub fn descriptor(self) -> &'static Descriptor {
        let row = match self {
            DatasetId::Quotes => 0,
            DatasetId::Trades => 1,
            DatasetId::Bars { .. } => 2,
            DatasetId::CryptoQuotes => 3,
            DatasetId::CryptoTrades => 4,
            DatasetId::CryptoBars { .. } => 5,
            DatasetId::OptionTrades => 6,
            DatasetId::OptionBars { .. } => 7,
            DatasetId::CorporateActions => 8,
        };
        &DATASETS[row]
    }

    pub fn bars(timeframe: Timeframe, adjustment: Adjustment) -> Self {
        DatasetId::Bars {
            timeframe,
            adjustment,
        }
    }

    /// The dataset of `kind` for `asset` (bars: of `timeframe`, and for stocks
    /// `adjustment`; crypto and option bars are never adjusted). `None` when Alpaca serves
    /// no such dataset (option quotes, crypto corporate actions) or bars lack a timeframe.
    pub fn of(asset: Asset, kind: Kind, bars: Option<(Timeframe, Adjustment)>) -> Option<Self> {
        let d = DATASETS
            .iter()
            .find(|d| d.asset == asset && d.kind == kind)?;
        Some(match d.params {
            Params::None => d.with(Timeframe::Day1, Adjustment::Raw),
            Params::Timeframe => d.with(bars?.0, Adjustment::Raw),
            Params::TimeframeAdjustment => {
                let (timeframe, adjustment) = bars?;
                d.with(timeframe, adjustment)
            }
        })
    }

    pub fn asset(self) -> Asset {
        self.descriptor().asset
    }

    pub fn kind(self) -> Kind {
        self.descriptor().kind
    }

    /// Bars' timeframe and adjustment (crypto and option bars: raw); `None` for other
    /// datasets.
    pub fn bar_spec(self) -> Option<(Timeframe, Adjustment)> {
        match self {
            DatasetId::Bars {
                timeframe,
                adjustment,
            } => Some((timeframe, adjustment)),
            DatasetId::CryptoBars { timeframe } | DatasetId::OptionBars { timeframe } => {
                Some((timeframe, Adjustment::Raw))
            }
            DatasetId::Quotes
            | DatasetId::Trades
            | DatasetId::CryptoQuotes
            | DatasetId::CryptoTrades
            | DatasetId::OptionTrades
            | DatasetId::CorporateActions => None,
        }
    }

    /// The columns of its rows, as the pipeline's batches carry them.
    pub fn columns(self) -> &'static [Column] {
        match self.asset() {
            Asset::Stocks => self.kind().columns(),
            Asset::Crypto | Asset::Options => self.table().row,
        }
    }

    /// The columns whose values identify a row within its symbol's file unit.
    pub fn identity(self) -> &'static [&'static str] {
        self.descriptor()
            .identity
            .unwrap_or_else(|| self.kind().identity())
    }

    /// Trades' corrections (stocks only: crypto and option trades are never corrected).
    pub fn corrections(self) -> Option<Corrections> {
        match self.asset() {
            Asset::Stocks => self.kind().corrections(),
            Asset::Crypto | Asset::Options => None,
        }
    }

    /// The one text form: `quotes`, `trades`, `bars/1Min/raw`, `crypto_quotes`,
    /// `crypto_bars/1Min`. The key of the dataset's progress records and its name in
    /// `data status`.
    pub fn key(self) -> String {
        self.to_string()
    }

    /// A dataset from its [`key`](Self::key).
    pub fn from_key(text: &str) -> Option<Self> {
        let mut parts = text.split('/');
        let name = parts.next()?;
        let d = DATASETS.iter().find(|d| d.name == name)?;
        let id = match d.params {
            Params::None => d.with(Timeframe::Day1, Adjustment::Raw),
            Params::Timeframe => d.with(parts.next()?.parse().ok()?, Adjustment::Raw),
            Params::TimeframeAdjustment => {
                let timeframe = parts.next()?.parse().ok()?;
                d.with(timeframe, parts.next()?.parse().ok()?)
            }
        };
        parts.next().is_none().then_some(id)
    }

    /// What is imported, for messages: `quotes`, `trades`, `1Min bars`, `crypto quotes`.
    pub fn noun(self) -> String {
        let base = match self.bar_spec() {
            Some((timeframe, _)) => format!("{timeframe} bars"),
            None if self == DatasetId::CorporateActions => "corporate actions".to_string(),
            None => self.api_path().to_string(),
        };
        match self.asset() {
            Asset::Stocks => base,
            Asset::Crypto => format!("crypto {base}"),
            Asset::Options => format!("option {base}"),
        }
    }

    /// One row of it, for the batch log line: `quote`, `trade`, `bar`.
    pub fn item(self) -> &'static str {
        match self.kind() {
            Kind::Quotes => "quote",
            Kind::Trades => "trade",
            Kind::Bars => "bar",
            Kind::CorporateActions => "action",
        }
    }

    /// The endpoint's last segment: `quotes`, `trades`, `bars`.
    pub fn api_path(self) -> &'static str {
        match self.kind() {
            Kind::Quotes => "quotes",
            Kind::Trades => "trades",
            Kind::Bars => "bars",
            Kind::CorporateActions => "corporate-actions",
        }
    }

    /// The endpoint's own query parameters.
    pub fn api_params(self) -> Vec<(&'static str, &'static str)> {
        let spec = self.bar_spec();
        match (self.descriptor().params, spec) {
            (Params::TimeframeAdjustment, Some((timeframe, adjustment))) => vec![
                ("timeframe", timeframe.as_str()),
                ("adjustment", adjustment.as_str()),
            ],
            (Params::Timeframe, Some((timeframe, _))) => vec![("timeframe", timeframe.as_str())],
            _ => Vec::new(),
        }
    }

    /// The database table its raw rows land in.
    pub fn table(self) -> &'static TableSpec {
        self.descriptor().table
    }

    /// Whether a range of it covers whole days, midnight to midnight, rather than the
    /// 04:00-20:00 session.
    pub fn whole_days(self) -> bool {
        self.descriptor().whole_days
    }

    /// How a range of it is cut into shards, and what one Parquet file holds: a New York
    /// session day, or (bars) a New York calendar month; for crypto, a UTC day (bars: a UTC
    /// month).
    pub fn unit(&self) -> ShardUnit {
        self.descriptor().unit
    }

    /// The key of the file holding time `t_ns`: its day, or its month's first day.
    pub fn unit_key(&self, t_ns: i64) -> NaiveDate {
        self.unit().key_of(t_ns)
    }

    /// The span a file covers, `[from, until)` in ns UTC: midnight to midnight.
    pub fn unit_bounds(&self, key: NaiveDate) -> (i64, i64) {
        self.unit().bounds(key)
    }

    /// The keys of the files overlapping `start..=end`, in order.
    pub fn units_in(&self, start_ns: i64, end_ns: i64) -> Vec<NaiveDate> {
        self.unit().keys_in(start_ns, end_ns)
    }

    /// `range` widened to whole shards (bars: whole months), since a file in place is a
    /// complete unit. Quotes and trades keep the 04:00-20:00 session of each day.
    pub fn whole_units(&self, range: DateRange) -> DateRange {
        let unit = self.unit();
        DateRange {
            start_ns: unit.span(unit.key_of(range.start_ns)).0,
            end_ns: unit.span(unit.key_of(range.end_ns)).1,
        }
    }
}

impl fmt::Display for DatasetId {
    /// The descriptor's name, then its parameters: `bars/1Min/raw`, `crypto_bars/1Hour`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.descriptor();
        f.write_str(d.name)?;
        match (d.params, self.bar_spec()) {
            (Params::TimeframeAdjustment, Some((timeframe, adjustment))) => {
                write!(f, "/{timeframe}/{adjustment}")
            }
            (Params::Timeframe, Some((timeframe, _))) => write!(f, "/{timeframe}"),
            _ => Ok(()),
        }
    }
}
