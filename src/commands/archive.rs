//! `data archive`: a symbol's rows before a cutoff, from the database to the Parquet store,
//! verified, then deleted (see [`crate::store::archive`]).

use super::for_rows;
use crate::args::ArchiveArgs;
use crate::job::ArchiveJob;
use crate::progress::init_logging;
use crate::run::Outcome;
use crate::sink::database::Database;
use crate::store::archive as archive_units;
use crate::time::new_york_date;
use std::time::{Duration, Instant};

pub async fn run(args: ArchiveArgs) -> anyhow::Result<Outcome> {
    let today = new_york_date(chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX));
    let job = ArchiveJob::new(&args, today)?;
    let settings = &job.settings;
    init_logging(settings.log_path())?;
    let mut db = Database::open(
        &settings.database_url,
        Duration::from_secs(settings.busy_timeout_secs),
    )
    .await?;
    let started = Instant::now();
    let root = &settings.historical_path;
    let (dataset, symbol, cutoff) = (job.dataset, &job.symbol, job.cutoff);
    let report = for_rows!(dataset, R => {
        archive_units::<R>(&mut db, root, &dataset, symbol, cutoff).await?
    });
    tracing::info!(
        "[DONE] archived {symbol} {} before {cutoff}: {} {}, {} rows moved to {} in {:.1}s",
        dataset.noun(),
        report.units,
        dataset.unit().noun(),
        report.rows,
        root.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(Outcome::Completed)
}
