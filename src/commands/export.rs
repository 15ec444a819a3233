//! `data export`: a dataset's stored rows of a range, from the database or the Parquet store
//! (whichever holds them, or `--from`), through the store's source and the pipeline into the
//! CSV, JSON-lines or Parquet writer of [`crate::export`].

use crate::args::{ExportArgs, ExportFormat, ExportFrom};
use crate::config::Format;
use crate::export::{Destination, ExportSink};
use crate::job::{usage, Job};
use crate::progress::init_logging;
use crate::run::Outcome;
use crate::store::Store;
use std::io::IsTerminal;

pub async fn run(args: ExportArgs) -> anyhow::Result<Outcome> {
    let mut job = Job::export(&args)?;
    let destination = match (&args.output, args.to) {
        (Some(out), _) => Destination::parse(out),
        (None, ExportFormat::Parquet) => {
            return Err(usage(
                "--to parquet writes a binary file: name it with --output FILE (or - for standard output)",
            ))
        }
        (None, _) => Destination::Stdout,
    };
    if matches!(destination, Destination::Stdout)
        && args.to == ExportFormat::Parquet
        && std::io::stdout().is_terminal()
    {
        return Err(usage(
            "--to parquet --output - would write a binary file to the terminal: redirect it or name a file",
        ));
    }
    init_logging(job.settings.log_path())?;
    let label = format!("{} {}", job.symbol_list(), job.dataset.noun());
    let store = match args.from {
        Some(from) => {
            job.settings.format = match from {
                ExportFrom::Database => Format::Database,
                ExportFrom::Store => Format::Parquet,
            };
            crate::store::open(&job.settings)
        }
        None => {
            let mut found = None;
            for store in crate::store::every(&job.settings) {
                if store.holds(&job).await? {
                    found = Some(store);
                    break;
                }
            }
            let Some(store) = found else {
                let [db, files] = crate::store::every(&job.settings).map(|s| s.describe());
                anyhow::bail!(
                    "neither {db} nor {files} holds {label} in {}: import them first \
                     (data import-api), or name a store with --from",
                    job.range
                );
            };
            store
        }
    };
    tracing::info!(
        "[EXPORT] {label} {} from {} to {} as {:?}",
        job.range,
        store.describe(),
        destination.show(),
        args.to
    );
    let mut sink = ExportSink::create(job.dataset, args.to, destination)?;
    store.export(&job, &mut sink).await
}
