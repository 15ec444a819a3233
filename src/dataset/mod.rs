//! Every dataset the importer knows, described once: what it is called (one text form, the
//! key of its progress records and of `data status`), where the API serves it and with which
//! parameters, the database table and key it lands in, how a range of it is cut into shards
//! (New York session days or calendar months), and where the Parquet store keeps it.
//!
//! Everything downstream asks the [`DatasetId`] instead of matching on strings: the client
//! builds its request from [`DatasetId::api_path`] and [`DatasetId::api_params`], the
//! planner shards by [`DatasetId::unit`], the SQL sinks write [`DatasetId::table`], and the
//! Parquet store files rows under [`DatasetId::dir`].

pub(crate) mod calendar;
mod columns;
use crate::time::DateRange;
pub use calendar::ShardUnit;
use chrono::NaiveDate;
pub use columns::*;
use std::fmt;
use std::path::{Path, PathBuf};
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

/// The name of every file of the Parquet store, inside its unit's folder.
pub const FILE_NAME: &str = "part-0.parquet";

/// Which market a dataset is of: US stocks (`/v2/stocks`) or crypto (`/v1beta3/crypto`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum)]
pub enum Asset {
    /// US equities: New York session days, feeds sip/iex/otc/boats
    Stocks,
    /// Crypto pairs (BTC/USD): UTC days, weekends included, locations us/us-1/...
    Crypto,
    /// Option contracts by OCC symbol (AAPL240419P00140000): trades and bars, no quotes
    Options,
}

impl Asset {
    /// Its `--asset` value.
    pub fn flag(self) -> &'static str {
        match self {
            Asset::Stocks => "stocks",
            Asset::Crypto => "crypto",
            Asset::Options => "options",
        }
    }

    /// One symbol of it, for messages: `a stock ticker`, `a crypto pair`, `an option
    /// contract`.
    pub fn one(self) -> &'static str {
        match self {
            Asset::Stocks => "a stock ticker",
            Asset::Crypto => "a crypto pair",
            Asset::Options => "an option contract",
        }
    }

    /// Its symbols, for messages: `stock tickers`, `crypto pairs`, `option contracts`.
    pub fn many(self) -> &'static str {
        match self {
            Asset::Stocks => "stock tickers",
            Asset::Crypto => "crypto pairs",
            Asset::Options => "option contracts",
        }
    }
}

/// One dataset: raw quotes, trades, or bars of one timeframe and adjustment, of stocks or
/// crypto. (Thinned quotes are raw quotes through a transform into a table of their own:
/// see [`TableSpec`].)
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
    pub fn bars(timeframe: Timeframe, adjustment: Adjustment) -> Self {
        DatasetId::Bars {
            timeframe,
            adjustment,
        }
    }

    /// The dataset of `kind` for `asset` (bars: of `timeframe`, and for stocks
    /// `adjustment`; crypto bars are never adjusted).
    pub fn of(asset: Asset, kind: Kind, bars: Option<(Timeframe, Adjustment)>) -> Option<Self> {
        Some(match (asset, kind) {
            (Asset::Stocks, Kind::Quotes) => DatasetId::Quotes,
            (Asset::Stocks, Kind::Trades) => DatasetId::Trades,
            (Asset::Stocks, Kind::CorporateActions) => DatasetId::CorporateActions,
            (_, Kind::CorporateActions) => return None,
            (Asset::Stocks, Kind::Bars) => {
                let (timeframe, adjustment) = bars?;
                DatasetId::bars(timeframe, adjustment)
            }
            (Asset::Crypto, Kind::Quotes) => DatasetId::CryptoQuotes,
            (Asset::Crypto, Kind::Trades) => DatasetId::CryptoTrades,
            (Asset::Crypto, Kind::Bars) => DatasetId::CryptoBars { timeframe: bars?.0 },
            // Alpaca serves no historical option quotes.
            (Asset::Options, Kind::Quotes) => return None,
            (Asset::Options, Kind::Trades) => DatasetId::OptionTrades,
            (Asset::Options, Kind::Bars) => DatasetId::OptionBars { timeframe: bars?.0 },
        })
    }

    pub fn asset(self) -> Asset {
        match self {
            DatasetId::Quotes
            | DatasetId::Trades
            | DatasetId::Bars { .. }
            | DatasetId::CorporateActions => Asset::Stocks,
            DatasetId::OptionTrades | DatasetId::OptionBars { .. } => Asset::Options,
            _ => Asset::Crypto,
        }
    }

    /// Bars' timeframe and adjustment (crypto bars: raw); `None` for other datasets.
    pub fn bar_spec(self) -> Option<(Timeframe, Adjustment)> {
        match self {
            DatasetId::Bars {
                timeframe,
                adjustment,
            } => Some((timeframe, adjustment)),
            DatasetId::CryptoBars { timeframe } | DatasetId::OptionBars { timeframe } => {
                Some((timeframe, Adjustment::Raw))
            }
            _ => None,
        }
    }

    pub fn kind(self) -> Kind {
        match self {
            DatasetId::CorporateActions => Kind::CorporateActions,
            DatasetId::Quotes | DatasetId::CryptoQuotes => Kind::Quotes,
            DatasetId::Trades | DatasetId::CryptoTrades | DatasetId::OptionTrades => Kind::Trades,
            DatasetId::Bars { .. }
            | DatasetId::CryptoBars { .. }
            | DatasetId::OptionBars { .. } => Kind::Bars,
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
        match self {
            DatasetId::CryptoTrades => &["t", "id"],
            DatasetId::OptionTrades => &["t", "seq"],
            _ => self.kind().identity(),
        }
    }

    /// Trades' corrections (stocks only: crypto trades are never corrected).
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
        match text {
            "quotes" => Some(DatasetId::Quotes),
            "trades" => Some(DatasetId::Trades),
            "crypto_quotes" => Some(DatasetId::CryptoQuotes),
            "crypto_trades" => Some(DatasetId::CryptoTrades),
            "option_trades" => Some(DatasetId::OptionTrades),
            "corporate_actions" => Some(DatasetId::CorporateActions),
            _ => {
                if let Some(tf) = text.strip_prefix("crypto_bars/") {
                    return Some(DatasetId::CryptoBars {
                        timeframe: tf.parse().ok()?,
                    });
                }
                if let Some(tf) = text.strip_prefix("option_bars/") {
                    return Some(DatasetId::OptionBars {
                        timeframe: tf.parse().ok()?,
                    });
                }
                let mut parts = text.strip_prefix("bars/")?.split('/');
                let timeframe = parts.next()?.parse().ok()?;
                let adjustment = parts.next()?.parse().ok()?;
                parts
                    .next()
                    .is_none()
                    .then_some(DatasetId::bars(timeframe, adjustment))
            }
        }
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
        match self {
            DatasetId::Bars {
                timeframe,
                adjustment,
            } => vec![
                ("timeframe", timeframe.as_str()),
                ("adjustment", adjustment.as_str()),
            ],
            DatasetId::CryptoBars { timeframe } | DatasetId::OptionBars { timeframe } => {
                vec![("timeframe", timeframe.as_str())]
            }
            _ => Vec::new(),
        }
    }

    /// The database table its raw rows land in.
    pub fn table(self) -> &'static TableSpec {
        match self {
            DatasetId::Quotes => &QUOTES,
            DatasetId::Trades => &TRADES,
            DatasetId::Bars { .. } => &BARS,
            DatasetId::CryptoQuotes => &CRYPTO_QUOTES,
            DatasetId::CryptoTrades => &CRYPTO_TRADES,
            DatasetId::CryptoBars { .. } => &CRYPTO_BARS,
            DatasetId::OptionTrades => &OPTION_TRADES,
            DatasetId::OptionBars { .. } => &OPTION_BARS,
            DatasetId::CorporateActions => &CORPORATE_ACTIONS,
        }
    }

    /// Whether a range of it covers whole days, midnight to midnight (New York for stock
    /// bars: a daily bar opens at midnight; UTC for crypto), rather than the 04:00-20:00
    /// session.
    pub fn whole_days(self) -> bool {
        !matches!(
            self,
            DatasetId::Quotes | DatasetId::Trades | DatasetId::OptionTrades
        )
    }

    /// The dataset's folder.
    pub fn dir(&self, root: &Path) -> PathBuf {
        match self {
            DatasetId::Quotes => root.join("quotes"),
            DatasetId::Trades => root.join("trades"),
            DatasetId::Bars {
                timeframe,
                adjustment,
            } => root
                .join("bars")
                .join(format!("timeframe={timeframe}"))
                .join(format!("adjustment={adjustment}")),
            DatasetId::CryptoQuotes => root.join("crypto_quotes"),
            DatasetId::CryptoTrades => root.join("crypto_trades"),
            DatasetId::CryptoBars { timeframe } => root
                .join("crypto_bars")
                .join(format!("timeframe={timeframe}")),
            DatasetId::OptionTrades => root.join("option_trades"),
            DatasetId::CorporateActions => root.join("corporate_actions"),
            DatasetId::OptionBars { timeframe } => root
                .join("option_bars")
                .join(format!("timeframe={timeframe}")),
        }
    }

    /// How a range of it is cut into shards, and what one Parquet file holds: a New York
    /// session day, or (bars) a New York calendar month; for crypto, a UTC day (bars: a UTC
    /// month).
    pub fn unit(&self) -> ShardUnit {
        match self {
            DatasetId::Bars { .. } | DatasetId::OptionBars { .. } | DatasetId::CorporateActions => {
                ShardUnit::Month
            }
            DatasetId::Quotes | DatasetId::Trades | DatasetId::OptionTrades => ShardUnit::Session,
            DatasetId::CryptoBars { .. } => ShardUnit::UtcMonth,
            DatasetId::CryptoQuotes | DatasetId::CryptoTrades => ShardUnit::UtcDay,
        }
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

    fn unit_prefix(&self) -> &'static str {
        match self.unit().is_month() {
            true => "month=",
            false => "date=",
        }
    }

    fn unit_name(&self, key: NaiveDate) -> String {
        match self.unit().is_month() {
            true => format!("month={}", key.format("%Y-%m")),
            false => format!("date={key}"),
        }
    }

    pub(crate) fn parse_unit(&self, name: &str) -> Option<NaiveDate> {
        let value = name.strip_prefix(self.unit_prefix())?;
        match self.unit().is_month() {
            true => NaiveDate::parse_from_str(&format!("{value}-01"), "%Y-%m-%d").ok(),
            false => NaiveDate::parse_from_str(value, "%Y-%m-%d").ok(),
        }
    }

    /// `symbol=SYM`: the folder of one symbol's files (`BTC/USD` as `symbol=BTC-USD`).
    pub fn symbol_dir(&self, root: &Path, symbol: &str) -> PathBuf {
        self.dir(root).join(format!(
            "symbol={}",
            crate::model::Symbol::path_name(symbol)
        ))
    }

    /// The symbol a `symbol=` folder value names: itself, or for crypto `BTC-USD` back to
    /// `BTC/USD`.
    pub fn symbol_of_dir(&self, value: &str) -> String {
        match self.asset() {
            Asset::Stocks | Asset::Options => value.to_string(),
            Asset::Crypto => value.replace('-', "/"),
        }
    }

    /// `{dataset}/symbol=SYM/.synthetic`: present when the symbol's files hold the
    /// stand-in's synthetic rows (`import-api --standin`).
    pub fn synthetic_marker(&self, root: &Path, symbol: &str) -> PathBuf {
        self.symbol_dir(root, symbol).join(".synthetic")
    }

    /// `{dataset}/symbol=SYM/date=YYYY-MM-DD` (or `month=YYYY-MM`).
    pub fn unit_dir(&self, root: &Path, symbol: &str, key: NaiveDate) -> PathBuf {
        self.symbol_dir(root, symbol).join(self.unit_name(key))
    }

    pub fn file(&self, root: &Path, symbol: &str, key: NaiveDate) -> PathBuf {
        self.unit_dir(root, symbol, key).join(FILE_NAME)
    }

    /// Every dataset with a folder under `root`: quotes, trades, each bar timeframe and
    /// adjustment, and the crypto ones.
    pub fn present(store: &crate::storage::Location) -> Vec<DatasetId> {
        let root = store.path();
        let top = store.subfolders(root);
        let mut out = Vec::new();
        for l in [
            DatasetId::Quotes,
            DatasetId::Trades,
            DatasetId::CryptoQuotes,
            DatasetId::CryptoTrades,
            DatasetId::OptionTrades,
            DatasetId::CorporateActions,
        ] {
            if top.iter().any(|d| l.dir(Path::new("")) == Path::new(d)) {
                out.push(l);
            }
        }
        let values = |dir: PathBuf, key: &str| -> Vec<String> {
            store
                .subfolders(&dir)
                .into_iter()
                .filter_map(|name| name.strip_prefix(key).map(str::to_string))
                .collect()
        };
        if top.iter().any(|d| d == "bars") {
            for timeframe in values(root.join("bars"), "timeframe=") {
                let dir = root.join("bars").join(format!("timeframe={timeframe}"));
                for adjustment in values(dir, "adjustment=") {
                    // Folders of other names are not ours: left alone, not listed.
                    if let (Ok(timeframe), Ok(adjustment)) = (timeframe.parse(), adjustment.parse())
                    {
                        out.push(DatasetId::Bars {
                            timeframe,
                            adjustment,
                        });
                    }
                }
            }
        }
        for (dir, crypto) in [("crypto_bars", true), ("option_bars", false)] {
            if !top.iter().any(|d| d == dir) {
                continue;
            }
            for timeframe in values(root.join(dir), "timeframe=") {
                if let Ok(timeframe) = timeframe.parse() {
                    out.push(match crypto {
                        true => DatasetId::CryptoBars { timeframe },
                        false => DatasetId::OptionBars { timeframe },
                    });
                }
            }
        }
        out
    }
}

impl fmt::Display for DatasetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatasetId::Quotes => f.write_str("quotes"),
            DatasetId::Trades => f.write_str("trades"),
            DatasetId::Bars {
                timeframe,
                adjustment,
            } => write!(f, "bars/{timeframe}/{adjustment}"),
            DatasetId::CryptoQuotes => f.write_str("crypto_quotes"),
            DatasetId::CryptoTrades => f.write_str("crypto_trades"),
            DatasetId::CryptoBars { timeframe } => write!(f, "crypto_bars/{timeframe}"),
            DatasetId::OptionTrades => f.write_str("option_trades"),
            DatasetId::OptionBars { timeframe } => write!(f, "option_bars/{timeframe}"),
            DatasetId::CorporateActions => f.write_str("corporate_actions"),
        }
    }
}
