//! `data sync`: every dataset the store holds, brought up to now through the import path.
//!
//! What the store holds comes from `store` (the database's rows per day, or the Parquet
//! store's files), one entry per (dataset, symbol, feed); each is extended from its last day
//! held (or, with `--fill-gaps`, its first) to today, grouped into one import job per
//! (dataset, feed, start) so symbols share requests as in `import-api`. The jobs are planned
//! quietly first: with nothing to fetch, sync says so in one line. One sync at a time per
//! store, by an advisory lock on a file beside it (released by the kernel however the
//! process ends).

use super::import_api::{import, shards_pending};
use crate::args::SyncArgs;
use crate::config::Settings;
use crate::dataset::DatasetId;
use crate::job::{parse_symbol_list, settings_of, Job};
use crate::model::{Feed, Symbol};
use crate::progress::init_logging;
use crate::run::{now_ns, Outcome};
use crate::store::lock::FileLock;
use crate::store::status::Holding;
use crate::store::Store;
use crate::time::new_york_date;
use anyhow::Context;
use chrono::NaiveDate;
use std::collections::{BTreeMap, BTreeSet};

pub async fn run(args: SyncArgs) -> anyhow::Result<Outcome> {
    let settings = settings_of(&args.settings)?;
    let only: Option<Vec<Symbol>> = match &args.symbols {
        Some(list) => Some(parse_symbol_list(list, "--symbols")?),
        None => None,
    };
    if args.dry_run {
        return dry_run(&args, &settings, only.as_deref()).await;
    }
    init_logging(settings.log_path())?;
    let store = crate::store::open(&settings);
    let lock_path = store.lock_path("sync", true)?;
    let Some(_lock) = FileLock::take(&lock_path)? else {
        tracing::warn!(
            target: crate::progress::SUMMARY,
            "[SYNC] another data sync is running on this store (lock {}): this one did nothing",
            lock_path.display()
        );
        return Ok(Outcome::Completed);
    };
    let Some(held) = store.holdings().await? else {
        tracing::info!(
            target: crate::progress::SUMMARY,
            "[SYNC] nothing to sync: {} holds no data yet (import-api starts a dataset)",
            store.describe()
        );
        return Ok(Outcome::Completed);
    };
    if crate::source::alpaca::is_standin(&settings.api_url).await {
        anyhow::bail!(
            "{} is the offline stand-in: its rows are synthetic, and sync brings market data \
             up to date (import from the stand-in with import-api instead)",
            crate::config::redact_url(&settings.api_url)
        );
    }
    let jobs = jobs_of(held, &args, only.as_deref(), &settings)?;
    let mut planned = Vec::new();
    for (job, start) in jobs {
        let pending = shards_pending(&job).await?;
        planned.push((job, start, pending));
    }
    let jobs = planned;
    let datasets: usize = jobs.iter().map(|(j, _, _)| j.symbols.len()).sum();
    let pending: usize = jobs.iter().map(|(_, _, p)| p).sum();
    if pending == 0 {
        tracing::info!(
            target: crate::progress::SUMMARY,
            "[SYNC] {datasets} dataset{} of {} up to date; nothing to fetch",
            if datasets == 1 { "" } else { "s" },
            store.describe()
        );
        return Ok(Outcome::Completed);
    }
    let mut extended = 0;
    for (job, start, pending) in jobs.iter().filter(|(_, _, p)| *p > 0) {
        tracing::info!(
            target: crate::progress::SUMMARY,
            "[SYNC] {} {} (feed {}): from {start}, {pending} {} to fetch",
            job.dataset.key(),
            job.symbol_list(),
            job.settings.feed.as_str(),
            job.dataset.unit().noun()
        );
        if import(job).await? == Outcome::Interrupted {
            return Ok(Outcome::Interrupted);
        }
        extended += job.symbols.len();
    }
    tracing::info!(
        target: crate::progress::SUMMARY,
        "[SYNC] done: {extended} of {datasets} datasets extended, {pending} shards fetched into {}",
        store.describe()
    );
    Ok(Outcome::Completed)
}

/// One import job per (dataset, feed, first day to fetch) of what the store holds, narrowed by
/// `args`; each with the day it starts from.
fn jobs_of(
    held: Vec<Holding>,
    args: &SyncArgs,
    only: Option<&[Symbol]>,
    settings: &Settings,
) -> anyhow::Result<Vec<(Job, NaiveDate)>> {
    let today = new_york_date(now_ns());
    let mut groups: BTreeMap<(String, Feed, NaiveDate), Vec<Symbol>> = BTreeMap::new();
    let mut not_synced = BTreeSet::new();
    for h in held {
        if h.synthetic {
            not_synced.insert(format!("{} {} (stand-in rows)", h.dataset, h.symbol));
            continue;
        }
        let Some(dataset) = DatasetId::from_key(&h.dataset) else {
            not_synced.insert(h.dataset);
            continue;
        };
        let symbol = Symbol::parse(&h.symbol)
            .map_err(|e| anyhow::anyhow!("the store holds a bad symbol {:?}: {e}", h.symbol))?;
        let wanted = args.kind.is_none_or(|k| k == dataset.kind())
            && only.is_none_or(|o| o.contains(&symbol));
        let feed = Feed::parse(&h.feed)
            .with_context(|| format!("the store holds an unknown feed {:?}", h.feed))?;
        if wanted {
            let start = if args.fill_gaps { h.first } else { h.last };
            groups
                .entry((dataset.key(), feed, start.min(today)))
                .or_default()
                .push(symbol);
        }
    }
    for name in &not_synced {
        tracing::info!(
            target: crate::progress::SUMMARY,
            "[SYNC] {name}: not synced (thinned rows and the stand-in's are extended by rerunning their import-api command)"
        );
    }
    let mut jobs = Vec::new();
    for ((key, feed, start), symbols) in groups {
        let dataset = DatasetId::from_key(&key).context("a dataset key")?;
        let settings = Settings {
            feed,
            ..settings.clone()
        };
        jobs.push((
            Job::sync(dataset, symbols, (start, today), settings)?,
            start,
        ));
    }
    Ok(jobs)
}

/// `sync --dry-run`: each dataset's plan on stdout; no request, no log file, no lock.
async fn dry_run(
    args: &SyncArgs,
    settings: &Settings,
    only: Option<&[Symbol]>,
) -> anyhow::Result<Outcome> {
    let store = crate::store::open(settings);
    let Some(held) = store.holdings().await? else {
        println!(
            "dry run: {} holds no data yet; nothing to sync",
            store.describe()
        );
        return Ok(Outcome::Completed);
    };
    let mut pending = 0;
    let all = held.clone();
    for (job, start) in jobs_of(held, args, only, settings)? {
        let (todo, counts) = super::dry_run::planned(&job).await?;
        if !todo.is_empty() {
            pending += todo.len();
            print!(
                "dry run, from {start}: {}",
                super::dry_run::describe(&job, &todo, counts, &all)
            );
        }
    }
    if pending == 0 {
        println!(
            "dry run: every dataset of {} is up to date",
            store.describe()
        );
    }
    println!("  nothing was fetched or written");
    Ok(Outcome::Completed)
}
