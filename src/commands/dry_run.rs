//! `--dry-run` of `import-api` and `sync`: what an import would fetch, planned exactly as the
//! import plans it (the same shards, the same progress), without a data request, a log file
//! or a write. The database is read through a read-only connection (SQLite) or plain SELECTs
//! (PostgreSQL), with no migration; a store that does not exist has no progress.

use super::import_api::{data_until, StoreProgress};
use crate::config::Format;
use crate::job::Job;
use crate::model::Symbol;
use crate::resume::PlanCounts;
use crate::resume::{Saved, Shard};
use crate::run::{now_ns, shards_to_fetch, ProgressStore, Saves, Units};
use crate::sink::database::is_postgres_url;
use crate::sink::postgres::PgDialect;
use crate::sink::sql::progress_select;
use crate::sink::sqlite::SqliteDialect;
use crate::source::alpaca::{group_shards, Request, PAGE_LIMIT};
use crate::time::format_nanos;
use sqlx::{Connection, PgConnection, SqliteConnection};
use std::collections::BTreeMap;
use std::fmt::Write;

/// The database's progress, read without writing anything.
enum ReadOnly {
    /// No database yet: nothing was imported.
    Nothing,
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

impl ReadOnly {
    async fn open(url: &str) -> anyhow::Result<ReadOnly> {
        if is_postgres_url(url) {
            let conn = PgConnection::connect(url).await.map_err(|e| {
                anyhow::anyhow!(
                    "cannot read the database {}: {e}",
                    crate::sink::postgres::redacted(url)
                )
            })?;
            return Ok(ReadOnly::Postgres(conn));
        }
        let opts = crate::sink::sqlite::connect_options(url)?;
        if !opts.get_filename().exists() {
            return Ok(ReadOnly::Nothing);
        }
        let path = opts.get_filename().display().to_string();
        let conn = SqliteConnection::connect_with(&opts.read_only(true))
            .await
            .map_err(|e| anyhow::anyhow!("cannot read the database {path}: {e}"))?;
        Ok(ReadOnly::Sqlite(conn))
    }
}

impl ProgressStore for ReadOnly {
    async fn saved(&mut self, dataset: &str, symbol: &Symbol, units: Units) -> Saves {
        let (first, last) = (units.start().to_string(), units.end().to_string());
        let rows: Result<Vec<crate::resume::ProgressRecord>, sqlx::Error> = match self {
            ReadOnly::Nothing => return Ok(Vec::new()),
            ReadOnly::Sqlite(c) => {
                sqlx::query_as(&progress_select::<SqliteDialect>())
                    .bind(dataset)
                    .bind(symbol.as_str())
                    .bind(&first)
                    .bind(&last)
                    .fetch_all(c)
                    .await
            }
            ReadOnly::Postgres(c) => {
                sqlx::query_as(&progress_select::<PgDialect>())
                    .bind(dataset)
                    .bind(symbol.as_str())
                    .bind(&first)
                    .bind(&last)
                    .fetch_all(c)
                    .await
            }
        };
        match rows {
            Ok(rows) => rows.into_iter().map(Saved::from_record).collect(),
            // A database from before resume points has none.
            Err(e) if e.to_string().contains("import_progress") => Ok(Vec::new()),
            Err(e) => Err(anyhow::anyhow!("cannot read the import progress: {e}")),
        }
    }

    fn done_phrase(&self) -> &'static str {
        "were imported by earlier runs"
    }
}

/// What an import of `job` would fetch now: its shards still to fetch and the counts.
pub(crate) async fn planned(job: &Job) -> anyhow::Result<(Vec<Shard>, PlanCounts)> {
    let available = data_until(job);
    match job.settings.format {
        Format::Database => {
            let mut db = ReadOnly::open(&job.settings.database_url).await?;
            let raw = job.thinning.is_raw();
            shards_to_fetch(job, &mut db, job.range, available, raw).await
        }
        Format::Parquet => {
            let mut store = StoreProgress {
                root: job.settings.store_root(),
                dataset: job.dataset,
            };
            let range = job.dataset.whole_units(job.range);
            let (todo, counts) = shards_to_fetch(job, &mut store, range, available, false).await?;
            // A day the data does not reach the end of yet is no file yet.
            Ok((todo.into_iter().filter(|s| s.can_finish).collect(), counts))
        }
    }
}

/// The dry run's report of `job`: which shards, how many requests at least, how long at the
/// rate limit. Empty `todo`: nothing to fetch.
pub(crate) fn describe(job: &Job, todo: &[Shard], counts: PlanCounts) -> String {
    let settings = &job.settings;
    let unit = job.dataset.unit().noun();
    let mut out = String::new();
    let where_to = match settings.format {
        Format::Database => "the database".to_string(),
        Format::Parquet => format!("the Parquet store {}", settings.store_root().display()),
    };
    let _ = writeln!(
        out,
        "{} {} (feed {}) {} into {where_to}:",
        job.dataset.noun(),
        job.symbols
            .iter()
            .map(Symbol::as_str)
            .collect::<Vec<_>>()
            .join(","),
        settings.feed.as_str(),
        job.range,
    );
    // `data_until` is now itself unless the SIP delay holds it back (its now came first).
    let (now, available) = (now_ns(), data_until(job));
    if job.range.end_ns > available && available < now {
        let _ = writeln!(
            out,
            "  END is clamped to {} (--sip-delay {} minutes)",
            format_nanos(available),
            settings.sip_delay_minutes
        );
    }
    let _ = writeln!(
        out,
        "  {} {unit} to fetch of {} ({} done by earlier runs, {} to resume)",
        todo.len(),
        counts.total,
        counts.skipped,
        counts.resumed
    );
    let mut per_symbol: BTreeMap<&str, Vec<&Shard>> = BTreeMap::new();
    for s in todo {
        per_symbol.entry(s.symbol.as_str()).or_default().push(s);
    }
    for (symbol, shards) in &per_symbol {
        let (first, last) = (shards[0].day, shards[shards.len() - 1].day);
        let _ = writeln!(
            out,
            "  {symbol}: {} {unit}, {first} to {last}",
            shards.len()
        );
    }
    if todo.is_empty() {
        return out;
    }
    let mut req = Request::for_dataset(job.dataset);
    if let Some(n) = settings.symbols_per_request {
        req.symbols_per_request = n;
    }
    let requests = group_shards(todo, req.symbols_per_request).len();
    let _ = writeln!(
        out,
        "  at least {requests} requests (one per request group; a group with more than \
         {PAGE_LIMIT} rows takes one more per {PAGE_LIMIT})"
    );
    let _ = match settings.rate_limit {
        0 => writeln!(out, "  no client-side rate limit (--rate-limit 0)"),
        n => writeln!(
            out,
            "  at least {:.1} s at --rate-limit {n}/min, plus the responses' own time",
            requests as f64 * 60.0 / f64::from(n)
        ),
    };
    out
}
