//! `data load-historical`: the Parquet store's files for the range, into the database,
//! through the same batches, upserts and log lines as an API import.

use crate::args::LoadArgs;
use crate::job::Job;
use crate::progress::init_logging;
use crate::run::{pipe, Outcome, Report};
use crate::store::parquet::layout::Layout;
use crate::store::parquet::source::StoreRows;
use crate::store::sql::face::{close_database, open_database, refresh_adjustments};
use crate::transform::Passthrough;

pub async fn run(args: LoadArgs) -> anyhow::Result<Outcome> {
    let job = Job::load_historical(&args)?;
    let settings = &job.settings;
    init_logging(settings.log_path())?;
    let root = crate::store::parquet::layout::store_root(settings);
    root.check()?;
    let table = job.table();
    let from = format!("the Parquet store {}", root.display());
    let report = Report::new(&job, table.name, from);
    let target = (table, job.dataset);
    let (mut sink, dropped) = open_database(settings, &report, target, job.range).await?;
    // The stand-in's files stay marked as synthetic in the database, and never mix there.
    for symbol in &job.symbols {
        let marker = job.dataset.synthetic_marker(root.path(), symbol.as_str());
        let synthetic = match root.exists(&marker) {
            Ok(m) => m,
            Err(e) => return close_database(sink, dropped, Err(e)).await,
        };
        if let Err(e) = sink.claim_symbols(&[symbol.as_str()], synthetic).await {
            return close_database(sink, dropped, Err(e)).await;
        }
    }
    let source = StoreRows {
        root,
        layout: job.dataset,
        symbols: job.symbols.clone(),
        range: job.range,
    };
    let (range, batch) = (job.range, settings.batch_size);
    let result = pipe(&report, range, batch, &mut sink, || Passthrough, source).await;
    let result = match result {
        Ok((outcome, _)) => refresh_adjustments(&job, &mut sink).await.map(|()| outcome),
        Err(e) => Err(e),
    };
    close_database(sink, dropped, result).await
}
