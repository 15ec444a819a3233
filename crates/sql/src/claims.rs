//! `--coordinate` on PostgreSQL: a claim is a lease row of `shard_leases`, taken with
//! `SELECT … FOR UPDATE SKIP LOCKED` (two importers never wait on each other for a row: each
//! takes what is free) and renewed while the importer lives. It is released by the shard's
//! done mark in `import_progress`, which the sink writes in the transaction of the batch
//! that completes the shard: a shard with a done mark is never claimed again. What every
//! place of claims shares (waiting, taking over, renewing) is `data_job::claims`.

use crate::postgres::redacted;
use data_core::pipeline::ClaimFuture;
use data_core::resume::Shard;
use data_job::claims::{ClaimPlan, ClaimStore, Claimed, Claims, Won};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection, Row};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// The lease rows of one job's shards, on a connection of their own.
pub(crate) struct LeaseRows {
    conn: Mutex<PgConnection>,
    /// The job's progress key (`quotes`, `quotes@iex`, ...), as `import_progress` has it.
    dataset: String,
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

/// Connects (a connection of its own), and adds the plan's shards to the job's lease rows
/// (free; rows other importers added already are left as they are).
pub(crate) async fn lease_rows(
    url: &str,
    dataset: &str,
    shards: &[Shard],
    lease: Duration,
) -> anyhow::Result<Arc<Claims<LeaseRows>>> {
    let shown = redacted(url);
    let opts = PgConnectOptions::from_str(url)
        .map_err(|e| anyhow::anyhow!("invalid PostgreSQL URL {shown}: {e}"))?
        .log_statements(tracing::log::LevelFilter::Off);
    let mut conn = PgConnection::connect_with(&opts)
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect to PostgreSQL {shown} to coordinate: {e}"))?;
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
    let rows = LeaseRows {
        conn: Mutex::new(conn),
        dataset: dataset.to_string(),
    };
    Ok(Claims::new(rows, shards, lease))
}

impl LeaseRows {
    async fn claim_rows(&self, plan: &ClaimPlan, ids: &[u32]) -> anyhow::Result<Vec<Won>> {
        let (symbols, days): (Vec<&str>, Vec<&str>) = ids
            .iter()
            .filter_map(|&i| {
                let i = i as usize;
                Some((plan.symbols.get(i)?.as_str(), plan.days.get(i)?.as_str()))
            })
            .unzip();
        let rows = sqlx::query(CLAIM)
            .bind(&self.dataset)
            .bind(&symbols)
            .bind(&days)
            .bind(&plan.owner)
            .bind(plan.lease.as_millis() as f64)
            .fetch_all(&mut *self.conn.lock().await)
            .await
            .map_err(|e| anyhow::anyhow!("cannot claim shards in shard_leases: {e}"))?;
        let mut held = Vec::new();
        for row in rows {
            let (symbol, day): (String, String) = (row.try_get(0)?, row.try_get(1)?);
            let was: Option<String> = row.try_get(2)?;
            if let Some(i) = plan.id_of(symbol, day) {
                held.push((i, was));
            }
        }
        Ok(held)
    }

    async fn others_rows(&self, plan: &ClaimPlan) -> anyhow::Result<Vec<u32>> {
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
        .bind(&self.dataset)
        .bind(&plan.symbols)
        .bind(&plan.days)
        .bind(&plan.owner)
        .fetch_all(&mut *self.conn.lock().await)
        .await
        .map_err(|e| anyhow::anyhow!("cannot read shard_leases: {e}"))?;
        Ok(rows
            .iter()
            .filter_map(|r| plan.id_of(r.try_get(0).ok()?, r.try_get(1).ok()?))
            .collect())
    }

    async fn renew_rows(&self, plan: &ClaimPlan) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE shard_leases SET expires_at = now() + $3 * interval '1 millisecond' \
             WHERE dataset = $1 AND owner = $2",
        )
        .bind(&self.dataset)
        .bind(&plan.owner)
        .bind(plan.lease.as_millis() as f64)
        .execute(&mut *self.conn.lock().await)
        .await?;
        Ok(())
    }
}

impl ClaimStore for LeaseRows {
    fn claim<'a>(&'a self, plan: &'a ClaimPlan, ids: &'a [u32]) -> Claimed<'a> {
        Box::pin(self.claim_rows(plan, ids))
    }

    fn others<'a>(&'a self, plan: &'a ClaimPlan) -> ClaimFuture<'a, anyhow::Result<Vec<u32>>> {
        Box::pin(self.others_rows(plan))
    }

    fn renew<'a>(&'a self, plan: &'a ClaimPlan) -> ClaimFuture<'a, anyhow::Result<()>> {
        Box::pin(self.renew_rows(plan))
    }

    fn place(&self) -> String {
        "in PostgreSQL".into()
    }
}
