//! One `import-api` run, wired end to end: validate the arguments, open the sink, start the
//! source task, run the batcher, watch for Ctrl-C, and report.
//!
//! This is the only place that knows both the source and the sink; each stays ignorant of
//! the other. On any failure the batches already committed stay committed, and the message
//! says how far the run got; re-running the same command completes it (upserts are
//! idempotent).

use crate::cli::{DataKind, ImportArgs};
use crate::model::Symbol;
use crate::pipeline::{cancellation, run_batcher, BatchCommitted, CHANNEL_PAGES};
use crate::progress::{init_logging, Progress};
use crate::sink::sqlite::SqliteSink;
use crate::source::alpaca::{stream_quotes, AlpacaClient, ClientConfig, Credentials};
use crate::source::retry::RetryPolicy;
use crate::time::{format_nanos, DateRange};
use anyhow::anyhow;
use std::time::Duration;
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

pub async fn run(args: ImportArgs) -> anyhow::Result<Outcome> {
    let DataKind::Quotes = args.kind;
    let symbol = Symbol::parse(&args.symbol).map_err(|e| anyhow!(e))?;
    let range = DateRange::parse(&args.start, &args.end).map_err(|e| anyhow!(e))?;
    let creds = Credentials::from_env().map_err(|e| anyhow!(e))?;
    let client = AlpacaClient::new(
        &ClientConfig {
            base_url: args.api_url.clone(),
            feed: args.feed,
            retry: RetryPolicy {
                max_attempts: args.max_attempts,
                base_delay: Duration::from_millis(args.retry_base_ms),
                ..RetryPolicy::default()
            },
            request_timeout: Duration::from_secs(args.request_timeout),
        },
        &creds,
    )
    .map_err(|e| anyhow!(e))?;
    init_logging(&args.log_file)?;
    let mut sink =
        SqliteSink::open(&args.database_url, Duration::from_secs(args.busy_timeout)).await?;
    let db = sink.path().display().to_string();
    tracing::info!(
        "[IMPORT] {symbol} quotes {range} (feed {}) into {db}, batches of {}",
        args.feed.as_str(),
        args.batch_size
    );

    let (cancel_tx, cancel_rx) = cancellation();
    watch_signals(cancel_tx);
    let (tx, mut rx) = mpsc::channel(CHANNEL_PAGES);
    let source = tokio::spawn(stream_quotes(
        client,
        symbol.clone(),
        range,
        tx,
        cancel_rx.clone(),
    ));
    let progress = Progress::start(range, &format!("{symbol} quotes"));
    let mut last: Option<BatchCommitted> = None;
    let batched = run_batcher(
        &mut rx,
        &mut sink,
        args.batch_size as usize,
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
                "importing {symbol} quotes stopped: {}; rerun the same command to finish",
                how_far(last)
            )));
        }
    };
    let fetched = match source.await {
        Ok(Ok(stats)) => stats,
        Ok(Err(api)) => {
            return Err(anyhow!(
            "importing {symbol} quotes from {} failed: {api}; {}; rerun the same command to finish",
            args.api_url.trim_end_matches('/'),
            how_far(last)
        ))
        }
        Err(join) => return Err(anyhow!("the API reader task failed: {join}")),
    };
    let secs = elapsed.as_secs_f64();
    let rate = totals.rows as f64 / secs.max(1e-9);
    if totals.cancelled {
        tracing::warn!(
            "[INTERRUPTED] {symbol} quotes: {}; {:.1}s; rerun the same command to finish (re-import is idempotent)",
            how_far(last),
            secs
        );
        return Ok(Outcome::Interrupted);
    }
    tracing::info!(
        "[DONE] {symbol} quotes: {} rows, {} pages, {} batches, {:.1}s elapsed, {:.0} rows/s, into {db}",
        totals.rows,
        fetched.pages,
        totals.batches,
        secs,
        rate
    );
    Ok(Outcome::Completed)
}
