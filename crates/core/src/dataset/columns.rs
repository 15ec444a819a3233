//! The columns of every kind of row, listed once, and the database tables they land in.
//!
//! A row list ([`Kind::columns`], [`AGG_ROW`]) is the schema of the Arrow batches that
//! carry those rows through the pipeline. Each column says where it comes from (its JSON
//! field in the API's records, or none for the columns the importer adds), whether the
//! Parquet files keep it, and which database column holds it. The decoder, the SQL sinks,
//! the Parquet store and the database reader all walk these lists; nothing else names a
//! row's columns.

use super::Kind;

/// The type of a column, as the Arrow batches and the Parquet store keep it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// Nanoseconds since the Unix epoch, UTC.
    TimestampNs,
    Utf8,
    Float64,
    UInt32,
    UInt64,
    /// A list of strings (condition codes); stored in databases as a compact JSON array.
    Utf8List,
}

/// One column of a kind of row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub ty: ColumnType,
    /// Null allowed (stored as `''` in databases, whose columns are all `NOT NULL`).
    pub nullable: bool,
    /// The record's field in the API's JSON; `None` for columns the importer adds.
    pub json: Option<&'static str>,
    /// A record without the field is refused (otherwise: null, `""`, 0 or `[]`).
    pub required: bool,
    /// Kept in the Parquet files (`symbol` is a partition key of their paths instead).
    pub in_file: bool,
    /// The database column holding it, if any.
    pub sql: Option<&'static str>,
    /// Held in a 32-bit database integer (PostgreSQL `INTEGER`).
    pub narrow: bool,
}

/// What a column is to the pipeline, whatever else it holds: the columns every stage finds
/// (a symbol's rows, their time, their position among equal times). Stages find them by
/// role; only this file knows their names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Symbol,
    /// The row's time, ns UTC (`t`).
    Time,
    /// The row's number among rows of equal time (`seq`).
    Seq,
    /// An aggregate's last quote time (`last_t`).
    LastTime,
    /// An aggregate's interval start (`bucket_t`).
    BucketTime,
}

impl Role {
    /// The column's name in batches, tables and files.
    pub const fn name(self) -> &'static str {
        match self {
            Role::Symbol => "symbol",
            Role::Time => "t",
            Role::Seq => "seq",
            Role::LastTime => "last_t",
            Role::BucketTime => "bucket_t",
        }
    }
}

impl Column {
    /// Whether the column plays `role`.
    pub fn is(&self, role: Role) -> bool {
        self.name == role.name()
    }
}

/// A column the API sends (required), kept everywhere under its own name.
const fn api(name: &'static str, json: &'static str, ty: ColumnType) -> Column {
    Column {
        name,
        ty,
        nullable: false,
        json: Some(json),
        required: true,
        in_file: true,
        sql: Some(name),
        narrow: false,
    }
}

/// A column the importer computes, kept everywhere under its own name.
const fn derived(name: &'static str, ty: ColumnType) -> Column {
    Column {
        json: None,
        required: false,
        ..api(name, "", ty)
    }
}

impl Column {
    /// The API may leave the field out.
    const fn optional(self) -> Self {
        Column {
            required: false,
            ..self
        }
    }
    const fn nullable(self) -> Self {
        Column {
            nullable: true,
            ..self.optional()
        }
    }
    const fn sql_as(self, sql: &'static str) -> Self {
        Column {
            sql: Some(sql),
            ..self
        }
    }
    /// Carried through the pipeline only (e.g. the resume ordinal of trades and bars).
    const fn transient(self) -> Self {
        Column {
            in_file: false,
            sql: None,
            ..self
        }
    }
    const fn narrow(self) -> Self {
        Column {
            narrow: true,
            ..self
        }
    }
}

use ColumnType::{Float64, TimestampNs, UInt32, UInt64, Utf8, Utf8List};

/// Every row's first column: its ticker (a partition key of the store's paths, and
/// `symbol_id` in the databases).
const SYMBOL: Column = derived("symbol", Utf8).transient();
const T: Column = api("t", "t", TimestampNs);
/// The record's ordinal among the symbol's records sharing its nanosecond, in API order.
const SEQ: Column = derived("seq", UInt32);
const CONDITIONS: Column = api("conditions", "c", Utf8List).optional();
const TAPE: Column = api("tape", "z", Utf8).optional();

/// A quote: the NBBO at one instant.
const QUOTE_ROW: &[Column] = &[
    SYMBOL,
    T,
    SEQ.narrow(),
    api("bid_exchange", "bx", Utf8),
    api("bid_price", "bp", Float64),
    api("bid_size", "bs", UInt32),
    api("ask_exchange", "ax", Utf8),
    api("ask_price", "ap", Float64),
    api("ask_size", "as", UInt32),
    CONDITIONS,
    TAPE,
];

/// A trade; `update` (Alpaca's `u`: corrected, canceled, incorrect) is null for a plain
/// trade. `seq` only orders records for resuming.
const TRADE_ROW: &[Column] = &[
    SYMBOL,
    T,
    SEQ.transient(),
    api("exchange", "x", Utf8),
    api("id", "i", UInt64).sql_as("trade_id"),
    api("price", "p", Float64),
    api("size", "s", UInt64),
    CONDITIONS,
    TAPE,
    api("update", "u", Utf8).nullable().sql_as("update_flag"),
];

/// A bar's columns, with its volume's type (whole shares and contracts, or fractional
/// crypto units).
const fn bar_row(volume: ColumnType) -> [Column; 10] {
    [
        SYMBOL,
        T,
        SEQ.transient(),
        api("open", "o", Float64),
        api("high", "h", Float64),
        api("low", "l", Float64),
        api("close", "c", Float64),
        api("volume", "v", volume),
        api("trade_count", "n", UInt64).optional(),
        api("vwap", "vw", Float64).optional(),
    ]
}

/// A bar, stamped at its opening time (timeframe and adjustment are the dataset's).
const BAR_ROW: &[Column] = &bar_row(UInt64);

/// A crypto quote (`/v1beta3/crypto/{loc}/quotes`): no exchanges, conditions or tape, and
/// fractional sizes, kept exactly as sent.
const CRYPTO_QUOTE_ROW: &[Column] = &[
    SYMBOL,
    T,
    SEQ.narrow(),
    api("bid_price", "bp", Float64),
    api("bid_size", "bs", Float64),
    api("ask_price", "ap", Float64),
    api("ask_size", "as", Float64),
];

/// A crypto trade: fractional size, and the taker's side `tks` (`B` buyer, `S` seller, `-`
/// unknown). Crypto trades are never corrected.
const CRYPTO_TRADE_ROW: &[Column] = &[
    SYMBOL,
    T,
    SEQ.transient(),
    api("id", "i", UInt64).sql_as("trade_id"),
    api("price", "p", Float64),
    api("size", "s", Float64),
    api("taker_side", "tks", Utf8).optional(),
];

/// A crypto bar: fractional volume (a bar without trades has volume 0 and quote-derived
/// prices, as Alpaca sends it).
const CRYPTO_BAR_ROW: &[Column] = &bar_row(Float64);

/// An option trade (`/v1beta1/options/trades`): one condition code (not a list), no trade
/// id, so `seq` (the ordinal among the contract's trades sharing a nanosecond) keys it.
const OPTION_TRADE_ROW: &[Column] = &[
    SYMBOL,
    T,
    SEQ.narrow(),
    api("exchange", "x", Utf8),
    api("price", "p", Float64),
    api("size", "s", UInt64),
    api("condition", "c", Utf8).optional(),
];

/// An option bar: as a stock bar (whole contracts), never adjusted.
const OPTION_BAR_ROW: &[Column] = BAR_ROW;

/// One corporate action (`/v1/corporate-actions`), of any group the API sends: `t` is its
/// process date (New York midnight), `action` the group (`forward_splits`,
/// `cash_dividends`, `name_changes`, ...), `fields` the record with every field as sent
/// (JSON). The rates and the ex (or effective) date are also columns of their own, for
/// adjusting prices; absent ones are 0 and ''.
const ACTION_ROW: &[Column] = &[
    SYMBOL,
    derived("t", TimestampNs),
    SEQ.transient(),
    derived("id", Utf8),
    derived("action", Utf8),
    derived("ex_date", Utf8),
    derived("old_rate", Float64),
    derived("new_rate", Float64),
    derived("rate", Float64),
    derived("fields", Utf8),
];

/// One interval of quotes (`--aggregate`): the last quote's bid and ask, and how many quotes
/// it stands for. Database only.
pub(crate) const AGG_ROW: &[Column] = &[
    SYMBOL,
    derived("bucket_t", TimestampNs),
    derived("last_t", TimestampNs),
    derived("bid_exchange", Utf8),
    derived("bid_price", Float64),
    derived("bid_size", UInt32),
    derived("ask_exchange", Utf8),
    derived("ask_price", Float64),
    derived("ask_size", UInt32),
    derived("conditions", Utf8List),
    derived("tape", Utf8),
    derived("quote_count", UInt64),
];

/// Trades: a record naming the `identity` of an earlier one of the same day (and carrying
/// a non-null `update`) replaces it.
pub struct Corrections {
    pub identity: [&'static str; 2],
    pub update: &'static str,
}

impl Kind {
    /// The columns of this kind's rows: `symbol`, then `t` (the files' sort key), ...
    pub fn columns(self) -> &'static [Column] {
        match self {
            Kind::Quotes => QUOTE_ROW,
            Kind::Trades => TRADE_ROW,
            Kind::Bars => BAR_ROW,
            Kind::CorporateActions => ACTION_ROW,
        }
    }

    /// The columns whose values identify a row within its symbol's file unit: what a merge
    /// of a file with database rows keys on.
    pub fn identity(self) -> &'static [&'static str] {
        match self {
            Kind::Quotes => &["t", "seq"],
            Kind::Trades => &["exchange", "id"],
            Kind::Bars => &["t"],
            Kind::CorporateActions => &["id"],
        }
    }

    pub fn corrections(self) -> Option<Corrections> {
        (self == Kind::Trades).then_some(Corrections {
            identity: ["exchange", "id"],
            update: "update",
        })
    }
}

/// A database column that is not one of the row's own: computed from the row or the
/// dataset when written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Computed {
    /// The row's New York date as YYYYMMDD (a trade id is unique per day).
    NyDay,
    /// The bars' timeframe and adjustment.
    Timeframe,
    Adjustment,
}

/// A database table: its name, the row list it holds, its key.
#[derive(Debug)]
pub struct TableSpec {
    pub name: &'static str,
    pub row: &'static [Column],
    /// Columns computed when written, after `thinning_id`/`symbol_id` and before the row's.
    pub computed: &'static [(&'static str, Computed)],
    pub key: &'static [&'static str],
    /// The order rows are read back in.
    pub order: &'static [&'static str],
    /// The time column a range check filters on.
    pub time_column: &'static str,
    /// Rows of one batch may repeat a key (a trade and its correction).
    pub repeats_keys: bool,
    pub thinned: bool,
}

impl TableSpec {
    /// Every column in bind order: `thinning_id` (thinned tables), `symbol_id`, the computed
    /// columns, then the row's.
    pub fn columns(&self) -> Vec<&'static str> {
        let lead: &[&str] = if self.thinned {
            &["thinning_id", "symbol_id"]
        } else {
            &["symbol_id"]
        };
        lead.iter()
            .copied()
            .chain(self.computed.iter().map(|(name, _)| *name))
            .chain(self.row.iter().filter_map(|c| c.sql))
            .collect()
    }
}

pub const QUOTES: TableSpec = TableSpec {
    name: "quotes",
    row: QUOTE_ROW,
    computed: &[],
    key: &["symbol_id", "t", "seq"],
    order: &["t", "seq"],
    time_column: "t",
    repeats_keys: false,
    thinned: false,
};

pub const QUOTES_THINNED: TableSpec = TableSpec {
    name: "quotes_thinned",
    key: &["thinning_id", "symbol_id", "t", "seq"],
    thinned: true,
    ..QUOTES
};

pub const QUOTES_AGGREGATED: TableSpec = TableSpec {
    name: "quotes_aggregated",
    row: AGG_ROW,
    key: &["thinning_id", "symbol_id", "bucket_t"],
    order: &["bucket_t"],
    time_column: "bucket_t",
    ..QUOTES_THINNED
};

pub const TRADES: TableSpec = TableSpec {
    name: "trades",
    row: TRADE_ROW,
    computed: &[("day", Computed::NyDay)],
    key: &["symbol_id", "day", "exchange", "trade_id"],
    order: &["t", "exchange", "trade_id"],
    time_column: "t",
    repeats_keys: true,
    thinned: false,
};

pub const BARS: TableSpec = TableSpec {
    name: "bars",
    row: BAR_ROW,
    computed: &[
        ("timeframe", Computed::Timeframe),
        ("adjustment", Computed::Adjustment),
    ],
    key: &["symbol_id", "timeframe", "adjustment", "t"],
    order: &["t"],
    time_column: "t",
    repeats_keys: false,
    thinned: false,
};

pub(crate) const CRYPTO_QUOTES: TableSpec = TableSpec {
    name: "crypto_quotes",
    row: CRYPTO_QUOTE_ROW,
    ..QUOTES
};

pub(crate) const CRYPTO_TRADES: TableSpec = TableSpec {
    name: "crypto_trades",
    row: CRYPTO_TRADE_ROW,
    computed: &[],
    key: &["symbol_id", "t", "trade_id"],
    order: &["t", "trade_id"],
    time_column: "t",
    repeats_keys: false,
    thinned: false,
};

pub(crate) const CRYPTO_BARS: TableSpec = TableSpec {
    name: "crypto_bars",
    row: CRYPTO_BAR_ROW,
    computed: &[("timeframe", Computed::Timeframe)],
    key: &["symbol_id", "timeframe", "t"],
    ..BARS
};

pub(crate) const CORPORATE_ACTIONS: TableSpec = TableSpec {
    name: "corporate_actions",
    row: ACTION_ROW,
    computed: &[],
    key: &["symbol_id", "t", "id"],
    order: &["t", "id"],
    time_column: "t",
    repeats_keys: false,
    thinned: false,
};

pub(crate) const OPTION_TRADES: TableSpec = TableSpec {
    name: "option_trades",
    row: OPTION_TRADE_ROW,
    ..QUOTES
};

pub(crate) const OPTION_BARS: TableSpec = TableSpec {
    name: "option_bars",
    row: OPTION_BAR_ROW,
    ..CRYPTO_BARS
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_lists_its_key_and_no_column_twice() {
        for t in [
            &QUOTES,
            &QUOTES_THINNED,
            &QUOTES_AGGREGATED,
            &TRADES,
            &BARS,
            &CRYPTO_QUOTES,
            &CRYPTO_TRADES,
            &CRYPTO_BARS,
            &OPTION_TRADES,
            &OPTION_BARS,
            &CORPORATE_ACTIONS,
        ] {
            let cols = t.columns();
            assert!(t.key.iter().all(|k| cols.contains(k)), "{}", t.name);
            assert!(t.order.iter().all(|k| cols.contains(k)), "{}", t.name);
            let mut sorted = cols.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), cols.len(), "{}", t.name);
        }
        assert_eq!(
            TRADES.columns(),
            [
                "symbol_id",
                "day",
                "t",
                "exchange",
                "trade_id",
                "price",
                "size",
                "conditions",
                "tape",
                "update_flag"
            ]
        );
    }

    #[test]
    fn json_fields_are_unique_per_kind() {
        for kind in [Kind::Quotes, Kind::Trades, Kind::Bars] {
            let mut fields: Vec<&str> = kind.columns().iter().filter_map(|c| c.json).collect();
            let n = fields.len();
            fields.sort_unstable();
            fields.dedup();
            assert_eq!(fields.len(), n, "{kind:?}");
            assert_eq!(
                kind.columns()[..2]
                    .iter()
                    .map(|c| c.name)
                    .collect::<Vec<_>>(),
                ["symbol", "t"]
            );
        }
    }
}
