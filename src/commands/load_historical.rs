//! `data load-historical`: the Parquet store's files for the range, into the database,
//! through the same batches, upserts and log lines as an API import.

use crate::args::LoadArgs;
use crate::dataset::DatasetId;
use crate::job::Job;
use crate::model::Symbol;
use crate::progress::init_logging;
use crate::resume::ShardUnit;
use crate::run::{pipe, Cancel, Feed, Fetched, Outcome, Report, Source, SourceTask};
use crate::store::parquet::layout::Layout;
use crate::store::parquet::location::Location;
use crate::store::parquet::reader::stream_parquet;
use crate::store::sql::face::{close_database, open_database, refresh_adjustments};
use crate::time::DateRange;
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
    let source = StoreSource {
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

/// The Parquet store as a pipeline source: each symbol's files in turn.
struct StoreSource {
    root: Location,
    layout: DatasetId,
    symbols: Vec<Symbol>,
    range: DateRange,
}

impl Source for StoreSource {
    fn page_word(&self) -> &'static str {
        "files"
    }

    fn spawn(self, tx: Feed, cancel: Cancel) -> SourceTask {
        let StoreSource {
            root,
            layout,
            symbols,
            range,
        } = self;
        tokio::task::spawn_blocking(move || {
            let mut fetched = Fetched::default();
            for symbol in &symbols {
                let stats =
                    stream_parquet(&root, &layout, symbol, range, tx.clone(), cancel.clone())?;
                fetched.pages += stats.files;
                fetched.rows += stats.rows;
                if !stats.missing.is_empty() {
                    let shown: Vec<String> = stats
                        .missing
                        .iter()
                        .take(20)
                        .map(|d| d.to_string())
                        .collect();
                    tracing::warn!(
                        "[FILE] {} {}(s) in the range have no file for {symbol} in {}: {}{}",
                        stats.missing.len(),
                        match layout.unit() {
                            ShardUnit::Session => "trading day",
                            unit => unit.file_noun(),
                        },
                        root.show(&layout.dir(root.path())),
                        shown.join(", "),
                        if stats.missing.len() > 20 {
                            ", ..."
                        } else {
                            ""
                        }
                    );
                }
            }
            Ok(fetched)
        })
    }
}
