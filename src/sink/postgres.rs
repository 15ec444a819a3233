//! The PostgreSQL sink: the same logical tables as SQLite (migrations/postgres), each batch
//! in one transaction, loaded with COPY.
//!
//! Upsert mode: `COPY` into a session-temporary staging table, then one
//! `INSERT ... SELECT ... ORDER BY key ON CONFLICT DO UPDATE` into the real table. Sorting by
//! key makes every importer take row locks in the same order, so several importers writing
//! overlapping ranges to one server never deadlock; a deadlock or serialization failure that
//! happens anyway is retried. Plain-insert mode (`--skip-duplicates`) copies straight into the
//! table, falling back to upsert if it meets existing rows. A dropped connection is
//! reconnected and the batch retried: a batch is one transaction, so it is either all there
//! or not at all.

use super::sqlite::{TableSpec, WriteMode};
use crate::model::{Bar, Quote, Trade};
use crate::pipeline::{Mark, Sink};
use crate::resume::{ProgressRecord, Saved, Tracking};
use crate::source::retry::{Next, RetryPolicy, Verdict};
use crate::transform::AggQuote;
use anyhow::Context;
use chrono::NaiveDate;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// Session advisory-lock key held by an import that has dropped indexes (any machine).
const DROP_LOCK_KEY: i64 = 0x6461_7461_6964_7800;
/// Attempts per batch when the connection drops or a deadlock is reported.
const BATCH_RETRY: RetryPolicy = RetryPolicy {
    max_attempts: 5,
    base_delay: Duration::from_millis(200),
    max_delay: Duration::from_secs(2),
};

/// A row the sink can COPY: its symbol, its time key, and its own values in PostgreSQL's
/// binary COPY format (measured faster than text: no number formatting on our side, no
/// parsing on the server's; see benches/RESULTS.md).
pub trait CopyRow: Sync {
    fn symbol(&self) -> &Arc<str>;
    /// The value of the table's time column (`t` or `bucket_t`).
    fn time_key(&self) -> i64;
    /// How many of its own columns the row writes.
    const COLUMNS: i16;
    /// Appends this row's own fields (after `thinning_id` and `symbol_id`).
    fn write_copy(&self, out: &mut Vec<u8>);
}

/// Binary COPY field writers: a 4-byte length, then the value in network byte order.
fn int4(out: &mut Vec<u8>, v: i32) {
    out.extend_from_slice(&4i32.to_be_bytes());
    out.extend_from_slice(&v.to_be_bytes());
}

fn int8(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(&8i32.to_be_bytes());
    out.extend_from_slice(&v.to_be_bytes());
}

fn float8(out: &mut Vec<u8>, v: f64) {
    out.extend_from_slice(&8i32.to_be_bytes());
    out.extend_from_slice(&v.to_bits().to_be_bytes());
}

fn text(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as i32).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// The binary COPY header: signature, flags, header extension length.
const COPY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// The binary COPY trailer: a tuple with field count -1.
const COPY_TRAILER: [u8; 2] = (-1i16).to_be_bytes();

impl CopyRow for Quote {
    fn symbol(&self) -> &Arc<str> {
        &self.symbol
    }
    fn time_key(&self) -> i64 {
        self.t
    }
    const COLUMNS: i16 = 10;
    fn write_copy(&self, out: &mut Vec<u8>) {
        int8(out, self.t);
        int4(out, self.seq as i32);
        text(out, &self.bid_exchange);
        float8(out, self.bid_price);
        int8(out, self.bid_size as i64);
        text(out, &self.ask_exchange);
        float8(out, self.ask_price);
        int8(out, self.ask_size as i64);
        text(out, &self.conditions_json());
        text(out, &self.tape);
    }
}

impl CopyRow for Trade {
    fn symbol(&self) -> &Arc<str> {
        &self.symbol
    }
    fn time_key(&self) -> i64 {
        self.t
    }
    const COLUMNS: i16 = 9;
    fn write_copy(&self, out: &mut Vec<u8>) {
        int4(out, super::sqlite::trade_day(self.t) as i32);
        text(out, &self.exchange);
        int8(out, self.id as i64);
        int8(out, self.t);
        float8(out, self.price);
        int8(out, self.size as i64);
        text(out, &crate::model::conditions_json(&self.conditions));
        text(out, &self.tape);
        text(out, self.update.as_deref().unwrap_or(""));
    }
}

impl CopyRow for Bar {
    fn symbol(&self) -> &Arc<str> {
        &self.symbol
    }
    fn time_key(&self) -> i64 {
        self.t
    }
    const COLUMNS: i16 = 10;
    fn write_copy(&self, out: &mut Vec<u8>) {
        text(out, &self.timeframe);
        text(out, &self.adjustment);
        int8(out, self.t);
        float8(out, self.open);
        float8(out, self.high);
        float8(out, self.low);
        float8(out, self.close);
        int8(out, self.volume as i64);
        int8(out, self.trade_count as i64);
        float8(out, self.vwap);
    }
}

impl CopyRow for AggQuote {
    fn symbol(&self) -> &Arc<str> {
        &self.symbol
    }
    fn time_key(&self) -> i64 {
        self.bucket_t
    }
    const COLUMNS: i16 = 11;
    fn write_copy(&self, out: &mut Vec<u8>) {
        int8(out, self.bucket_t);
        int8(out, self.last_t);
        text(out, &self.bid_exchange);
        float8(out, self.bid_price);
        int8(out, self.bid_size as i64);
        text(out, &self.ask_exchange);
        float8(out, self.ask_price);
        int8(out, self.ask_size as i64);
        text(out, &crate::model::conditions_json(&self.conditions));
        text(out, &self.tape);
        int8(out, self.quote_count as i64);
    }
}

/// The server's error code (SQLSTATE), if any.
fn sqlstate(e: &sqlx::Error) -> Option<String> {
    match e {
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
        _ => None,
    }
}

/// A connection that is gone (closed by the server, reset, shut down): reconnect and retry.
fn is_connection_lost(e: &sqlx::Error) -> bool {
    matches!(
        e,
        sqlx::Error::Io(_) | sqlx::Error::Protocol(_) | sqlx::Error::PoolClosed
    ) || sqlstate(e).is_some_and(|c| c.starts_with("08") || c.starts_with("57P"))
}

/// A conflict between concurrent importers that a retry resolves.
fn is_retryable_conflict(e: &sqlx::Error) -> bool {
    sqlstate(e).is_some_and(|c| c == "40P01" || c == "40001")
}

fn is_duplicate(e: &sqlx::Error) -> bool {
    sqlstate(e).is_some_and(|c| c == "23505")
}

/// The URL with its password replaced, for messages.
pub fn redacted(url: &str) -> String {
    crate::config::redact_url(url)
}

pub struct PgSink {
    conn: PgConnection,
    opts: PgConnectOptions,
    shown: String,
    symbol_ids: HashMap<Arc<str>, i64>,
    mode: WriteMode,
    thinning_id: Option<i64>,
    /// This session holds the drop-indexes advisory lock.
    holds_drop_lock: bool,
    /// Try COPY straight into the table when a batch's span holds no rows (see try_write).
    optimistic: bool,
    buf: Vec<u8>,
    /// Set for an import that commits resume points with its batches.
    tracking: Option<Tracking>,
}

fn pg_error(e: sqlx::Error, shown: &str, doing: &str) -> anyhow::Error {
    // sqlx's messages never contain the password; the URL is shown redacted.
    anyhow::anyhow!("{doing} (PostgreSQL {shown}): {e}")
}

impl PgSink {
    pub async fn open(url: &str) -> anyhow::Result<Self> {
        let shown = redacted(url);
        let opts = PgConnectOptions::from_str(url)
            .map_err(|e| anyhow::anyhow!("invalid PostgreSQL URL {shown}: {e}"))?
            .log_statements(tracing::log::LevelFilter::Off)
            .log_slow_statements(tracing::log::LevelFilter::Off, Duration::from_secs(3600));
        let mut conn = connect(&opts, &shown).await?;
        sqlx::migrate!("./migrations/postgres")
            .run(&mut conn)
            .await
            .map_err(|e| {
                anyhow::anyhow!("cannot apply the schema migrations to PostgreSQL {shown}: {e}")
            })?;
        let mut sink = PgSink {
            conn,
            opts,
            shown,
            symbol_ids: HashMap::new(),
            mode: WriteMode::Upsert,
            thinning_id: None,
            holds_drop_lock: false,
            optimistic: true,
            buf: Vec::new(),
            tracking: None,
        };
        sink.heal_indexes().await?;
        Ok(sink)
    }

    pub fn shown(&self) -> &str {
        &self.shown
    }

    pub fn set_mode(&mut self, mode: WriteMode) {
        self.mode = mode;
    }

    /// Turns the direct-COPY fast path for empty spans on or off (benchmarks compare both).
    pub fn set_optimistic(&mut self, on: bool) {
        self.optimistic = on;
    }

    pub fn mode(&self) -> WriteMode {
        self.mode
    }

    /// Commit each batch's shard progress (`import_progress`) in the batch's transaction.
    pub fn track(&mut self, tracking: Tracking) {
        self.tracking = Some(tracking);
    }

    /// The progress records of `dataset` for `symbol` on days `first..=last`.
    pub async fn load_progress(
        &mut self,
        dataset: &str,
        symbol: &str,
        first: NaiveDate,
        last: NaiveDate,
    ) -> anyhow::Result<Vec<Saved>> {
        let rows: Vec<ProgressRecord> = sqlx::query_as(
            "SELECT day::text, start_ns, end_ns, last_t, last_seq::BIGINT, done FROM import_progress \
             WHERE dataset = $1 AND symbol = $2 AND day BETWEEN $3::date AND $4::date ORDER BY day",
        )
        .bind(dataset)
        .bind(symbol)
        .bind(first.to_string())
        .bind(last.to_string())
        .fetch_all(&mut self.conn)
        .await
        .map_err(|e| self.err(e, "cannot read the import progress"))?;
        rows.into_iter().map(Saved::from_record).collect()
    }

    fn err(&self, e: sqlx::Error, doing: &str) -> anyhow::Error {
        pg_error(e, &self.shown, doing)
    }

    pub async fn set_thinning(&mut self, spec: &str) -> anyhow::Result<()> {
        let id = upsert_name(&mut self.conn, "thinnings", "spec", spec)
            .await
            .map_err(|e| self.err(e, "cannot record the thinning spec"))?;
        self.thinning_id = Some(id);
        Ok(())
    }

    async fn symbol_id(&mut self, symbol: &Arc<str>) -> Result<i64, sqlx::Error> {
        if let Some(id) = self.symbol_ids.get(symbol) {
            return Ok(*id);
        }
        let id = upsert_name(&mut self.conn, "symbols", "symbol", symbol).await?;
        self.symbol_ids.insert(symbol.clone(), id);
        Ok(id)
    }

    pub async fn has_rows_in(
        &mut self,
        table: &TableSpec,
        symbol: &str,
        start_ns: i64,
        end_ns: i64,
    ) -> anyhow::Result<bool> {
        let sql = format!(
            "SELECT EXISTS (SELECT 1 FROM {t} q JOIN symbols s ON s.id = q.symbol_id \
             WHERE s.symbol = $1 AND q.{c} BETWEEN $2 AND $3{th})",
            t = table.name,
            c = table.time_column,
            th = if table.thinned {
                " AND q.thinning_id = $4"
            } else {
                ""
            }
        );
        let mut q = sqlx::query_scalar::<_, bool>(&sql)
            .bind(symbol)
            .bind(start_ns)
            .bind(end_ns);
        if table.thinned {
            q = q.bind(self.thinning_id.unwrap_or(-1) as i32);
        }
        q.fetch_one(&mut self.conn)
            .await
            .map_err(|e| self.err(e, "cannot check the range for existing rows"))
    }

    /// Drops `table`'s secondary indexes (recorded first, in the same transaction) while
    /// holding a session advisory lock that tells other sessions, on any machine, that an
    /// import without its indexes is running. If another such import holds it, nothing is
    /// dropped.
    pub async fn drop_secondary_indexes(
        &mut self,
        table: &TableSpec,
    ) -> anyhow::Result<Vec<String>> {
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(DROP_LOCK_KEY)
            .fetch_one(&mut self.conn)
            .await
            .map_err(|e| self.err(e, "cannot take the drop-indexes lock"))?;
        if !got {
            tracing::warn!(
                "[DB] another --drop-indexes import is running on this server; keeping the indexes"
            );
            return Ok(Vec::new());
        }
        self.holds_drop_lock = true;
        let shown = self.shown.clone();
        let fail = |e, doing| pg_error(e, &shown, doing);
        let mut tx = self
            .conn
            .begin()
            .await
            .map_err(|e| fail(e, "cannot start dropping indexes"))?;
        let indexes: Vec<(String, String)> = sqlx::query_as(
            "SELECT i.indexname::TEXT, i.indexdef FROM pg_indexes i \
             WHERE i.schemaname = current_schema() AND i.tablename = $1 \
             AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)",
        )
        .bind(table.name)
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| fail(e, "cannot list indexes"))?;
        for (name, sql) in &indexes {
            sqlx::query(
                "INSERT INTO dropped_indexes (name, create_sql, dropped_at, pid) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (name) DO UPDATE SET pid = EXCLUDED.pid, dropped_at = EXCLUDED.dropped_at",
            )
            .bind(name)
            .bind(sql)
            .bind(chrono::Utc::now().to_rfc3339())
            .bind(std::process::id() as i32)
            .execute(&mut *tx)
            .await
            .map_err(|e| fail(e, "cannot record a dropped index"))?;
            sqlx::query(&format!(
                "DROP INDEX IF EXISTS \"{}\"",
                name.replace('"', "\"\"")
            ))
            .execute(&mut *tx)
            .await
            .map_err(|e| fail(e, "cannot drop an index"))?;
        }
        tx.commit()
            .await
            .map_err(|e| fail(e, "cannot commit dropping indexes"))?;
        Ok(indexes.into_iter().map(|(n, _)| n).collect())
    }

    /// Recreates every recorded dropped index, unless (`only_orphans`) an import that dropped
    /// them still holds the advisory lock.
    pub async fn rebuild_dropped_indexes(
        &mut self,
        only_orphans: bool,
    ) -> anyhow::Result<Vec<String>> {
        let records: Vec<(String, String)> =
            sqlx::query_as("SELECT name, create_sql FROM dropped_indexes")
                .fetch_all(&mut self.conn)
                .await
                .map_err(|e| self.err(e, "cannot read dropped index records"))?;
        if records.is_empty() {
            return Ok(Vec::new());
        }
        if only_orphans && !self.holds_drop_lock {
            let free: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                .bind(DROP_LOCK_KEY)
                .fetch_one(&mut self.conn)
                .await
                .map_err(|e| self.err(e, "cannot check the drop-indexes lock"))?;
            if !free {
                return Ok(Vec::new());
            }
            self.holds_drop_lock = true;
        }
        let shown = self.shown.clone();
        let fail = |e, doing| pg_error(e, &shown, doing);
        let mut tx = self
            .conn
            .begin()
            .await
            .map_err(|e| fail(e, "cannot start rebuilding indexes"))?;
        for (name, create_sql) in &records {
            let sql = create_sql.replacen("CREATE INDEX", "CREATE INDEX IF NOT EXISTS", 1);
            sqlx::query(&sql)
                .execute(&mut *tx)
                .await
                .map_err(|e| fail(e, "cannot rebuild an index"))?;
            sqlx::query("DELETE FROM dropped_indexes WHERE name = $1")
                .bind(name)
                .execute(&mut *tx)
                .await
                .map_err(|e| fail(e, "cannot clear a dropped index record"))?;
        }
        tx.commit()
            .await
            .map_err(|e| fail(e, "cannot commit rebuilt indexes"))?;
        self.release_drop_lock().await;
        Ok(records.into_iter().map(|(n, _)| n).collect())
    }

    async fn release_drop_lock(&mut self) {
        if self.holds_drop_lock {
            let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(DROP_LOCK_KEY)
                .execute(&mut self.conn)
                .await;
            self.holds_drop_lock = false;
        }
    }

    async fn heal_indexes(&mut self) -> anyhow::Result<()> {
        for name in self.rebuild_dropped_indexes(true).await? {
            tracing::warn!(
                "[DB] rebuilt index {name}, left dropped by an interrupted --drop-indexes import"
            );
        }
        Ok(())
    }

    /// Rows per (dataset, symbol, New York day), as for SQLite's `day_counts`, with exact
    /// New York dates.
    pub async fn day_counts(
        &mut self,
        symbol: Option<&str>,
    ) -> anyhow::Result<Vec<(String, String, NaiveDate, i64)>> {
        let day = |col: &str| {
            format!("(to_timestamp({col} / 1e9) AT TIME ZONE 'America/New_York')::date::text")
        };
        let sql = format!(
            "SELECT 'quotes', s.symbol, {d1} AS d, count(*) FROM quotes q JOIN symbols s ON s.id = q.symbol_id \
             WHERE ($1::TEXT IS NULL OR s.symbol = $1) GROUP BY s.symbol, d \
             UNION ALL SELECT 'quotes_thinned/' || th.spec, s.symbol, {d1} AS d, count(*) FROM quotes_thinned q \
             JOIN symbols s ON s.id = q.symbol_id JOIN thinnings th ON th.id = q.thinning_id \
             WHERE ($1::TEXT IS NULL OR s.symbol = $1) GROUP BY th.spec, s.symbol, d \
             UNION ALL SELECT 'quotes_aggregated/' || th.spec, s.symbol, {d2} AS d, count(*) FROM quotes_aggregated q \
             JOIN symbols s ON s.id = q.symbol_id JOIN thinnings th ON th.id = q.thinning_id \
             WHERE ($1::TEXT IS NULL OR s.symbol = $1) GROUP BY th.spec, s.symbol, d \
             UNION ALL SELECT 'trades', s.symbol, {d1} AS d, count(*) FROM trades q JOIN symbols s ON s.id = q.symbol_id \
             WHERE ($1::TEXT IS NULL OR s.symbol = $1) GROUP BY s.symbol, d \
             UNION ALL SELECT 'bars/' || q.timeframe || '/' || q.adjustment, s.symbol, {d1} AS d, count(*) \
             FROM bars q JOIN symbols s ON s.id = q.symbol_id WHERE ($1::TEXT IS NULL OR s.symbol = $1) \
             GROUP BY q.timeframe, q.adjustment, s.symbol, d ORDER BY 1, 2, 3",
            d1 = day("q.t"),
            d2 = day("q.bucket_t")
        );
        let rows: Vec<(String, String, String, i64)> = sqlx::query_as(&sql)
            .bind(symbol)
            .fetch_all(&mut self.conn)
            .await
            .map_err(|e| self.err(e, "cannot count rows per day"))?;
        rows.into_iter()
            .map(|(ds, sym, d, n)| {
                let date = NaiveDate::parse_from_str(&d, "%Y-%m-%d")
                    .with_context(|| format!("unexpected day {d:?} from the server"))?;
                Ok((ds, sym, date, n))
            })
            .collect()
    }

    pub async fn read_quotes(
        &mut self,
        symbol: &str,
        from_ns: i64,
        until_ns: i64,
    ) -> anyhow::Result<Vec<Quote>> {
        let rows: Vec<super::QuoteColumns> = sqlx::query_as(
            "SELECT q.t, q.seq::BIGINT, q.bid_exchange, q.bid_price, q.bid_size, q.ask_exchange, q.ask_price, \
             q.ask_size, q.conditions, q.tape FROM quotes q JOIN symbols s ON s.id = q.symbol_id \
             WHERE s.symbol = $1 AND q.t >= $2 AND q.t < $3 ORDER BY q.t, q.seq",
        )
        .bind(symbol)
        .bind(from_ns)
        .bind(until_ns)
        .fetch_all(&mut self.conn)
        .await
        .map_err(|e| self.err(e, "cannot read quotes"))?;
        let sym: Arc<str> = symbol.into();
        rows.into_iter()
            .map(|r| super::quote_from_columns(&sym, r))
            .collect()
    }
    super::archive_queries!(
        |s: &str| s.to_string(),
        "DELETE FROM import_progress WHERE dataset = $1 AND symbol = $2 AND day = $3::date"
    );

    /// Whether `table` holds no rows of the batch's symbols (and thinning) within the batch's
    /// time spans: one span per symbol and UTC day, so a batch that interleaves several
    /// days fetched concurrently is not mistaken for an overlap by the days between them.
    async fn span_is_empty<T: CopyRow>(
        thinning_id: Option<i64>,
        tx: &mut PgConnection,
        table: &TableSpec,
        rows: &[T],
        ids: &[(Arc<str>, i64)],
    ) -> Result<bool, sqlx::Error> {
        const DAY_NS: i64 = 86_400 * 1_000_000_000;
        let mut spans: Vec<(i64, i64, i64, i64)> = Vec::new(); // (symbol id, day, lo, hi)
        for r in rows {
            let t = r.time_key();
            let id = ids
                .iter()
                .find(|(s, _)| s == r.symbol())
                .map_or(0, |(_, id)| *id);
            let day = t.div_euclid(DAY_NS);
            match spans.iter_mut().find(|s| s.0 == id && s.1 == day) {
                Some(s) => {
                    s.2 = s.2.min(t);
                    s.3 = s.3.max(t);
                }
                None => spans.push((id, day, t, t)),
            }
        }
        let sql =
            format!(
            "SELECT EXISTS (SELECT 1 FROM {t} WHERE symbol_id = $1 AND {c} BETWEEN $2 AND $3{th})",
            t = table.name,
            c = table.time_column,
            th = if table.thinned { " AND thinning_id = $4" } else { "" }
        );
        for (id, _, lo, hi) in spans {
            let mut q = sqlx::query_scalar::<_, bool>(&sql)
                .bind(id as i32)
                .bind(lo)
                .bind(hi);
            if table.thinned {
                q = q.bind(thinning_id.unwrap_or(0) as i32);
            }
            if q.fetch_one(&mut *tx).await? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Binary COPY data for `rows` in `table`'s column order.
    fn encode<T: CopyRow>(&mut self, table: &TableSpec, rows: &[T], ids: &[(Arc<str>, i64)]) {
        self.buf.clear();
        self.buf.extend_from_slice(COPY_HEADER);
        let thinning = self.thinning_id.unwrap_or(0) as i32;
        let fields = T::COLUMNS + if table.thinned { 2 } else { 1 };
        for r in rows {
            let id = ids
                .iter()
                .find(|(s, _)| s == r.symbol())
                .map(|(_, id)| *id)
                .unwrap_or(0);
            self.buf.extend_from_slice(&fields.to_be_bytes());
            if table.thinned {
                int4(&mut self.buf, thinning);
            }
            int4(&mut self.buf, id as i32);
            r.write_copy(&mut self.buf);
        }
        self.buf.extend_from_slice(&COPY_TRAILER);
    }

    async fn try_write<T: CopyRow>(
        &mut self,
        table: &TableSpec,
        rows: &[T],
        marks: &[Mark],
    ) -> Result<(), sqlx::Error> {
        let mut ids: Vec<(Arc<str>, i64)> = Vec::new();
        for r in rows {
            if !ids.iter().any(|(s, _)| s == r.symbol()) {
                let id = self.symbol_id(r.symbol()).await?;
                ids.push((r.symbol().clone(), id));
            }
        }
        self.encode(table, rows, &ids);
        let cols = table.columns.join(", ");
        let mut tx = self.conn.begin().await?;
        // Upserts into a span that holds no rows yet (the usual case: a fresh range) go in
        // with COPY straight into the table, as fast as --skip-duplicates. The probe is one
        // index range lookup per symbol; if another importer writes the span meanwhile, the
        // COPY meets its rows, the batch rolls back, and the caller retries it through staging.
        let direct = rows.is_empty()
            || self.mode == WriteMode::Insert
            || (self.optimistic
                && Self::span_is_empty(self.thinning_id, &mut tx, table, rows, &ids).await?);
        if rows.is_empty() {
            // Only shard progress to commit.
        } else if direct {
            let mut copy = tx
                .copy_in_raw(&format!(
                    "COPY {} ({cols}) FROM STDIN (FORMAT binary)",
                    table.name
                ))
                .await?;
            copy.send(self.buf.as_slice()).await?;
            copy.finish().await?;
        } else {
            let staging = format!("staging_{}", table.name);
            sqlx::query(&format!(
                "CREATE TEMP TABLE IF NOT EXISTS {staging} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS",
                table.name
            ))
            .execute(&mut *tx)
            .await?;
            let mut copy = tx
                .copy_in_raw(&format!(
                    "COPY {staging} ({cols}) FROM STDIN (FORMAT binary)"
                ))
                .await?;
            copy.send(self.buf.as_slice()).await?;
            copy.finish().await?;
            let data: Vec<&str> = table
                .columns
                .iter()
                .copied()
                .filter(|c| !table.key.contains(c))
                .collect();
            let set: Vec<String> = data.iter().map(|c| format!("{c} = EXCLUDED.{c}")).collect();
            let old: Vec<String> = data.iter().map(|c| format!("{}.{c}", table.name)).collect();
            let new: Vec<String> = data.iter().map(|c| format!("EXCLUDED.{c}")).collect();
            sqlx::query(&format!(
                "INSERT INTO {t} ({cols}) SELECT {cols} FROM {staging} ORDER BY {key} \
                 ON CONFLICT ({key}) DO UPDATE SET {set} WHERE ({old}) IS DISTINCT FROM ({new})",
                t = table.name,
                key = table.key.join(", "),
                set = set.join(", "),
                old = old.join(", "),
                new = new.join(", ")
            ))
            .execute(&mut *tx)
            .await?;
        }
        if let Some(tracking) = &self.tracking {
            for row in marks.iter().filter_map(|m| tracking.row(m)) {
                sqlx::query(
                    "INSERT INTO import_progress \
                     (dataset, symbol, day, start_ns, end_ns, last_t, last_seq, done, updated_at) \
                     VALUES ($1, $2, $3::date, $4, $5, $6, $7, $8, now()) \
                     ON CONFLICT (dataset, symbol, day) DO UPDATE SET \
                     start_ns = EXCLUDED.start_ns, end_ns = EXCLUDED.end_ns, \
                     last_t = COALESCE(EXCLUDED.last_t, import_progress.last_t), \
                     last_seq = COALESCE(EXCLUDED.last_seq, import_progress.last_seq), \
                     done = EXCLUDED.done, updated_at = EXCLUDED.updated_at",
                )
                .bind(row.dataset)
                .bind(row.symbol)
                .bind(row.day.to_string())
                .bind(row.start_ns)
                .bind(row.end_ns)
                .bind(row.last.map(|p| p.0))
                .bind(row.last.map(|p| p.1 as i32))
                .bind(row.done)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await
    }

    async fn reconnect(&mut self) -> anyhow::Result<()> {
        self.conn = connect(&self.opts, &self.shown).await?;
        self.holds_drop_lock = false;
        Ok(())
    }

    /// Writes one batch, retrying it on a lost connection (after reconnecting) or a
    /// deadlock, and falling back from plain insert to upsert on existing rows.
    async fn write_rows<T: CopyRow>(
        &mut self,
        table: &TableSpec,
        rows: &[T],
        marks: &[Mark],
    ) -> anyhow::Result<()> {
        let mut attempts = BATCH_RETRY.attempts();
        loop {
            let err = match self.try_write(table, rows, marks).await {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            if self.mode == WriteMode::Upsert && is_duplicate(&err) && self.optimistic {
                // Another importer filled the span between the probe and the COPY: write
                // this batch (and the rest) through staging.
                tracing::warn!(
                    "[DB] rows appeared in {} while this batch was copied; upserting through staging from now on",
                    table.name
                );
                self.optimistic = false;
                continue;
            }
            if self.mode == WriteMode::Insert && is_duplicate(&err) {
                tracing::warn!(
                    "[DB] --skip-duplicates met rows already in {}; falling back to upsert from this batch on",
                    table.name
                );
                self.mode = WriteMode::Upsert;
                continue;
            }
            let lost = is_connection_lost(&err);
            let failed = attempts.attempt();
            let verdict = if lost || is_retryable_conflict(&err) {
                Verdict::Retry
            } else {
                Verdict::Fatal
            };
            let Next::Retry { delay, .. } = attempts.after(verdict) else {
                return Err(self.err(err, "cannot write a batch (rolled back)"));
            };
            tracing::warn!(
                "[DB] batch attempt {failed}/{} failed: {err}; {}",
                attempts.max(),
                if lost {
                    "reconnecting and retrying the batch"
                } else {
                    "retrying the batch"
                }
            );
            tokio::time::sleep(delay).await;
            if lost {
                if let Err(e) = self.reconnect().await {
                    tracing::warn!("[DB] reconnect failed: {e:#}");
                }
            }
        }
    }
}

/// The id of `value` in a (id, name UNIQUE) table, inserting it if new. Safe against another
/// importer inserting the same name at the same moment: the follow-up SELECT is a new
/// statement, so it sees that importer's committed row.
async fn upsert_name(
    conn: &mut PgConnection,
    table: &str,
    column: &str,
    value: &str,
) -> Result<i64, sqlx::Error> {
    let inserted: Option<i64> = sqlx::query_scalar(&format!(
        "INSERT INTO {table} ({column}) VALUES ($1) ON CONFLICT ({column}) DO NOTHING RETURNING id::BIGINT"
    ))
    .bind(value)
    .fetch_optional(&mut *conn)
    .await?;
    match inserted {
        Some(id) => Ok(id),
        None => {
            sqlx::query_scalar(&format!(
                "SELECT id::BIGINT FROM {table} WHERE {column} = $1"
            ))
            .bind(value)
            .fetch_one(&mut *conn)
            .await
        }
    }
}

async fn connect(opts: &PgConnectOptions, shown: &str) -> anyhow::Result<PgConnection> {
    PgConnection::connect_with(opts)
        .await
        .map_err(|e| pg_error(e, shown, "cannot connect"))
}

impl Sink<Quote> for PgSink {
    async fn write_batch(&mut self, rows: &[Quote], marks: &[Mark]) -> anyhow::Result<()> {
        let table = if self.thinning_id.is_some() {
            &super::sqlite::QUOTES_THINNED
        } else {
            &super::sqlite::QUOTES
        };
        self.write_rows(table, rows, marks).await
    }
}

impl Sink<Trade> for PgSink {
    async fn write_batch(&mut self, rows: &[Trade], marks: &[Mark]) -> anyhow::Result<()> {
        // A correction in the same batch as the trade it corrects has the same key; one
        // statement cannot write a key twice in PostgreSQL, so only the later record (the
        // correction) is kept, as the upsert would leave it.
        let mut last: HashMap<(&str, i64, &str, u64), usize> = HashMap::with_capacity(rows.len());
        for (i, r) in rows.iter().enumerate() {
            last.insert(
                (&*r.symbol, super::sqlite::trade_day(r.t), &r.exchange, r.id),
                i,
            );
        }
        if last.len() == rows.len() {
            return self.write_rows(&super::sqlite::TRADES, rows, marks).await;
        }
        let mut keep: Vec<usize> = last.into_values().collect();
        keep.sort_unstable();
        let kept: Vec<Trade> = keep.into_iter().map(|i| rows[i].clone()).collect();
        self.write_rows(&super::sqlite::TRADES, &kept, marks).await
    }
}

impl Sink<Bar> for PgSink {
    async fn write_batch(&mut self, rows: &[Bar], marks: &[Mark]) -> anyhow::Result<()> {
        self.write_rows(&super::sqlite::BARS, rows, marks).await
    }
}

impl Sink<AggQuote> for PgSink {
    async fn write_batch(&mut self, rows: &[AggQuote], marks: &[Mark]) -> anyhow::Result<()> {
        self.write_rows(&super::sqlite::QUOTES_AGGREGATED, rows, marks)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_copy_fields_are_length_prefixed_big_endian() {
        let q = Quote {
            symbol: "AAPL".into(),
            t: 1_704_186_000_000_000_001,
            seq: 2,
            bid_exchange: "\t".into(),
            bid_price: 0.1 + 0.2,
            bid_size: 3,
            ask_exchange: "Q".into(),
            ask_price: 187.23,
            ask_size: 4,
            conditions: vec![" ".into(), "R".into()],
            tape: "C".into(),
        };
        let mut out = Vec::new();
        q.write_copy(&mut out);
        let mut expected = Vec::new();
        expected.extend_from_slice(&[0, 0, 0, 8]);
        expected.extend_from_slice(&1_704_186_000_000_000_001i64.to_be_bytes());
        expected.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 2]);
        expected.extend_from_slice(&[0, 0, 0, 1, b'\t']);
        expected.extend_from_slice(&[0, 0, 0, 8]);
        expected.extend_from_slice(&(0.1f64 + 0.2).to_bits().to_be_bytes());
        assert_eq!(&out[..expected.len()], expected.as_slice());
        assert!(out.ends_with(&[0, 0, 0, 1, b'C']));
        assert_eq!(COPY_HEADER.len(), 19);
    }
}
