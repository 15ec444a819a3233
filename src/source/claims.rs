//! Several importers, one job (`import-api --coordinate`): before a fetcher asks the API for
//! a shard (a symbol's day, or month), it claims the shard in PostgreSQL, so that importers
//! started with the same command — on one machine or several — divide the shards and each
//! is fetched once.
//!
//! A claim is a lease row of `shard_leases`, taken with `SELECT … FOR UPDATE SKIP LOCKED`
//! (two importers never wait on each other for a row: each takes what is free) and renewed
//! while the importer lives. It is released by the shard's done mark in `import_progress`,
//! which the sink writes in the transaction of the batch that completes the shard: a shard
//! with a done mark is never claimed again. An importer that dies leaves its leases to
//! expire; the others, once through their own list, wait for the shards still leased and take
//! over the expired ones, so the job still ends whole (a shard taken over is fetched again
//! from its start; rows are upserted, so it ends exact).

use crate::resume::Shard;
use crate::sink::postgres::redacted;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection, Row};
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Mutex};

/// How often a held lease is renewed, as a share of its length.
const RENEWALS_PER_LEASE: u32 = 3;

/// This importer's claims on the shards of its plan.
pub struct Claims {
    conn: Mutex<PgConnection>,
    /// The job's progress key (`quotes`, `quotes@iex`, ...), as `import_progress` has it.
    dataset: String,
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

const CLAIM: &str = "
WITH free AS (
    SELECT l.dataset, l.symbol, l.day, l.owner AS was
    FROM shard_leases l
    JOIN UNNEST($2::text[], $3::text[]) AS w(symbol, day) ON l.symbol = w.symbol AND l.day = w.day::date
    WHERE l.dataset = $1
      AND (l.expires_at < now() OR l.owner = $4)
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
    pub async fn join(
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
        Ok(Arc::new(Claims {
            conn: Mutex::new(conn),
            dataset: dataset.to_string(),
            owner,
            lease,
            index,
            symbols,
            days,
            claimed: AtomicU64::new(0),
            taken_over: AtomicU64::new(0),
        }))
    }

    /// Claims what it can of `ids` (plan indices): those free, expired, or already this
    /// importer's, and not done. Returns the ones now held.
    pub async fn claim(&self, ids: &[u32]) -> anyhow::Result<Vec<u32>> {
        let (symbols, days): (Vec<&str>, Vec<&str>) = ids
            .iter()
            .filter_map(|&i| {
                let i = i as usize;
                Some((self.symbols.get(i)?.as_str(), self.days.get(i)?.as_str()))
            })
            .unzip();
        let rows = {
            let mut conn = self.conn.lock().await;
            sqlx::query(CLAIM)
                .bind(&self.dataset)
                .bind(&symbols)
                .bind(&days)
                .bind(&self.owner)
                .bind(self.lease.as_millis() as f64)
                .fetch_all(&mut *conn)
                .await
                .map_err(|e| anyhow::anyhow!("cannot claim shards in shard_leases: {e}"))?
        };
        let mut held = Vec::new();
        for row in rows {
            let (symbol, day): (String, String) = (row.try_get(0)?, row.try_get(1)?);
            let was: Option<String> = row.try_get(2)?;
            if let Some(was) = was.filter(|w| *w != self.owner) {
                self.taken_over.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    "[COORD] {symbol} {day}: the lease of {was} expired; taken over (fetched again from its start)"
                );
            }
            if let Some(&i) = self.index.get(&(symbol, day)) {
                held.push(i);
            }
        }
        held.sort_unstable();
        self.claimed.fetch_add(held.len() as u64, Ordering::Relaxed);
        Ok(held)
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
            let rows = {
                let mut conn = self.conn.lock().await;
                sqlx::query(
                    "SELECT l.symbol, l.day::text, l.expires_at < now() \
                     FROM shard_leases l \
                     JOIN UNNEST($2::text[], $3::text[]) AS w(symbol, day) \
                       ON l.symbol = w.symbol AND l.day = w.day::date \
                     WHERE l.dataset = $1 AND l.owner IS DISTINCT FROM $4 \
                       AND NOT EXISTS (SELECT 1 FROM import_progress p \
                                       WHERE p.dataset = l.dataset AND p.symbol = l.symbol \
                                         AND p.day = l.day AND p.done) \
                     ORDER BY l.day, l.symbol",
                )
                .bind(&self.dataset)
                .bind(&self.symbols)
                .bind(&self.days)
                .bind(&self.owner)
                .fetch_all(&mut *conn)
                .await
                .map_err(|e| anyhow::anyhow!("cannot read shard_leases: {e}"))?
            };
            if rows.is_empty() {
                return Ok(None);
            }
            let expired: Vec<u32> = rows
                .iter()
                .filter(|r| r.try_get::<bool, _>(2).unwrap_or(false))
                .filter_map(|r| {
                    let key = (r.try_get::<String, _>(0).ok()?, r.try_get(1).ok()?);
                    self.index.get(&key).copied()
                })
                .collect();
            for id in expired {
                let got = self.claim(&[id]).await?;
                if !got.is_empty() {
                    return Ok(Some(got));
                }
            }
            let wait = (self.lease / 4).max(Duration::from_millis(100));
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = cancel.changed() => {}
            }
        }
    }

    /// Renews this importer's leases until dropped (the task is aborted with the fetchers).
    pub async fn renew(self: Arc<Self>) {
        let every = self.lease / RENEWALS_PER_LEASE;
        loop {
            tokio::time::sleep(every).await;
            let mut conn = self.conn.lock().await;
            let renewed = sqlx::query(
                "UPDATE shard_leases SET expires_at = now() + $3 * interval '1 millisecond' \
                 WHERE dataset = $1 AND owner = $2",
            )
            .bind(&self.dataset)
            .bind(&self.owner)
            .bind(self.lease.as_millis() as f64)
            .execute(&mut *conn)
            .await;
            if let Err(e) = renewed {
                tracing::warn!(
                    "[COORD] cannot renew the leases (they expire in {:?}): {e}",
                    self.lease
                );
            }
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into())
}
