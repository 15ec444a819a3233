//! The SQLite dialect of the SQL sink (`sink.rs`): opens (creating folders and file) the
//! database in WAL mode, applies the migrations in migrations/sqlite, and writes each batch
//! in one transaction as 64-row upserts (prepared once per size and kept), bound straight
//! from the batch's columns on sqlx's own connection handle.

use super::encode::Encoder;
use super::sink::{BulkWrite, Conn, Dialect, SqlSink};
pub use super::sqlite_ffi::*;
use anyhow::Context;
use data_core::pipeline::Mark;
use data_core::resume::ProgressRow;
use rusqlite::ffi;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteSynchronous};
use sqlx::Sqlite;
use sqlx::{ConnectOptions, Connection};
use std::ffi::c_int;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::str::FromStr;
use std::time::Duration;

pub use super::sink::WriteMode;
pub use data_core::dataset::{TableSpec, BARS, QUOTES, QUOTES_AGGREGATED, QUOTES_THINNED, TRADES};

pub(crate) const DEFAULT_DATABASE_URL: &str = "sqlite:data/market.db";

/// SQLite refuses statements with more bound parameters than this (SQLITE_MAX_VARIABLE_NUMBER
/// since 3.32).
pub(crate) const SQLITE_MAX_PARAMS: usize = 32_766;

/// Rows per INSERT statement, when the parameter limit allows: few enough that preparing
/// the statement (once per size, kept across batches) costs nothing next to running it,
/// many enough that each step does real work (measured: see benches/RESULTS.md, session 5).
pub const ROWS_PER_INSERT: usize = 64;

/// Rows per INSERT statement of `table`: [`ROWS_PER_INSERT`], under SQLite's parameter limit.
pub(crate) fn rows_per_statement(table: &TableSpec) -> usize {
    ROWS_PER_INSERT.min(SQLITE_MAX_PARAMS / table.columns().len())
}

/// Process-wide SQLite settings, before the library is first used: no memory statistics
/// (SQLite would otherwise take a global mutex around every allocation to count it).
/// Later calls, and calls after SQLite started, change nothing.
pub fn configure_library() {
    // SAFETY: sqlite3_config is documented as callable before sqlite3_initialize; after it,
    // it returns SQLITE_MISUSE and changes nothing.
    unsafe {
        ffi::sqlite3_config(ffi::SQLITE_CONFIG_MEMSTATUS, 0 as c_int);
    }
}

/// Turns `--database-url` into connect options: `sqlite:PATH`, `sqlite://PATH`, or a bare path.
pub(crate) fn connect_options(url: &str) -> anyhow::Result<SqliteConnectOptions> {
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

impl SqliteDialect {
    fn new(path: PathBuf, busy_timeout: Duration) -> Self {
        SqliteDialect {
            path,
            busy_timeout,
            statements: StatementCache::default(),
            progress: super::sink::progress_upsert::<SqliteDialect>(),
            checkpointer: None,
        }
    }
}

/// Whether an error is SQLite's "database is locked" (SQLITE_BUSY and its extended codes).
fn is_busy(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => {
            matches!(
                db.code().as_deref(),
                Some("5") | Some("517") | Some("261") | Some("773")
            )
        }
        _ => false,
    }
}

/// SQLite: a file, `?N` placeholders, dates as text, and a busy timeout for other writers.
pub struct SqliteDialect {
    path: PathBuf,
    busy_timeout: Duration,
    /// The INSERT statements, prepared once per (table, rows, mode) on the sink's connection
    /// and kept across batches: the full chunk size and each tail size seen. Finalized when
    /// the dialect drops, before the connection (`SqlSink` holds its dialect first).
    statements: StatementCache<(&'static str, usize, WriteMode)>,
    /// The progress upsert's text ([`super::sink::progress_upsert`]).
    progress: String,
    /// Checkpoints the WAL beside the writes: started at the first batch with rows (the
    /// outer `None` until then; the inner `None` when it could not start, not retried).
    checkpointer: Option<Option<Checkpointer>>,
}

/// The SQL sink on a SQLite file.
pub type SqliteSink = SqlSink<SqliteDialect>;

impl Dialect for SqliteDialect {
    type DB = Sqlite;

    fn sql(text: &str) -> String {
        text.replace('$', "?")
    }

    fn date_param(n: u8) -> String {
        format!("${n}")
    }

    /// The New York date of the session: the time shifted by -4 h, which maps 04:00-24:00
    /// New York to its own date in both EST and EDT.
    fn ny_day(col: &str) -> String {
        format!("date({col} / 1000000000 - 14400, 'unixepoch')")
    }

    fn utc_day(col: &str) -> String {
        format!("date({col} / 1000000000, 'unixepoch')")
    }

    const NOW: &'static str = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

    const LIST_INDEXES: &'static str =
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = $1 AND sql IS NOT NULL";

    /// A sampled `ANALYZE` (a few milliseconds whatever the table's size): it is what lets
    /// the planner serve time slices across symbols from the primary key by skip-scan.
    fn refresh_stats(table: &str) -> Option<String> {
        Some(format!("PRAGMA analysis_limit = 1000; ANALYZE \"{table}\""))
    }

    fn rows_affected(result: &sqlx::sqlite::SqliteQueryResult) -> u64 {
        result.rows_affected()
    }

    fn is_duplicate(e: &sqlx::Error) -> bool {
        match e {
            sqlx::Error::Database(db) => {
                matches!(db.code().as_deref(), Some("1555") | Some("2067"))
            }
            _ => false,
        }
    }

    fn error(&self, e: sqlx::Error, doing: &str) -> anyhow::Error {
        db_error(e, &self.path, self.busy_timeout, doing)
    }

    /// A record of a process still running is an import in progress elsewhere, which will
    /// rebuild its own indexes.
    fn rebuild_record(&self, pid: i64, only_orphans: bool) -> bool {
        !only_orphans || !data_job::store::process_alive(pid)
    }
}

impl SqlSink<SqliteDialect> {
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
        // Opening (a new file's switch to WAL wants it alone, and SQLite answers a second
        // opener busy at once, without waiting) and migrating are done one process at a time.
        let held = migration_lock(&path, busy_timeout).await;
        let mut conn: Conn<SqliteDialect> = SqliteConnection::connect_with(&opts)
            .await
            .map_err(|e| db_error(e, &path, busy_timeout, "cannot open the database"))?;
        let migrated = migrate(&mut conn).await;
        drop(held);
        migrated.map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(e) => {
                db_error(e, &path, busy_timeout, "cannot apply the schema migrations")
            }
            other => anyhow::anyhow!(
                "cannot apply the schema migrations to {}: {other}",
                path.display()
            ),
        })?;
        let dialect = SqliteDialect::new(path, busy_timeout);
        SqlSink::new(conn, dialect).await
    }

    /// Opens an existing file to read only (`status`): no migration, no WAL switch,
    /// nothing created; on a read-only mount (where even the WAL's shared memory cannot be
    /// made) as an immutable file. `None` when the file does not exist or holds no schema
    /// of ours.
    pub(crate) async fn open_read_only(
        url: &str,
        busy_timeout: Duration,
    ) -> anyhow::Result<Option<Self>> {
        let opts = connect_options(url)?;
        let path = opts.get_filename().to_path_buf();
        if !path.exists() {
            return Ok(None);
        }
        let opts = opts
            .read_only(true)
            .busy_timeout(busy_timeout)
            .log_statements(tracing::log::LevelFilter::Off)
            .log_slow_statements(tracing::log::LevelFilter::Off, Duration::from_secs(3600));
        let mut conn: Conn<SqliteDialect> = match SqliteConnection::connect_with(&opts).await {
            Ok(mut c) => match sqlx::query("SELECT count(*) FROM sqlite_master")
                .execute(&mut c)
                .await
            {
                Ok(_) => c,
                Err(_) => {
                    let _ = c.close().await;
                    SqliteConnection::connect_with(&opts.clone().immutable(true))
                        .await
                        .map_err(|e| db_error(e, &path, busy_timeout, "cannot read the database"))?
                }
            },
            Err(_) => SqliteConnection::connect_with(&opts.clone().immutable(true))
                .await
                .map_err(|e| db_error(e, &path, busy_timeout, "cannot read the database"))?,
        };
        let ours: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
        )
        .fetch_one(&mut conn)
        .await
        .map_err(|e| db_error(e, &path, busy_timeout, "cannot read the database"))?;
        if ours == 0 {
            return Ok(None);
        }
        let dialect = SqliteDialect::new(path, busy_timeout);
        Ok(Some(SqlSink::reader(conn, dialect)))
    }

    pub fn path(&self) -> &Path {
        &self.dialect.path
    }

    async fn try_write_rows(
        &mut self,
        table: &'static TableSpec,
        rows: &Encoder<'_>,
        marks: &[Mark],
    ) -> Result<(), sqlx::Error> {
        let (per, mode, n) = (rows_per_statement(table), self.mode, rows.rows());
        let progress: Vec<ProgressRow<'_>> = match &self.tracking {
            Some(tracking) => marks.iter().filter_map(|m| tracking.row(m)).collect(),
            None => Vec::new(),
        };
        // The whole transaction runs here, on sqlx's connection handle: one hand-over to
        // sqlx's worker thread per batch (the lock) instead of one per statement (begin,
        // each progress row, commit), each of which waited for the other thread to be
        // scheduled.
        let mut handle = lock_connection(&mut self.conn).await?;
        let db: NonNull<ffi::sqlite3> = handle.as_raw_handle().cast();
        if n > 0 && self.dialect.checkpointer.is_none() {
            // SAFETY: sqlx's open connection, locked for this call.
            self.dialect.checkpointer =
                Some(unsafe { Checkpointer::start(db, &self.dialect.path) });
        }
        let insert = Inserts {
            cache: &mut self.dialect.statements,
            key: |len| (table.name, len, mode),
            sql: |len| insert_sql(table, len, mode),
        };
        // SAFETY: `db` is sqlx's open connection, locked for this call (`lock_handle`), the
        // one the cached statements were prepared on; `write_batch` resets its statements
        // and ends its transaction (commit or rollback) before returning, so sqlx finds the
        // connection as it left it.
        unsafe { write_batch(db, per, insert, rows, &self.dialect.progress, &progress) }
            .map_err(|e| sqlx::Error::Database(Box::new(e)))?;
        if let Some(Some(c)) = &self.dialect.checkpointer {
            c.after_commit();
        }
        Ok(())
    }
}

/// Writes a batch in one transaction. In `Insert` mode, a key violation (rows that appeared
/// since the range check, e.g. from another importer) rolls the batch back and it is
/// written again as an upsert, and the sink stays in upsert mode.
impl BulkWrite for SqliteDialect {
    async fn write_rows(
        sink: &mut SqliteSink,
        table: &'static TableSpec,
        rows: Encoder<'_>,
        marks: &[Mark],
    ) -> anyhow::Result<()> {
        match sink.try_write_rows(table, &rows, marks).await {
            Err(e) if sink.upsert_after_duplicate(&e, table) => sink
                .try_write_rows(table, &rows, marks)
                .await
                .map_err(|e| sink.err(e, "cannot write a batch (rolled back)")),
            other => other.map_err(|e| sink.err(e, "cannot write a batch (rolled back)")),
        }
    }
}

fn db_error(e: sqlx::Error, path: &Path, busy: Duration, doing: &str) -> anyhow::Error {
    let readonly = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.permissions().readonly())
            || std::fs::OpenOptions::new().append(true).open(p).is_err()
    };
    // SQLITE_READONLY (8) and SQLITE_CANTOPEN (14), with their extended codes.
    let refused = matches!(primary_code(&e), Some(8 | 14));
    if is_busy(&e) {
        anyhow::anyhow!(
            "database {} is locked by another writer (waited {:.1}s): {doing}; \
             try again when the other import finishes",
            path.display(),
            busy.as_secs_f64()
        )
    } else if refused
        && path.exists()
        && (readonly(path)
            || path
                .parent()
                .is_some_and(|d| !d.as_os_str().is_empty() && readonly_dir(d)))
    {
        anyhow::anyhow!(
            "{doing} ({}): the database file or its folder is read-only (SQLite writes \
             the file and its -wal and -shm files beside it); make both writable, or use \
             `data status`, which only reads",
            path.display()
        )
    } else {
        anyhow::anyhow!("{doing} ({}): {e}", path.display())
    }
}

/// The lock file beside a database (`market.db.lock`): a byte of it per import job
/// (`data_job::lock`), and [`MIGRATION_BYTE`] while migrations run.
pub(crate) fn lock_file_of(db: &Path) -> PathBuf {
    let name = db
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("market.db");
    db.with_file_name(format!("{name}.lock"))
}

/// The byte of the lock file held while the schema is migrated (job bytes lie below 2^40).
pub(crate) const MIGRATION_BYTE: i64 = 1 << 41;

/// Holds the database's migration byte while it is opened and its schema brought up to
/// date, so two processes opening a new file together neither switch it to WAL at once
/// (the second is told "locked" at once) nor apply the same migrations at once (one would
/// run a migration on a schema the other has moved past). Without a writable lock
/// file (a read-only folder) it goes on unlocked: the retries of [`migrate`] remain.
async fn migration_lock(db: &Path, wait: Duration) -> Option<std::fs::File> {
    let path = lock_file_of(db);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .ok()?;
    let wait = wait.max(Duration::from_secs(30));
    let locked = tokio::task::spawn_blocking(move || {
        data_job::lock::lock_byte(&file, MIGRATION_BYTE, wait).map(|ok| (ok, file))
    })
    .await
    .ok()?
    .ok()?;
    locked.0.then_some(locked.1)
}

/// Applies the schema migrations. Two importers that start together on a new file may
/// both find a migration missing and both apply it; the one that loses fails (`UNIQUE
/// constraint failed: _sqlx_migrations.version`, or a busy database) with its transaction
/// rolled back. It tries again, a few times, after a short random wait: by then the other
/// has applied it and sqlx skips it.
async fn migrate(conn: &mut SqliteConnection) -> Result<(), sqlx::migrate::MigrateError> {
    let mut tries = 0;
    loop {
        match sqlx::migrate!("../../migrations/sqlite")
            .run(&mut *conn)
            .await
        {
            Ok(()) => return Ok(()),
            Err(e) if tries < 20 && migration_race(&e) => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(fastrand::u64(20..120))).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// SQLite's primary result code of a database error (its extended code's low byte).
fn primary_code(e: &sqlx::Error) -> Option<i64> {
    match e {
        sqlx::Error::Database(db) => db.code()?.parse::<i64>().ok().map(|c| c & 0xff),
        _ => None,
    }
}

/// Whether a migration failed as the loser of a race with another process applying it:
/// SQLITE_ERROR (a table already exists), SQLITE_BUSY, SQLITE_LOCKED or SQLITE_CONSTRAINT
/// (`_sqlx_migrations.version` taken). Another failure of the same codes is retried too,
/// and reported as it is once the retries are spent.
fn migration_race(e: &sqlx::migrate::MigrateError) -> bool {
    use sqlx::migrate::MigrateError;
    match e {
        MigrateError::Execute(x) | MigrateError::ExecuteMigration(x, _) => {
            matches!(primary_code(x), Some(1 | 5 | 6 | 19))
        }
        _ => false,
    }
}

/// Whether a folder refuses new files (SQLite's -wal and -shm files go there).
fn readonly_dir(dir: &Path) -> bool {
    let probe = dir.join(format!(".data-write-probe-{}", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            false
        }
        Err(e) => {
            e.kind() == std::io::ErrorKind::PermissionDenied
                || e.raw_os_error() == Some(libc::EROFS)
        }
    }
}

/// `INSERT ... VALUES (...),(...)` for `rows` rows; as an upsert, `ON CONFLICT DO UPDATE`
/// that only fires when a value differs, so re-importing unchanged data rewrites no pages.
fn insert_sql(table: &TableSpec, rows: usize, mode: WriteMode) -> String {
    let columns = table.columns();
    let placeholders = format!("({})", vec!["?"; columns.len()].join(","));
    let values = vec![placeholders.as_str(); rows].join(",");
    let head = format!(
        "INSERT INTO {} ({}) VALUES {values}",
        table.name,
        columns.join(", ")
    );
    if mode == WriteMode::Insert {
        return head;
    }
    let data_cols: Vec<&str> = table
        .columns()
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// Back-to-back locks, as 1-row batches take them, never wedge the connection. Bare
    /// `lock_handle` calls did: see [`lock_connection`].
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn back_to_back_locks_of_the_connection_never_deadlock() {
        const LOCKS: u32 = 30_000;
        let dir = tempfile::tempdir().unwrap();
        let mut conn = SqliteConnection::connect_with(
            &SqliteConnectOptions::new()
                .filename(dir.path().join("t.db"))
                .create_if_missing(true),
        )
        .await
        .unwrap();
        let done = AtomicU32::new(0);
        let locks = async {
            for _ in 0..LOCKS {
                let handle = lock_connection(&mut conn).await.unwrap();
                drop(handle);
                done.fetch_add(1, Ordering::Relaxed);
            }
        };
        // About 5 s in a debug build. Bare `lock_handle` calls deadlocked here after 262
        // and 2,209 locks in two runs.
        let finished = tokio::time::timeout(Duration::from_secs(60), locks).await;
        assert!(
            finished.is_ok(),
            "the connection's lock hand-over deadlocked after {} of {LOCKS} locks",
            done.load(Ordering::Relaxed)
        );
    }

    #[test]
    fn statements_stay_under_the_parameter_limit() {
        assert_eq!(rows_per_statement(&QUOTES), ROWS_PER_INSERT);
        for t in [&QUOTES, &QUOTES_THINNED, &QUOTES_AGGREGATED, &TRADES, &BARS] {
            assert!(rows_per_statement(t) * t.columns().len() <= SQLITE_MAX_PARAMS);
        }
        assert_eq!(QUOTES.columns()[..2], ["symbol_id", "t"]);
        assert_eq!(
            QUOTES_THINNED.columns()[..3],
            ["thinning_id", "symbol_id", "t"]
        );
        assert_eq!(
            insert_sql(&QUOTES, 2, WriteMode::Upsert)
                .matches('?')
                .count(),
            22
        );
        let plain = insert_sql(&QUOTES, 1, WriteMode::Insert);
        assert!(!plain.contains("ON CONFLICT"), "{plain}");
    }

    /// A quotes sink on a new database at `path`, and the first `n` generated AAPL quotes
    /// (`per_day` a day from 2024-01-02 to `last_day`), as generated and as a batch.
    async fn quotes_sink(
        path: &Path,
        last_day: &str,
        per_day: u32,
        n: usize,
    ) -> (
        SqliteSink,
        Vec<data_standin::generate::GenQuote>,
        arrow_array::RecordBatch,
    ) {
        use data_standin::generate::{quotes_batch, quotes_between};
        let mut sink = SqliteSink::open(&path.display().to_string(), Duration::from_secs(5))
            .await
            .unwrap();
        sink.set_target(&QUOTES, data_core::dataset::DatasetId::Quotes);
        let range = data_core::time::DateRange::parse("2024-01-02", last_day).unwrap();
        let quotes: Vec<_> = quotes_between("AAPL", "sip", range.start_ns, range.end_ns, per_day)
            .take(n)
            .collect();
        let rows = quotes_batch("AAPL", &quotes).unwrap();
        (sink, quotes, rows)
    }

    /// 40,000 quotes make about 700 WAL pages: fewer than SQLite's automatic checkpoint
    /// waits for (1,000), so only the checkpointer can have moved them into the file.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_is_checkpointed_beside_the_writes() {
        use data_core::pipeline::Sink;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        let (mut sink, _, rows) = quotes_sink(&path, "2024-01-31", 37_000, 40_000).await;
        let empty = std::fs::metadata(&path).unwrap().len();
        for start in (0..rows.num_rows()).step_by(10_000) {
            sink.write_batch(&rows.slice(start, 10_000), &[])
                .await
                .unwrap();
        }
        let grown = || std::fs::metadata(&path).unwrap().len() > empty + 1_000_000;
        let waited = std::time::Instant::now();
        while !grown() && waited.elapsed() < Duration::from_secs(10) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(grown(), "the database file still holds none of the rows");
        // What a reader sees meanwhile: every row, once, and an intact file.
        let reader = rusqlite::Connection::open(&path).unwrap();
        let count: i64 = reader
            .query_row("SELECT count(*) FROM quotes", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, 40_000);
        let check: String = reader
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
    }

    /// The INSERT statements are prepared once per size and kept across batches (and across
    /// the switch from plain INSERT to upsert), their values rebound each time; the sink
    /// then closes with them finalized first, and the file holds exactly what was written.
    #[tokio::test]
    async fn statements_are_kept_across_batches_of_any_size() {
        use data_core::pipeline::Sink;
        use data_standin::generate::quotes_batch;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        let (mut sink, quotes, rows) = quotes_sink(&path, "2024-01-05", 300, 300).await;
        sink.mode = WriteMode::Insert;
        // 130 rows (64 + 64 + 2), 64, 7, then 130 again.
        for (start, len) in [(0, 130), (130, 64), (194, 7), (201, 99)] {
            sink.write_batch(&rows.slice(start, len), &[])
                .await
                .unwrap();
        }
        let sizes = |sink: &SqliteSink, mode| {
            let mut v: Vec<usize> = sink
                .dialect
                .statements
                .prepared
                .keys()
                .filter(|k| k.2 == mode)
                .map(|k| k.1)
                .collect();
            v.sort();
            v
        };
        assert_eq!(sizes(&sink, WriteMode::Insert), vec![2, 7, 35, 64]);
        // Rows already there: the plain INSERT fails, the batch is written again as an upsert
        // with new values for the same keys.
        let mut changed = quotes[..130].to_vec();
        for q in &mut changed {
            q.bid_size += 1;
        }
        let changed = quotes_batch("AAPL", &changed).unwrap();
        sink.write_batch(&changed, &[]).await.unwrap();
        assert_eq!(sink.mode, WriteMode::Upsert);
        assert_eq!(sizes(&sink, WriteMode::Upsert), vec![2, 64]);
        drop(sink);
        let reader = rusqlite::Connection::open(&path).unwrap();
        let (count, sizes): (i64, i64) = reader
            .query_row("SELECT count(*), sum(bid_size) FROM quotes", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        let expected: i64 = quotes.iter().map(|q| q.bid_size as i64).sum::<i64>() + 130;
        assert_eq!((count, sizes), (300, expected));
        let check: String = reader
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
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
