//! Stores: where an import's rows land and where `load-historical` reads them from. Each
//! store is one component with one face, [`Store`]: the database (`sql`: SQLite and
//! PostgreSQL, `sql::face`) and the Parquet store (`parquet`: a folder or a bucket,
//! `parquet::face`). [`open`] is the one place that turns the user's choice (`--format`,
//! `--database-url`, `--historical-path`) into a store; commands never match on which store
//! it is. `archive`, which moves rows from the database to the Parquet store, is the one
//! command that names two stores.
//!
//! The stores are crates of their own: `data-sql` (re-exported as `store::sql`) and
//! `data-parquet` (`store::parquet`), each behind the face `data_job::store::Store`.
//!
//! **API boundary.** A new store is a crate with a type implementing [`Store`], plus one
//! arm in [`open`] and one in [`Chosen`]'s dispatch.

pub mod status;

pub use data_job::store::{Holding, Plan, SharedClaims, Store};
pub use data_job::{claims, lock};
pub use data_parquet as parquet;
pub use data_sql as sql;

use crate::config::{Format, Settings};
use crate::job::Job;
use crate::pipeline::Sink;
use crate::resume::Shard;
use crate::run::{Outcome, Source};
use lock::JobLock;
use parquet::face::ParquetStore;
use sql::face::DatabaseStore;
use std::path::PathBuf;
use std::sync::Arc;

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

    async fn holds(&self, job: &Job) -> anyhow::Result<bool> {
        each!(self, s => s.holds(job).await)
    }

    async fn export<K: Sink>(&self, job: &Job, sink: &mut K) -> anyhow::Result<Outcome> {
        each!(self, s => s.export(job, sink).await)
    }
}
