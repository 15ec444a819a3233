//! The database store (the crate `data-sql`, re-exported as `data::store::sql`): SQLite
//! (`sqlite`) and PostgreSQL (`postgres`) behind one SQL sink (`sink`, over `dialect`),
//! opened as one `database::Database`; option contracts and adjustment factors
//! (`contracts`); `export` reads rows back out as a pipeline source; `face` is its [`data_job::store::Store`], and `claims` the PostgreSQL
//! lease rows of `--coordinate`. It knows no other store, no source and no command.
//!
//! This file also holds what both SQL dialects share beyond `sql`: the delete statement and
//! a trade's day key.

pub mod claims;
pub mod contracts;
pub mod database;
pub mod dialect;
pub mod encode;
pub mod export;
pub mod face;

pub mod postgres;
pub mod sink;
pub mod sqlite;
mod sqlite_ffi;
mod upkeep;

use data_core::dataset::{Computed, DatasetId};

/// The dataset's own values of its table's computed key columns (bars' timeframe and, for
/// stocks, adjustment), in the table's order: bound as `$4`, `$5` after symbol and span.
pub(crate) fn dataset_filter(dataset: DatasetId) -> Vec<(&'static str, &'static str)> {
    let Some((timeframe, adjustment)) = dataset.bar_spec() else {
        return Vec::new();
    };
    let table = dataset.table();
    table
        .computed
        .iter()
        .filter_map(|(name, c)| match c {
            Computed::Timeframe => Some((*name, timeframe.as_str())),
            Computed::Adjustment => Some((*name, adjustment.as_str())),
            Computed::NyDay => None,
        })
        .collect()
}

/// ` AND q.timeframe = $4 ...`: the condition on [`dataset_filter`]'s columns.
pub(crate) fn filter_sql(dataset: DatasetId, alias: &str) -> String {
    dataset_filter(dataset)
        .iter()
        .enumerate()
        .map(|(n, (name, _))| format!(" AND {alias}{name} = ${}", n + 4))
        .collect()
}

/// The statement deleting a dataset's rows of symbol `$1` of `feed` with `$2 <= t < $3`
/// (bars: of timeframe `$4` and, for stocks, adjustment `$5`).
pub(crate) fn delete_sql(dataset: DatasetId, feed: data_core::model::Feed) -> String {
    let table = dataset.table();
    let bars = filter_sql(dataset, "");
    format!(
        "DELETE FROM {} WHERE symbol_id = (SELECT id FROM symbols WHERE symbol = $1 AND \
         feed = '{}') AND {} >= $2 AND {} < $3{bars}",
        table.name,
        feed.as_str(),
        table.time_column,
        table.time_column
    )
}

/// A trade's New York date as YYYYMMDD, part of its key.
pub fn trade_day(t: i64) -> i64 {
    use chrono::Datelike;
    let d = data_core::time::new_york_date(t);
    i64::from(d.year()) * 10_000 + i64::from(d.month()) * 100 + i64::from(d.day())
}
