//! One `import-api` run, wired end to end: validate the arguments, open the sink, start the
//! source task, run the batcher, watch for Ctrl-C, and report.
//!
//! This is the only place that knows both the source and the sink; each stays ignorant of
//! the other. On any failure the batches already committed stay committed, and the message
//! says how far the run got; re-running the same command completes it (upserts are
//! idempotent).

use crate::cli::{DataKind, ImportArgs};
use crate::config::{self, Format};
use crate::model::{Quote, Symbol};
use crate::pipeline::Sink;
use crate::pipeline::{cancellation, run_batcher, BatchCommitted, CHANNEL_PAGES};
use crate::progress::{init_logging, Progress};
use crate::sink::sqlite::{
    SqliteSink, TableSpec, WriteMode, QUOTES, QUOTES_AGGREGATED, QUOTES_THINNED,
};
use crate::source::alpaca::{stream_quotes, AlpacaClient, ClientConfig, Credentials};
use crate::source::retry::RetryPolicy;
use crate::time::{format_nanos, DateRange};
use crate::transform::{parse_width, Aggregate, Passthrough, Thinning, Transform};
use anyhow::anyhow;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    Interrupted,
}

/// Turns SIGINT/SIGTERM into a cancel request; a second signal exits at once with 130 (the
/// open transaction is then never committed, which SQLite guarantees leaves no trace).
fn watch_signals(cancel: watch::Sender<bool>) {
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, Signal, SignalKind};
        async fn next_signal(term: &mut Option<Signal>) {
            match term {
                Some(t) => tokio::select! {
                    _ = tokio::signal::ctrl_c() => {},
                    _ = t.recv() => {},
                },
                None => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
        let mut term = signal(SignalKind::terminate()).ok();
        next_signal(&mut term).await;
        tracing::warn!(
            "interrupt received: finishing the current batch (interrupt again to stop at once)"
        );
        let _ = cancel.send(true);
        next_signal(&mut term).await;
        eprintln!("interrupted again: stopping now; the batch in progress is rolled back");
        std::process::exit(crate::cli::EXIT_INTERRUPTED as i32);
    });
}

fn how_far(last: Option<BatchCommitted>) -> String {
    match last {
        None => "no rows were committed".to_string(),
        Some(c) => format!(
            "{} rows in {} batches were committed, up to {}",
            c.total_rows,
            c.number,
            format_nanos(c.last_time_ns)
        ),
    }
}

/// How far a run got, for the summary and for error messages.
struct Report {
    symbol: Symbol,
    table: &'static str,
    spec: String,
}

impl Report {
    fn label(&self) -> String {
        if self.spec.is_empty() {
            format!("{} quotes", self.symbol)
        } else {
            format!("{} quotes ({} -> {})", self.symbol, self.spec, self.table)
        }
    }
}

pub async fn run(args: ImportArgs) -> anyhow::Result<Outcome> {
    let DataKind::Quotes = args.kind;
    let settings = config::resolve(&args.settings, &config::process_env)?;
    let symbol = Symbol::parse(&args.symbol).map_err(|e| anyhow!(e))?;
    let range = DateRange::parse(&args.start, &args.end).map_err(|e| anyhow!(e))?;
    let thinning = Thinning {
        nbbo_changes: args.thin.nbbo_changes,
        sample: args.thin.sample,
        aggregate_ns: args
            .thin
            .aggregate
            .as_deref()
            .map(parse_width)
            .transpose()
            .map_err(|e| anyhow!(e))?,
    };
    if settings.format == Format::Parquet {
        anyhow::bail!(
            "format parquet (from {}) is not available yet: the Parquet store is planned; use format database",
            source_of(&settings, "format")
        );
    }
    let creds = Credentials::from_env().map_err(|e| anyhow!(e))?;
    let client = AlpacaClient::new(
        &ClientConfig {
            base_url: settings.api_url.clone(),
            feed: settings.feed,
            retry: RetryPolicy {
                max_attempts: settings.max_attempts,
                base_delay: Duration::from_millis(settings.retry_base_ms),
                ..RetryPolicy::default()
            },
            request_timeout: Duration::from_secs(settings.request_timeout_secs),
        },
        &creds,
    )
    .map_err(|e| anyhow!(e))?;
    init_logging(settings.log_path())?;
    let mut sink = SqliteSink::open(
        &settings.database_url,
        Duration::from_secs(settings.busy_timeout_secs),
    )
    .await?;
    let table: &'static TableSpec = match (thinning.is_raw(), thinning.aggregate_ns) {
        (true, _) => &QUOTES,
        (false, None) => &QUOTES_THINNED,
        (false, Some(_)) => &QUOTES_AGGREGATED,
    };
    let report = Report {
        symbol: symbol.clone(),
        table: table.name,
        spec: thinning.spec(),
    };
    if !thinning.is_raw() {
        sink.set_thinning(&report.spec).await?;
    }
    if settings.skip_duplicates {
        if sink
            .has_rows_in(table, symbol.as_str(), range.start_ns, range.end_ns)
            .await?
        {
            tracing::warn!(
                "[DB] --skip-duplicates: {} already holds {} rows in {range}; using upsert instead so nothing is duplicated",
                table.name,
                symbol
            );
        } else {
            sink.set_mode(WriteMode::Insert);
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
    let db = sink.path().display().to_string();
    tracing::info!(
        "[IMPORT] {} {range} (feed {}) into {db} table {}, batches of {}, {}",
        report.label(),
        settings.feed.as_str(),
        table.name,
        settings.batch_size,
        match sink.mode() {
            WriteMode::Upsert => "upsert",
            WriteMode::Insert => "plain insert",
        }
    );

    let result = match thinning.aggregate_ns {
        None if thinning.is_raw() => {
            pipe(
                &client,
                &report,
                range,
                &settings,
                &mut sink,
                Passthrough::default(),
            )
            .await
        }
        None => {
            pipe(
                &client,
                &report,
                range,
                &settings,
                &mut sink,
                thinning.filters(),
            )
            .await
        }
        Some(width) => {
            let agg = Aggregate::new(thinning.filters(), width);
            pipe(&client, &report, range, &settings, &mut sink, agg).await
        }
    };
    if dropped {
        let started = Instant::now();
        match sink.rebuild_dropped_indexes(false).await {
            Ok(names) => tracing::info!(
                "[DB] rebuilt index {} in {:.1}s",
                names.join(", "),
                started.elapsed().as_secs_f64()
            ),
            Err(e) => {
                return Err(e.context(
                    "the import's rows are committed, but rebuilding the dropped indexes failed; \
                     the next command that opens the database retries it",
                ))
            }
        }
    }
    result
}

fn source_of(settings: &config::Settings, key: &str) -> String {
    settings
        .provenance
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|(_, _, s)| s.to_string())
        .unwrap_or_else(|| "settings".into())
}

/// One pipeline run: the source task feeding the bounded channel, the transform and batcher
/// writing to the sink, Ctrl-C watched, and the summary or error at the end.
async fn pipe<T, S>(
    client: &AlpacaClient,
    report: &Report,
    range: DateRange,
    settings: &config::Settings,
    sink: &mut S,
    mut transform: T,
) -> anyhow::Result<Outcome>
where
    T: Transform<In = Quote>,
    S: Sink<T::Out>,
{
    let symbol = &report.symbol;
    let (cancel_tx, cancel_rx) = cancellation();
    watch_signals(cancel_tx);
    let (tx, mut rx) = mpsc::channel(CHANNEL_PAGES);
    let source = tokio::spawn(stream_quotes(
        client.clone(),
        symbol.clone(),
        range,
        tx,
        cancel_rx.clone(),
    ));
    let progress = Progress::start(range, &format!("{symbol} quotes"));
    let mut last: Option<BatchCommitted> = None;
    let batched = run_batcher(
        &mut rx,
        &mut transform,
        sink,
        settings.batch_size,
        cancel_rx,
        |c| {
            progress.on_commit(c);
            last = Some(*c);
        },
    )
    .await;
    // Closing the channel releases a source blocked on a full channel.
    drop(rx);
    let elapsed = progress.elapsed();
    drop(progress);
    let totals = match batched {
        Ok(t) => t,
        Err(e) => {
            source.abort();
            return Err(e.context(format!(
                "importing {} stopped: {}; rerun the same command to finish",
                report.label(),
                how_far(last)
            )));
        }
    };
    let fetched = match source.await {
        Ok(Ok(stats)) => stats,
        Ok(Err(api)) => {
            return Err(anyhow!(
                "importing {} from {} failed: {api}; {}; rerun the same command to finish",
                report.label(),
                settings.api_url,
                how_far(last)
            ))
        }
        Err(join) => return Err(anyhow!("the API reader task failed: {join}")),
    };
    let secs = elapsed.as_secs_f64();
    if totals.cancelled {
        tracing::warn!(
            "[INTERRUPTED] {}: {}; {:.1}s; rerun the same command to finish (re-import is idempotent)",
            report.label(),
            how_far(last),
            secs
        );
        return Ok(Outcome::Interrupted);
    }
    let rate = fetched.rows as f64 / secs.max(1e-9);
    if report.spec.is_empty() {
        tracing::info!(
            "[DONE] {symbol} quotes: {} rows, {} pages, {} batches, {:.1}s elapsed, {:.0} rows/s, into {}",
            totals.rows,
            fetched.pages,
            totals.batches,
            secs,
            rate,
            report.table
        );
    } else {
        tracing::info!(
            "[DONE] {}: {} quotes in, {} rows kept ({:.2}%), {} pages, {} batches, {:.1}s elapsed, {:.0} quotes/s",
            report.label(),
            fetched.rows,
            totals.rows,
            100.0 * totals.rows as f64 / (fetched.rows.max(1)) as f64,
            fetched.pages,
            totals.batches,
            secs,
            rate
        );
    }
    Ok(Outcome::Completed)
}
