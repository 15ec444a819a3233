//! The database behind `--database-url`: SQLite (`sqlite:PATH` or a path) or PostgreSQL
//! (`postgres://...`). One enum so the pipeline, `status` and `archive` stay one code path;
//! each variant implements the same operations against its own SQL.

use super::postgres::PgSink;
use super::sink::WriteMode;
use super::sqlite::SqliteSink;
use arrow_array::RecordBatch;
use chrono::NaiveDate;
use data_core::dataset::{DatasetId, TableSpec};
use data_core::pipeline::{Mark, Sink};
use data_core::resume::{Saved, Tracking};
use std::time::Duration;

// The SQLite sink is the common case and lives inline; boxing it would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Database {
    Sqlite(SqliteSink),
    Postgres(Box<PgSink>),
}

pub(crate) fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

macro_rules! each {
    ($self:expr, $db:ident => $body:expr) => {
        match $self {
            Database::Sqlite($db) => $body,
            Database::Postgres($db) => $body,
        }
    };
}

impl Database {
    pub async fn open(url: &str, busy_timeout: Duration) -> anyhow::Result<Self> {
        if is_postgres_url(url) {
            Ok(Database::Postgres(Box::new(PgSink::open(url).await?)))
        } else {
            Ok(Database::Sqlite(SqliteSink::open(url, busy_timeout).await?))
        }
    }

    /// Opens the database to read only (`status`): nothing created or migrated. `None`
    /// when it does not exist or holds nothing of ours.
    pub(crate) async fn open_read_only(
        url: &str,
        busy_timeout: Duration,
    ) -> anyhow::Result<Option<Self>> {
        Ok(if is_postgres_url(url) {
            PgSink::open_read_only(url)
                .await?
                .map(|p| Database::Postgres(Box::new(p)))
        } else {
            SqliteSink::open_read_only(url, busy_timeout)
                .await?
                .map(Database::Sqlite)
        })
    }

    /// The file path or the redacted server URL, for messages.
    pub fn describe(&self) -> String {
        match self {
            Database::Sqlite(s) => s.path().display().to_string(),
            Database::Postgres(p) => p.shown().to_string(),
        }
    }

    pub fn set_mode(&mut self, mode: WriteMode) {
        each!(self, db => db.set_mode(mode))
    }

    pub fn mode(&self) -> WriteMode {
        each!(self, db => db.mode())
    }

    pub(crate) fn track(&mut self, tracking: Tracking) {
        each!(self, db => db.track(tracking))
    }

    /// Stores the contract list `import-api --underlying` found (`option_contracts`).
    pub async fn upsert_contracts(
        &mut self,
        contracts: &[data_core::model::Contract],
        listed_at: &str,
    ) -> anyhow::Result<()> {
        each!(self, db => db.upsert_contracts(contracts, listed_at).await)
    }

    /// Rewrites `symbol`'s split and dividend factors from its corporate actions.
    pub(crate) async fn refresh_factors(
        &mut self,
        symbol: &str,
    ) -> anyhow::Result<crate::contracts::Factors> {
        each!(self, db => db.refresh_factors(symbol).await)
    }

    /// Rows written and read from now on are of `feed`.
    pub(crate) fn set_feed(&mut self, feed: data_core::model::Feed) {
        each!(self, db => db.set_feed(feed))
    }

    /// Write batches, rows of `dataset`, to `table`.
    pub fn set_target(&mut self, table: &'static TableSpec, dataset: DatasetId) {
        each!(self, db => db.set_target(table, dataset))
    }
}

/// The `SqlSink` operations `Database` forwards to whichever backend it holds (each one
/// documented on `SqlSink`).
macro_rules! forward {
    ($(async fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty;)*) => {
        impl Database {
            $(
                pub async fn $name(&mut self, $($arg: $ty),*) -> anyhow::Result<$ret> {
                    each!(self, db => db.$name($($arg),*).await)
                }
            )*
        }
    };
}

forward! {
    async fn load_progress(dataset: &str, symbol: &str, first: NaiveDate, last: NaiveDate) -> Vec<Saved>;
    async fn set_thinning(spec: &str) -> ();
    async fn claim_symbols(symbols: &[&str], synthetic: bool) -> ();
    async fn unfinished_days() -> Vec<(String, String, NaiveDate)>;
    async fn has_rows_in(table: &TableSpec, symbol: &str, start_ns: i64, end_ns: i64) -> bool;
    async fn drop_secondary_indexes(table: &TableSpec) -> Vec<String>;
    async fn rebuild_dropped_indexes(only_orphans: bool) -> Vec<String>;
    async fn refresh_stats() -> ();
    async fn day_counts(symbol: Option<&str>) -> Vec<(String, String, NaiveDate, i64)>;
    async fn holds_rows(dataset: &DatasetId, symbol: &str, from_ns: i64, until_ns: i64) -> bool;
    async fn read_rows(dataset: &DatasetId, symbol: &str, from_ns: i64, until_ns: i64) -> RecordBatch;
    async fn delete_rows(dataset: &DatasetId, symbol: &str, from_ns: i64, until_ns: i64) -> u64;
}

/// Each backend's SQL sink is a pipeline sink through [`super::sink::SqlSink::write`].
macro_rules! sql_sinks {
    ($($sink:ty),*) => {$(
        impl Sink for $sink {
            async fn write_batch(&mut self, rows: &RecordBatch, marks: &[Mark]) -> anyhow::Result<()> {
                self.write(rows, marks).await
            }
        }
    )*};
}

sql_sinks!(SqliteSink, PgSink);

impl Sink for Database {
    async fn write_batch(&mut self, rows: &RecordBatch, marks: &[Mark]) -> anyhow::Result<()> {
        each!(self, db => db.write_batch(rows, marks).await)
    }

    fn destination(&self) -> String {
        self.describe()
    }
}

/// What the database holds, per dataset, symbol and feed; days whose import is unfinished
/// (a progress record not done) are partial.
pub(crate) async fn database_holdings(
    db: &mut Database,
) -> anyhow::Result<Vec<data_job::store::Holding>> {
    let mut held = data_job::store::holdings("database", db.day_counts(None).await?);
    let unfinished: std::collections::HashSet<(String, String, chrono::NaiveDate)> =
        db.unfinished_days().await?.into_iter().collect();
    for h in &mut held {
        let key =
            data_core::model::Feed::parse(&h.feed).map_or(h.dataset.clone(), |f| f.key(&h.dataset));
        let unit = data_core::dataset::DatasetId::from_key(&h.dataset)
            .map_or(data_core::resume::ShardUnit::Session, |d| d.unit());
        h.partial = h
            .per_day
            .keys()
            .copied()
            .filter(|d| {
                let u = unit.key_of(data_core::time::new_york_time_nanos(*d, 12, 0));
                unfinished.contains(&(key.clone(), h.symbol.clone(), u))
            })
            .collect();
    }
    Ok(held)
}
