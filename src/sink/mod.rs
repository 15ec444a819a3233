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

/// A `trades` row as a database returns it: t, exchange, trade_id, price, size,
/// conditions (JSON text), tape, update_flag (`''` for a plain trade).
pub type TradeColumns = (i64, String, i64, f64, i64, String, String, String);

/// A `bars` row as a database returns it: t, open, high, low, close, volume, trade_count,
/// vwap.
pub type BarColumns = (i64, f64, f64, f64, f64, i64, i64, f64);

/// The trades of `$1` with `$2 <= t < $3` (PostgreSQL placeholders; SQLite's are `?N`).
pub const SELECT_TRADES: &str =
    "SELECT q.t, q.exchange, q.trade_id, q.price, q.size, q.conditions, q.tape, q.update_flag \
     FROM trades q JOIN symbols s ON s.id = q.symbol_id \
     WHERE s.symbol = $1 AND q.t >= $2 AND q.t < $3 ORDER BY q.t, q.exchange, q.trade_id";

/// The bars of `$1` with `$2 <= t < $3`, timeframe `$4` and adjustment `$5`.
pub const SELECT_BARS: &str = "SELECT q.t, q.open, q.high, q.low, q.close, q.volume, q.trade_count, q.vwap \
     FROM bars q JOIN symbols s ON s.id = q.symbol_id \
     WHERE s.symbol = $1 AND q.t >= $2 AND q.t < $3 AND q.timeframe = $4 AND q.adjustment = $5 ORDER BY q.t";

/// The statement deleting a dataset's rows of symbol `$1` with `$2 <= t < $3` (bars: of
/// timeframe `$4` and adjustment `$5`), and the `import_progress` dataset whose records go
/// with them.
pub fn delete_sql(layout: &crate::dataset::DatasetId) -> (&'static str, String) {
    use crate::dataset::DatasetId;
    let sql = match layout {
        DatasetId::Quotes => {
            "DELETE FROM quotes WHERE symbol_id = (SELECT id FROM symbols WHERE symbol = $1) AND t >= $2 AND t < $3"
        }
        DatasetId::Trades => {
            "DELETE FROM trades WHERE symbol_id = (SELECT id FROM symbols WHERE symbol = $1) AND t >= $2 AND t < $3"
        }
        DatasetId::Bars { .. } => {
            "DELETE FROM bars WHERE symbol_id = (SELECT id FROM symbols WHERE symbol = $1) AND t >= $2 AND t < $3 \
             AND timeframe = $4 AND adjustment = $5"
        }
    };
    (sql, layout.key())
}

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

/// The queries `archive` runs on either database, written once: reading a unit's trades or
/// bars, and deleting a unit's rows with their progress records. `$sql` turns the shared
/// PostgreSQL-style statements (`$1`) into the backend's dialect; `$forget` deletes one
/// `import_progress` row (dataset, symbol, day).
macro_rules! archive_queries {
    ($sql:expr, $forget:literal) => {
        /// The trades of `symbol` with `from_ns <= t < until_ns`, in time order.
        pub async fn read_trades(
            &mut self,
            symbol: &str,
            from_ns: i64,
            until_ns: i64,
        ) -> anyhow::Result<Vec<crate::model::Trade>> {
            let sql = ($sql)(super::SELECT_TRADES);
            let rows: Vec<super::TradeColumns> = sqlx::query_as(&sql)
                .bind(symbol)
                .bind(from_ns)
                .bind(until_ns)
                .fetch_all(&mut self.conn)
                .await
                .map_err(|e| self.err(e, "cannot read trades"))?;
            let sym: Arc<str> = symbol.into();
            rows.into_iter()
                .map(|r| super::trade_from_columns(&sym, r))
                .collect()
        }

        /// The bars of `symbol`, `timeframe` and `adjustment` with `from_ns <= t < until_ns`.
        pub async fn read_bars(
            &mut self,
            symbol: &str,
            (timeframe, adjustment): (crate::dataset::Timeframe, crate::dataset::Adjustment),
            from_ns: i64,
            until_ns: i64,
        ) -> anyhow::Result<Vec<crate::model::Bar>> {
            let sql = ($sql)(super::SELECT_BARS);
            let rows: Vec<super::BarColumns> = sqlx::query_as(&sql)
                .bind(symbol)
                .bind(from_ns)
                .bind(until_ns)
                .bind(timeframe.as_str())
                .bind(adjustment.as_str())
                .fetch_all(&mut self.conn)
                .await
                .map_err(|e| self.err(e, "cannot read bars"))?;
            let sym: Arc<str> = symbol.into();
            let (timeframe, adjustment) = (timeframe.as_str().into(), adjustment.as_str().into());
            rows.into_iter()
                .map(|r| super::bar_from_columns(&sym, &timeframe, &adjustment, r))
                .collect()
        }

        /// Deletes `layout`'s rows of `symbol` with `from_ns <= t < until_ns` in one
        /// transaction, with the progress records of the days (months) they cover; returns
        /// how many rows.
        pub async fn delete_rows(
            &mut self,
            layout: &crate::dataset::DatasetId,
            symbol: &str,
            from_ns: i64,
            until_ns: i64,
        ) -> anyhow::Result<u64> {
            // The units' resume points go with their rows: an import of them after the
            // archive must fetch them again, not skip them as done.
            let (sql, dataset) = super::delete_sql(layout);
            let sql = ($sql)(sql);
            let spec = match layout {
                crate::dataset::DatasetId::Bars {
                    timeframe,
                    adjustment,
                } => Some((timeframe.to_string(), adjustment.to_string())),
                _ => None,
            };
            let deleted = async {
                let mut tx = self.conn.begin().await?;
                let mut q = sqlx::query(&sql).bind(symbol).bind(from_ns).bind(until_ns);
                if let Some((tf, adj)) = &spec {
                    q = q.bind(tf.as_str()).bind(adj.as_str());
                }
                let r = q.execute(&mut *tx).await?;
                for key in layout.units_in(from_ns, until_ns - 1) {
                    sqlx::query($forget)
                        .bind(&dataset)
                        .bind(symbol)
                        .bind(key.to_string())
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok::<_, sqlx::Error>(r.rows_affected())
            }
            .await;
            deleted.map_err(|e| self.err(e, "cannot delete archived rows"))
        }
    };
}
pub(crate) use archive_queries;
