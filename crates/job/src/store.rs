//! The face every store shows the commands ([`Store`]): describe, check, plan, import,
//! holdings, status, locks and export; and what a store's holdings are ([`Holding`]) for `status`
//! and `sync`. The stores themselves are crates of their own (`data-sql`, `data-parquet`);
//! the root crate's `store::open` is the one place one is chosen.
//!
//! **API boundary.** A new store is a crate with a type implementing [`Store`], plus one
//! arm where the root crate chooses the store.

use crate::job::Job;
use crate::lock::JobLock;
use crate::run::{Outcome, Source};
use chrono::NaiveDate;
use data_core::dataset::{Asset, DatasetId};
use data_core::model::Feed;
use data_core::nyse::is_trading_day;
use data_core::pipeline::{ShardClaims, Sink};
use data_core::resume::{PlanCounts, Shard};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// The claims a source of a `--coordinate` job asks before it fetches a shard.
pub type SharedClaims = Option<Arc<dyn ShardClaims>>;

/// A plan: the shards to fetch, and how many there were, done and resumed.
pub type Plan = anyhow::Result<(Vec<Shard>, PlanCounts)>;

/// What every store does for the commands. (Used generically, never as `dyn`.)
#[allow(async_fn_in_trait)]
pub trait Store {
    /// The store in messages: `the database`, `the Parquet store data/historical`.
    fn describe(&self) -> String;

    /// Refuses, as a usage error, what `job` asks of this store that it cannot do
    /// (`--coordinate` on a store one process writes; thinned rows in files).
    fn check(&self, job: &Job) -> anyhow::Result<()>;

    /// The planning rules: the shards an import of `job` fetches now with data up to
    /// `available` (whole units, or resume positions), and the plan's counts. `read_only`
    /// (a dry run) reads the progress without creating or migrating anything.
    async fn pending(&self, job: &Job, available: i64, read_only: bool) -> Plan;

    /// Imports `job` with data up to `available`: plans against the store's progress, then
    /// runs the source `source(shards, claims)` makes into the store's sink.
    async fn import<S, F>(&self, job: &Job, available: i64, source: F) -> anyhow::Result<Outcome>
    where
        S: Source,
        F: FnOnce(Arc<Vec<Shard>>, SharedClaims) -> S;

    /// What the store holds, per dataset, symbol and feed (`sync`); `None` when the store
    /// holds nothing or does not exist.
    async fn holdings(&self) -> anyhow::Result<Option<Vec<Holding>>>;

    /// What the store holds, read without creating anything, and a note for each store
    /// that holds nothing (`status`).
    async fn status(&self) -> anyhow::Result<(Vec<Holding>, Vec<String>)>;

    /// The lock file `name` of the store (`sync`'s lock; `inside`: within a local store's
    /// folder).
    fn lock_path(&self, name: &str, inside: bool) -> anyhow::Result<PathBuf>;

    /// Takes the lock of one import of `job`: a second importer of the same job is refused
    /// in one line.
    async fn lock_job(&self, job: &Job) -> anyhow::Result<JobLock>;

    /// Whether the store holds any of `job`'s rows (its symbols, in its range), read
    /// without creating anything (`export` reads from the first store that does).
    async fn holds(&self, job: &Job) -> anyhow::Result<bool>;

    /// `export`: `job`'s stored rows (each symbol's in turn, in time order, in its range)
    /// through the pipeline into `sink`.
    async fn export<K: Sink>(&self, job: &Job, sink: &mut K) -> anyhow::Result<Outcome>;
}

/// The suffix of a dataset key whose rows are the stand-in's (`#standin`).
pub const SYNTHETIC: &str = "#standin";

/// One line of `data status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holding {
    pub dataset: String,
    pub symbol: String,
    /// The feed the rows came from (`sip`, `iex`, ...): part of the dataset's identity.
    pub feed: String,
    /// The rows are the stand-in's synthetic data (`import-api --standin`).
    pub synthetic: bool,
    pub store: &'static str,
    pub first: NaiveDate,
    pub last: NaiveDate,
    pub days: usize,
    pub rows: i64,
    /// NYSE trading days between first and last with no rows (weekends and exchange
    /// holidays are never gaps).
    pub gaps: Vec<NaiveDate>,
    /// Rows per New York day held.
    pub per_day: BTreeMap<NaiveDate, i64>,
    /// Days held whose import is not finished (resumable): fewer rows than the day has.
    pub partial: std::collections::BTreeSet<NaiveDate>,
}

/// Whether dataset `key` should hold rows on `day`: every day for crypto, NYSE sessions
/// for stocks and options, no day in particular for corporate actions.
pub fn trades_on(key: &str, day: NaiveDate) -> bool {
    match DatasetId::from_key(key) {
        Some(d) if d.asset() == Asset::Crypto => true,
        // Corporate actions are sparse events: a day without one is not missing.
        Some(DatasetId::CorporateActions) => false,
        _ => is_trading_day(day),
    }
}

/// The holdings of `store` from its rows per (dataset key, symbol, New York day).
pub fn holdings(
    store: &'static str,
    per_day: Vec<(String, String, NaiveDate, i64)>,
) -> Vec<Holding> {
    let mut grouped: BTreeMap<(String, String), BTreeMap<NaiveDate, i64>> = BTreeMap::new();
    for (ds, sym, d, n) in per_day {
        *grouped.entry((ds, sym)).or_default().entry(d).or_default() += n;
    }
    grouped
        .into_iter()
        .filter_map(|((key, symbol), days)| {
            let (&first, &last) = (days.keys().next()?, days.keys().next_back()?);
            // Keys carry `@FEED` for every feed but sip (`Feed::key`), then `#standin` for
            // synthetic rows.
            let (key, synthetic) = match key.strip_suffix(SYNTHETIC) {
                Some(k) => (k.to_string(), true),
                None => (key, false),
            };
            let of = |d: &str| DatasetId::from_key(d).map(|d| d.asset());
            let (dataset, feed) = match key.split_once('@') {
                Some((d, f)) => (d.to_string(), f.to_string()),
                None => {
                    let default = Feed::default_of(of(&key).unwrap_or(Asset::Stocks));
                    (key, default.as_str().to_string())
                }
            };
            let gaps = first
                .iter_days()
                .take_while(|d| *d <= last)
                .filter(|d| trades_on(&dataset, *d) && !days.contains_key(d))
                .collect();
            Some(Holding {
                dataset,
                symbol,
                feed,
                synthetic,
                store,
                first,
                last,
                days: days.len(),
                rows: days.values().sum(),
                gaps,
                per_day: days,
                partial: Default::default(),
            })
        })
        .collect()
}

/// Whether another process with this pid is running (Linux: /proc). Unknown means "not
/// running", so a leftover record or temp file can never block clean-up for good.
pub fn process_alive(pid: i64) -> bool {
    pid > 0
        && pid as u32 != std::process::id()
        && std::path::Path::new(&format!("/proc/{pid}")).exists()
}
