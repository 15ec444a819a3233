//! The one run function and what it needs: a [`Source`] task feeding the bounded channel,
//! the transforms and the batcher writing to a sink, Ctrl-C watched, and the summary or
//! error at the end ([`pipe`]); the one planner ([`plan`]) that cuts a job into shards and
//! drops those a [`ProgressStore`] says are done.
//!
//! The commands (the root crate's `data::commands`, through a store's face) choose the
//! source and the sink for a job and call these; neither the source nor the sink knows
//! about the other. On any failure the batches already committed stay committed, and the
//! message says how far the run got; re-running the same command completes it (writes are
//! idempotent).

use crate::job::Job;
use crate::progress::Progress;
use anyhow::anyhow;
use chrono::NaiveDate;
use data_core::model::Symbol;
use data_core::pipeline::{cancellation, run_batcher, BatchCommitted, Sink, CHANNEL_PAGES};
use data_core::resume::{apply_progress, shards_of, PlanCounts, Saved, Shard};
use data_core::time::{format_nanos, DateRange};
use data_core::transform::Transform;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, watch};

/// CPU time this process has used so far (user and system), in seconds.
pub(crate) fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return 0.0;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// The exit code of a run stopped by Ctrl-C (or SIGTERM).
pub const EXIT_INTERRUPTED: u8 = 130;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    Interrupted,
}

/// Set once an interrupt (SIGINT/SIGTERM) arrived: the work a command does after its
/// pipeline (archive's verification and deletes) checks it between steps, so an
/// interrupt acknowledged there stops it too, with exit code 130.
static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether an interrupt arrived during this process.
pub fn interrupted() -> bool {
    INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst)
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
        INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
        tracing::warn!(
            "interrupt received: finishing the current batch (interrupt again to stop at once)"
        );
        let _ = cancel.send(true);
        next_signal(&mut term).await;
        eprintln!("interrupted again: stopping now; the batch in progress is rolled back");
        std::process::exit(EXIT_INTERRUPTED as i32);
    });
}

fn how_far(last: Option<BatchCommitted>, keeps_batches: bool) -> String {
    match last {
        None => "no rows were committed".to_string(),
        Some(c) if !keeps_batches => format!(
            "{} rows were received, up to {}; only the day (month) files written whole are \
             kept, the ones in progress were discarded",
            c.total_rows,
            format_nanos(c.last_time_ns)
        ),
        Some(c) => format!(
            "{} rows in {} batches were committed, up to {}",
            c.total_rows,
            c.number,
            format_nanos(c.last_time_ns)
        ),
    }
}

/// What a run is about, for the progress bar, the summary and error messages.
pub struct Report {
    pub symbols: Vec<Symbol>,
    /// The shard unit's word: `days`, or `months` for bars.
    pub unit: &'static str,
    /// What is imported: `quotes`, `trades`, `1Min bars`.
    pub noun: String,
    /// One row, for the batch line: `quote`, `trade`, `bar`.
    pub item: &'static str,
    /// Where rows go: a table name, or `parquet`.
    pub table: &'static str,
    /// The thinning, empty for raw rows.
    pub spec: String,
    /// Where rows come from, for error messages: the API URL or the Parquet store.
    pub from: String,
    /// Units the plan resumes after their last committed row, for the end-of-run line.
    pub resumed: AtomicUsize,
}

impl Report {
    pub fn new(job: &Job, table: &'static str, from: String) -> Self {
        Report {
            symbols: job.symbols.clone(),
            unit: job.dataset.unit().noun(),
            noun: job.dataset.noun(),
            item: job.dataset.item(),
            table,
            spec: job.thinning.spec(),
            from: crate::config::redact_url(&from),
            resumed: AtomicUsize::new(0),
        }
    }

    /// The symbols, for messages: `AAPL`, `AAPL,MSFT`, or `12 symbols`.
    pub fn who(&self) -> String {
        match self.symbols.as_slice() {
            [one] => one.to_string(),
            few if few.len() <= 5 => few.iter().map(Symbol::as_str).collect::<Vec<_>>().join(","),
            many => format!("{} symbols", many.len()),
        }
    }

    pub fn label(&self) -> String {
        if self.spec.is_empty() {
            format!("{} {}", self.who(), self.noun)
        } else {
            format!(
                "{} {} ({} -> {})",
                self.who(),
                self.noun,
                self.spec,
                self.table
            )
        }
    }
}

pub use data_core::pipeline::{Cancel, Feed, Fetched, Source, SourceTask};

/// The units (days, months) a progress query covers, first to last.
pub type Units = std::ops::RangeInclusive<NaiveDate>;
/// What a progress store holds for them.
pub type Saves = anyhow::Result<Vec<Saved>>;

/// Where the progress of earlier runs is kept: `import_progress` in the database, or the
/// files present in the Parquet store. (Used generically, never as `dyn`, so the async
/// methods need no `Send` bound spelled out.)
#[allow(async_fn_in_trait)]
pub trait ProgressStore {
    /// The saved records of `dataset` (a [`crate::job::Job::progress_key`]) for `symbol`
    /// from unit `first` to unit `last`.
    async fn saved(&mut self, dataset: &str, symbol: &Symbol, units: Units) -> Saves;

    /// How a finished plan is described: `were imported by earlier runs`.
    fn done_phrase(&self) -> &'static str;
}

pub use data_core::time::{now_ns, TEST_NOW_ENV};

/// Plans a job: each symbol's shards of `range` in the dataset's unit, against the progress
/// `store` holds (unless `--restart`), logged. Data exists up to `available_ns` (now, or
/// the SIP delay before it): later units are not planned, and one it cuts short is never
/// recorded as done. Started shards resume after their last committed row when
/// `positions_usable` (raw rows, not thinned output). `None` when every shard was done
/// already.
pub async fn plan<P: ProgressStore>(
    job: &Job,
    report: &Report,
    store: &mut P,
    range: DateRange,
    available_ns: i64,
    positions_usable: bool,
) -> anyhow::Result<Option<Arc<Vec<Shard>>>> {
    let (todo, counts) = shards_to_fetch(job, store, range, available_ns, positions_usable).await?;
    log_plan(job, counts, todo.len(), report.unit);
    report.resumed.store(counts.resumed, Ordering::Relaxed);
    if todo.is_empty() {
        tracing::info!(
            target: crate::progress::SUMMARY,
            "[DONE] {}: all {} {} of {range} {}; nothing to fetch (--restart fetches them again)",
            report.label(),
            counts.total,
            report.unit,
            store.done_phrase()
        );
        return Ok(None);
    }
    Ok(Some(Arc::new(todo)))
}

/// What [`plan`] decides, without a word: the shards still to fetch, and the counts.
pub async fn shards_to_fetch<P: ProgressStore>(
    job: &Job,
    store: &mut P,
    range: DateRange,
    available_ns: i64,
    positions_usable: bool,
) -> anyhow::Result<(Vec<Shard>, PlanCounts)> {
    let unit = job.dataset.unit();
    let dataset = job.progress_key();
    let mut todo = Vec::new();
    let mut counts = PlanCounts::default();
    for symbol in &job.symbols {
        let mut all = shards_of(symbol, range, available_ns, unit);
        // An option contract trades until its expiry: nothing after it is asked for.
        if job.dataset.asset() == data_core::dataset::Asset::Options {
            if let Some((expiry, _, _)) = symbol.option_parts() {
                all.retain(|s| s.day <= expiry);
            }
        }
        let saved = match (job.restart, all.first(), all.last()) {
            (false, Some(a), Some(b)) => store.saved(&dataset, symbol, a.day..=b.day).await?,
            _ => Vec::new(),
        };
        let (mut left, c) = apply_progress(all, &saved, positions_usable);
        if job.dataset.kind() == data_core::dataset::Kind::Bars {
            // The last bar stored may have been stored while its period was open (today's
            // daily bar during the session, the last minute before the SIP clamp): a
            // started period is fetched again from that bar, which is upserted whole.
            for shard in &mut left {
                if let Some((t, _)) = shard.resume_after {
                    shard.resume_after = Some((t.saturating_sub(1), u32::MAX));
                }
            }
        }
        todo.append(&mut left);
        counts += c;
    }
    Ok((todo, counts))
}

/// The opening line about what earlier runs already did and how this one fetches.
fn log_plan(job: &Job, counts: PlanCounts, todo: usize, unit: &str) {
    let settings = &job.settings;
    let pace = match settings.rate_limit {
        0 => "no client-side rate limit".to_string(),
        n => format!("at most {n} requests/min"),
    };
    if job.restart {
        tracing::info!("[RESUME] --restart: ignoring earlier progress");
    } else if counts.skipped > 0 || counts.resumed > 0 {
        tracing::info!(
            target: crate::progress::SUMMARY,
            "[RESUME] {} of {} {unit} already imported (skipped); {} resumed after their last committed row",
            counts.skipped,
            counts.total,
            counts.resumed
        );
    }
    let at_once = match settings.concurrency {
        Some(k) => format!("{} at a time", k.min(todo.max(1))),
        None => format!(
            "concurrency auto (from {}, up to {})",
            data_core::pipeline::START_AUTO,
            data_core::pipeline::MAX_AUTO
        ),
    };
    tracing::info!("[API] fetching {todo} {unit}, {at_once}, {pace}");
}

/// How many symbols the summary's per-symbol line names before it sums up the rest.
pub(crate) const SYMBOLS_LISTED: usize = 20;

/// After a completed run: rows fetched per symbol (several symbols), and a warning (not a
/// failure) for each symbol whose every shard was fetched from the start and held no data.
pub fn report_symbols(report: &Report, shards: &[Shard], fetched: &Fetched, range: DateRange) {
    let rows = |s: &Symbol| fetched.by_symbol.get(s.as_str()).copied().unwrap_or(0);
    if report.symbols.len() > 1 {
        let mut list: Vec<String> = report
            .symbols
            .iter()
            .take(SYMBOLS_LISTED)
            .map(|s| format!("{s} {}", rows(s)))
            .collect();
        if report.symbols.len() > SYMBOLS_LISTED {
            let rest = &report.symbols[SYMBOLS_LISTED..];
            list.push(format!(
                "and {} more symbols with {} rows",
                rest.len(),
                rest.iter().map(rows).sum::<u64>()
            ));
        }
        tracing::info!(
            "[DONE] {} fetched per symbol: {}",
            report.noun,
            list.join(", ")
        );
    }
    if fetched.out_of_range > 0 {
        tracing::warn!(
            "[WARN] the server sent {} {} outside the range asked for; they were dropped, not stored",
            fetched.out_of_range,
            report.noun
        );
    }
    for symbol in &report.symbols {
        let days = shards.iter().filter(|s| s.symbol == *symbol).count();
        let resumed = shards
            .iter()
            .any(|s| s.symbol == *symbol && s.resume_after.is_some());
        if days > 0 && !resumed && rows(symbol) == 0 {
            tracing::warn!(
                "[WARN] no data for {symbol} in {range} ({days} days asked): not a symbol Alpaca knows, or it did not trade then"
            );
        }
    }
}

/// One pipeline run: the source task feeding the bounded channel, the transforms and batcher
/// writing to the sink, Ctrl-C watched, and the summary or error at the end. Returns what
/// the source fetched when the run completed.
pub async fn pipe<T, S, M, Src>(
    report: &Report,
    range: DateRange,
    batch_size: usize,
    sink: &mut S,
    make_transform: M,
    source: Src,
) -> anyhow::Result<(Outcome, Fetched)>
where
    T: Transform,
    S: Sink,
    M: FnMut() -> T,
    Src: Source,
{
    let who = report.who();
    let cpu_at_start = cpu_seconds();
    let (cancel_tx, cancel_rx) = cancellation();
    watch_signals(cancel_tx);
    let (tx, mut rx) = mpsc::channel(CHANNEL_PAGES);
    let requests = source.requests();
    let page_word = source.page_word();
    let units = source.shard_count();
    let mut progress = Progress::start(
        range,
        &format!("{who} {}", report.noun),
        source.shard_count().map(|n| (n, report.unit)),
        requests.clone(),
    );
    progress.set_item(report.item);
    let idle = source.idle_commit();
    let source = source.spawn(tx, cancel_rx.clone());
    let mut last: Option<BatchCommitted> = None;
    let batched = run_batcher(
        &mut rx,
        make_transform,
        sink,
        batch_size,
        idle,
        cancel_rx,
        |c| {
            progress.on_commit(c);
            if c.rows > 0 {
                last = Some(*c);
            }
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
            sink.abort();
            return Err(e.context(format!(
                "importing {} stopped: {}; rerun the same command to finish",
                report.label(),
                how_far(last, sink.keeps_batches())
            )));
        }
    };
    let fetched = match source.await {
        Ok(Ok(stats)) => stats,
        Ok(Err(e)) => {
            sink.abort();
            // A refusal (keys, plan, a parameter) needs a change first: running the same
            // command again cannot help.
            let refused = !Src::rerun_helps(&e);
            let next = if refused {
                "the committed rows are kept, and once this is fixed the command resumes there"
            } else {
                "rerun the same command to finish"
            };
            return Err(anyhow!(
                "importing {} from {} failed: {e:#}; {}; {next}",
                report.label(),
                report.from,
                how_far(last, sink.keeps_batches())
            ));
        }
        Err(join) => {
            sink.abort();
            return Err(anyhow!("the reader task failed: {join}"));
        }
    };
    let secs = elapsed.as_secs_f64();
    let api = requests.map_or(String::new(), |r| {
        format!(
            "; {} requests ({:.0}/min), {} retries, {} rate-limited (429)",
            r.requests(),
            r.requests() as f64 * 60.0 / secs.max(1e-9),
            r.retries(),
            r.rate_limited()
        )
    });
    if totals.cancelled {
        sink.abort();
        tracing::warn!(
            "[INTERRUPTED] {}: {}; {:.1}s{api}; rerun the same command to finish (it resumes where this stopped)",
            report.label(),
            how_far(last, sink.keeps_batches()),
            secs
        );
        return Ok((Outcome::Interrupted, fetched));
    }
    sink.finish().await?;
    let rate = fetched.rows as f64 / secs.max(1e-9);
    let cpu = cpu_seconds() - cpu_at_start;
    let cpu = format!(
        ", CPU {cpu:.1}s ({:.2} us/row, {:.2} cores)",
        cpu * 1e6 / (fetched.rows.max(1)) as f64,
        cpu / secs.max(1e-9)
    );
    crate::progress::finished(&end_line(
        report,
        (fetched.rows, totals.rows),
        secs,
        units,
        &sink.destination(),
    ));
    if report.spec.is_empty() {
        tracing::info!(
            "[DONE] {who} {}: {} rows, {} {page_word}, {} batches, {:.1}s elapsed, {:.0} rows/s{cpu}, into {}{api}",
            report.noun,
            totals.rows,
            fetched.pages,
            totals.batches,
            secs,
            rate,
            report.table
        );
    } else {
        tracing::info!(
            "[DONE] {}: {} quotes in, {} rows kept ({:.2}%), {} pages, {} batches, {:.1}s elapsed, {:.0} quotes/s{cpu}{api}",
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
    Ok((Outcome::Completed, fetched))
}

/// The line a person reads at the end of a completed run (the log file gets the detailed
/// `[DONE]` line): `✓ 740,000 quotes of AAPL in 23.9 s → data/market.db (12 days; 3 resumed)`.
/// `rows`: (fetched, stored), which differ when thinning.
pub fn end_line(
    report: &Report,
    (fetched, stored): (u64, u64),
    secs: f64,
    units: Option<u64>,
    destination: &str,
) -> String {
    use indicatif::HumanCount;
    let what = match report.spec.is_empty() {
        true => format!("{} {} of {}", HumanCount(stored), report.noun, report.who()),
        false => format!(
            "{} of {} {} of {} kept ({})",
            HumanCount(stored),
            HumanCount(fetched),
            report.noun,
            report.who(),
            report.spec
        ),
    };
    let to = match destination.is_empty() {
        true => String::new(),
        false => format!(" \u{2192} {destination}"),
    };
    let units = units.map_or(String::new(), |n| {
        let unit = match n {
            1 => report.unit.trim_end_matches('s'),
            _ => report.unit,
        };
        match report.resumed.load(Ordering::Relaxed) {
            0 => format!(" ({n} {unit})"),
            r => format!(" ({n} {unit}; {r} resumed)"),
        }
    });
    format!("\u{2713} {what} in {secs:.1} s{to}{units}")
}
