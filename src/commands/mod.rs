//! The commands, each a thin file over [`crate::job`] and [`crate::run`]: `import-api`,
//! `load-historical` and `archive`. What they share lives here: opening and closing the
//! database sink.

pub mod archive;
mod dry_run;
pub mod import_api;
pub mod load_historical;
pub mod lock;
pub mod sync;

use crate::config::Settings;
use crate::dataset::DatasetId;
use crate::job::Job;
use crate::run::{Outcome, Report};
use crate::sink::database::Database;
use crate::sink::sqlite::{TableSpec, WriteMode};
use crate::time::DateRange;
use std::time::{Duration, Instant};

/// Whether the database named by `settings` exists (a PostgreSQL server is taken to).
pub(crate) fn database_exists(settings: &Settings) -> anyhow::Result<bool> {
    Ok(
        crate::sink::database::is_postgres_url(&settings.database_url)
            || crate::sink::sqlite::connect_options(&settings.database_url)?
                .get_filename()
                .exists(),
    )
}

/// Opens the database named by `settings` for reading and planning, with its feed set.
pub(crate) async fn open_quietly(settings: &Settings) -> anyhow::Result<Database> {
    let mut db = Database::open(
        &settings.database_url,
        Duration::from_secs(settings.busy_timeout_secs),
    )
    .await?;
    db.set_feed(settings.feed);
    Ok(db)
}

/// Opens the database for a run into `table`: thinning id, the `--skip-duplicates` range
/// check, `--drop-indexes`, and the opening log line. Returns whether indexes were dropped
/// (so [`close_database`] rebuilds them).
pub(crate) async fn open_database(
    settings: &Settings,
    report: &Report,
    (table, dataset): (&'static TableSpec, DatasetId),
    range: DateRange,
) -> anyhow::Result<(Database, bool)> {
    let mut sink = Database::open(
        &settings.database_url,
        Duration::from_secs(settings.busy_timeout_secs),
    )
    .await?;
    sink.set_feed(settings.feed);
    sink.set_target(table, dataset);
    if !report.spec.is_empty() {
        sink.set_thinning(&report.spec).await?;
    }
    if settings.skip_duplicates {
        let mut present = Vec::new();
        for symbol in &report.symbols {
            if sink
                .has_rows_in(table, symbol.as_str(), range.start_ns, range.end_ns)
                .await?
            {
                present.push(symbol.as_str());
            }
        }
        if present.is_empty() {
            sink.set_mode(WriteMode::Insert);
        } else {
            tracing::warn!(
                "[DB] --skip-duplicates: {} already holds {} rows in {range}; using upsert instead so nothing is duplicated",
                table.name,
                present.join(",")
            );
        }
    }
    let dropped = if settings.drop_indexes {
        let names = sink.drop_secondary_indexes(table).await?;
        if !names.is_empty() {
            tracing::info!(
                "[DB] dropped index {} for the import; it is rebuilt when the import ends (or by the next command if this one is killed)",
                names.join(", ")
            );
        }
        !names.is_empty()
    } else {
        false
    };
    tracing::info!(
        "[IMPORT] {} {range} from {} into {} table {}, batches of {}, {}",
        report.label(),
        report.from,
        sink.describe(),
        table.name,
        settings.batch_size,
        match sink.mode() {
            WriteMode::Upsert => "upsert",
            WriteMode::Insert => "plain insert",
        }
    );
    Ok((sink, dropped))
}

/// Rebuilds dropped indexes whatever the outcome and refreshes the planner's statistics,
/// then returns the outcome.
/// After corporate actions landed in the database: rewrites the split and dividend
/// factors of the job's symbols (what the `*_adjusted_view`s read). Nothing for other
/// datasets.
pub(crate) async fn refresh_adjustments(job: &Job, db: &mut Database) -> anyhow::Result<()> {
    if job.dataset != DatasetId::CorporateActions {
        return Ok(());
    }
    let mut total = crate::sink::contracts::Factors::default();
    for symbol in &job.symbols {
        let f = db.refresh_factors(symbol.as_str()).await?;
        total.splits += f.splits;
        total.dividends += f.dividends;
        total.without_close += f.without_close;
    }
    tracing::info!(
        target: crate::progress::SUMMARY,
        "[ADJUST] adjustment factors rewritten for {} symbols: {} splits, {} cash dividends{}",
        job.symbols.len(),
        total.splits,
        total.dividends,
        match total.without_close {
            0 => String::new(),
            n => format!(
                "; {n} dividends left out of dividend_factors: no raw 1Day bar in the week \
                 before their ex-date (import-api bars ... --timeframe 1Day, then import the \
                 actions again)"
            ),
        }
    );
    Ok(())
}

pub(crate) async fn close_database(
    mut sink: Database,
    dropped: bool,
    result: anyhow::Result<Outcome>,
) -> anyhow::Result<Outcome> {
    if dropped {
        let started = Instant::now();
        let names = sink.rebuild_dropped_indexes(false).await.map_err(|e| {
            e.context(
                "the import's rows are committed, but rebuilding the dropped indexes failed; \
                 the next command that opens the database retries it",
            )
        })?;
        tracing::info!(
            "[DB] rebuilt index {} in {:.1}s",
            names.join(", "),
            started.elapsed().as_secs_f64()
        );
    }
    if let Err(e) = sink.refresh_stats().await {
        tracing::warn!("[DB] {e:#}; queries may plan less well until the next import");
    }
    result
}
