//! What differs between the SQL backends ([`Dialect`]): the one SQL sink
//! ([`super::sink::SqlSink`]) is written over it.

use sqlx::Database;
use std::future::Future;

/// A backend's connection.
pub type Conn<D> = <<D as Dialect>::DB as Database>::Connection;

/// What differs between the SQL backends.
pub trait Dialect: Send + Sized + 'static {
    type DB: Database;

    /// A statement written with `$n` placeholders, as this backend takes it.
    fn sql(text: &str) -> String;
    /// Bound text parameter `$n` (`YYYY-MM-DD`) as a value of a `day` column.
    fn date_param(n: u8) -> String;
    /// The New York date, as `YYYY-MM-DD` text, of the nanosecond column `col`.
    fn ny_day(col: &str) -> String;
    /// The UTC date, as `YYYY-MM-DD` text, of the nanosecond column `col` (crypto days).
    fn utc_day(col: &str) -> String;
    /// The current time as an `updated_at` value.
    const NOW: &'static str;
    /// `(name, CREATE statement)` of table `$1`'s secondary indexes (never the key).
    const LIST_INDEXES: &'static str;

    /// The statements that refresh the planner's statistics of `table` after an import
    /// (none where the server keeps them itself).
    fn refresh_stats(_table: &str) -> Option<String> {
        None
    }

    /// Rows a statement changed.
    fn rows_affected(result: &<Self::DB as Database>::QueryResult) -> u64;

    /// Whether a failed statement met a row already there (a key violation).
    fn is_duplicate(e: &sqlx::Error) -> bool;

    /// A failed statement as a one-line error naming the database (never a password).
    fn error(&self, e: sqlx::Error, doing: &str) -> anyhow::Error;

    /// Before `--drop-indexes` drops anything: whether this importer may.
    fn may_drop_indexes<'a>(
        &'a mut self,
        _conn: &'a mut Conn<Self>,
    ) -> impl Future<Output = Result<bool, sqlx::Error>> + Send + 'a {
        async { Ok(true) }
    }

    /// Before rebuilding recorded indexes (`only_orphans`: those a killed import left):
    /// whether this importer may.
    fn may_rebuild_indexes<'a>(
        &'a mut self,
        _conn: &'a mut Conn<Self>,
        _only_orphans: bool,
    ) -> impl Future<Output = Result<bool, sqlx::Error>> + Send + 'a {
        async { Ok(true) }
    }

    /// Whether a dropped-index record of process `pid` is to be rebuilt now.
    fn rebuild_record(&self, _pid: i64, _only_orphans: bool) -> bool {
        true
    }

    /// After recorded indexes were rebuilt.
    fn rebuilt_indexes<'a>(
        &'a mut self,
        _conn: &'a mut Conn<Self>,
    ) -> impl Future<Output = ()> + Send + 'a {
        async {}
    }
}
