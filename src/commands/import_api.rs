//! `data import-api`: the Alpaca API into the database (optionally thinned) or the Parquet
//! store, through the one planner and the one run function.

use super::{close_database, open_database};
use crate::args::ImportArgs;
use crate::config::Format;
use crate::dataset::{Asset, DatasetId};
use crate::job::Job;
use crate::model::{Feed as ModelFeed, Symbol};
use crate::progress::init_logging;
use crate::resume::{Saved, Shard, Tracking};
use crate::run::{
    now_ns, pipe, plan, report_symbols, shards_to_fetch, Cancel, Feed, Fetched, Outcome,
    ProgressStore, Report, Saves, Source, SourceTask, Units,
};
use crate::sink::database::Database;
use crate::sink::parquet::ParquetSink;
use crate::source::alpaca::{
    stream_shards, AlpacaClient, ClientConfig, Credentials, Request, KEY_ENV, SECRET_ENV,
    UNAUTHENTICATED_RATE_LIMIT,
};
use crate::source::claims::Claims;
use crate::source::pace::RequestStats;
use crate::source::retry::RetryPolicy;
use crate::standin::{Standin, StandinConfig};
use crate::storage::Location;
use crate::time::{format_nanos, NANOS_PER_SEC};
use crate::transform::{Aggregate, Passthrough};
use anyhow::{anyhow, Context};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub async fn run(args: ImportArgs) -> anyhow::Result<Outcome> {
    let mut job = Job::import_api(&args)?;
    // `--standin`: the offline stand-in, in this process, for as long as the import runs.
    let _standin = match args.standin {
        true => {
            let s = Standin::start(StandinConfig::default())
                .await
                .map_err(|e| anyhow!("cannot start the stand-in: {e}"))?;
            job.settings.api_url = s.url();
            job.settings.trading_api_url = s.url();
            job.synthetic = true;
            Some(s)
        }
        false => None,
    };
    if let (true, Some(q)) = (args.dry_run, &job.contracts) {
        println!(
            "dry run: would list the option contracts of {} at {}, store them in \
             option_contracts and import their {} {}",
            q.describe(),
            job.settings.trading_api_url,
            job.dataset.noun(),
            job.range
        );
        println!("  nothing was fetched or written");
        return Ok(Outcome::Completed);
    }
    if !job.synthetic && crate::source::alpaca::is_standin(&job.settings.api_url).await {
        // The stand-in served over HTTP (`alpaca-standin`): its rows are synthetic however
        // they are fetched, and never sent the user's keys.
        job.synthetic = true;
    }
    if args.dry_run {
        // No request, no log file, no write: the plan, on stdout.
        let (todo, counts) = super::dry_run::planned(&job).await?;
        print!("dry run: {}", super::dry_run::describe(&job, &todo, counts));
        println!("  nothing was fetched or written");
        return Ok(Outcome::Completed);
    }
    client_for(&job, None)?;
    init_logging(job.settings.log_path())?;
    if job.contracts.is_some() {
        discover(&mut job).await?;
        if job.symbols.is_empty() {
            return Ok(Outcome::Completed);
        }
    }
    if job.synthetic {
        tracing::warn!(
            "[STANDIN] importing from the offline stand-in at {}: synthetic data for trying \
             the tool, not market data (`data status` marks it; it never mixes with API rows)",
            job.settings.api_url
        );
    }
    // Two importers of the same job on one store would fetch the same rows blind; the
    // second says so. `--coordinate` importers share the job instead.
    let _lock = match job.coordinate {
        None => Some(super::lock::lock_job(&job).await?),
        Some(_) => None,
    };
    let outcome = import(&job).await?;
    if job.synthetic {
        tracing::warn!(
            target: crate::progress::SUMMARY,
            "[STANDIN] these rows are the offline stand-in's synthetic data, not market data; \
             `data status` marks them with *"
        );
    }
    Ok(outcome)
}

/// Imports `job` from the API into the store its settings name (the database, or the
/// Parquet store): `import-api`, and `sync` for each dataset it brings up to date.
pub(crate) async fn import(job: &Job) -> anyhow::Result<Outcome> {
    let client = client_for(job, job.asof.clone())?;
    let options_from = crate::time::new_york_time_nanos(OPTIONS_FROM, 0, 0);
    if job.dataset.asset() == Asset::Options && job.range.start_ns < options_from {
        tracing::warn!(
            target: crate::progress::SUMMARY,
            "[API] Alpaca's historical option data starts in February 2024: days before \
             {OPTIONS_FROM} come back empty (imported as done with no rows)"
        );
    }
    let Some(available) = available_until(job) else {
        return Ok(Outcome::Completed);
    };
    match job.settings.format {
        Format::Parquet => to_parquet(job, client, available).await,
        Format::Database => to_database(job, client, available).await,
    }
}

/// The first day of Alpaca's historical option data ("since February 2024").
const OPTIONS_FROM: chrono::NaiveDate = match chrono::NaiveDate::from_ymd_opt(2024, 2, 1) {
    Some(d) => d,
    None => chrono::NaiveDate::MIN,
};

/// `--underlying`: lists the contracts, stores them in `option_contracts`, and makes them
/// the job's symbols.
async fn discover(job: &mut Job) -> anyhow::Result<()> {
    let Some(q) = job.contracts.clone() else {
        return Ok(());
    };
    let client = client_for(job, None)?;
    let (contracts, pages) =
        crate::source::contracts::list_contracts(&client, &job.settings.trading_api_url, &q)
            .await
            .map_err(|e| anyhow!("cannot list the option contracts of {}: {e}", q.underlying))?;
    let mut db = Database::open(
        &job.settings.database_url,
        Duration::from_secs(job.settings.busy_timeout_secs),
    )
    .await?;
    let listed_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    db.upsert_contracts(&contracts, &listed_at).await?;
    drop(db);
    let expired = contracts.iter().filter(|c| c.status != "active").count();
    let mut symbols = Vec::new();
    for c in &contracts {
        match Symbol::parse_option(&c.symbol) {
            Ok(s) => symbols.push(s),
            Err(e) => tracing::warn!("[CONTRACTS] skipped: {e}"),
        }
    }
    tracing::info!(
        target: crate::progress::SUMMARY,
        "[CONTRACTS] {}: {} contracts ({expired} expired) in {pages} pages, stored in \
         option_contracts of {}",
        q.describe(),
        symbols.len(),
        crate::config::redact_url(&job.settings.database_url)
    );
    job.symbols = symbols;
    Ok(())
}

/// How many shards an import of `job` would fetch now (0: nothing to do), planned as
/// [`import`] plans them but without a word.
pub(crate) async fn shards_pending(job: &Job) -> anyhow::Result<usize> {
    let available = data_until(job);
    Ok(match job.settings.format {
        Format::Database => {
            let mut db = super::open_quietly(&job.settings).await?;
            shards_to_fetch(job, &mut db, job.range, available, true)
                .await?
                .0
                .len()
        }
        Format::Parquet => {
            let mut store = StoreProgress {
                root: job.settings.store_root(),
                dataset: job.dataset,
            };
            let range = job.dataset.whole_units(job.range);
            let (todo, _) = shards_to_fetch(job, &mut store, range, available, false).await?;
            todo.iter().filter(|s| s.can_finish).count()
        }
    })
}

/// Up to when the API has data for the job: now, or for feed sip `--sip-delay` minutes
/// before now (Alpaca's free plan refuses the last 15 minutes of SIP data).
pub(crate) fn data_until(job: &Job) -> i64 {
    let (now, settings) = (now_ns(), &job.settings);
    let delay = settings.sip_delay_minutes as i64;
    match settings.feed {
        ModelFeed::Sip => now - delay * 60 * NANOS_PER_SEC,
        _ => now,
    }
}

/// [`data_until`], logged when that cuts the range short. `None` (logged) when the whole
/// range is later than that.
fn available_until(job: &Job) -> Option<i64> {
    let (now, settings) = (now_ns(), &job.settings);
    let delay = settings.sip_delay_minutes as i64;
    let available = data_until(job);
    if job.range.start_ns > available {
        tracing::info!(
        target: crate::progress::SUMMARY,
                    "[DONE] nothing to import yet: START {} is later than {} ({})",
                    format_nanos(job.range.start_ns),
                    format_nanos(available),
                    if available < now {
                        format!("feed sip data ends {delay} minutes before now: --sip-delay")
                    } else {
                        "now".to_string()
                    }
                );
        return None;
    }
    if job.range.end_ns > available && available < now {
        tracing::info!(
        target: crate::progress::SUMMARY,
                    "[API] feed sip: importing up to {} ({delay} minutes ago, --sip-delay: Alpaca's free \
                     plan refuses SIP data of the last 15 minutes) instead of {}; the day this cuts \
                     short stays unfinished, and a later run completes it",
                    format_nanos(available),
                    format_nanos(job.range.end_ns)
                );
    }
    Some(available)
}

fn client_for(job: &Job, asof: Option<String>) -> anyhow::Result<AlpacaClient> {
    let settings = &job.settings;
    // The stand-in takes any key: its own, never the user's.
    let mut rate_limit = settings.rate_limit;
    let creds = match (job.synthetic, job.dataset.asset()) {
        (true, _) => Credentials::new("standin", "standin"),
        (false, Asset::Stocks | Asset::Options) => {
            Credentials::from_env().map_err(|e| anyhow!(e))?
        }
        // Crypto data is public: credentials only raise the rate limit.
        (false, Asset::Crypto) => Credentials::from_env().unwrap_or_else(|_| {
            let limit = match rate_limit {
                0 => UNAUTHENTICATED_RATE_LIMIT,
                n => n.min(UNAUTHENTICATED_RATE_LIMIT),
            };
            tracing::info!(
                target: crate::progress::SUMMARY,
                "[API] no Alpaca credentials ({KEY_ENV}, {SECRET_ENV}): crypto data is public, \
                 asked without them at {limit} requests/min (set them for your plan's limit)"
            );
            rate_limit = limit;
            Credentials::anonymous()
        }),
    };
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
            rate_limit,
            asof,
        },
        &creds,
    )
    .map_err(|e| anyhow!(e))
}

/// Into the database: plan against `import_progress`, then run with the thinning asked for.
/// Thinned rows are not the raw stream: a started day of them is fetched again whole.
async fn to_database(job: &Job, client: AlpacaClient, available: i64) -> anyhow::Result<Outcome> {
    let settings = &job.settings;
    let table = job.table();
    let report = Report::new(job, table.name, settings.api_url.clone());
    let target = (table, job.dataset);
    let (mut sink, dropped) = open_database(settings, &report, target, job.range).await?;
    let result = async {
        let names: Vec<&str> = job.symbols.iter().map(Symbol::as_str).collect();
        sink.claim_symbols(&names, job.synthetic).await?;
        let raw = job.thinning.is_raw();
        let Some(shards) = plan(job, &report, &mut sink, job.range, available, raw).await? else {
            // Nothing to fetch, but the factors may use bars imported since.
            super::refresh_adjustments(job, &mut sink).await?;
            return Ok(Outcome::Completed);
        };
        sink.track(Tracking {
            dataset: job.progress_key(),
            shards: shards.clone(),
        });
        let mut source = ApiSource::new(client, job, shards.clone());
        if let Some(lease) = job.coordinate {
            let url = &settings.database_url;
            let claims = Claims::postgres(url, &job.progress_key(), &shards, lease).await?;
            announce(&claims, shards.len(), lease);
            source.claims = Some(claims);
        }
        let claims = source.claims.clone();
        let (range, batch, sink) = (job.range, settings.batch_size, &mut sink);
        let (outcome, fetched) = match job.thinning.aggregate_ns {
            None if raw => pipe(&report, range, batch, sink, || Passthrough, source).await?,
            None => {
                pipe(
                    &report,
                    range,
                    batch,
                    sink,
                    || job.thinning.filters(),
                    source,
                )
                .await?
            }
            Some(width) => {
                let make = || Aggregate::new(job.thinning.filters(), width);
                pipe(&report, range, batch, sink, make, source).await?
            }
        };
        if outcome == Outcome::Completed {
            match &claims {
                None => report_symbols(&report, &shards, &fetched, range),
                // Symbols other importers fetched have no rows here: no per-symbol report.
                Some(c) => report_share(c, shards.len()),
            }
            super::refresh_adjustments(job, sink).await?;
        }
        Ok(outcome)
    }
    .await;
    close_database(sink, dropped, result).await
}

impl ProgressStore for Database {
    async fn saved(&mut self, dataset: &str, symbol: &Symbol, units: Units) -> Saves {
        let (first, last) = units.into_inner();
        self.load_progress(dataset, symbol.as_str(), first, last)
            .await
    }

    fn done_phrase(&self) -> &'static str {
        "were imported by earlier runs"
    }
}

/// The Parquet store's progress: a file in place is its unit's record, done and whole (a
/// unit in progress is never renamed into place, so it has none).
pub(crate) struct StoreProgress {
    pub(crate) root: Location,
    pub(crate) dataset: DatasetId,
}

impl ProgressStore for StoreProgress {
    async fn saved(&mut self, _dataset: &str, symbol: &Symbol, units: Units) -> Saves {
        let (first, last) = units.into_inner();
        let d = self.dataset;
        let (from, until) = (d.unit_bounds(first).0, d.unit_bounds(last).1);
        // One listing of the symbol's folder, not a lookup per unit.
        let dir = d.symbol_dir(self.root.path(), symbol.as_str());
        let files: std::collections::HashSet<PathBuf> = self
            .root
            .files_under(&dir)?
            .into_iter()
            .map(|(p, _)| p)
            .filter(|p| {
                // A local file cut short (a full disk, a copy interrupted) is no record of a
                // finished day: it is fetched and written again. Objects in a bucket are
                // published whole by one PUT.
                let day_file = p
                    .file_name()
                    .is_some_and(|n| n == crate::dataset::FILE_NAME);
                let whole = !day_file
                    || self.root.is_remote()
                    || crate::storage::ends_with_footer(p);
                if !whole {
                    tracing::warn!(
                        "[RESUME] {} has no Parquet footer (damaged or cut short): its {} is fetched again",
                        p.display(),
                        d.unit().noun().trim_end_matches('s')
                    );
                }
                whole
            })
            .collect();
        Ok(d.units_in(from, until - 1)
            .into_iter()
            .filter(|&key| files.contains(&d.file(self.root.path(), symbol.as_str(), key)))
            .map(|day| {
                let (start_ns, end) = d.unit_bounds(day);
                Saved {
                    day,
                    start_ns,
                    end_ns: end - 1,
                    last: None,
                    done: true,
                }
            })
            .collect())
    }

    fn done_phrase(&self) -> &'static str {
        "are in the Parquet store already"
    }
}

/// Into the Parquet store: whole New York days (bars: whole months). A file in place is its
/// unit's resume record: a rerun fetches only days (months) without one.
async fn to_parquet(job: &Job, client: AlpacaClient, available: i64) -> anyhow::Result<Outcome> {
    let settings = &job.settings;
    let layout = job.dataset;
    let unit = layout.unit();
    let range = layout.whole_units(job.range);
    if range != job.range {
        tracing::info!(
        target: crate::progress::SUMMARY,
                    "[FILE] the Parquet store keeps whole New York {}: importing {range} (asked for {})",
                    unit.noun(),
                    job.range
                );
    }
    if settings.skip_duplicates || settings.drop_indexes {
        tracing::warn!("[FILE] skip_duplicates and drop_indexes apply to databases; ignored for format parquet");
    }
    let root = &settings.store_root();
    root.check()?;
    claim_files(job, root)?;
    let report = Report::new(job, "parquet", settings.api_url.clone());
    let mut store = StoreProgress {
        root: root.clone(),
        dataset: layout,
    };
    let Some(shards) = plan(job, &report, &mut store, range, available, false).await? else {
        return Ok(Outcome::Completed);
    };
    // A file is a whole day (month): one the data does not reach the end of yet waits.
    let (whole, waiting): (Vec<Shard>, Vec<Shard>) =
        shards.iter().cloned().partition(|s| s.can_finish);
    if let Some(first) = waiting.first() {
        tracing::info!(
        target: crate::progress::SUMMARY,
                    "[FILE] the Parquet store keeps whole {}: {} {} not over yet (data up to {}), so a \
                     later run imports it",
                    unit.noun(),
                    first.day,
                    if waiting.len() == 1 {
                        "is"
                    } else {
                        "and later are"
                    },
                    format_nanos(available)
                );
    }
    if whole.is_empty() {
        return Ok(Outcome::Completed);
    }
    let shards = Arc::new(whole);
    let mut sink = ParquetSink::new(root, layout, shards.clone())?;
    let claims = match job.coordinate {
        Some(lease) => {
            let claims = Claims::bucket(root, layout, &shards, lease)?;
            announce(&claims, shards.len(), lease);
            sink.release_claims = true;
            Some(claims)
        }
        None => None,
    };
    tracing::info!(
        "[IMPORT] {} {range} (feed {}) into the Parquet store {}, batches of {}",
        report.label(),
        settings.feed.as_str(),
        root.show(&layout.dir(root.path())),
        settings.batch_size
    );
    let mut source = ApiSource::new(client, job, shards.clone());
    source.claims = claims.clone();
    let make = || Passthrough;
    let result = pipe(&report, range, settings.batch_size, &mut sink, make, source).await;
    if let Ok((Outcome::Completed, fetched)) = &result {
        match &claims {
            None => report_symbols(&report, &shards, fetched, range),
            Some(c) => {
                report_share(c, shards.len());
                let swept = c.sweep()?;
                if swept > 0 {
                    tracing::info!(
                        "[COORD] deleted {swept} claim marker(s) of days already in place"
                    );
                }
            }
        }
    }
    let files = &mut sink.written;
    files.sort_by_key(|d| d.date);
    let kept = match (files.first(), files.last()) {
        (Some(a), Some(b)) => format!(
            "{} {} files, {} to {}, {} rows",
            files.len(),
            unit.file_noun(),
            a.date,
            b.date,
            files.iter().map(|d| d.rows).sum::<u64>()
        ),
        _ => "no files".to_string(),
    };
    match &result {
        Ok((Outcome::Completed, _)) => {
            tracing::info!(target: crate::progress::SUMMARY, "[FILE] wrote {kept} under {}", root.show(&layout.dir(root.path())))
        }
        _ => tracing::warn!(
            "[FILE] kept {kept}; the {} in progress were discarded (rerun to complete them)",
            unit.noun()
        ),
    }
    result.map(|(outcome, _)| outcome)
}

/// `--coordinate`: says where the job's shards are claimed.
fn announce(claims: &Claims, shards: usize, lease: Duration) {
    tracing::info!(
        target: crate::progress::SUMMARY,
        "[COORD] sharing the job's {shards} shards with any importer started with the same command (leases of {}s, {})",
        lease.as_secs_f64(),
        claims.place()
    );
}

/// `--coordinate`: this importer's share of the job (no per-symbol report: the symbols
/// other importers fetched have no rows here).
fn report_share(claims: &Claims, shards: usize) {
    use std::sync::atomic::Ordering::Relaxed;
    let (claimed, taken_over) = (
        claims.claimed.load(Relaxed),
        claims.taken_over.load(Relaxed),
    );
    let rest = match shards.saturating_sub(claimed as usize) {
        0 => "no other importer fetched any".to_string(),
        n => format!("other importers fetched the other {n} (or hold them still)"),
    };
    tracing::info!(
        target: crate::progress::SUMMARY,
        "[COORD] this importer fetched {claimed} of the job's {shards} shards ({taken_over} taken over from importers whose leases expired); {rest}"
    );
}

/// The Parquet store's side of "stand-in rows never mix with market data": a symbol whose
/// files are the stand-in's carries a marker file; an import of the other kind is refused,
/// and a stand-in import marks the symbols it writes.
fn claim_files(job: &Job, root: &Location) -> anyhow::Result<()> {
    for symbol in &job.symbols {
        let marker = job.dataset.synthetic_marker(root.path(), symbol.as_str());
        let dir = marker
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_default();
        let files = root.files_under(&dir)?;
        let marked = files.iter().any(|(p, _)| *p == marker);
        let has_files = files.iter().any(|(p, _)| *p != marker);
        if has_files && marked != job.synthetic {
            anyhow::bail!(
                "{symbol} in {} holds {}; {} would mix the two: use another --historical-path",
                root.show(&dir),
                if marked {
                    "the stand-in's synthetic rows"
                } else {
                    "market data from the API"
                },
                if job.synthetic {
                    "--standin"
                } else {
                    "importing from the API"
                }
            );
        }
        if job.synthetic && !marked {
            root.write_small(&marker, b"synthetic rows from the offline stand-in\n")
                .with_context(|| format!("cannot mark {}", root.show(&dir)))?;
        }
    }
    Ok(())
}

/// The API as a pipeline source: the planned shards, fetched concurrently.
struct ApiSource {
    client: AlpacaClient,
    req: Request,
    shards: Arc<Vec<Shard>>,
    concurrency: Option<usize>,
    /// `--coordinate`: the shards are claimed before they are fetched.
    claims: Option<Arc<Claims>>,
}

impl ApiSource {
    /// `--concurrency` and `--symbols-per-request` (when not auto) come from the job's
    /// settings, corporate actions' `--types` from the job.
    fn new(client: AlpacaClient, job: &Job, shards: Arc<Vec<Shard>>) -> Self {
        let mut req = Request::for_dataset(job.dataset);
        if let Some(n) = job.settings.symbols_per_request {
            req.symbols_per_request = n;
        }
        if let Some(types) = &job.action_types {
            req.extra.push(("types", types.clone()));
        }
        ApiSource {
            client,
            req,
            shards,
            concurrency: job.settings.concurrency,
            claims: None,
        }
    }
}

impl Source for ApiSource {
    fn shard_count(&self) -> Option<u64> {
        Some(self.shards.len() as u64)
    }

    fn requests(&self) -> Option<Arc<RequestStats>> {
        Some(self.client.stats())
    }

    /// Coordinated, the other importers wait for this one's done marks: a shard complete
    /// is committed within a quarter second even while the fetchers wait.
    fn idle_commit(&self) -> Option<Duration> {
        self.claims.as_ref().map(|_| Duration::from_millis(250))
    }

    fn spawn(self, tx: Feed, cancel: Cancel) -> SourceTask {
        tokio::spawn(async move {
            let stats = stream_shards(
                self.client,
                self.req,
                self.shards,
                self.concurrency,
                self.claims,
                tx,
                cancel,
            )
            .await?;
            Ok(Fetched {
                pages: stats.pages,
                rows: stats.rows,
                by_symbol: stats.by_symbol,
                out_of_range: stats.out_of_range,
            })
        })
    }
}
