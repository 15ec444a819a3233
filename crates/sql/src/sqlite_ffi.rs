//! SQLite's C API under the SQLite sink's bulk write: the connection's handle locked from
//! sqlx's worker, a statement cache of 64-row upserts bound straight from the batch's columns,
//! the WAL hook and the background checkpointer, and the raw error type.

use super::encode::{ColumnValues, Encoder, Val};
use arrow_array::Array;
use data_core::resume::ProgressRow;
use rusqlite::ffi;
use sqlx::sqlite::SqliteConnection;
use sqlx::Connection;
use std::collections::HashMap;
use std::ffi::{c_int, c_uint};
use std::path::Path;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

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
pub(super) async fn lock_connection(
    conn: &mut SqliteConnection,
) -> Result<sqlx::sqlite::LockedSqliteHandle<'_>, sqlx::Error> {
    conn.ping().await?;
    conn.lock_handle().await
}

/// WAL frames (pages) after which a commit wakes the checkpointer.
pub(super) const BACKGROUND_CHECKPOINT_FRAMES: u32 = 256;
/// WAL frames after which the writer checkpoints itself, as SQLite does by default at
/// 1,000: the bound on the WAL's size should the checkpointer fall behind.
pub(super) const INLINE_CHECKPOINT_FRAMES: c_int = 8_192;

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
                data_core::pipeline::lower_priority();
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
pub(super) unsafe extern "C" fn wal_hook(
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
pub(super) unsafe fn write_batch<K: Eq + std::hash::Hash>(
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
pub(super) fn exec(db: NonNull<ffi::sqlite3>, sql: &std::ffi::CStr) -> Result<(), RawError> {
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
    pub(super) prepared: HashMap<K, Statement>,
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
pub(super) fn bind_rows(
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
pub(super) struct Statement {
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
