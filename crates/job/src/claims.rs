//! Several importers, one job (`import-api --coordinate`): before a fetcher asks the API for
//! a shard (a symbol's day, or month), it claims the shard where the job's rows go, so that
//! importers started with the same command, on one machine or several, divide the shards
//! and each is fetched once.
//!
//! This module is what every place of claims shares ([`Claims`]: who this importer is, the
//! plan's shards, the counts, waiting for and taking over the shards other importers hold,
//! renewing the leases). A store that can share a job keeps the claims themselves behind
//! [`ClaimStore`]: PostgreSQL as lease rows (`data-sql`'s `claims`), a bucket as marker
//! objects written with conditional PUTs (`data-parquet`'s `claims`). An importer that dies
//! leaves its leases to expire; the others, once through their own list, wait for the
//! shards still leased and take over the expired ones, so the job still ends whole (a shard
//! taken over is fetched again from its start; rows are upserted, so it ends exact).

use data_core::pipeline::{ClaimFuture, ShardClaims};
use data_core::resume::Shard;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How often an importer through its list looks again at the shards others hold.
const POLL: Duration = Duration::from_millis(500);

/// How often a held lease is renewed, as a share of its length.
const RENEWALS_PER_LEASE: u32 = 3;

/// The plan's shards as the claims name them, and who this importer is.
pub struct ClaimPlan {
    /// This importer: `host:pid:random`.
    pub owner: String,
    pub lease: Duration,
    /// (symbol, day as YYYY-MM-DD) -> index in the plan.
    pub index: HashMap<(String, String), u32>,
    /// Each plan index's symbol and day (YYYY-MM-DD).
    pub symbols: Vec<String>,
    pub days: Vec<String>,
}

impl ClaimPlan {
    /// The plan index of `symbol`'s `day`, when the plan has it.
    pub fn id_of(&self, symbol: String, day: String) -> Option<u32> {
        self.index.get(&(symbol, day)).copied()
    }
}

/// A shard claimed (its plan index), with the owner whose expired lease it took over.
pub type Won = (u32, Option<String>);

/// What [`ClaimStore::claim`] returns.
pub type Claimed<'a> = ClaimFuture<'a, anyhow::Result<Vec<Won>>>;

/// Where a store keeps the claims of a shared job. (Boxed futures, so a store's claims can
/// stand behind `dyn ShardClaims`.)
pub trait ClaimStore: Send + Sync + 'static {
    /// Claims what it can of `ids` (plan indices): those free or expired (never one this
    /// importer holds already), and not done. Returns the ones now held, each with the
    /// owner whose expired lease it took over.
    fn claim<'a>(&'a self, plan: &'a ClaimPlan, ids: &'a [u32]) -> Claimed<'a>;

    /// The plan's shards not done and not this importer's (expired ones first).
    fn others<'a>(&'a self, plan: &'a ClaimPlan) -> ClaimFuture<'a, anyhow::Result<Vec<u32>>>;

    /// Extends this importer's leases by one lease from now.
    fn renew<'a>(&'a self, plan: &'a ClaimPlan) -> ClaimFuture<'a, anyhow::Result<()>>;

    /// Where the claims are kept, for messages: `in PostgreSQL`.
    fn place(&self) -> String;
}

/// This importer's claims on the shards of its plan, kept in `B`.
pub struct Claims<B> {
    store: B,
    plan: ClaimPlan,
    /// Shards this importer fetched, and of them taken over from a dead importer.
    pub claimed: AtomicU64,
    pub taken_over: AtomicU64,
}

impl<B: ClaimStore> Claims<B> {
    /// The claims of `shards`, kept in `store`, each lease `lease` long.
    pub fn new(store: B, shards: &[Shard], lease: Duration) -> Arc<Claims<B>> {
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
        let plan = ClaimPlan {
            owner,
            lease,
            index,
            symbols,
            days,
        };
        Arc::new(Claims {
            store,
            plan,
            claimed: AtomicU64::new(0),
            taken_over: AtomicU64::new(0),
        })
    }

    /// Where the claims are kept.
    pub fn store(&self) -> &B {
        &self.store
    }

    pub fn plan(&self) -> &ClaimPlan {
        &self.plan
    }

    /// Claims what it can of `ids`; returns the ones now held, sorted.
    pub async fn claim(&self, ids: &[u32]) -> anyhow::Result<Vec<u32>> {
        let mut held = Vec::new();
        for (id, was) in self.store.claim(&self.plan, ids).await? {
            if let Some(was) = was.filter(|w| *w != self.plan.owner) {
                self.taken_over_from(id, &was);
            }
            held.push(id);
        }
        held.sort_unstable();
        self.claimed.fetch_add(held.len() as u64, Ordering::Relaxed);
        Ok(held)
    }

    fn taken_over_from(&self, id: u32, was: &str) {
        self.taken_over.fetch_add(1, Ordering::Relaxed);
        let i = id as usize;
        tracing::warn!(
            "[COORD] {} {}: the lease of {was} expired; taken over (fetched again from its start)",
            self.plan.symbols.get(i).map_or("", String::as_str),
            self.plan.days.get(i).map_or("", String::as_str),
        );
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
            let waiting = self.store.others(&self.plan).await?;
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
            let wait = (self.plan.lease / 4).clamp(Duration::from_millis(100), POLL);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = cancel.changed() => {}
            }
        }
    }

    /// Renews this importer's leases until dropped (the task is aborted with the fetchers).
    pub async fn renew(self: Arc<Self>) {
        let every = self.plan.lease / RENEWALS_PER_LEASE;
        loop {
            tokio::time::sleep(every).await;
            if let Err(e) = self.store.renew(&self.plan).await {
                tracing::warn!(
                    "[COORD] cannot renew the leases (they expire in {:?}): {e:#}",
                    self.plan.lease
                );
            }
        }
    }

    /// `--coordinate`: says where the job's shards are claimed.
    pub fn announce(&self, shards: usize) {
        tracing::info!(
            target: crate::progress::SUMMARY,
            "[COORD] sharing the job's {shards} shards with any importer started with the same command (leases of {}s, {})",
            self.plan.lease.as_secs_f64(),
            self.store.place()
        );
    }

    /// `--coordinate`: this importer's share of the job (no per-symbol report: the symbols
    /// other importers fetched have no rows here).
    pub fn report_share(&self, shards: usize) {
        let (claimed, taken_over) = (
            self.claimed.load(Ordering::Relaxed),
            self.taken_over.load(Ordering::Relaxed),
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
}

impl<B: ClaimStore> ShardClaims for Claims<B> {
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

/// `--coordinate` on a store one process writes: the usage error's text.
pub const NOT_SHARED: &str =
    "--coordinate shares a job through PostgreSQL (--database-url postgres://...) or \
a Parquet store in a bucket (--format parquet --historical-path s3://, gs:// or az://...); one \
SQLite file has one writer, and a local folder has no conditional writes";

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into())
}
