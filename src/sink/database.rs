//! The database behind `--database-url`: SQLite (`sqlite:PATH` or a path) or PostgreSQL
//! (`postgres://...`). One enum so the pipeline, `status` and `archive` stay one code path;
//! each variant implements the same operations against its own SQL.

use super::postgres::{PgDialect, PgSink};
use super::sql::{BulkWrite, WriteMode};
use super::sqlite::{SqliteDialect, SqliteSink};
use super::SqlRow;
use crate::dataset::TableSpec;
use crate::model::{Bar, Quote, Trade};
use crate::pipeline::{Mark, Sink};
use crate::resume::{Saved, Tracking};
use chrono::NaiveDate;
use std::time::Duration;

// The SQLite sink is the common case and lives inline; boxing it would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Database {
    Sqlite(SqliteSink),
    Postgres(Box<PgSink>),
}

pub fn is_postgres_url(url: &str) -> bool {
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

    pub fn track(&mut self, tracking: Tracking) {
        each!(self, db => db.track(tracking))
    }

    pub async fn load_progress(
        &mut self,
        dataset: &str,
        symbol: &str,
        first: NaiveDate,
        last: NaiveDate,
    ) -> anyhow::Result<Vec<Saved>> {
        each!(self, db => db.load_progress(dataset, symbol, first, last).await)
    }

    pub async fn set_thinning(&mut self, spec: &str) -> anyhow::Result<()> {
        each!(self, db => db.set_thinning(spec).await)
    }

    pub async fn has_rows_in(
        &mut self,
        table: &TableSpec,
        symbol: &str,
        start_ns: i64,
        end_ns: i64,
    ) -> anyhow::Result<bool> {
        each!(self, db => db.has_rows_in(table, symbol, start_ns, end_ns).await)
    }

    pub async fn drop_secondary_indexes(
        &mut self,
        table: &TableSpec,
    ) -> anyhow::Result<Vec<String>> {
        each!(self, db => db.drop_secondary_indexes(table).await)
    }

    pub async fn rebuild_dropped_indexes(
        &mut self,
        only_orphans: bool,
    ) -> anyhow::Result<Vec<String>> {
        each!(self, db => db.rebuild_dropped_indexes(only_orphans).await)
    }

    pub async fn day_counts(
        &mut self,
        symbol: Option<&str>,
    ) -> anyhow::Result<Vec<(String, String, NaiveDate, i64)>> {
        each!(self, db => db.day_counts(symbol).await)
    }

    pub async fn read_quotes(
        &mut self,
        symbol: &str,
        from_ns: i64,
        until_ns: i64,
    ) -> anyhow::Result<Vec<Quote>> {
        each!(self, db => db.read_quotes(symbol, from_ns, until_ns).await)
    }

    pub async fn read_trades(
        &mut self,
        symbol: &str,
        from_ns: i64,
        until_ns: i64,
    ) -> anyhow::Result<Vec<Trade>> {
        each!(self, db => db.read_trades(symbol, from_ns, until_ns).await)
    }

    pub async fn read_bars(
        &mut self,
        symbol: &str,
        spec: (crate::dataset::Timeframe, crate::dataset::Adjustment),
        from_ns: i64,
        until_ns: i64,
    ) -> anyhow::Result<Vec<Bar>> {
        each!(self, db => db.read_bars(symbol, spec, from_ns, until_ns).await)
    }

    pub async fn delete_rows(
        &mut self,
        layout: &crate::dataset::DatasetId,
        symbol: &str,
        from_ns: i64,
        until_ns: i64,
    ) -> anyhow::Result<u64> {
        each!(self, db => db.delete_rows(layout, symbol, from_ns, until_ns).await)
    }
}

impl<R: SqlRow> Sink<R> for Database
where
    SqliteDialect: BulkWrite<R>,
    PgDialect: BulkWrite<R>,
{
    async fn write_batch(&mut self, rows: &[R], marks: &[Mark]) -> anyhow::Result<()> {
        match self {
            Database::Sqlite(db) => db.write_batch(rows, marks).await,
            Database::Postgres(db) => db.write_batch(rows, marks).await,
        }
    }
}
