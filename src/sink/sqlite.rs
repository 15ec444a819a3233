//! The SQLite sink: opens (creating folders and file) the database in WAL mode, applies the
//! migrations in migrations/sqlite, and commits each batch in one transaction as multi-row
//! upserts sized under SQLite's bound-parameter limit.
//!
//! It owns the SQL and nothing else: it does not know where rows come from, and it never
//! holds more than the batch it is given.

use crate::model::{Bar, Quote, Trade};
use crate::pipeline::{Mark, Sink};
use crate::resume::{ProgressRecord, Saved, Tracking};
use crate::transform::AggQuote;
use anyhow::Context;
use chrono::NaiveDate;
use sqlx::sqlite::SqliteArguments;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteSynchronous};
use sqlx::Sqlite;
use sqlx::{ConnectOptions, Connection};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

pub const DEFAULT_DATABASE_URL: &str = "sqlite:data/market.db";

/// SQLite refuses statements with more bound parameters than this (SQLITE_MAX_VARIABLE_NUMBER
/// since 3.32).
pub const SQLITE_MAX_PARAMS: usize = 32_766;

pub use crate::dataset::{TableSpec, BARS, QUOTES, QUOTES_AGGREGATED, QUOTES_THINNED, TRADES};

/// Rows per INSERT statement: as many as the parameter limit allows (2,978 for quotes, so a
/// 10,000-row batch is four statements, each prepared once and reused).
pub fn rows_per_statement(table: &TableSpec) -> usize {
    SQLITE_MAX_PARAMS / table.columns.len()
}

/// A trade's New York date as YYYYMMDD, part of its key.
pub fn trade_day(t: i64) -> i64 {
    use chrono::Datelike;
    let d = crate::time::new_york_date(t);
    i64::from(d.year()) * 10_000 + i64::from(d.month()) * 100 + i64::from(d.day())
}

type SqliteQuery<'q> = sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>>;

/// A row the sink can write: its symbol, and its own values in column order (after
/// `thinning_id` and `symbol_id`).
pub trait SqlRow: Sync {
    fn symbol(&self) -> &Arc<str>;
    fn bind_values<'q>(&'q self, q: SqliteQuery<'q>) -> SqliteQuery<'q>;
}

impl SqlRow for Quote {
    fn symbol(&self) -> &Arc<str> {
        &self.symbol
    }
    fn bind_values<'q>(&'q self, q: SqliteQuery<'q>) -> SqliteQuery<'q> {
        q.bind(self.t)
            .bind(self.seq as i64)
            .bind(self.bid_exchange.as_str())
            .bind(self.bid_price)
            .bind(self.bid_size as i64)
            .bind(self.ask_exchange.as_str())
            .bind(self.ask_price)
            .bind(self.ask_size as i64)
            .bind(self.conditions_json())
            .bind(self.tape.as_str())
    }
}

impl SqlRow for Trade {
    fn symbol(&self) -> &Arc<str> {
        &self.symbol
    }
    fn bind_values<'q>(&'q self, q: SqliteQuery<'q>) -> SqliteQuery<'q> {
        q.bind(trade_day(self.t))
            .bind(self.exchange.as_str())
            .bind(self.id as i64)
            .bind(self.t)
            .bind(self.price)
            .bind(self.size as i64)
            .bind(crate::model::conditions_json(&self.conditions))
            .bind(self.tape.as_str())
            .bind(self.update.as_deref().unwrap_or(""))
    }
}

impl SqlRow for Bar {
    fn symbol(&self) -> &Arc<str> {
        &self.symbol
    }
    fn bind_values<'q>(&'q self, q: SqliteQuery<'q>) -> SqliteQuery<'q> {
        q.bind(&*self.timeframe)
            .bind(&*self.adjustment)
            .bind(self.t)
            .bind(self.open)
            .bind(self.high)
            .bind(self.low)
            .bind(self.close)
            .bind(self.volume as i64)
            .bind(self.trade_count as i64)
            .bind(self.vwap)
    }
}

impl SqlRow for AggQuote {
    fn symbol(&self) -> &Arc<str> {
        &self.symbol
    }
    fn bind_values<'q>(&'q self, q: SqliteQuery<'q>) -> SqliteQuery<'q> {
        q.bind(self.bucket_t)
            .bind(self.last_t)
            .bind(self.bid_exchange.as_str())
            .bind(self.bid_price)
            .bind(self.bid_size as i64)
            .bind(self.ask_exchange.as_str())
            .bind(self.ask_price)
            .bind(self.ask_size as i64)
            .bind(crate::model::conditions_json(&self.conditions))
            .bind(self.tape.as_str())
            .bind(self.quote_count as i64)
    }
}

/// How a batch goes in: upsert (idempotent), or plain INSERT for a range known to be empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WriteMode {
    Upsert,
    Insert,
}

/// Turns `--database-url` into connect options: `sqlite:PATH`, `sqlite://PATH`, or a bare path.
pub fn connect_options(url: &str) -> anyhow::Result<SqliteConnectOptions> {
    if url.starts_with("sqlite:") {
        SqliteConnectOptions::from_str(url)
            .map_err(|e| anyhow::anyhow!("invalid SQLite database URL {url:?}: {e}"))
    } else if url.contains("://") {
        anyhow::bail!(
            "unsupported database URL {url:?}: use sqlite:PATH (e.g. {DEFAULT_DATABASE_URL}), a file path, or postgres://USER@HOST/DB"
        )
    } else if url.trim().is_empty() {
        anyhow::bail!("the database URL is empty: use sqlite:PATH (e.g. {DEFAULT_DATABASE_URL})")
    } else {
        Ok(SqliteConnectOptions::new().filename(url))
    }
}

/// Whether an error is SQLite's "database is locked" (SQLITE_BUSY and its extended codes).
fn is_busy(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => {
            matches!(
                db.code().as_deref(),
                Some("5") | Some("517") | Some("261") | Some("773")
            ) || db.message().contains("database is locked")
        }
        _ => false,
    }
}

/// Whether an error is a key violation (a plain INSERT meeting a row already present).
fn is_duplicate(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => {
            matches!(db.code().as_deref(), Some("1555") | Some("2067"))
                || db.message().contains("UNIQUE constraint failed")
        }
        _ => false,
    }
}

pub struct SqliteSink {
    conn: SqliteConnection,
    path: PathBuf,
    busy_timeout: Duration,
    symbol_ids: HashMap<Arc<str>, i64>,
    /// INSERT SQL text by (table, rows, mode): the full chunk size and each tail size seen.
    sql: HashMap<(&'static str, usize, WriteMode), String>,
    mode: WriteMode,
    /// Set for a thinned import: the `thinnings` id that keys its rows.
    thinning_id: Option<i64>,
    /// Set for an import that commits resume points with its batches.
    tracking: Option<Tracking>,
}

impl SqliteSink {
    /// Opens or creates the database, in WAL mode, and brings its schema up to date.
    pub async fn open(url: &str, busy_timeout: Duration) -> anyhow::Result<Self> {
        let opts = connect_options(url)?;
        let path = opts.get_filename().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the database folder {}", dir.display()))?;
        }
        let opts = opts
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // In WAL mode NORMAL never corrupts the database; a power cut can lose at most the
            // last commits, which a re-import (idempotent) restores.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(busy_timeout)
            // 16 MiB page cache. temp_store stays on disk: an index rebuild sorts the whole
            // table, and an in-memory temp store would hold all of it in RAM.
            .pragma("cache_size", "-16384")
            .log_statements(tracing::log::LevelFilter::Off)
            .log_slow_statements(tracing::log::LevelFilter::Off, Duration::from_secs(3600));
        let mut conn = SqliteConnection::connect_with(&opts)
            .await
            .map_err(|e| db_error(e, &path, busy_timeout, "cannot open the database"))?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&mut conn)
            .await
            .map_err(|e| match e {
                sqlx::migrate::MigrateError::Execute(e) => {
                    db_error(e, &path, busy_timeout, "cannot apply the schema migrations")
                }
                other => anyhow::anyhow!(
                    "cannot apply the schema migrations to {}: {other}",
                    path.display()
                ),
            })?;
        let mut sink = SqliteSink {
            conn,
            path,
            busy_timeout,
            symbol_ids: HashMap::new(),
            sql: HashMap::new(),
            mode: WriteMode::Upsert,
            thinning_id: None,
            tracking: None,
        };
        sink.heal_indexes().await?;
        Ok(sink)
    }

    pub fn set_mode(&mut self, mode: WriteMode) {
        self.mode = mode;
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
            "SELECT day, start_ns, end_ns, last_t, last_seq, done FROM import_progress \
             WHERE dataset = ? AND symbol = ? AND day BETWEEN ? AND ? ORDER BY day",
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

    /// Rows from now on are thinned rows keyed by `spec` (e.g. `sample=10`).
    pub async fn set_thinning(&mut self, spec: &str) -> anyhow::Result<()> {
        sqlx::query("INSERT INTO thinnings (spec) VALUES (?) ON CONFLICT (spec) DO NOTHING")
            .bind(spec)
            .execute(&mut self.conn)
            .await
            .map_err(|e| self.err(e, "cannot record the thinning spec"))?;
        let id: i64 = sqlx::query_scalar("SELECT id FROM thinnings WHERE spec = ?")
            .bind(spec)
            .fetch_one(&mut self.conn)
            .await
            .map_err(|e| self.err(e, "cannot read the thinning id"))?;
        self.thinning_id = Some(id);
        Ok(())
    }

    /// Whether `table` already holds rows of `symbol` (and this sink's thinning) with times
    /// in `start_ns..=end_ns`. A key-prefix range probe: cheap whatever the table size.
    pub async fn has_rows_in(
        &mut self,
        table: &TableSpec,
        symbol: &str,
        start_ns: i64,
        end_ns: i64,
    ) -> anyhow::Result<bool> {
        let sql = format!(
            "SELECT EXISTS (SELECT 1 FROM {t} q JOIN symbols s ON s.id = q.symbol_id \
             WHERE s.symbol = ? AND q.{c} BETWEEN ? AND ?{th})",
            t = table.name,
            c = table.time_column,
            th = if table.thinned {
                " AND q.thinning_id = ?"
            } else {
                ""
            }
        );
        let mut q = sqlx::query_scalar::<_, bool>(&sql)
            .bind(symbol)
            .bind(start_ns)
            .bind(end_ns);
        if table.thinned {
            q = q.bind(self.thinning_id.unwrap_or(-1));
        }
        q.fetch_one(&mut self.conn)
            .await
            .map_err(|e| self.err(e, "cannot check the range for existing rows"))
    }

    /// Drops `table`'s secondary indexes, recording each (with its CREATE statement) in
    /// `dropped_indexes` in the same transaction, so a killed import leaves a record that
    /// the next open acts on. The primary key is the table itself and is never touched.
    pub async fn drop_secondary_indexes(
        &mut self,
        table: &TableSpec,
    ) -> anyhow::Result<Vec<String>> {
        let (path, busy) = (self.path.clone(), self.busy_timeout);
        let fail = |e, doing| db_error(e, &path, busy, doing);
        let mut tx = self
            .conn
            .begin()
            .await
            .map_err(|e| fail(e, "cannot start dropping indexes"))?;
        let indexes: Vec<(String, String)> = sqlx::query_as(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL",
        )
        .bind(table.name)
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| fail(e, "cannot list indexes"))?;
        for (name, sql) in &indexes {
            sqlx::query(
                "INSERT INTO dropped_indexes (name, create_sql, dropped_at, pid) VALUES (?, ?, ?, ?) \
                 ON CONFLICT (name) DO UPDATE SET pid = excluded.pid, dropped_at = excluded.dropped_at",
            )
            .bind(name)
            .bind(sql)
            .bind(chrono::Utc::now().to_rfc3339())
            .bind(std::process::id() as i64)
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

    /// Recreates every index recorded in `dropped_indexes` and clears the records, in one
    /// transaction. With `only_dead`, skips records of a process that is still running (an
    /// import in progress elsewhere that will rebuild its own).
    pub async fn rebuild_dropped_indexes(
        &mut self,
        only_dead: bool,
    ) -> anyhow::Result<Vec<String>> {
        let records: Vec<(String, String, i64)> =
            sqlx::query_as("SELECT name, create_sql, pid FROM dropped_indexes")
                .fetch_all(&mut self.conn)
                .await
                .map_err(|e| self.err(e, "cannot read dropped index records"))?;
        let records: Vec<_> = records
            .into_iter()
            .filter(|(_, _, pid)| !only_dead || !super::process_alive(*pid))
            .collect();
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let (path, busy) = (self.path.clone(), self.busy_timeout);
        let fail = |e, doing| db_error(e, &path, busy, doing);
        let mut tx = self
            .conn
            .begin()
            .await
            .map_err(|e| fail(e, "cannot start rebuilding indexes"))?;
        for (name, create_sql, _) in &records {
            let sql = create_sql.replacen("CREATE INDEX", "CREATE INDEX IF NOT EXISTS", 1);
            sqlx::query(&sql)
                .execute(&mut *tx)
                .await
                .map_err(|e| fail(e, "cannot rebuild an index"))?;
            sqlx::query("DELETE FROM dropped_indexes WHERE name = ?")
                .bind(name)
                .execute(&mut *tx)
                .await
                .map_err(|e| fail(e, "cannot clear a dropped index record"))?;
        }
        tx.commit()
            .await
            .map_err(|e| fail(e, "cannot commit rebuilt indexes"))?;
        Ok(records.into_iter().map(|(n, _, _)| n).collect())
    }

    /// Rows per (dataset, symbol, New York day) in the database, for `data status` and
    /// `data archive`. Days are New York dates of the session (the time shifted by -4 h,
    /// which maps 04:00–24:00 New York to its own date in both EST and EDT).
    pub async fn day_counts(
        &mut self,
        symbol: Option<&str>,
    ) -> anyhow::Result<Vec<(String, String, NaiveDate, i64)>> {
        let sql = "SELECT 'quotes' AS dataset, s.symbol, date(q.t / 1000000000 - 14400, 'unixepoch') AS d, count(*) \
             FROM quotes q JOIN symbols s ON s.id = q.symbol_id WHERE (?1 IS NULL OR s.symbol = ?1) GROUP BY s.symbol, d \
             UNION ALL \
             SELECT 'quotes_thinned/' || th.spec, s.symbol, date(q.t / 1000000000 - 14400, 'unixepoch') AS d, count(*) \
             FROM quotes_thinned q JOIN symbols s ON s.id = q.symbol_id JOIN thinnings th ON th.id = q.thinning_id \
             WHERE (?1 IS NULL OR s.symbol = ?1) GROUP BY th.spec, s.symbol, d \
             UNION ALL \
             SELECT 'quotes_aggregated/' || th.spec, s.symbol, date(q.bucket_t / 1000000000 - 14400, 'unixepoch') AS d, count(*) \
             FROM quotes_aggregated q JOIN symbols s ON s.id = q.symbol_id JOIN thinnings th ON th.id = q.thinning_id \
             WHERE (?1 IS NULL OR s.symbol = ?1) GROUP BY th.spec, s.symbol, d \
             UNION ALL \
             SELECT 'trades', s.symbol, date(q.t / 1000000000 - 14400, 'unixepoch') AS d, count(*) \
             FROM trades q JOIN symbols s ON s.id = q.symbol_id WHERE (?1 IS NULL OR s.symbol = ?1) GROUP BY s.symbol, d \
             UNION ALL \
             SELECT 'bars/' || q.timeframe || '/' || q.adjustment, s.symbol, date(q.t / 1000000000 - 14400, 'unixepoch') AS d, count(*) \
             FROM bars q JOIN symbols s ON s.id = q.symbol_id WHERE (?1 IS NULL OR s.symbol = ?1) \
             GROUP BY q.timeframe, q.adjustment, s.symbol, d \
             ORDER BY 1, 2, 3";
        let rows: Vec<(String, String, String, i64)> = sqlx::query_as(sql)
            .bind(symbol)
            .fetch_all(&mut self.conn)
            .await
            .map_err(|e| self.err(e, "cannot count rows per day"))?;
        rows.into_iter()
            .map(|(ds, sym, d, n)| {
                let date = NaiveDate::parse_from_str(&d, "%Y-%m-%d")
                    .with_context(|| format!("unexpected day {d:?} in the database"))?;
                Ok((ds, sym, date, n))
            })
            .collect()
    }

    /// The raw quotes of `symbol` with `from_ns <= t < until_ns`, in key order.
    pub async fn read_quotes(
        &mut self,
        symbol: &str,
        from_ns: i64,
        until_ns: i64,
    ) -> anyhow::Result<Vec<Quote>> {
        let rows: Vec<super::QuoteColumns> = sqlx::query_as(
            "SELECT q.t, q.seq, q.bid_exchange, q.bid_price, q.bid_size, q.ask_exchange, q.ask_price, \
             q.ask_size, q.conditions, q.tape FROM quotes q JOIN symbols s ON s.id = q.symbol_id \
             WHERE s.symbol = ? AND q.t >= ? AND q.t < ? ORDER BY q.t, q.seq",
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
        |s: &str| s.replace('$', "?"),
        "DELETE FROM import_progress WHERE dataset = ?1 AND symbol = ?2 AND day = ?3"
    );

    /// Run on every open: rebuilds indexes a killed `--drop-indexes` import left dropped.
    async fn heal_indexes(&mut self) -> anyhow::Result<()> {
        let rebuilt = self.rebuild_dropped_indexes(true).await?;
        for name in rebuilt {
            tracing::warn!(
                "[DB] rebuilt index {name}, left dropped by an interrupted --drop-indexes import"
            );
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn symbol_id(&mut self, symbol: &Arc<str>) -> Result<i64, sqlx::Error> {
        if let Some(id) = self.symbol_ids.get(symbol) {
            return Ok(*id);
        }
        sqlx::query("INSERT INTO symbols (symbol) VALUES (?) ON CONFLICT (symbol) DO NOTHING")
            .bind(&**symbol)
            .execute(&mut self.conn)
            .await?;
        let id: i64 = sqlx::query_scalar("SELECT id FROM symbols WHERE symbol = ?")
            .bind(&**symbol)
            .fetch_one(&mut self.conn)
            .await?;
        self.symbol_ids.insert(symbol.clone(), id);
        Ok(id)
    }

    fn err(&self, e: sqlx::Error, doing: &str) -> anyhow::Error {
        db_error(e, &self.path, self.busy_timeout, doing)
    }
}

fn db_error(e: sqlx::Error, path: &Path, busy: Duration, doing: &str) -> anyhow::Error {
    if is_busy(&e) {
        anyhow::anyhow!(
            "database {} is locked by another writer (waited {:.1}s): {doing}; \
             try again when the other import finishes",
            path.display(),
            busy.as_secs_f64()
        )
    } else {
        anyhow::anyhow!("{doing} ({}): {e}", path.display())
    }
}

/// `INSERT ... VALUES (...),(...)` for `rows` rows; as an upsert, `ON CONFLICT DO UPDATE`
/// that only fires when a value differs, so re-importing unchanged data rewrites no pages.
fn insert_sql(table: &TableSpec, rows: usize, mode: WriteMode) -> String {
    let placeholders = format!("({})", vec!["?"; table.columns.len()].join(","));
    let values = vec![placeholders.as_str(); rows].join(",");
    let head = format!(
        "INSERT INTO {} ({}) VALUES {values}",
        table.name,
        table.columns.join(", ")
    );
    if mode == WriteMode::Insert {
        return head;
    }
    let data_cols: Vec<&str> = table
        .columns
        .iter()
        .copied()
        .filter(|c| !table.key.contains(c))
        .collect();
    let set: Vec<String> = data_cols
        .iter()
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    let changed: Vec<String> = data_cols
        .iter()
        .map(|c| format!("{c} IS NOT excluded.{c}"))
        .collect();
    format!(
        "{head} ON CONFLICT ({}) DO UPDATE SET {} WHERE {}",
        table.key.join(", "),
        set.join(", "),
        changed.join(" OR ")
    )
}

impl SqliteSink {
    /// Writes `rows` into `table` in one transaction. In `Insert` mode, a key violation (rows
    /// that appeared since the range check, e.g. from another importer) rolls the batch back
    /// and it is written again as an upsert, and the sink stays in upsert mode.
    async fn write_rows<T: SqlRow>(
        &mut self,
        table: &'static TableSpec,
        rows: &[T],
        marks: &[Mark],
    ) -> anyhow::Result<()> {
        match self.try_write_rows(table, rows, marks).await {
            Err(e) if self.mode == WriteMode::Insert && is_duplicate(&e) => {
                tracing::warn!(
                    "[DB] --skip-duplicates met rows already in {}; falling back to upsert from this batch on",
                    table.name
                );
                self.mode = WriteMode::Upsert;
                self.try_write_rows(table, rows, marks)
                    .await
                    .map_err(|e| self.err(e, "cannot write a batch (rolled back)"))
            }
            other => other.map_err(|e| self.err(e, "cannot write a batch (rolled back)")),
        }
    }

    async fn try_write_rows<T: SqlRow>(
        &mut self,
        table: &'static TableSpec,
        rows: &[T],
        marks: &[Mark],
    ) -> Result<(), sqlx::Error> {
        // Symbol ids first (usually one symbol per batch; the map makes this free after the
        // first batch). Inserting a symbol row outside the batch transaction is harmless.
        let mut ids: Vec<(Arc<str>, i64)> = Vec::new();
        for r in rows {
            if ids.last().map(|(s, _)| s) != Some(r.symbol()) {
                let id = self.symbol_id(r.symbol()).await?;
                ids.push((r.symbol().clone(), id));
            }
        }
        let per = rows_per_statement(table);
        let mode = self.mode;
        for chunk in rows.chunks(per) {
            self.sql
                .entry((table.name, chunk.len(), mode))
                .or_insert_with(|| insert_sql(table, chunk.len(), mode));
        }
        let thinning_id = self.thinning_id.unwrap_or(0);
        let mut tx = self.conn.begin().await?;
        for chunk in rows.chunks(per) {
            let mut q = sqlx::query(self.sql[&(table.name, chunk.len(), mode)].as_str());
            for r in chunk {
                let id = match ids.as_slice() {
                    [(_, only)] => *only,
                    many => many
                        .iter()
                        .find(|(s, _)| s == r.symbol())
                        .map(|(_, id)| *id)
                        .unwrap_or(0),
                };
                if table.thinned {
                    q = q.bind(thinning_id);
                }
                q = r.bind_values(q.bind(id));
            }
            q.execute(&mut *tx).await?;
        }
        if let Some(tracking) = &self.tracking {
            for row in marks.iter().filter_map(|m| tracking.row(m)) {
                sqlx::query(
                    "INSERT INTO import_progress \
                     (dataset, symbol, day, start_ns, end_ns, last_t, last_seq, done, updated_at) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) \
                     ON CONFLICT (dataset, symbol, day) DO UPDATE SET \
                     start_ns = excluded.start_ns, end_ns = excluded.end_ns, \
                     last_t = COALESCE(excluded.last_t, import_progress.last_t), \
                     last_seq = COALESCE(excluded.last_seq, import_progress.last_seq), \
                     done = excluded.done, updated_at = excluded.updated_at",
                )
                .bind(row.dataset)
                .bind(row.symbol)
                .bind(row.day.to_string())
                .bind(row.start_ns)
                .bind(row.end_ns)
                .bind(row.last.map(|p| p.0))
                .bind(row.last.map(|p| i64::from(p.1)))
                .bind(row.done)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await
    }
}

impl Sink<Quote> for SqliteSink {
    async fn write_batch(&mut self, rows: &[Quote], marks: &[Mark]) -> anyhow::Result<()> {
        let table = if self.thinning_id.is_some() {
            &QUOTES_THINNED
        } else {
            &QUOTES
        };
        self.write_rows(table, rows, marks).await
    }
}

impl Sink<Trade> for SqliteSink {
    async fn write_batch(&mut self, rows: &[Trade], marks: &[Mark]) -> anyhow::Result<()> {
        self.write_rows(&TRADES, rows, marks).await
    }
}

impl Sink<Bar> for SqliteSink {
    async fn write_batch(&mut self, rows: &[Bar], marks: &[Mark]) -> anyhow::Result<()> {
        self.write_rows(&BARS, rows, marks).await
    }
}

impl Sink<AggQuote> for SqliteSink {
    async fn write_batch(&mut self, rows: &[AggQuote], marks: &[Mark]) -> anyhow::Result<()> {
        self.write_rows(&QUOTES_AGGREGATED, rows, marks).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUOTE_VALUES: [&str; 10] = [
        "t",
        "seq",
        "bid_exchange",
        "bid_price",
        "bid_size",
        "ask_exchange",
        "ask_price",
        "ask_size",
        "conditions",
        "tape",
    ];

    #[test]
    fn statements_stay_under_the_parameter_limit() {
        assert_eq!(rows_per_statement(&QUOTES), 2978);
        for t in [&QUOTES, &QUOTES_THINNED, &QUOTES_AGGREGATED] {
            assert!(rows_per_statement(t) * t.columns.len() <= SQLITE_MAX_PARAMS);
            assert!(t.key.iter().all(|k| t.columns.contains(k)));
        }
        assert_eq!(QUOTES.columns[1..], QUOTE_VALUES);
        assert_eq!(QUOTES_THINNED.columns[2..], QUOTE_VALUES);
        assert_eq!(
            insert_sql(&QUOTES, 2, WriteMode::Upsert)
                .matches('?')
                .count(),
            22
        );
        let plain = insert_sql(&QUOTES, 1, WriteMode::Insert);
        assert!(!plain.contains("ON CONFLICT"), "{plain}");
    }

    #[test]
    fn url_forms() {
        assert_eq!(
            connect_options("sqlite:data/market.db")
                .unwrap()
                .get_filename(),
            Path::new("data/market.db")
        );
        assert_eq!(
            connect_options("/tmp/x.db").unwrap().get_filename(),
            Path::new("/tmp/x.db")
        );
        let e = connect_options("mysql://localhost/db")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("unsupported database URL"), "{e}");
    }
}
