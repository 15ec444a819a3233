//! One import run, wired end to end: validate the arguments, open the sink, start the
//! source task, run the batcher, watch for Ctrl-C, and report. `import-api` reads the Alpaca
//! API into the database or the Parquet store; `load-historical` reads the Parquet store into
//! the database through the same pipeline.
//!
//! This is the only place that knows both the source and the sink; each stays ignorant of
//! the other. On any failure the batches already committed stay committed, and the message
//! says how far the run got; re-running the same command completes it (upserts are
//! idempotent).

use crate::cli::{ArchiveArgs, DataKind, ImportArgs, LoadArgs};
use crate::config::{self, Format};
use crate::model::{ApiRecord, Bar, Quote, Symbol, Trade};
use crate::pipeline::{cancellation, run_batcher, BatchCommitted, Chunk, Sink, CHANNEL_PAGES};
use crate::progress::{init_logging, Progress};
use crate::resume::{apply_progress, shards_of, PlanCounts, Shard, ShardUnit, Tracking};
use crate::sink::database::Database;
use crate::sink::parquet::{Layout, ParquetSink, StoreRecord};
use crate::sink::sqlite::{
    TableSpec, WriteMode, BARS, QUOTES, QUOTES_AGGREGATED, QUOTES_THINNED, TRADES,
};
use crate::source::alpaca::{stream_shards, AlpacaClient, ClientConfig, Credentials, Request};
use crate::source::pace::RequestStats;
use crate::source::parquet::stream_parquet;
use crate::source::retry::RetryPolicy;
use crate::store::archive as archive_units;
use crate::time::{format_nanos, new_york_date, new_york_time_nanos, DateRange};
use crate::transform::{parse_width, Aggregate, Passthrough, Thinning, Transform};
use anyhow::anyhow;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

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
    symbols: Vec<Symbol>,
    /// The shard unit's word: `days`, or `months` for bars.
    unit: &'static str,
    /// What is imported: `quotes`, `trades`, `1Min bars`.
    noun: String,
    table: &'static str,
    spec: String,
    /// Where rows come from, for error messages: the API URL or the Parquet store.
    from: String,
}

impl Report {
    /// The symbols, for messages: `AAPL`, `AAPL,MSFT`, or `12 symbols`.
    fn who(&self) -> String {
        match self.symbols.as_slice() {
            [one] => one.to_string(),
            few if few.len() <= 5 => few.iter().map(Symbol::as_str).collect::<Vec<_>>().join(","),
            many => format!("{} symbols", many.len()),
        }
    }

    fn label(&self) -> String {
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

/// The dataset a command names: its Parquet layout, database table and noun for messages.
/// Bars need a valid `--timeframe` (and `--adjustment`); the others take neither.
fn dataset_of(
    kind: DataKind,
    bars: &crate::cli::BarArgs,
) -> anyhow::Result<(Layout, &'static TableSpec, String)> {
    if kind != DataKind::Bars {
        if bars.timeframe.is_some() {
            return Err(usage("--timeframe applies to bars only".into()));
        }
        return Ok(match kind {
            DataKind::Trades => (Layout::Trades, &TRADES, "trades".into()),
            _ => (Layout::Quotes, &QUOTES, "quotes".into()),
        });
    }
    let tf = bars
        .timeframe
        .as_deref()
        .ok_or_else(|| usage("bars need --timeframe 1Min|5Min|15Min|1Hour|1Day".into()))?;
    if !matches!(tf, "1Min" | "5Min" | "15Min" | "1Hour" | "1Day") {
        return Err(usage(format!(
            "invalid --timeframe {tf:?}: must be 1Min, 5Min, 15Min, 1Hour or 1Day"
        )));
    }
    let adj = bars.adjustment.as_str();
    if !matches!(adj, "raw" | "split" | "dividend" | "all") {
        return Err(usage(format!(
            "invalid --adjustment {adj:?}: must be raw, split, dividend or all"
        )));
    }
    Ok((Layout::bars(tf, adj), &BARS, format!("{tf} bars")))
}

/// `range` widened to whole New York days, midnight to midnight (bars: a daily bar opens at
/// midnight).
fn calendar_days(range: DateRange) -> DateRange {
    DateRange {
        start_ns: new_york_time_nanos(new_york_date(range.start_ns), 0, 0),
        end_ns: new_york_date(range.end_ns)
            .succ_opt()
            .map_or(range.end_ns, |d| new_york_time_nanos(d, 0, 0) - 1),
    }
}

/// A command-line error in the symbols or the range: exit code 2, like a bad setting.
fn usage(message: String) -> anyhow::Error {
    anyhow::Error::new(config::SettingsError(message))
}

/// The symbols of a comma-separated list, each validated, duplicates dropped (first kept).
pub fn parse_symbol_list(text: &str, origin: &str) -> anyhow::Result<Vec<Symbol>> {
    let mut out: Vec<Symbol> = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let symbol = Symbol::parse(part).map_err(|e| usage(format!("{origin}: {e}")))?;
        if !out.contains(&symbol) {
            out.push(symbol);
        }
    }
    Ok(out)
}

/// A symbols file: one symbol per line (commas also separate), `#` starts a comment.
pub fn read_symbols_file(path: &std::path::Path) -> anyhow::Result<Vec<Symbol>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        usage(format!(
            "cannot read the symbols file {}: {e}",
            path.display()
        ))
    })?;
    let mut out: Vec<Symbol> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("");
        let origin = format!("{} line {}", path.display(), n + 1);
        for symbol in parse_symbol_list(line, &origin)? {
            if !out.contains(&symbol) {
                out.push(symbol);
            }
        }
    }
    Ok(out)
}

/// The symbols and the range of an `import-api` command line: `SYMBOLS START END`, or
/// `START END` with `--symbols-file`.
fn symbols_and_range(args: &ImportArgs) -> anyhow::Result<(Vec<Symbol>, DateRange)> {
    let (symbols, start, end) = match (&args.symbols_file, &args.end) {
        (None, Some(end)) => (
            parse_symbol_list(&args.symbols, "SYMBOLS")?,
            &args.start,
            end,
        ),
        (Some(file), None) => (read_symbols_file(file)?, &args.symbols, &args.start),
        (None, None) => {
            return Err(usage(
                "missing END: expected SYMBOLS START END (or START END with --symbols-file)".into(),
            ))
        }
        (Some(_), Some(_)) => {
            return Err(usage(
                "with --symbols-file give only START and END, not SYMBOLS START END".into(),
            ))
        }
    };
    if symbols.is_empty() {
        return Err(usage(match &args.symbols_file {
            Some(f) => format!("the symbols file {} names no symbol", f.display()),
            None => "SYMBOLS names no symbol (e.g. AAPL or AAPL,MSFT)".into(),
        }));
    }
    let range = DateRange::parse(start, end).map_err(|e| anyhow!(e))?;
    Ok((symbols, range))
}

/// What a source did, for the summary line.
#[derive(Debug, Default, Clone, Copy)]
pub struct Fetched {
    /// API pages, or Parquet files read.
    pub pages: u64,
    pub rows: u64,
}

fn thinning_of(args: &ImportArgs) -> anyhow::Result<Thinning> {
    Ok(Thinning {
        nbbo_changes: args.thin.nbbo_changes,
        sample: args.thin.sample,
        aggregate_ns: args
            .thin
            .aggregate
            .as_deref()
            .map(parse_width)
            .transpose()
            .map_err(|e| anyhow!(e))?,
    })
}

fn client_for(settings: &config::Settings) -> anyhow::Result<AlpacaClient> {
    let creds = Credentials::from_env().map_err(|e| anyhow!(e))?;
    AlpacaClient::new(
        &ClientConfig {
            base_url: settings.api_url.clone(),
            feed: settings.feed,
            retry: RetryPolicy {
                max_attempts: settings.max_attempts,
                base_delay: Duration::from_millis(settings.retry_base_ms),
                ..RetryPolicy::default()
            },
            request_timeout: Duration::from_secs(settings.request_timeout_secs),
            rate_limit: settings.rate_limit,
        },
        &creds,
    )
    .map_err(|e| anyhow!(e))
}

/// `data import-api`.
pub async fn run(args: ImportArgs) -> anyhow::Result<Outcome> {
    let settings = config::resolve(&args.settings, &config::process_env)?;
    let (symbols, range) = symbols_and_range(&args)?;
    let thinning = thinning_of(&args)?;
    if args.kind != DataKind::Quotes {
        return run_trades_or_bars(&args, settings, symbols, range, &thinning).await;
    }
    if args.bars.timeframe.is_some() {
        return Err(usage("--timeframe applies to bars only".into()));
    }
    if settings.format == Format::Parquet && !thinning.is_raw() {
        anyhow::bail!(
            "thinning (--nbbo-changes, --sample, --aggregate) writes database tables; it cannot be combined with format parquet"
        );
    }
    let client = client_for(&settings)?;
    init_logging(settings.log_path())?;
    if settings.format == Format::Parquet {
        let target = ParquetTarget {
            layout: Layout::Quotes,
            req: Request::quotes(),
            noun: "quotes".into(),
        };
        return import_to_parquet::<Quote>(&settings, client, symbols, range, args.restart, target)
            .await;
    }
    let table: &'static TableSpec = match (thinning.is_raw(), thinning.aggregate_ns) {
        (true, _) => &QUOTES,
        (false, None) => &QUOTES_THINNED,
        (false, Some(_)) => &QUOTES_AGGREGATED,
    };
    let report = Report {
        symbols,
        noun: "quotes".into(),
        unit: "days",
        table: table.name,
        spec: thinning.spec(),
        from: settings.api_url.clone(),
    };
    let (mut sink, dropped) = open_database(&settings, &report, table, range).await?;
    let result = import_into(
        &settings,
        &report,
        &thinning,
        &mut sink,
        client,
        range,
        args.restart,
    )
    .await;
    close_database(sink, dropped, result).await
}

/// The database part of `import-api`: plan the shards against the committed progress, then
/// run the pipeline with the thinning the user asked for.
async fn import_into(
    settings: &config::Settings,
    report: &Report,
    thinning: &Thinning,
    sink: &mut Database,
    client: AlpacaClient,
    range: DateRange,
    restart: bool,
) -> anyhow::Result<Outcome> {
    let dataset = if report.spec.is_empty() {
        report.table.to_string()
    } else {
        format!("{}/{}", report.table, report.spec)
    };
    // Thinned rows are not the raw stream: a started day of them is fetched again whole.
    let Some(shards) = plan(
        settings,
        report,
        sink,
        &dataset,
        range,
        restart,
        thinning.is_raw(),
        ShardUnit::Session,
    )
    .await?
    else {
        return Ok(Outcome::Completed);
    };
    let source = ApiSource::new(client, Request::quotes(), shards.clone(), settings);
    let by_symbol = source.by_symbol.clone();
    let batch = settings.batch_size;
    let outcome = match thinning.aggregate_ns {
        None if thinning.is_raw() => {
            pipe(
                report,
                range,
                batch,
                sink,
                Passthrough::<Quote>::default,
                source,
            )
            .await
        }
        None => pipe(report, range, batch, sink, || thinning.filters(), source).await,
        Some(width) => {
            let make = || Aggregate::new(thinning.filters(), width);
            pipe(report, range, batch, sink, make, source).await
        }
    }?;
    report_symbols(report, &shards, &by_symbol, range, outcome);
    Ok(outcome)
}

/// After a completed run: quotes fetched per symbol (several symbols), and a warning (not a
/// failure) for each symbol whose every day was fetched from the start and held no data.
fn report_symbols(
    report: &Report,
    shards: &[Shard],
    by_symbol: &std::sync::Mutex<BTreeMap<String, u64>>,
    range: DateRange,
    outcome: Outcome,
) {
    if outcome != Outcome::Completed {
        return;
    }
    let fetched = by_symbol.lock().map(|m| m.clone()).unwrap_or_default();
    let rows = |s: &Symbol| fetched.get(s.as_str()).copied().unwrap_or(0);
    if report.symbols.len() > 1 {
        let list: Vec<String> = report
            .symbols
            .iter()
            .map(|s| format!("{s} {}", rows(s)))
            .collect();
        tracing::info!(
            "[DONE] {} fetched per symbol: {}",
            report.noun,
            list.join(", ")
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

/// Plans a database import: each symbol's day shards (the 04:00-20:00 session when
/// `session`, the whole New York day otherwise) against the progress committed for
/// `dataset`, logged; the sink is told to commit progress for them. `None` when everything
/// was done already.
#[allow(clippy::too_many_arguments)]
async fn plan(
    settings: &config::Settings,
    report: &Report,
    sink: &mut Database,
    dataset: &str,
    range: DateRange,
    restart: bool,
    positions_usable: bool,
    unit: ShardUnit,
) -> anyhow::Result<Option<Arc<Vec<Shard>>>> {
    let now = now_ns();
    let mut todo = Vec::new();
    let mut counts = PlanCounts::default();
    for symbol in &report.symbols {
        let all = shards_of(symbol, range, now, unit);
        let saved = match (restart, all.first(), all.last()) {
            (false, Some(a), Some(b)) => {
                sink.load_progress(dataset, symbol.as_str(), a.day, b.day)
                    .await?
            }
            _ => Vec::new(),
        };
        let (mut left, c) = apply_progress(all, &saved, positions_usable);
        todo.append(&mut left);
        counts += c;
    }
    log_plan(settings, counts, todo.len(), restart, report.unit);
    if todo.is_empty() {
        tracing::info!(
            "[DONE] {}: all {} {} of {range} were imported by earlier runs; nothing to fetch (--restart fetches them again)",
            report.label(),
            counts.total,
            report.unit
        );
        return Ok(None);
    }
    let shards = Arc::new(todo);
    sink.track(Tracking {
        dataset: dataset.to_string(),
        shards: shards.clone(),
    });
    Ok(Some(shards))
}

/// `import-api trades|bars`: into the database, through the same pipeline, progress and
/// resume as quotes. Bars cover whole New York days (a daily bar opens at midnight).
async fn run_trades_or_bars(
    args: &ImportArgs,
    settings: config::Settings,
    symbols: Vec<Symbol>,
    range: DateRange,
    thinning: &Thinning,
) -> anyhow::Result<Outcome> {
    let kind = match args.kind {
        DataKind::Trades => "trades",
        _ => "bars",
    };
    if !thinning.is_raw() {
        return Err(usage(format!(
            "--nbbo-changes, --sample and --aggregate thin quotes; they do not apply to {kind}"
        )));
    }
    let (layout, table, noun) = dataset_of(args.kind, &args.bars)?;
    let (req, range, dataset) = match &layout {
        Layout::Bars {
            timeframe,
            adjustment,
        } => (
            Request::bars(timeframe, adjustment),
            calendar_days(range),
            format!("bars/{timeframe}/{adjustment}"),
        ),
        _ => (Request::trades(), range, "trades".to_string()),
    };
    let client = client_for(&settings)?;
    init_logging(settings.log_path())?;
    if settings.format == Format::Parquet {
        let target = ParquetTarget { layout, req, noun };
        let (s, r) = (symbols, args.restart);
        return if kind == "trades" {
            import_to_parquet::<Trade>(&settings, client, s, range, r, target).await
        } else {
            import_to_parquet::<Bar>(&settings, client, s, range, r, target).await
        };
    }
    let report = Report {
        symbols,
        noun,
        unit: if kind == "trades" { "days" } else { "months" },
        table: table.name,
        spec: String::new(),
        from: settings.api_url.clone(),
    };
    let (mut sink, dropped) = open_database(&settings, &report, table, range).await?;
    let unit = if kind == "trades" {
        ShardUnit::Session
    } else {
        ShardUnit::Month
    };
    let result = async {
        let Some(shards) = plan(
            &settings,
            &report,
            &mut sink,
            &dataset,
            range,
            args.restart,
            true,
            unit,
        )
        .await?
        else {
            return Ok(Outcome::Completed);
        };
        let source = ApiSource::new(client, req, shards.clone(), &settings);
        let by_symbol = source.by_symbol.clone();
        let batch = settings.batch_size;
        let outcome = if kind == "trades" {
            pipe(
                &report,
                range,
                batch,
                &mut sink,
                Passthrough::<Trade>::default,
                source,
            )
            .await?
        } else {
            pipe(
                &report,
                range,
                batch,
                &mut sink,
                Passthrough::<Bar>::default,
                source,
            )
            .await?
        };
        report_symbols(&report, &shards, &by_symbol, range, outcome);
        Ok(outcome)
    }
    .await;
    close_database(sink, dropped, result).await
}

fn now_ns() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

/// The opening line about what earlier runs already did and how this one fetches.
fn log_plan(
    settings: &config::Settings,
    counts: PlanCounts,
    todo: usize,
    restart: bool,
    unit: &str,
) {
    let pace = match settings.rate_limit {
        0 => "no client-side rate limit".to_string(),
        n => format!("at most {n} requests/min"),
    };
    if restart {
        tracing::info!("[RESUME] --restart: ignoring earlier progress");
    } else if counts.skipped > 0 || counts.resumed > 0 {
        tracing::info!(
            "[RESUME] {} of {} {unit} already imported (skipped); {} resumed after their last committed row",
            counts.skipped,
            counts.total,
            counts.resumed
        );
    }
    tracing::info!(
        "[API] fetching {todo} {unit}, {} at a time, {pace}",
        settings.concurrency.min(todo.max(1))
    );
}

/// The API as a pipeline source: the planned shards, fetched concurrently.
struct ApiSource {
    client: AlpacaClient,
    req: Request,
    shards: Arc<Vec<Shard>>,
    concurrency: usize,
    /// Quotes fetched per symbol, filled in when the source completes.
    by_symbol: Arc<std::sync::Mutex<BTreeMap<String, u64>>>,
}

impl ApiSource {
    /// `--concurrency` and `--symbols-per-request` (when not auto) come from `settings`.
    fn new(
        client: AlpacaClient,
        mut req: Request,
        shards: Arc<Vec<Shard>>,
        settings: &config::Settings,
    ) -> Self {
        if let Some(n) = settings.symbols_per_request {
            req.symbols_per_request = n;
        }
        ApiSource {
            client,
            req,
            shards,
            concurrency: settings.concurrency,
            by_symbol: Arc::default(),
        }
    }
}

impl<R: ApiRecord> Source<R> for ApiSource {
    fn shard_count(&self) -> Option<u64> {
        Some(self.shards.len() as u64)
    }

    fn requests(&self) -> Option<Arc<RequestStats>> {
        Some(self.client.stats())
    }

    fn spawn(
        self,
        tx: mpsc::Sender<Chunk<R>>,
        cancel: watch::Receiver<bool>,
    ) -> JoinHandle<anyhow::Result<Fetched>> {
        tokio::spawn(async move {
            let stats = stream_shards(
                self.client,
                self.req,
                self.shards,
                self.concurrency,
                tx,
                cancel,
            )
            .await?;
            if let Ok(mut slot) = self.by_symbol.lock() {
                *slot = stats.by_symbol;
            }
            Ok(Fetched {
                pages: stats.pages,
                rows: stats.rows,
            })
        })
    }
}

/// Where a pipeline's rows come from: a task feeding the channel, and what progress can
/// show about it.
trait Source<R> {
    fn shard_count(&self) -> Option<u64> {
        None
    }
    fn requests(&self) -> Option<Arc<RequestStats>> {
        None
    }
    fn spawn(
        self,
        tx: mpsc::Sender<Chunk<R>>,
        cancel: watch::Receiver<bool>,
    ) -> JoinHandle<anyhow::Result<Fetched>>;
}

/// What `import-api --format parquet` writes: the dataset, the request, and the noun for
/// messages.
struct ParquetTarget {
    layout: Layout,
    req: Request,
    noun: String,
}

/// `data import-api ... --format parquet`: whole New York days (bars: whole months) into
/// the Parquet store. A file in place is its unit's resume record: a rerun fetches only
/// days (months) without one.
async fn import_to_parquet<R: ApiRecord + StoreRecord>(
    settings: &config::Settings,
    client: AlpacaClient,
    symbols: Vec<Symbol>,
    asked: DateRange,
    restart: bool,
    target: ParquetTarget,
) -> anyhow::Result<Outcome> {
    let ParquetTarget { layout, req, noun } = target;
    let unit = layout.unit();
    let range = layout.whole_units(asked);
    if range != asked {
        tracing::info!(
            "[FILE] the Parquet store keeps whole New York {}: importing {range} (asked for {asked})",
            unit.noun()
        );
    }
    if settings.skip_duplicates || settings.drop_indexes {
        tracing::warn!("[FILE] skip_duplicates and drop_indexes apply to databases; ignored for format parquet");
    }
    let now = now_ns();
    let all: Vec<Shard> = symbols
        .iter()
        .flat_map(|s| shards_of(s, range, now, unit))
        .collect();
    let total = all.len();
    let root = &settings.historical_path;
    let todo: Vec<Shard> = all
        .into_iter()
        .filter(|s| {
            restart || !s.can_finish || !layout.file(root, s.symbol.as_str(), s.day).exists()
        })
        .collect();
    let counts = PlanCounts {
        total,
        skipped: total - todo.len(),
        resumed: 0,
    };
    log_plan(settings, counts, todo.len(), restart, unit.noun());
    let report = Report {
        symbols,
        noun,
        unit: unit.noun(),
        table: "parquet",
        spec: String::new(),
        from: settings.api_url.clone(),
    };
    if todo.is_empty() {
        tracing::info!(
            "[DONE] {}: all {total} {} of {range} are in the Parquet store already; nothing to fetch (--restart fetches them again)",
            report.label(),
            unit.noun()
        );
        return Ok(Outcome::Completed);
    }
    let shards = Arc::new(todo);
    let mut sink = ParquetSink::<R>::new(root, layout.clone(), shards.clone())?;
    tracing::info!(
        "[IMPORT] {} {range} (feed {}) into the Parquet store {}, batches of {}",
        report.label(),
        settings.feed.as_str(),
        layout.dir(root).display(),
        settings.batch_size
    );
    let source = ApiSource::new(client, req, shards.clone(), settings);
    let by_symbol = source.by_symbol.clone();
    let result = pipe(
        &report,
        range,
        settings.batch_size,
        &mut sink,
        Passthrough::<R>::default,
        source,
    )
    .await;
    if let Ok(outcome) = &result {
        report_symbols(&report, &shards, &by_symbol, range, *outcome);
    }
    let files = &mut sink.written;
    files.sort_by_key(|d| d.date);
    let kept = match (files.first(), files.last()) {
        (Some(a), Some(b)) => format!(
            "{} {} files, {} to {}, {} rows",
            files.len(),
            if unit == ShardUnit::Month {
                "month"
            } else {
                "day"
            },
            a.date,
            b.date,
            files.iter().map(|d| d.rows).sum::<u64>()
        ),
        _ => "no files".to_string(),
    };
    match &result {
        Ok(Outcome::Completed) => {
            tracing::info!("[FILE] wrote {kept} under {}", layout.dir(root).display())
        }
        _ => tracing::warn!(
            "[FILE] kept {kept}; the {} in progress were discarded (rerun to complete them)",
            unit.noun()
        ),
    }
    result
}

/// `data load-historical`: the Parquet store's files for the range, into the database.
pub async fn load_historical(args: LoadArgs) -> anyhow::Result<Outcome> {
    let settings = config::resolve(&args.settings, &config::process_env)?;
    let (layout, table, noun) = dataset_of(args.kind, &args.bars)?;
    let symbols = parse_symbol_list(&args.symbol, "SYMBOLS")?;
    if symbols.is_empty() {
        return Err(usage("SYMBOLS is empty: name at least one symbol".into()));
    }
    let mut range = DateRange::parse(&args.start, &args.end).map_err(|e| usage(e.to_string()))?;
    if args.kind == DataKind::Bars {
        range = calendar_days(range);
    }
    init_logging(settings.log_path())?;
    let root = settings.historical_path.clone();
    let report = Report {
        symbols,
        noun,
        unit: layout.unit().noun(),
        table: table.name,
        spec: String::new(),
        from: format!("the Parquet store {}", root.display()),
    };
    let (mut sink, dropped) = open_database(&settings, &report, table, range).await?;
    let source = StoreSource {
        root,
        layout: layout.clone(),
        symbols: report.symbols.clone(),
        range,
    };
    let batch = settings.batch_size;
    let result = match layout {
        Layout::Quotes => {
            let make = Passthrough::<Quote>::default;
            pipe(&report, range, batch, &mut sink, make, source).await
        }
        Layout::Trades => {
            let make = Passthrough::<Trade>::default;
            pipe(&report, range, batch, &mut sink, make, source).await
        }
        Layout::Bars { .. } => {
            let make = Passthrough::<Bar>::default;
            pipe(&report, range, batch, &mut sink, make, source).await
        }
    };
    close_database(sink, dropped, result).await
}

/// The Parquet store as a pipeline source (`load-historical`): each symbol's files in turn.
struct StoreSource {
    root: std::path::PathBuf,
    layout: Layout,
    symbols: Vec<Symbol>,
    range: DateRange,
}

impl<R: StoreRecord> Source<R> for StoreSource {
    fn spawn(
        self,
        tx: mpsc::Sender<Chunk<R>>,
        cancel: watch::Receiver<bool>,
    ) -> JoinHandle<anyhow::Result<Fetched>> {
        let StoreSource {
            root,
            layout,
            symbols,
            range,
        } = self;
        tokio::task::spawn_blocking(move || {
            let mut fetched = Fetched { pages: 0, rows: 0 };
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
                            ShardUnit::Month => "month",
                            ShardUnit::Session => "weekday",
                        },
                        layout.dir(&root).display(),
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

/// Opens the database for an import into `table`: thinning id, the `--skip-duplicates`
/// range check, `--drop-indexes`, and the opening log line. Returns whether indexes were
/// dropped (so `close_database` rebuilds them).
async fn open_database(
    settings: &config::Settings,
    report: &Report,
    table: &'static TableSpec,
    range: DateRange,
) -> anyhow::Result<(Database, bool)> {
    let mut sink = Database::open(
        &settings.database_url,
        Duration::from_secs(settings.busy_timeout_secs),
    )
    .await?;
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

/// Rebuilds dropped indexes whatever the outcome, then returns the outcome.
async fn close_database(
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
    result
}

/// One pipeline run: the source task feeding the bounded channel, the transforms and batcher
/// writing to the sink, Ctrl-C watched, and the summary or error at the end.
async fn pipe<T, S, M, Src>(
    report: &Report,
    range: DateRange,
    batch_size: usize,
    sink: &mut S,
    make_transform: M,
    source: Src,
) -> anyhow::Result<Outcome>
where
    T: Transform,
    S: Sink<T::Out>,
    M: FnMut() -> T,
    Src: Source<T::In>,
{
    let who = report.who();
    let (cancel_tx, cancel_rx) = cancellation();
    watch_signals(cancel_tx);
    let (tx, mut rx) = mpsc::channel(CHANNEL_PAGES);
    let requests = source.requests();
    let mut progress = Progress::start(
        range,
        &format!("{who} {}", report.noun),
        source.shard_count().map(|n| (n, report.unit)),
        requests.clone(),
    );
    progress.set_item(match report.noun.as_str() {
        "trades" => "trade",
        n if n.ends_with("bars") => "bar",
        _ => "quote",
    });
    let source = source.spawn(tx, cancel_rx.clone());
    let mut last: Option<BatchCommitted> = None;
    let batched = run_batcher(&mut rx, make_transform, sink, batch_size, cancel_rx, |c| {
        progress.on_commit(c);
        if c.rows > 0 {
            last = Some(*c);
        }
    })
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
                how_far(last)
            )));
        }
    };
    let fetched = match source.await {
        Ok(Ok(stats)) => stats,
        Ok(Err(e)) => {
            sink.abort();
            return Err(anyhow!(
                "importing {} from {} failed: {e:#}; {}; rerun the same command to finish",
                report.label(),
                report.from,
                how_far(last)
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
            how_far(last),
            secs
        );
        return Ok(Outcome::Interrupted);
    }
    sink.finish().await?;
    let rate = fetched.rows as f64 / secs.max(1e-9);
    let unit = if report.from.starts_with("the Parquet store") {
        "files"
    } else {
        "pages"
    };
    if report.spec.is_empty() {
        tracing::info!(
            "[DONE] {who} {}: {} rows, {} {unit}, {} batches, {:.1}s elapsed, {:.0} rows/s, into {}{api}",
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
            "[DONE] {}: {} quotes in, {} rows kept ({:.2}%), {} pages, {} batches, {:.1}s elapsed, {:.0} quotes/s{api}",
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

/// `data archive`.
pub async fn archive(args: ArchiveArgs) -> anyhow::Result<Outcome> {
    let settings = config::resolve(&args.settings, &config::process_env)?;
    let (layout, _, noun) = dataset_of(args.kind, &args.bars)?;
    let symbol = Symbol::parse(&args.symbol).map_err(|e| anyhow!(e))?;
    let today = new_york_date(chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX));
    let cutoff = crate::store::parse_cutoff(&args.older_than, today)?;
    init_logging(settings.log_path())?;
    let mut db = Database::open(
        &settings.database_url,
        Duration::from_secs(settings.busy_timeout_secs),
    )
    .await?;
    let started = Instant::now();
    let root = &settings.historical_path;
    let report = match layout {
        Layout::Quotes => archive_units::<Quote>(&mut db, root, &layout, &symbol, cutoff).await?,
        Layout::Trades => archive_units::<Trade>(&mut db, root, &layout, &symbol, cutoff).await?,
        Layout::Bars { .. } => {
            archive_units::<Bar>(&mut db, root, &layout, &symbol, cutoff).await?
        }
    };
    tracing::info!(
        "[DONE] archived {symbol} {noun} before {cutoff}: {} {}, {} rows moved to {} in {:.1}s",
        report.units,
        layout.unit().noun(),
        report.rows,
        root.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(Outcome::Completed)
}
