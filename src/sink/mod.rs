//! Sinks: where committed batches land. Each implements `pipeline::Sink` and commits a
//! batch atomically; adding a store means adding a module here, not a new pipeline.

pub mod database;
pub mod parquet;
pub mod postgres;
pub mod sql;
pub mod sqlite;

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
