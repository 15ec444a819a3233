//! Sinks: where committed batches land. Each implements `pipeline::Sink` and commits a
//! batch atomically; adding a store means adding a module here, not a new pipeline.
//!
//! This file also holds rows as the SQL sink sees them: [`SqlRow`], the statements that
//! read rows back, and the conversions from stored columns.

pub mod database;
pub mod parquet;
pub mod parquet_schema;
pub mod postgres;
pub mod sql;
pub mod sqlite;

use crate::dataset::{DatasetId, TableSpec};
use crate::model::{Bar, Quote, Record, Trade};
use crate::transform::AggQuote;
use std::sync::Arc;

/// Whether another process with this pid is running (Linux: /proc). Unknown means "not
/// running", so a leftover record or temp file can never block clean-up for good.
pub fn process_alive(pid: i64) -> bool {
    pid > 0
        && pid as u32 != std::process::id()
        && std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// A `quotes` row as a database returns it: t, seq, then the data columns in table order
/// (integers widened to 64 bits, conditions as their stored JSON text).
pub type QuoteColumns = (i64, i64, String, f64, i64, String, f64, i64, String, String);

/// Rebuilds a `Quote` from stored columns, refusing values a quote cannot hold.
pub fn quote_from_columns(
    symbol: &std::sync::Arc<str>,
    r: QuoteColumns,
) -> anyhow::Result<crate::model::Quote> {
    use anyhow::Context;
    Ok(crate::model::Quote {
        symbol: symbol.clone(),
        t: r.0,
        seq: u32::try_from(r.1).context("seq out of range")?,
        bid_exchange: r.2,
        bid_price: r.3,
        bid_size: u32::try_from(r.4).context("bid_size out of range")?,
        ask_exchange: r.5,
        ask_price: r.6,
        ask_size: u32::try_from(r.7).context("ask_size out of range")?,
        conditions: serde_json::from_str(&r.8)
            .with_context(|| format!("conditions {:?} are not a JSON array", r.8))?,
        tape: r.9,
    })
}

/// A `trades` row as a database returns it: t, exchange, trade_id, price, size,
/// conditions (JSON text), tape, update_flag (`''` for a plain trade).
pub type TradeColumns = (i64, String, i64, f64, i64, String, String, String);

/// A `bars` row as a database returns it: t, open, high, low, close, volume, trade_count,
/// vwap.
pub type BarColumns = (i64, f64, f64, f64, f64, i64, i64, f64);

/// Rebuilds a `Trade` from stored columns.
pub fn trade_from_columns(
    symbol: &std::sync::Arc<str>,
    r: TradeColumns,
) -> anyhow::Result<crate::model::Trade> {
    use anyhow::Context;
    Ok(crate::model::Trade {
        symbol: symbol.clone(),
        t: r.0,
        seq: 0,
        exchange: r.1,
        id: u64::try_from(r.2).context("trade_id out of range")?,
        price: r.3,
        size: u64::try_from(r.4).context("size out of range")?,
        conditions: serde_json::from_str(&r.5)
            .with_context(|| format!("conditions {:?} are not a JSON array", r.5))?,
        tape: r.6,
        update: (!r.7.is_empty()).then_some(r.7),
    })
}

/// Rebuilds a `Bar` from stored columns.
pub fn bar_from_columns(
    symbol: &std::sync::Arc<str>,
    timeframe: &std::sync::Arc<str>,
    adjustment: &std::sync::Arc<str>,
    r: BarColumns,
) -> anyhow::Result<crate::model::Bar> {
    use anyhow::Context;
    Ok(crate::model::Bar {
        symbol: symbol.clone(),
        timeframe: timeframe.clone(),
        adjustment: adjustment.clone(),
        t: r.0,
        seq: 0,
        open: r.1,
        high: r.2,
        low: r.3,
        close: r.4,
        volume: u64::try_from(r.5).context("volume out of range")?,
        trade_count: u64::try_from(r.6).context("trade_count out of range")?,
        vwap: r.7,
    })
}

/// A row a SQL sink writes: its symbol, its time key and its table.
pub trait SqlRow: Record + Sync {
    fn symbol(&self) -> &Arc<str>;
    /// The value of the table's time column (`t`, or `bucket_t` for aggregates).
    fn time_key(&self) -> i64;
    /// The table it lands in (`thinned`: the import keeps thinned quotes).
    fn table(thinned: bool) -> &'static TableSpec;
}

/// The statement deleting a dataset's rows of symbol `$1` with `$2 <= t < $3` (bars: of
/// timeframe `$4` and adjustment `$5`).
pub(crate) fn delete_sql(dataset: DatasetId) -> String {
    let table = dataset.table();
    let bars = if matches!(dataset, DatasetId::Bars { .. }) {
        " AND timeframe = $4 AND adjustment = $5"
    } else {
        ""
    };
    format!(
        "DELETE FROM {} WHERE symbol_id = (SELECT id FROM symbols WHERE symbol = $1) \
         AND {} >= $2 AND {} < $3{bars}",
        table.name, table.time_column, table.time_column
    )
}

pub(crate) const SELECT_QUOTES: &str =
    "SELECT q.t, CAST(q.seq AS BIGINT), q.bid_exchange, q.bid_price, q.bid_size, q.ask_exchange, \
     q.ask_price, q.ask_size, q.conditions, q.tape FROM quotes q JOIN symbols s ON s.id = q.symbol_id \
     WHERE s.symbol = $1 AND q.t >= $2 AND q.t < $3 ORDER BY q.t, q.seq";

pub(crate) const SELECT_TRADES: &str =
    "SELECT q.t, q.exchange, q.trade_id, q.price, q.size, q.conditions, q.tape, q.update_flag \
     FROM trades q JOIN symbols s ON s.id = q.symbol_id \
     WHERE s.symbol = $1 AND q.t >= $2 AND q.t < $3 ORDER BY q.t, q.exchange, q.trade_id";

pub(crate) const SELECT_BARS: &str =
    "SELECT q.t, q.open, q.high, q.low, q.close, q.volume, q.trade_count, q.vwap \
     FROM bars q JOIN symbols s ON s.id = q.symbol_id \
     WHERE s.symbol = $1 AND q.t >= $2 AND q.t < $3 AND q.timeframe = $4 AND q.adjustment = $5 \
     ORDER BY q.t";

/// A trade's New York date as YYYYMMDD, part of its key.
pub fn trade_day(t: i64) -> i64 {
    use chrono::Datelike;
    let d = crate::time::new_york_date(t);
    i64::from(d.year()) * 10_000 + i64::from(d.month()) * 100 + i64::from(d.day())
}

/// `SqlRow` for a row type whose symbol is `symbol` and whose time key is `$time`.
macro_rules! sql_row {
    ($row:ty, $time:ident, |$thinned:pat_param| $table:expr) => {
        impl SqlRow for $row {
            fn symbol(&self) -> &Arc<str> {
                &self.symbol
            }
            fn time_key(&self) -> i64 {
                self.$time
            }
            fn table($thinned: bool) -> &'static TableSpec {
                $table
            }
        }
    };
}

sql_row!(Quote, t, |thinned| if thinned {
    &crate::dataset::QUOTES_THINNED
} else {
    &crate::dataset::QUOTES
});
sql_row!(Trade, t, |_| &crate::dataset::TRADES);
sql_row!(Bar, t, |_| &crate::dataset::BARS);
sql_row!(AggQuote, bucket_t, |_| &crate::dataset::QUOTES_AGGREGATED);
