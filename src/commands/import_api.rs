//! `data import-api`: the Alpaca API into the database (optionally thinned) or the Parquet
//! store, through the one planner and the one run function.

use super::{data_until, request_of};
use crate::args::ImportArgs;
use crate::dataset::Asset;
use crate::job::Job;
use crate::model::Symbol;
use crate::progress::init_logging;
use crate::retry::RetryPolicy;
use crate::run::{now_ns, Outcome};
use crate::source::alpaca::{
    AlpacaClient, ClientConfig, Credentials, KEY_ENV, SECRET_ENV, UNAUTHENTICATED_RATE_LIMIT,
};
use crate::source::api::ApiSource;
use crate::standin::{Standin, StandinConfig};
use crate::store::sql::database::Database;
use crate::store::Store;
use crate::time::format_nanos;
use anyhow::anyhow;
use std::time::Duration;

pub async fn run(args: ImportArgs) -> anyhow::Result<Outcome> {
    let mut job = Job::import_api(&args)?;
    // What the job asks of its store (sharing it, thinned rows) is checked before anything.
    crate::store::of_job(&job)?;
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
        let held = super::dry_run::held(&job).await?;
        print!(
            "dry run: {}",
            super::dry_run::describe(&job, &todo, counts, &held)
        );
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
        None => Some(crate::store::of_job(&job)?.lock_job(&job).await?),
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
    let store = crate::store::of_job(job)?;
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
    store
        .import(job, available, |shards, claims| {
            let concurrency = job.settings.concurrency;
            ApiSource::new(client, request_of(job), shards, concurrency, claims)
        })
        .await
}

/// How many shards an import of `job` would fetch now (0: nothing to do), planned as
/// [`import`] plans them but without a word.
pub(crate) async fn shards_pending(job: &Job) -> anyhow::Result<usize> {
    let store = crate::store::of_job(job)?;
    Ok(store.pending(job, data_until(job), false).await?.0.len())
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
