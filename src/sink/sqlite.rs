//! The SQLite sink: opens (creating folders and file) the database in WAL mode, applies the
//! migrations in migrations/sqlite, and commits each batch in one transaction as multi-row
//! upserts sized under SQLite's bound-parameter limit.
//!
//! It owns the SQL and nothing else: it does not know where rows come from, and it never
//! holds more than the batch it is given.

use crate::model::Quote;
use crate::pipeline::Sink;
use anyhow::Context;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteSynchronous};
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
const QUOTE_COLUMNS: [&str; 11] = [
    "symbol_id",
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
/// Rows per INSERT statement: as many as the parameter limit allows. A 10,000-row batch is
/// four statements (2,978 × 3 + 1,066), each prepared once and reused from sqlx's cache.
pub const ROWS_PER_STATEMENT: usize = SQLITE_MAX_PARAMS / QUOTE_COLUMNS.len();

/// Turns `--database-url` into connect options: `sqlite:PATH`, `sqlite://PATH`, or a bare path.
pub fn connect_options(url: &str) -> anyhow::Result<SqliteConnectOptions> {
    if url.starts_with("sqlite:") {
        SqliteConnectOptions::from_str(url)
            .map_err(|e| anyhow::anyhow!("invalid SQLite database URL {url:?}: {e}"))
    } else if url.contains("://") {
        anyhow::bail!(
            "unsupported database URL {url:?}: use sqlite:PATH (e.g. {DEFAULT_DATABASE_URL}) or a file path"
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

pub struct SqliteSink {
    conn: SqliteConnection,
    path: PathBuf,
    busy_timeout: Duration,
    symbol_ids: HashMap<Arc<str>, i64>,
    /// Upsert SQL text by row count (the full chunk size and each tail size seen).
    upsert_sql: HashMap<usize, String>,
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
            .pragma("cache_size", "-16384")
            .pragma("temp_store", "memory")
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
        Ok(SqliteSink {
            conn,
            path,
            busy_timeout,
            symbol_ids: HashMap::new(),
            upsert_sql: HashMap::new(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn symbol_id(&mut self, symbol: &Arc<str>) -> anyhow::Result<i64> {
        if let Some(id) = self.symbol_ids.get(symbol) {
            return Ok(*id);
        }
        sqlx::query("INSERT INTO symbols (symbol) VALUES (?) ON CONFLICT (symbol) DO NOTHING")
            .bind(&**symbol)
            .execute(&mut self.conn)
            .await
            .map_err(|e| self.err(e, "cannot record the symbol"))?;
        let id: i64 = sqlx::query_scalar("SELECT id FROM symbols WHERE symbol = ?")
            .bind(&**symbol)
            .fetch_one(&mut self.conn)
            .await
            .map_err(|e| self.err(e, "cannot read the symbol id"))?;
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

/// `INSERT ... VALUES (...),(...) ON CONFLICT DO UPDATE` for `rows` rows. The update only
/// fires when a value differs, so re-importing unchanged data rewrites no pages.
fn upsert_sql(rows: usize) -> String {
    let placeholders = format!("({})", vec!["?"; QUOTE_COLUMNS.len()].join(","));
    let values = vec![placeholders.as_str(); rows].join(",");
    let data_cols = &QUOTE_COLUMNS[3..];
    let set: Vec<String> = data_cols
        .iter()
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    let changed: Vec<String> = data_cols
        .iter()
        .map(|c| format!("{c} IS NOT excluded.{c}"))
        .collect();
    format!(
        "INSERT INTO quotes ({}) VALUES {values} ON CONFLICT (symbol_id, t, seq) DO UPDATE SET {} WHERE {}",
        QUOTE_COLUMNS.join(", "),
        set.join(", "),
        changed.join(" OR ")
    )
}

impl Sink<Quote> for SqliteSink {
    async fn write_batch(&mut self, rows: &[Quote]) -> anyhow::Result<()> {
        // Symbol ids first (usually one symbol per batch; the map makes this free after the
        // first batch). Inserting a symbol row outside the batch transaction is harmless.
        let mut ids: Vec<(Arc<str>, i64)> = Vec::new();
        for r in rows {
            if ids.last().map(|(s, _)| s) != Some(&r.symbol) {
                let id = self.symbol_id(&r.symbol).await?;
                ids.push((r.symbol.clone(), id));
            }
        }
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            self.upsert_sql
                .entry(chunk.len())
                .or_insert_with(|| upsert_sql(chunk.len()));
        }
        let (path, busy) = (&self.path, self.busy_timeout);
        let fail = |e, doing| db_error(e, path, busy, doing);
        let mut tx = self
            .conn
            .begin()
            .await
            .map_err(|e| fail(e, "cannot start a batch transaction"))?;
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let sql = self.upsert_sql[&chunk.len()].as_str();
            let mut q = sqlx::query(sql);
            for r in chunk {
                let id = match ids.as_slice() {
                    [(_, only)] => *only,
                    many => many
                        .iter()
                        .find(|(s, _)| *s == r.symbol)
                        .map(|(_, id)| *id)
                        .context("a batch row's symbol has no id")?,
                };
                q = q
                    .bind(id)
                    .bind(r.t)
                    .bind(r.seq as i64)
                    .bind(r.bid_exchange.as_str())
                    .bind(r.bid_price)
                    .bind(r.bid_size as i64)
                    .bind(r.ask_exchange.as_str())
                    .bind(r.ask_price)
                    .bind(r.ask_size as i64)
                    .bind(r.conditions_json())
                    .bind(r.tape.as_str());
            }
            q.execute(&mut *tx)
                .await
                .map_err(|e| fail(e, "cannot write a batch (rolled back)"))?;
        }
        tx.commit()
            .await
            .map_err(|e| fail(e, "cannot commit a batch (rolled back)"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_stay_under_the_parameter_limit() {
        assert_eq!(ROWS_PER_STATEMENT, 2978);
        assert!(ROWS_PER_STATEMENT * QUOTE_COLUMNS.len() <= SQLITE_MAX_PARAMS);
        assert_eq!(upsert_sql(2).matches('?').count(), 22);
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
