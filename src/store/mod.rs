//! Stores: where an import's rows land and where `load-historical` reads them from. Each
//! store is one component with one face, [`Store`]: the database (`sql`: SQLite and
//! PostgreSQL, `sql::face`) and the Parquet store (`parquet`: a folder or a bucket,
//! `parquet::face`). [`open`] is the one place that turns the user's choice (`--format`,
//! `--database-url`, `--historical-path`) into a store; commands never match on which store
//! it is. `archive`, which moves rows from the database to the Parquet store, is the one
//! command that names two stores.
//!
//! **API boundary.** A new store is a module with a type implementing [`Store`], plus one
//! arm in [`open`] and one in [`Chosen`]'s dispatch.

pub mod claims;
pub mod lock;
pub mod parquet;
pub mod sql;
pub mod status;

use crate::config::{Format, Settings};
use crate::job::Job;
use crate::pipeline::ShardClaims;
use crate::resume::{PlanCounts, Shard};
use crate::run::{Outcome, Source};
use lock::JobLock;
use parquet::face::ParquetStore;
use sql::face::DatabaseStore;
use status::Holding;
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
}

/// The store the settings name, chosen once.
pub enum Chosen {
    Database(DatabaseStore),
    Parquet(ParquetStore),
}

/// The store `settings` name (`--format`: the database at `--database-url`, or the Parquet
/// store at `--historical-path`).
pub fn open(settings: &Settings) -> Chosen {
    match settings.format {
        Format::Database => Chosen::Database(DatabaseStore::new(settings)),
        Format::Parquet => Chosen::Parquet(ParquetStore::new(settings)),
    }
}

/// Every store the settings name (`status` shows them all, whichever `--format` is).
pub fn every(settings: &Settings) -> [Chosen; 2] {
    [
        Chosen::Database(DatabaseStore::new(settings)),
        Chosen::Parquet(ParquetStore::new(settings)),
    ]
}

/// The store of `job`, with what the job asks of it checked.
pub fn of_job(job: &Job) -> anyhow::Result<Chosen> {
    let store = open(&job.settings);
    store.check(job)?;
    Ok(store)
}

/// Calls the same method on whichever store it is.
macro_rules! each {
    ($chosen:expr, $s:ident => $call:expr) => {
        match $chosen {
            Chosen::Database($s) => $call,
            Chosen::Parquet($s) => $call,
        }
    };
}

impl Store for Chosen {
    fn describe(&self) -> String {
        each!(self, s => s.describe())
    }

    fn check(&self, job: &Job) -> anyhow::Result<()> {
        each!(self, s => s.check(job))
    }

    async fn pending(&self, job: &Job, available: i64, read_only: bool) -> Plan {
        each!(self, s => s.pending(job, available, read_only).await)
    }

    async fn import<S, F>(&self, job: &Job, available: i64, source: F) -> anyhow::Result<Outcome>
    where
        S: Source,
        F: FnOnce(Arc<Vec<Shard>>, SharedClaims) -> S,
    {
        each!(self, s => s.import(job, available, source).await)
    }

    async fn holdings(&self) -> anyhow::Result<Option<Vec<Holding>>> {
        each!(self, s => s.holdings().await)
    }

    async fn status(&self) -> anyhow::Result<(Vec<Holding>, Vec<String>)> {
        each!(self, s => s.status().await)
    }

    fn lock_path(&self, name: &str, inside: bool) -> anyhow::Result<PathBuf> {
        each!(self, s => s.lock_path(name, inside))
    }

    async fn lock_job(&self, job: &Job) -> anyhow::Result<JobLock> {
        each!(self, s => s.lock_job(job).await)
    }
}

/// Whether another process with this pid is running (Linux: /proc). Unknown means "not
/// running", so a leftover record or temp file can never block clean-up for good.
pub fn process_alive(pid: i64) -> bool {
    pid > 0
        && pid as u32 != std::process::id()
        && std::path::Path::new(&format!("/proc/{pid}")).exists()
}
