//! The SQLite dialect of the SQL sink (`sink::sql`): opens (creating folders and file) the
//! database in WAL mode, applies the migrations in migrations/sqlite, and writes each batch
//! in one transaction as 64-row upserts (prepared once per size and kept), bound straight
//! from the batch's columns on sqlx's own connection handle.

use super::encode::{ColumnValues, Encoder, Val};
use super::sink::{BulkWrite, Conn, Dialect, SqlSink};
use crate::pipeline::Mark;
use crate::resume::ProgressRow;
use anyhow::Context;
use arrow_array::Array;
use rusqlite::ffi;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteSynchronous};
use sqlx::Sqlite;
use sqlx::{ConnectOptions, Connection};
use std::collections::HashMap;
use std::ffi::{c_int, c_uint};
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

pub use super::sink::WriteMode;
pub use crate::dataset::{TableSpec, BARS, QUOTES, QUOTES_AGGREGATED, QUOTES_THINNED, TRADES};

pub const DEFAULT_DATABASE_URL: &str = "sqlite:data/market.db";

/// SQLite refuses statements with more bound parameters than this (SQLITE_MAX_VARIABLE_NUMBER
/// since 3.32).
pub const SQLITE_MAX_PARAMS: usize = 32_766;

/// Rows per INSERT statement, when the parameter limit allows: few enough that preparing
/// the statement (once per size, kept across batches) costs nothing next to running it,
/// many enough that each step does real work (measured: see benches/RESULTS.md, session 5).
pub const ROWS_PER_INSERT: usize = 64;

/// Rows per INSERT statement of `table`: [`ROWS_PER_INSERT`], under SQLite's parameter limit.
pub fn rows_per_statement(table: &TableSpec) -> usize {
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
            ) || db.message().contains("database is locked")
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
                    || db.message().contains("UNIQUE constraint failed")
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
        !only_orphans || !crate::store::process_alive(pid)
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
    pub async fn open_read_only(url: &str, busy_timeout: Duration) -> anyhow::Result<Option<Self>> {
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

/// sqlx's `lock_handle`, safe to call back to back. sqlx hands its connection over by
/// queueing for the connection's lock and sending its worker thread an `UnlockDb` command,
/// which the worker obeys by releasing the lock and queueing for it again. When a caller
/// drops the lock and asks again before the worker has queued, it takes the free lock at
/// once, and its `UnlockDb` waits in the worker's command channel for a later turn. With
/// no pause between batches (1-row batches from a 10,000-row page) those spare commands
/// pile up. Once they fill the channel (50 places), the caller holds the lock while it
/// waits for room, and the worker waits for the lock: a deadlock (`--batch-size 1` hung).
/// A ping first is answered only after the worker has worked through every command queued
/// before it, so at most one `UnlockDb` is ever waiting. It costs one hand-over to the
/// worker per batch.
async fn lock_connection(
    conn: &mut SqliteConnection,
) -> Result<sqlx::sqlite::LockedSqliteHandle<'_>, sqlx::Error> {
    conn.ping().await?;
    conn.lock_handle().await
}

/// WAL frames (pages) after which a commit wakes the checkpointer.
const BACKGROUND_CHECKPOINT_FRAMES: u32 = 256;
/// WAL frames after which the writer checkpoints itself, as SQLite does by default at
/// 1,000: the bound on the WAL's size should the checkpointer fall behind.
const INLINE_CHECKPOINT_FRAMES: c_int = 8_192;

/// Copies the WAL's committed pages into the database file (SQLite's checkpoint, with its
/// fsyncs) on a thread and connection of its own, so that the writer's commits no longer
/// stop for it every 1,000 pages as SQLite's automatic checkpoint does: a `PASSIVE`
/// checkpoint runs beside the writes, never blocking them. The writer's connection reports
/// the WAL's size after each commit (its WAL hook) and checkpoints itself only past
/// [`INLINE_CHECKPOINT_FRAMES`]. Durability is SQLite's own either way: a commit is durable
/// in the WAL, a checkpoint only moves pages, and a kill at any point leaves a database
/// that recovers from its WAL.
pub struct Checkpointer {
    frames: &'static AtomicU32,
    wake: Option<std::sync::mpsc::SyncSender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts the thread, and hooks the WAL of `db` (the writer's connection, the database
    /// at `path`); `None` if the database has no WAL or cannot be opened a second time, in
    /// which case SQLite's automatic checkpoint stays in place.
    ///
    /// # Safety
    /// `db` must be an open connection that nothing else uses during the call.
    pub unsafe fn start(db: NonNull<ffi::sqlite3>, path: &Path) -> Option<Self> {
        let flags =
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = rusqlite::Connection::open_with_flags(path, flags).ok()?;
        let wal: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .ok()?;
        if !wal.eq_ignore_ascii_case("wal") {
            return None;
        }
        let (wake, woken) = std::sync::mpsc::sync_channel::<()>(1);
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                crate::pipeline::lower_priority();
                while woken.recv().is_ok() {
                    // PASSIVE: copies what is committed, waits for no one; a busy answer
                    // (another checkpoint running) just leaves it for the next wake.
                    let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                }
            })
            .ok()?;
        // The hook's state lives as long as the process: the connection may outlive this
        // sink (sqlx closes it on its own thread), and a few bytes per opened sink is the
        // price of never pointing the hook at freed memory.
        let frames: &'static AtomicU32 = Box::leak(Box::new(AtomicU32::new(0)));
        // SAFETY: `db` is open and not in use (the caller's contract); the hook's context
        // is 'static.
        unsafe {
            ffi::sqlite3_wal_hook(
                db.as_ptr(),
                Some(wal_hook),
                std::ptr::from_ref(frames).cast_mut().cast(),
            );
        }
        Some(Checkpointer {
            frames,
            wake: Some(wake),
            thread: Some(thread),
        })
    }

    /// After a commit: wakes the thread if the WAL holds enough pages (never blocks).
    pub fn after_commit(&self) {
        if self.frames.load(Ordering::Relaxed) >= BACKGROUND_CHECKPOINT_FRAMES {
            if let Some(w) = &self.wake {
                let _ = w.try_send(());
            }
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        // Closing the channel ends the thread after the checkpoint it may be running.
        drop(self.wake.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The writer connection's WAL hook (SQLite calls it after each commit, with the WAL's
/// size in frames): records the size for [`Checkpointer::after_commit`], and checkpoints
/// in place past [`INLINE_CHECKPOINT_FRAMES`] (what SQLite's default hook does at 1,000).
unsafe extern "C" fn wal_hook(
    ctx: *mut std::ffi::c_void,
    db: *mut ffi::sqlite3,
    name: *const std::ffi::c_char,
    frames: c_int,
) -> c_int {
    // SAFETY: `ctx` is the 'static AtomicU32 given to sqlite3_wal_hook.
    let state = unsafe { &*ctx.cast::<AtomicU32>() };
    state.store(u32::try_from(frames).unwrap_or(0), Ordering::Relaxed);
    if frames >= INLINE_CHECKPOINT_FRAMES {
        // SAFETY: called by SQLite on its open connection with the database's name.
        unsafe { ffi::sqlite3_wal_checkpoint(db, name) };
    }
    ffi::SQLITE_OK
}

/// One batch in one transaction on the connection `db`: its rows (see [`bind_and_insert`])
/// and its shards' progress rows (`progress_sql`: [`super::sink::progress_upsert`]), then
/// COMMIT; on any error, ROLLBACK, so the connection is never left inside a transaction.
///
/// # Safety
/// `db` must be an open connection, not inside a transaction, that nothing else uses during
/// the call.
unsafe fn write_batch<K: Eq + std::hash::Hash>(
    db: NonNull<ffi::sqlite3>,
    per: usize,
    insert: Inserts<'_, K, impl Fn(usize) -> K, impl Fn(usize) -> String>,
    rows: &Encoder<'_>,
    progress_sql: &str,
    progress: &[ProgressRow<'_>],
) -> Result<(), RawError> {
    exec(db, c"BEGIN")?;
    let written = (|| {
        if rows.rows() > 0 {
            // SAFETY: the caller's contract.
            unsafe { bind_and_insert(db, per, insert, rows)? };
        }
        if !progress.is_empty() {
            let days: Vec<String> = progress.iter().map(|r| r.day.to_string()).collect();
            let mut stmt = Statement::prepare(db, progress_sql)?;
            for (r, day) in progress.iter().zip(&days) {
                stmt.bind_text(1, r.dataset)?;
                stmt.bind_text(2, r.symbol)?;
                stmt.bind_text(3, day)?;
                stmt.bind_i64(4, r.start_ns)?;
                stmt.bind_i64(5, r.end_ns)?;
                match r.last {
                    Some((t, seq)) => {
                        stmt.bind_i64(6, t)?;
                        stmt.bind_i64(7, i64::from(seq))?;
                    }
                    None => {
                        stmt.bind_null(6)?;
                        stmt.bind_null(7)?;
                    }
                }
                stmt.bind_i64(8, i64::from(r.done))?;
                stmt.run()?;
            }
        }
        exec(db, c"COMMIT")
    })();
    // SAFETY: an open connection.
    if written.is_err() && unsafe { ffi::sqlite3_get_autocommit(db.as_ptr()) } == 0 {
        let _ = exec(db, c"ROLLBACK");
    }
    written
}

/// Runs `sql` (no rows come back) on the connection `db`.
fn exec(db: NonNull<ffi::sqlite3>, sql: &std::ffi::CStr) -> Result<(), RawError> {
    // SAFETY: `db` is an open connection (every caller's contract); `sql` is NUL-terminated.
    let rc = unsafe {
        ffi::sqlite3_exec(
            db.as_ptr(),
            sql.as_ptr(),
            None,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
    match rc {
        ffi::SQLITE_OK => Ok(()),
        _ => Err(RawError::last(db)),
    }
}

/// Prepared statements kept across batches on one connection, by key; finalized when
/// dropped, which must happen before the connection closes.
pub struct StatementCache<K> {
    prepared: HashMap<K, Statement>,
}

impl<K> Default for StatementCache<K> {
    fn default() -> Self {
        StatementCache {
            prepared: HashMap::new(),
        }
    }
}

/// The INSERT statements of one batch: `key(len)` names the statement for `len` rows in
/// `cache`, and `sql(len)` is its text, prepared on first use.
pub struct Inserts<'c, K, FK, FS> {
    pub cache: &'c mut StatementCache<K>,
    pub key: FK,
    pub sql: FS,
}

/// Inserts every row of `rows` on the connection `db` in statements of up to `per` rows
/// (prepared once per size on the connection and kept in `insert.cache`), each value bound
/// straight from its column without a copy (`SQLITE_STATIC`: text stays in the batch, which
/// outlives the statements' runs; their bindings are cleared before returning). The sink's
/// write, and the benchmarks' raw-sink ceiling.
///
/// # Safety
/// `db` must be an open connection that nothing else uses during the call, and the one
/// every statement already in `insert.cache` was prepared on.
pub unsafe fn bind_and_insert<K, FK, FS>(
    db: NonNull<ffi::sqlite3>,
    per: usize,
    insert: Inserts<'_, K, FK, FS>,
    rows: &Encoder<'_>,
) -> Result<(), RawError>
where
    K: Eq + std::hash::Hash,
    FK: Fn(usize) -> K,
    FS: Fn(usize) -> String,
{
    let (n, per) = (rows.rows(), per.max(1));
    let columns: Vec<ColumnValues<'_>> = (0..rows.width()).map(|k| rows.column(k)).collect();
    let mut sizes: Vec<usize> = Vec::new();
    let mut result = Ok(());
    for start in (0..n).step_by(per) {
        let len = per.min(n - start);
        if !sizes.contains(&len) {
            sizes.push(len);
        }
        let stmt = match insert.cache.prepared.entry((insert.key)(len)) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                match Statement::prepare(db, &(insert.sql)(len)) {
                    Ok(s) => e.insert(s),
                    Err(err) => {
                        result = Err(err);
                        break;
                    }
                }
            }
        };
        result = bind_rows(stmt, rows, &columns, start..start + len).and_then(|()| stmt.run());
        if result.is_err() {
            break;
        }
    }
    // No statement keeps pointers into this batch's text once it is gone.
    for len in sizes {
        if let Some(stmt) = insert.cache.prepared.get_mut(&(insert.key)(len)) {
            stmt.clear_bindings();
        }
    }
    result
}

/// Binds `rows_here` of `rows` (whose columns are `columns`) to `stmt`, a statement for
/// that many rows.
fn bind_rows(
    stmt: &mut Statement,
    rows: &Encoder<'_>,
    columns: &[ColumnValues<'_>],
    rows_here: std::ops::Range<usize>,
) -> Result<(), RawError> {
    let (width, len) = (columns.len(), rows_here.len());
    {
        // Column by column: parameter k+1 of the first row, then every `width`th.
        let params = |k: usize| (0..len).map(move |j| (j * width + k + 1) as c_int);
        for (k, column) in columns.iter().enumerate() {
            match column {
                ColumnValues::Same(v) => {
                    for p in params(k) {
                        stmt.bind(p, *v)?;
                    }
                }
                ColumnValues::I64(v) => {
                    for (p, &x) in params(k).zip(&v[rows_here.clone()]) {
                        stmt.bind_i64(p, x)?;
                    }
                }
                ColumnValues::U32(v) => {
                    for (p, &x) in params(k).zip(&v[rows_here.clone()]) {
                        stmt.bind_i64(p, i64::from(x))?;
                    }
                }
                ColumnValues::U64(v) => {
                    for (p, &x) in params(k).zip(&v[rows_here.clone()]) {
                        stmt.bind_i64(p, x as i64)?;
                    }
                }
                ColumnValues::F64(v) => {
                    for (p, &x) in params(k).zip(&v[rows_here.clone()]) {
                        stmt.bind_f64(p, x)?;
                    }
                }
                ColumnValues::Text(a) => {
                    for (p, i) in params(k).zip(rows_here.clone()) {
                        stmt.bind_text(p, if a.is_valid(i) { a.value(i) } else { "" })?;
                    }
                }
                ColumnValues::Json(j) => {
                    for (p, i) in params(k).zip(rows_here.clone()) {
                        stmt.bind_text(p, j.get(i))?;
                    }
                }
                ColumnValues::Each => {
                    for (p, i) in params(k).zip(rows_here.clone()) {
                        stmt.bind(p, rows.value(k, i))?;
                    }
                }
            }
        }
    }
    Ok(())
}

/// A statement prepared on a raw connection handle, finalized when dropped.
struct Statement {
    db: NonNull<ffi::sqlite3>,
    stmt: NonNull<ffi::sqlite3_stmt>,
}

impl Statement {
    fn prepare(db: NonNull<ffi::sqlite3>, sql: &str) -> Result<Self, RawError> {
        let len = c_int::try_from(sql.len()).map_err(|_| RawError {
            code: None,
            message: "statement too long".into(),
        })?;
        let mut stmt = std::ptr::null_mut();
        // SAFETY: `db` is open (the caller's contract); `sql` is valid for `len` bytes.
        let rc = unsafe {
            ffi::sqlite3_prepare_v3(
                db.as_ptr(),
                sql.as_ptr().cast(),
                len,
                ffi::SQLITE_PREPARE_PERSISTENT as c_uint,
                &mut stmt,
                std::ptr::null_mut(),
            )
        };
        match NonNull::new(stmt) {
            Some(stmt) if rc == ffi::SQLITE_OK => Ok(Statement { db, stmt }),
            _ => Err(RawError::last(db)),
        }
    }

    /// Binds parameter `p` (1-based). Text is bound without a copy: it must stay valid
    /// until the statement is stepped for the last time, reset with new values or dropped.
    fn bind(&mut self, p: c_int, value: Val<'_>) -> Result<(), RawError> {
        match value {
            Val::Int(v) => self.bind_i64(p, v),
            Val::Int4(v) => self.bind_i64(p, i64::from(v)),
            Val::Float(v) => self.bind_f64(p, v),
            Val::Text(v) => self.bind_text(p, v),
        }
    }

    #[inline]
    fn bind_i64(&mut self, p: c_int, v: i64) -> Result<(), RawError> {
        // SAFETY: a live statement.
        self.check(unsafe { ffi::sqlite3_bind_int64(self.stmt.as_ptr(), p, v) })
    }

    fn bind_null(&mut self, p: c_int) -> Result<(), RawError> {
        // SAFETY: a live statement.
        self.check(unsafe { ffi::sqlite3_bind_null(self.stmt.as_ptr(), p) })
    }

    #[inline]
    fn bind_f64(&mut self, p: c_int, v: f64) -> Result<(), RawError> {
        // SAFETY: a live statement.
        self.check(unsafe { ffi::sqlite3_bind_double(self.stmt.as_ptr(), p, v) })
    }

    /// Text without a copy (`SQLITE_STATIC`): see [`Statement::bind`].
    #[inline]
    fn bind_text(&mut self, p: c_int, v: &str) -> Result<(), RawError> {
        let Ok(len) = c_int::try_from(v.len()) else {
            return self.check(ffi::SQLITE_TOOBIG);
        };
        // SAFETY: a live statement; the text lives in the batch the caller holds for the
        // whole insert, longer than this statement.
        self.check(unsafe {
            ffi::sqlite3_bind_text(
                self.stmt.as_ptr(),
                p,
                v.as_ptr().cast(),
                len,
                ffi::SQLITE_STATIC(),
            )
        })
    }

    #[inline]
    fn check(&self, rc: c_int) -> Result<(), RawError> {
        if rc == ffi::SQLITE_OK {
            Ok(())
        } else {
            Err(RawError::last(self.db))
        }
    }

    /// Forgets the bound values (text bound without a copy points into a batch).
    fn clear_bindings(&mut self) {
        // SAFETY: a live statement.
        unsafe { ffi::sqlite3_clear_bindings(self.stmt.as_ptr()) };
    }

    /// Runs the statement (an INSERT: no rows come back), then resets it for new values.
    fn run(&mut self) -> Result<(), RawError> {
        // SAFETY: a live statement of an open connection.
        let rc = unsafe { ffi::sqlite3_step(self.stmt.as_ptr()) };
        let result = if rc == ffi::SQLITE_DONE {
            Ok(())
        } else {
            Err(RawError::last(self.db))
        };
        // SAFETY: as above; reset keeps the bindings, which the next run overwrites.
        unsafe { ffi::sqlite3_reset(self.stmt.as_ptr()) };
        result
    }
}

// SAFETY: SQLite's multi-thread mode lets a connection and its statements move between
// threads so long as one thread uses them at a time; a statement is only used under the
// lock of the connection it belongs to (`lock_handle`) or by the connection's owner.
unsafe impl Send for Statement {}

impl Drop for Statement {
    fn drop(&mut self) {
        // SAFETY: the statement is live and finalized once.
        unsafe { ffi::sqlite3_finalize(self.stmt.as_ptr()) };
    }
}

/// An error of the raw insert, as sqlx reports SQLite's: its extended code and message, so
/// the duplicate and busy checks classify it as they do sqlx's own.
#[derive(Debug)]
pub struct RawError {
    code: Option<i32>,
    message: String,
}

impl RawError {
    /// The connection's last error.
    fn last(db: NonNull<ffi::sqlite3>) -> Self {
        // SAFETY: `db` is an open connection; the message is copied before any other call.
        unsafe {
            let code = ffi::sqlite3_extended_errcode(db.as_ptr());
            let msg = ffi::sqlite3_errmsg(db.as_ptr());
            let message = if msg.is_null() {
                format!("SQLite error {code}")
            } else {
                std::ffi::CStr::from_ptr(msg).to_string_lossy().into_owned()
            };
            RawError {
                code: Some(code),
                message,
            }
        }
    }
}

impl std::fmt::Display for RawError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RawError {}

impl sqlx::error::DatabaseError for RawError {
    fn message(&self) -> &str {
        &self.message
    }
    fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
        self.code.map(|c| c.to_string().into())
    }
    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }
    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }
    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }
    fn kind(&self) -> sqlx::error::ErrorKind {
        match self.code {
            Some(1555 | 2067) => sqlx::error::ErrorKind::UniqueViolation,
            _ => sqlx::error::ErrorKind::Other,
        }
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
    let text = e.to_string();
    if is_busy(&e) {
        anyhow::anyhow!(
            "database {} is locked by another writer (waited {:.1}s): {doing}; \
             try again when the other import finishes",
            path.display(),
            busy.as_secs_f64()
        )
    } else if (text.contains("readonly") || text.contains("unable to open database file"))
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
/// (`commands::lock`), and [`MIGRATION_BYTE`] while migrations run.
pub fn lock_file_of(db: &Path) -> PathBuf {
    let name = db
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("market.db");
    db.with_file_name(format!("{name}.lock"))
}

/// The byte of the lock file held while the schema is migrated (job bytes lie below 2^40).
pub const MIGRATION_BYTE: i64 = 1 << 41;

/// A one-byte write lock on `file` at `offset`, an open-file-description lock (Linux's
/// `F_OFD_SETLK`): it belongs to this descriptor alone, so closing another descriptor of
/// the same file (as SQLite and other locks do) never drops it. Waits up to `wait` for a
/// holder to let go (20 ms steps). `Ok(false)`: still held by another.
pub fn lock_byte(file: &std::fs::File, offset: i64, wait: Duration) -> std::io::Result<bool> {
    use std::os::fd::AsRawFd;
    let lock = libc::flock {
        l_type: libc::F_WRLCK as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: offset as libc::off_t,
        l_len: 1,
        l_pid: 0,
    };
    let until = std::time::Instant::now() + wait;
    loop {
        // SAFETY: fcntl record locking on a descriptor the caller owns, with a valid flock.
        if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &lock) } == 0 {
            return Ok(true);
        }
        let e = std::io::Error::last_os_error();
        if !matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EACCES)) {
            return Err(e);
        }
        if std::time::Instant::now() >= until {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

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
        lock_byte(&file, MIGRATION_BYTE, wait).map(|ok| (ok, file))
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
        match sqlx::migrate!("./migrations/sqlite").run(&mut *conn).await {
            Ok(()) => return Ok(()),
            Err(e) if tries < 20 && migration_race(&e) => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(fastrand::u64(20..120))).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Whether a migration failed because another process applied it at the same time.
fn migration_race(e: &sqlx::migrate::MigrateError) -> bool {
    let text = e.to_string();
    text.contains("UNIQUE constraint failed")
        || text.contains("already exists")
        || text.contains("database is locked")
        || matches!(e, sqlx::migrate::MigrateError::Execute(x) if is_busy(x))
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
        Vec<crate::standin::generate::GenQuote>,
        arrow_array::RecordBatch,
    ) {
        use crate::standin::generate::{quotes_batch, quotes_between};
        let mut sink = SqliteSink::open(&path.display().to_string(), Duration::from_secs(5))
            .await
            .unwrap();
        sink.set_target(&QUOTES, crate::dataset::DatasetId::Quotes);
        let range = crate::time::DateRange::parse("2024-01-02", last_day).unwrap();
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
        use crate::pipeline::Sink;
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
        use crate::pipeline::Sink;
        use crate::standin::generate::quotes_batch;
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
