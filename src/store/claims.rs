//! Several importers, one job (`import-api --coordinate`): before a fetcher asks the API for
//! a shard (a symbol's day, or month), it claims the shard where the job's rows go —
//! PostgreSQL, or the Parquet store's bucket — so that importers started with the same
//! command, on one machine or several, divide the shards and each is fetched once.
//!
//! **PostgreSQL.** A claim is a lease row of `shard_leases`, taken with `SELECT … FOR UPDATE SKIP LOCKED`
//! (two importers never wait on each other for a row: each takes what is free) and renewed
//! while the importer lives. It is released by the shard's done mark in `import_progress`,
//! which the sink writes in the transaction of the batch that completes the shard: a shard
//! with a done mark is never claimed again. An importer that dies leaves its leases to
//! expire; the others, once through their own list, wait for the shards still leased and take
//! over the expired ones, so the job still ends whole (a shard taken over is fetched again
//! from its start; rows are upserted, so it ends exact).
//!
//! **A bucket** (`--format parquet --historical-path s3://|gs://|az://...`). A claim is a marker object,
//! `_claims/<the unit's folder>` beside the dataset folders (readers skip `_` folders),
//! holding its owner and expiry, written with a conditional PUT: `If-None-Match: *` to claim
//! a free shard, `If-Match: <ETag>` to renew it or to take an expired one over, so of two
//! importers racing for a marker exactly one wins. The unit's file published is the done
//! mark; the sink then deletes the marker. A claim won is checked against the file, so a
//! shard done meanwhile is never fetched again. Expiry compares the writer's clock with the
//! reader's: the importers' clocks must agree to well within a lease.

use crate::dataset::DatasetId;
use crate::pipeline::ClaimFuture;
use crate::resume::Shard;
use crate::store::parquet::layout::Layout;
use crate::store::parquet::location::Location;
use crate::store::sql::postgres::redacted;
use chrono::NaiveDate;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection, Row};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Mutex};

/// How often an importer through its list looks again at the shards others hold.
const POLL: Duration = Duration::from_millis(500);

/// How often a held lease is renewed, as a share of its length.
const RENEWALS_PER_LEASE: u32 = 3;

/// This importer's claims on the shards of its plan.
pub struct Claims {
    backend: Backend,
    owner: String,
    lease: Duration,
    /// (symbol, day as YYYY-MM-DD) -> index in the plan.
    index: HashMap<(String, String), u32>,
    symbols: Vec<String>,
    days: Vec<String>,
    /// Shards this importer fetched, and of them taken over from a dead importer.
    pub claimed: AtomicU64,
    pub taken_over: AtomicU64,
}

enum Backend {
    Postgres {
        conn: Mutex<PgConnection>,
        /// The job's progress key (`quotes`, `quotes@iex`, ...), as `import_progress` has it.
        dataset: String,
    },
    Bucket(Bucket),
}

/// Claims as marker objects in the Parquet store's bucket.
struct Bucket {
    store: Location,
    layout: DatasetId,
    /// Each plan index's unit key.
    keys: Vec<NaiveDate>,
    /// Plan index -> the ETag of this importer's marker.
    held: std::sync::Mutex<HashMap<u32, String>>,
}

impl Bucket {
    /// Shard `id`'s marker and unit file (`symbol` is the shard's).
    fn paths(&self, symbol: &str, id: u32) -> Option<(PathBuf, PathBuf)> {
        let key = *self.keys.get(id as usize)?;
        let root = self.store.path();
        Some((
            claim_path(root, &self.layout, symbol, key),
            self.layout.file(root, symbol, key),
        ))
    }

    /// The dataset's files in place (one listing).
    fn files(&self) -> anyhow::Result<std::collections::HashSet<PathBuf>> {
        let dir = self.layout.dir(self.store.path());
        Ok(self
            .store
            .files_under(&dir)?
            .into_iter()
            .map(|(p, _)| p)
            .collect())
    }

    fn held(&self) -> Vec<(u32, String)> {
        self.held
            .lock()
            .map(|h| h.iter().map(|(k, v)| (*k, v.clone())).collect())
            .unwrap_or_default()
    }
}

const CLAIM: &str = "
WITH free AS (
    SELECT l.dataset, l.symbol, l.day, l.owner AS was
    FROM shard_leases l
    JOIN UNNEST($2::text[], $3::text[]) AS w(symbol, day) ON l.symbol = w.symbol AND l.day = w.day::date
    WHERE l.dataset = $1
      AND l.expires_at < now() AND l.owner IS DISTINCT FROM $4
      AND NOT EXISTS (SELECT 1 FROM import_progress p
                      WHERE p.dataset = l.dataset AND p.symbol = l.symbol AND p.day = l.day
                        AND p.done)
    FOR UPDATE OF l SKIP LOCKED)
UPDATE shard_leases l
SET owner = $4, expires_at = now() + $5 * interval '1 millisecond'
FROM free
WHERE l.dataset = free.dataset AND l.symbol = free.symbol AND l.day = free.day
RETURNING l.symbol, l.day::text, free.was";

impl Claims {
    /// Connects (a connection of its own), and adds the plan's shards to the job's lease
    /// rows (free; rows other importers added already are left as they are).
    pub async fn postgres(
        url: &str,
        dataset: &str,
        shards: &[Shard],
        lease: Duration,
    ) -> anyhow::Result<Arc<Claims>> {
        let shown = redacted(url);
        let opts = PgConnectOptions::from_str(url)
            .map_err(|e| anyhow::anyhow!("invalid PostgreSQL URL {shown}: {e}"))?
            .log_statements(tracing::log::LevelFilter::Off);
        let mut conn = PgConnection::connect_with(&opts).await.map_err(|e| {
            anyhow::anyhow!("cannot connect to PostgreSQL {shown} to coordinate: {e}")
        })?;
        let symbols: Vec<String> = shards.iter().map(|s| s.symbol.to_string()).collect();
        let days: Vec<String> = shards.iter().map(|s| s.day.to_string()).collect();
        sqlx::query(
            "INSERT INTO shard_leases (dataset, symbol, day) \
             SELECT $1, w.symbol, w.day::date FROM UNNEST($2::text[], $3::text[]) AS w(symbol, day) \
             ON CONFLICT DO NOTHING",
        )
        .bind(dataset)
        .bind(&symbols)
        .bind(&days)
        .execute(&mut conn)
        .await
        .map_err(|e| anyhow::anyhow!("cannot add the job's shards to shard_leases: {e}"))?;
        let backend = Backend::Postgres {
            conn: Mutex::new(conn),
            dataset: dataset.to_string(),
        };
        Ok(Self::new(backend, shards, lease))
    }

    /// Claims kept as marker objects in the Parquet store's bucket `store`.
    pub fn bucket(
        store: &Location,
        layout: DatasetId,
        shards: &[Shard],
        lease: Duration,
    ) -> anyhow::Result<Arc<Claims>> {
        anyhow::ensure!(
            store.is_remote(),
            "claims in the Parquet store need a bucket"
        );
        let backend = Backend::Bucket(Bucket {
            store: store.clone(),
            layout,
            keys: shards.iter().map(|s| s.day).collect(),
            held: Default::default(),
        });
        Ok(Self::new(backend, shards, lease))
    }

    fn new(backend: Backend, shards: &[Shard], lease: Duration) -> Arc<Claims> {
        let symbols: Vec<String> = shards.iter().map(|s| s.symbol.to_string()).collect();
        let days: Vec<String> = shards.iter().map(|s| s.day.to_string()).collect();
        let index = symbols
            .iter()
            .cloned()
            .zip(days.iter().cloned())
            .enumerate()
            .map(|(i, k)| (k, i as u32))
            .collect();
        let owner = format!(
            "{}:{}:{:08x}",
            hostname(),
            std::process::id(),
            fastrand::u32(..)
        );
        Arc::new(Claims {
            backend,
            owner,
            lease,
            index,
            symbols,
            days,
            claimed: AtomicU64::new(0),
            taken_over: AtomicU64::new(0),
        })
    }

    /// Where the claims are kept, for messages.
    pub fn place(&self) -> String {
        match &self.backend {
            Backend::Postgres { .. } => "in PostgreSQL".into(),
            Backend::Bucket(b) => {
                format!(
                    "as objects under {}",
                    b.store.show(&b.store.path().join(CLAIMS_DIR))
                )
            }
        }
    }

    /// Claims what it can of `ids` (plan indices): those free or expired (never one this
    /// importer holds already), and not done. Returns the ones now held.
    pub async fn claim(&self, ids: &[u32]) -> anyhow::Result<Vec<u32>> {
        let mut held = match &self.backend {
            Backend::Postgres { conn, dataset } => self.claim_rows(conn, dataset, ids).await?,
            Backend::Bucket(_) => {
                let mut held = Vec::new();
                for &id in ids {
                    if self.claim_marker(id)? {
                        held.push(id);
                    }
                }
                held
            }
        };
        held.sort_unstable();
        self.claimed.fetch_add(held.len() as u64, Ordering::Relaxed);
        Ok(held)
    }

    fn taken_over_from(&self, id: u32, was: &str) {
        self.taken_over.fetch_add(1, Ordering::Relaxed);
        let i = id as usize;
        tracing::warn!(
            "[COORD] {} {}: the lease of {was} expired; taken over (fetched again from its start)",
            self.symbols.get(i).map_or("", String::as_str),
            self.days.get(i).map_or("", String::as_str),
        );
    }

    async fn claim_rows(
        &self,
        conn: &Mutex<PgConnection>,
        dataset: &str,
        ids: &[u32],
    ) -> anyhow::Result<Vec<u32>> {
        let (symbols, days): (Vec<&str>, Vec<&str>) = ids
            .iter()
            .filter_map(|&i| {
                let i = i as usize;
                Some((self.symbols.get(i)?.as_str(), self.days.get(i)?.as_str()))
            })
            .unzip();
        let rows = sqlx::query(CLAIM)
            .bind(dataset)
            .bind(&symbols)
            .bind(&days)
            .bind(&self.owner)
            .bind(self.lease.as_millis() as f64)
            .fetch_all(&mut *conn.lock().await)
            .await
            .map_err(|e| anyhow::anyhow!("cannot claim shards in shard_leases: {e}"))?;
        let mut held = Vec::new();
        for row in rows {
            let (symbol, day): (String, String) = (row.try_get(0)?, row.try_get(1)?);
            let was: Option<String> = row.try_get(2)?;
            if let Some(&i) = self.index.get(&(symbol, day)) {
                if let Some(was) = was.filter(|w| *w != self.owner) {
                    self.taken_over_from(i, &was);
                }
                held.push(i);
            }
        }
        Ok(held)
    }

    /// A marker's content: its owner and when it expires (ms since the epoch).
    fn marker(&self) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        format!("{} {}\n", self.owner, (now + self.lease).as_millis())
    }

    /// Claims shard `id` with its marker object: created if there is none, taken over if
    /// expired; then the unit's file is looked for (done: released at once).
    fn claim_marker(&self, id: u32) -> anyhow::Result<bool> {
        let Backend::Bucket(b) = &self.backend else {
            return Ok(false);
        };
        let Some((path, file)) = self.symbols.get(id as usize).and_then(|s| b.paths(s, id)) else {
            return Ok(false);
        };
        let store = &b.store;
        let content = self.marker();
        let tag = match store.put_if(&path, content.as_bytes(), None)? {
            Some(tag) => tag,
            None => {
                let Some((current, tag)) = store.get_tagged(&path)? else {
                    // Released between the two requests: its shard was just done.
                    return Ok(false);
                };
                let current = String::from_utf8_lossy(&current);
                let mut parts = current.split_whitespace();
                let (owner, until) = (parts.next().unwrap_or(""), parts.next());
                let until: u128 = until.and_then(|u| u.parse().ok()).unwrap_or(0);
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_millis();
                // Held by another importer, or already by one of this importer's fetchers
                // (never claimed twice).
                if owner == self.owner || until >= now {
                    return Ok(false);
                }
                let Some(new) = store.put_if(&path, content.as_bytes(), Some(&tag))? else {
                    return Ok(false);
                };
                self.taken_over_from(id, owner);
                new
            }
        };
        // Read back: on a server whose conditional PUT is not atomic (moto's checks, then
        // writes), two importers can both be told they won; the content says who did.
        match store.get_tagged(&path)? {
            Some((current, _)) if current.starts_with(format!("{} ", self.owner).as_bytes()) => {}
            _ => return Ok(false),
        }
        if store.exists(&file)? {
            store.remove(&path)?;
            return Ok(false);
        }
        if let Ok(mut held) = b.held.lock() {
            held.insert(id, tag);
        }
        Ok(true)
    }

    /// Once this importer's list is through: waits while other importers hold shards of
    /// the plan that are not done, and claims one as soon as its lease expires. None when
    /// every shard of the plan is done or this importer's own (or on cancellation).
    pub async fn take_over(
        &self,
        cancel: &mut watch::Receiver<bool>,
    ) -> anyhow::Result<Option<Vec<u32>>> {
        loop {
            if *cancel.borrow() {
                return Ok(None);
            }
            let waiting = match &self.backend {
                Backend::Postgres { conn, dataset } => self.others_rows(conn, dataset).await?,
                Backend::Bucket(b) => self.others_markers(b)?,
            };
            if waiting.is_empty() {
                return Ok(None);
            }
            for id in waiting {
                let got = self.claim(&[id]).await?;
                if !got.is_empty() {
                    return Ok(Some(got));
                }
            }
            // Often enough that an importer waiting on another's last shards ends soon after
            // them; a lease expiring is noticed within this too.
            let wait = (self.lease / 4).clamp(Duration::from_millis(100), POLL);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = cancel.changed() => {}
            }
        }
    }

    /// The plan's shards not done and not this importer's (expired ones first).
    async fn others_rows(
        &self,
        conn: &Mutex<PgConnection>,
        dataset: &str,
    ) -> anyhow::Result<Vec<u32>> {
        let rows = sqlx::query(
            "SELECT l.symbol, l.day::text \
             FROM shard_leases l \
             JOIN UNNEST($2::text[], $3::text[]) AS w(symbol, day) \
               ON l.symbol = w.symbol AND l.day = w.day::date \
             WHERE l.dataset = $1 AND l.owner IS DISTINCT FROM $4 \
               AND NOT EXISTS (SELECT 1 FROM import_progress p \
                               WHERE p.dataset = l.dataset AND p.symbol = l.symbol \
                                 AND p.day = l.day AND p.done) \
             ORDER BY l.expires_at, l.day, l.symbol",
        )
        .bind(dataset)
        .bind(&self.symbols)
        .bind(&self.days)
        .bind(&self.owner)
        .fetch_all(&mut *conn.lock().await)
        .await
        .map_err(|e| anyhow::anyhow!("cannot read shard_leases: {e}"))?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                let key = (r.try_get::<String, _>(0).ok()?, r.try_get(1).ok()?);
                self.index.get(&key).copied()
            })
            .collect())
    }

    /// The plan's shards without their file and not this importer's (one listing).
    fn others_markers(&self, b: &Bucket) -> anyhow::Result<Vec<u32>> {
        let files = b.files()?;
        let mine: Vec<u32> = b.held().into_iter().map(|(id, _)| id).collect();
        Ok((0..self.symbols.len() as u32)
            .filter(|id| !mine.contains(id))
            .filter(|&id| {
                b.paths(&self.symbols[id as usize], id)
                    .is_some_and(|(_, file)| !files.contains(&file))
            })
            .collect())
    }

    /// Renews this importer's leases until dropped (the task is aborted with the fetchers).
    pub async fn renew(self: Arc<Self>) {
        let every = self.lease / RENEWALS_PER_LEASE;
        loop {
            tokio::time::sleep(every).await;
            let renewed = match &self.backend {
                Backend::Postgres { conn, dataset } => sqlx::query(
                    "UPDATE shard_leases SET expires_at = now() + $3 * interval '1 millisecond' \
                     WHERE dataset = $1 AND owner = $2",
                )
                .bind(dataset)
                .bind(&self.owner)
                .bind(self.lease.as_millis() as f64)
                .execute(&mut *conn.lock().await)
                .await
                .map(|_| ())
                .map_err(anyhow::Error::from),
                Backend::Bucket(b) => self.renew_markers(b),
            };
            if let Err(e) = renewed {
                tracing::warn!(
                    "[COORD] cannot renew the leases (they expire in {:?}): {e:#}",
                    self.lease
                );
            }
        }
    }

    /// Rewrites each held marker with a later expiry, on its ETag; a marker gone (its
    /// shard done, the sink released it) or rewritten by another importer is dropped.
    fn renew_markers(&self, b: &Bucket) -> anyhow::Result<()> {
        for (id, tag) in b.held() {
            let Some((path, _)) = b.paths(&self.symbols[id as usize], id) else {
                continue;
            };
            let renewed = b
                .store
                .put_if(&path, self.marker().as_bytes(), Some(&tag))?;
            if let Ok(mut held) = b.held.lock() {
                match renewed {
                    Some(tag) => held.insert(id, tag),
                    None => held.remove(&id),
                };
            }
        }
        Ok(())
    }
}

impl crate::pipeline::ShardClaims for Claims {
    fn claim<'a>(&'a self, ids: &'a [u32]) -> ClaimFuture<'a, anyhow::Result<Vec<u32>>> {
        Box::pin(Claims::claim(self, ids))
    }

    fn take_over<'a>(
        &'a self,
        cancel: &'a mut watch::Receiver<bool>,
    ) -> ClaimFuture<'a, anyhow::Result<Option<Vec<u32>>>> {
        Box::pin(Claims::take_over(self, cancel))
    }

    fn renew(self: Arc<Self>) -> ClaimFuture<'static, ()> {
        Box::pin(Claims::renew(self))
    }
}

impl Claims {
    /// After the job: deletes the bucket's markers of units whose file is in place (an
    /// importer killed between publishing a file and deleting its marker leaves one; so
    /// can a renewal racing the deletion on a server whose If-Match is not atomic). A
    /// marker without its file is an unfinished shard's and stays.
    pub fn sweep(&self) -> anyhow::Result<usize> {
        let Backend::Bucket(b) = &self.backend else {
            return Ok(0);
        };
        let (store, layout) = (&b.store, &b.layout);
        let root = store.path();
        let files = b.files()?;
        let claims = root.join(CLAIMS_DIR);
        let mut swept = 0;
        for (marker, _) in store.files_under(&claims.join(layout.dir(Path::new(""))))? {
            let Ok(unit) = marker.strip_prefix(&claims) else {
                continue;
            };
            if files.contains(
                &root
                    .join(unit)
                    .join(crate::store::parquet::layout::FILE_NAME),
            ) {
                store.remove(&marker)?;
                swept += 1;
            }
        }
        Ok(swept)
    }
}

/// The folder of the claim markers, beside the datasets' folders in the store.
pub const CLAIMS_DIR: &str = "_claims";

/// The claim marker of `symbol`'s unit `key` of `layout` in the store under `root`.
pub fn claim_path(root: &Path, layout: &DatasetId, symbol: &str, key: NaiveDate) -> PathBuf {
    root.join(CLAIMS_DIR)
        .join(layout.unit_dir(Path::new(""), symbol, key))
}

/// `--coordinate` on a store one process writes: the usage error's text.
pub const NOT_SHARED: &str =
    "--coordinate shares a job through PostgreSQL (--database-url postgres://...) or \
a Parquet store in a bucket (--format parquet --historical-path s3://, gs:// or az://...); one \
SQLite file has one writer, and a local folder has no conditional writes";

/// `--coordinate`: says where the job's shards are claimed.
pub fn announce(claims: &Claims, shards: usize, lease: Duration) {
    tracing::info!(
        target: crate::progress::SUMMARY,
        "[COORD] sharing the job's {shards} shards with any importer started with the same command (leases of {}s, {})",
        lease.as_secs_f64(),
        claims.place()
    );
}

/// `--coordinate`: this importer's share of the job (no per-symbol report: the symbols
/// other importers fetched have no rows here).
pub fn report_share(claims: &Claims, shards: usize) {
    let (claimed, taken_over) = (
        claims.claimed.load(Ordering::Relaxed),
        claims.taken_over.load(Ordering::Relaxed),
    );
    let rest = match shards.saturating_sub(claimed as usize) {
        0 => "no other importer fetched any".to_string(),
        n => format!("other importers fetched the other {n} (or hold them still)"),
    };
    tracing::info!(
        target: crate::progress::SUMMARY,
        "[COORD] this importer fetched {claimed} of the job's {shards} shards ({taken_over} taken over from importers whose leases expired); {rest}"
    );
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into())
}
