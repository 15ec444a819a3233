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

use super::encode::{Encoder, Val};
use super::sink::{BulkWrite, Conn, Dialect, SqlSink, WriteMode};
use data_core::dataset::TableSpec;
use data_core::pipeline::Mark;
use data_core::retry::{Next, RetryPolicy, Verdict};
use sqlx::postgres::{PgConnectOptions, PgConnection, Postgres};
use sqlx::{ConnectOptions, Connection};
use std::str::FromStr;
use std::time::Duration;

/// Session advisory-lock key held by an import that has dropped indexes (any machine).
const DROP_LOCK_KEY: i64 = 0x6461_7461_6964_7800;
/// Attempts per batch when the connection drops or a deadlock is reported.
const BATCH_RETRY: RetryPolicy = RetryPolicy {
    max_attempts: 5,
    base_delay: Duration::from_millis(200),
    max_delay: Duration::from_secs(2),
};

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

/// Appends one value as a binary COPY field.
fn field(out: &mut Vec<u8>, v: Val) {
    match v {
        Val::Int(v) => int8(out, v),
        Val::Int4(v) => int4(out, v),
        Val::Float(v) => float8(out, v),
        Val::Text(s) => text(out, s),
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

/// The URL with its password replaced, for messages.
pub fn redacted(url: &str) -> String {
    data_job::config::redact_url(url)
}

/// PostgreSQL: a server (shown with its password redacted), `$n` placeholders, `DATE` days,
/// an advisory lock guarding `--drop-indexes` across machines, and binary COPY.
pub struct PgDialect {
    opts: PgConnectOptions,
    shown: String,
    /// This session holds the drop-indexes advisory lock.
    holds_drop_lock: bool,
    /// Try COPY straight into the table when a batch's span holds no rows (see try_write).
    optimistic: bool,
    buf: Vec<u8>,
}

/// The SQL sink on a PostgreSQL server.
pub type PgSink = SqlSink<PgDialect>;

fn pg_error(e: sqlx::Error, shown: &str, doing: &str) -> anyhow::Error {
    // sqlx's messages never contain the password; the URL is shown redacted.
    anyhow::anyhow!("{doing} (PostgreSQL {shown}): {e}")
}

async fn try_lock(conn: &mut PgConnection) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(DROP_LOCK_KEY)
        .fetch_one(conn)
        .await
}

impl Dialect for PgDialect {
    type DB = Postgres;

    fn sql(text: &str) -> String {
        text.to_string()
    }

    fn date_param(n: u8) -> String {
        format!("${n}::date")
    }

    fn ny_day(col: &str) -> String {
        format!("(to_timestamp({col} / 1e9) AT TIME ZONE 'America/New_York')::date::text")
    }

    fn utc_day(col: &str) -> String {
        format!("(to_timestamp(floor({col} / 1e9)) AT TIME ZONE 'UTC')::date::text")
    }

    const NOW: &'static str = "now()";

    const LIST_INDEXES: &'static str = "SELECT i.indexname::TEXT, i.indexdef FROM pg_indexes i \
         WHERE i.schemaname = current_schema() AND i.tablename = $1 \
         AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)";

    fn rows_affected(result: &sqlx::postgres::PgQueryResult) -> u64 {
        result.rows_affected()
    }

    fn is_duplicate(e: &sqlx::Error) -> bool {
        sqlstate(e).is_some_and(|c| c == "23505")
    }

    fn error(&self, e: sqlx::Error, doing: &str) -> anyhow::Error {
        pg_error(e, &self.shown, doing)
    }

    /// Takes a session advisory lock that tells other sessions, on any machine, that an
    /// import without its indexes is running; if another such import holds it, nothing is
    /// dropped.
    async fn may_drop_indexes(&mut self, conn: &mut Conn<Self>) -> Result<bool, sqlx::Error> {
        if !try_lock(conn).await? {
            tracing::warn!(
                "[DB] another --drop-indexes import is running on this server; keeping the indexes"
            );
            return Ok(false);
        }
        self.holds_drop_lock = true;
        Ok(true)
    }

    /// Orphans only when no import holds the advisory lock.
    async fn may_rebuild_indexes(
        &mut self,
        conn: &mut Conn<Self>,
        only_orphans: bool,
    ) -> Result<bool, sqlx::Error> {
        if only_orphans && !self.holds_drop_lock {
            if !try_lock(conn).await? {
                return Ok(false);
            }
            self.holds_drop_lock = true;
        }
        Ok(true)
    }

    async fn rebuilt_indexes(&mut self, conn: &mut Conn<Self>) {
        if self.holds_drop_lock {
            let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(DROP_LOCK_KEY)
                .execute(conn)
                .await;
            self.holds_drop_lock = false;
        }
    }
}

/// The options of `url` (statement logging off), its redacted form, and a connection.
async fn connect_url(url: &str) -> anyhow::Result<(PgConnectOptions, String, PgConnection)> {
    let shown = redacted(url);
    let opts = PgConnectOptions::from_str(url)
        .map_err(|e| anyhow::anyhow!("invalid PostgreSQL URL {shown}: {e}"))?
        .log_statements(tracing::log::LevelFilter::Off)
        .log_slow_statements(tracing::log::LevelFilter::Off, Duration::from_secs(3600));
    let conn = connect(&opts, &shown).await?;
    Ok((opts, shown, conn))
}

impl PgDialect {
    fn new(opts: PgConnectOptions, shown: String) -> Self {
        PgDialect {
            opts,
            shown,
            holds_drop_lock: false,
            optimistic: true,
            buf: Vec::new(),
        }
    }
}

impl SqlSink<PgDialect> {
    pub async fn open(url: &str) -> anyhow::Result<Self> {
        let (opts, shown, mut conn) = connect_url(url).await?;
        sqlx::migrate!("../../migrations/postgres")
            .run(&mut conn)
            .await
            .map_err(|e| {
                anyhow::anyhow!("cannot apply the schema migrations to PostgreSQL {shown}: {e}")
            })?;
        let dialect = PgDialect::new(opts, shown);
        SqlSink::new(conn, dialect).await
    }

    /// Connects to read only (`status`): no migration, nothing created. `None` when the
    /// database holds no schema of ours (nothing was ever imported into it).
    pub(crate) async fn open_read_only(url: &str) -> anyhow::Result<Option<Self>> {
        let (opts, shown, mut conn) = connect_url(url).await?;
        let ours: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
            .fetch_one(&mut conn)
            .await
            .map_err(|e| anyhow::anyhow!("cannot read PostgreSQL {shown}: {e}"))?;
        if !ours {
            return Ok(None);
        }
        let dialect = PgDialect::new(opts, shown);
        Ok(Some(SqlSink::reader(conn, dialect)))
    }

    pub fn shown(&self) -> &str {
        &self.dialect.shown
    }

    /// Turns the direct-COPY fast path for empty spans on or off (benchmarks compare both).
    pub fn set_optimistic(&mut self, on: bool) {
        self.dialect.optimistic = on;
    }

    /// Whether `table` holds no rows of the batch's symbols (and thinning) within the batch's
    /// time spans: one span per symbol and UTC day, so a batch that interleaves several
    /// days fetched concurrently is not mistaken for an overlap by the days between them.
    async fn span_is_empty(
        thinning_id: Option<i64>,
        tx: &mut PgConnection,
        table: &TableSpec,
        rows: &Encoder<'_>,
        keep: Option<&[bool]>,
    ) -> Result<bool, sqlx::Error> {
        const DAY_NS: i64 = 86_400 * 1_000_000_000;
        let mut spans: Vec<(i64, i64, i64, i64)> = Vec::new(); // (symbol id, day, lo, hi)
        for i in (0..rows.rows()).filter(|&i| keep.is_none_or(|k| k[i])) {
            let t = rows.time_key(i);
            let id = rows.symbol_id(i);
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

    /// Binary COPY data for `rows` (those `keep` says, if given) in `table`'s column order.
    fn encode(&mut self, rows: &Encoder<'_>, keep: Option<&[bool]>) {
        let buf = &mut self.dialect.buf;
        buf.clear();
        buf.extend_from_slice(COPY_HEADER);
        let fields = rows.width() as i16;
        for i in (0..rows.rows()).filter(|&i| keep.is_none_or(|k| k[i])) {
            buf.extend_from_slice(&fields.to_be_bytes());
            for k in 0..rows.width() {
                field(buf, rows.value(k, i));
            }
        }
        buf.extend_from_slice(&COPY_TRAILER);
    }

    async fn try_write(
        &mut self,
        table: &TableSpec,
        rows: &Encoder<'_>,
        keep: Option<&[bool]>,
        marks: &[Mark],
    ) -> Result<(), sqlx::Error> {
        self.encode(rows, keep);
        let columns = table.columns();
        let cols = columns.join(", ");
        let mut tx = self.conn.begin().await?;
        // Upserts into a span that holds no rows yet (the usual case: a fresh range) go in
        // with COPY straight into the table, as fast as --skip-duplicates. The probe is one
        // index range lookup per symbol; if another importer writes the span meanwhile, the
        // COPY meets its rows, the batch rolls back, and the caller retries it through staging.
        let empty = rows.rows() == 0;
        let direct = empty
            || self.mode == WriteMode::Insert
            || (self.dialect.optimistic
                && Self::span_is_empty(self.thinning_id, &mut tx, table, rows, keep).await?);
        if empty {
            // Only shard progress to commit.
        } else if direct {
            let mut copy = tx
                .copy_in_raw(&format!(
                    "COPY {} ({cols}) FROM STDIN (FORMAT binary)",
                    table.name
                ))
                .await?;
            copy.send(self.dialect.buf.as_slice()).await?;
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
            copy.send(self.dialect.buf.as_slice()).await?;
            copy.finish().await?;
            let data: Vec<&str> = columns
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
        Self::commit_progress(self.tracking.as_ref(), &mut *tx, marks).await?;
        tx.commit().await
    }

    async fn reconnect(&mut self) -> anyhow::Result<()> {
        self.conn = connect(&self.dialect.opts, &self.dialect.shown).await?;
        self.dialect.holds_drop_lock = false;
        Ok(())
    }
}

/// Writes one batch, retrying it on a lost connection (after reconnecting) or a deadlock,
/// and falling back from plain insert to upsert on existing rows.
impl BulkWrite for PgDialect {
    async fn write_rows(
        sink: &mut PgSink,
        table: &'static TableSpec,
        rows: Encoder<'_>,
        marks: &[Mark],
    ) -> anyhow::Result<()> {
        let keep = rows.repeated_keys(table);
        let mut attempts = BATCH_RETRY.attempts();
        loop {
            let err = match sink.try_write(table, &rows, keep.as_deref(), marks).await {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            if sink.mode == WriteMode::Upsert
                && PgDialect::is_duplicate(&err)
                && sink.dialect.optimistic
            {
                // Another importer filled the span between the probe and the COPY: write
                // this batch (and the rest) through staging.
                tracing::warn!(
                    "[DB] rows appeared in {} while this batch was copied; upserting through staging from now on",
                    table.name
                );
                sink.dialect.optimistic = false;
                continue;
            }
            if sink.upsert_after_duplicate(&err, table) {
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
                return Err(sink.err(err, "cannot write a batch (rolled back)"));
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
                if let Err(e) = sink.reconnect().await {
                    tracing::warn!("[DB] reconnect failed: {e:#}");
                }
            }
        }
    }
}

async fn connect(opts: &PgConnectOptions, shown: &str) -> anyhow::Result<PgConnection> {
    PgConnection::connect_with(opts)
        .await
        .map_err(|e| pg_error(e, shown, "cannot connect"))
}

/// Takes the lock of `job` as a PostgreSQL advisory lock on a connection of its own.
pub(crate) async fn lock_in_postgres(
    job: &data_job::job::Job,
    url: &str,
) -> anyhow::Result<data_job::lock::JobLock> {
    use sqlx::Connection;
    let shown = data_job::config::redact_url(url);
    let mut conn = sqlx::PgConnection::connect(url)
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect (PostgreSQL {shown}): {e}"))?;
    let held: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(data_job::lock::job_hash(job) as i64)
        .fetch_one(&mut conn)
        .await
        .map_err(|e| anyhow::anyhow!("cannot take the import lock in {shown}: {e}"))?;
    match held {
        true => Ok(data_job::lock::JobLock::new(conn)),
        false => Err(data_job::lock::busy(job, " (a PostgreSQL advisory lock)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_copy_fields_are_length_prefixed_big_endian() {
        let mut out = Vec::new();
        field(&mut out, Val::Int(1_704_186_000_000_000_001));
        field(&mut out, Val::Int4(2));
        field(&mut out, Val::Text("\t"));
        field(&mut out, Val::Float(0.1 + 0.2));
        field(&mut out, Val::Text(r#"[" "]"#));
        let mut expected = Vec::new();
        expected.extend_from_slice(&[0, 0, 0, 8]);
        expected.extend_from_slice(&1_704_186_000_000_000_001i64.to_be_bytes());
        expected.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 2]);
        expected.extend_from_slice(&[0, 0, 0, 1, b'\t']);
        expected.extend_from_slice(&[0, 0, 0, 8]);
        expected.extend_from_slice(&(0.1f64 + 0.2).to_bits().to_be_bytes());
        expected.extend_from_slice(&[0, 0, 0, 5, b'[', b'"', b' ', b'"', b']']);
        assert_eq!(out, expected);
        assert_eq!(COPY_HEADER.len(), 19);
    }
}
