//! Sinks: where committed batches land. Each implements `pipeline::Sink` and commits a
//! batch atomically; adding a store means adding a module here, not a new pipeline.

pub mod database;
pub mod parquet;
pub mod postgres;
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
