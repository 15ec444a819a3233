//! `--dry-run` of `import-api` and `sync`: what an import would fetch, planned exactly as the
//! import plans it (the same shards, the same progress), without a data request, a log file
//! or a write: each store reads its progress without creating or migrating anything. The
//! time is estimated from the pages the plan should take (rows a day from what the store
//! already holds of these symbols, else the dataset's typical density) at the plan's pace,
//! and the report says which figures it used.

use super::data_until;
use crate::dataset::Kind;
use crate::job::Job;
use crate::resume::{PlanCounts, Shard};
use crate::run::now_ns;
use crate::source::alpaca::PAGE_LIMIT;
use crate::source::fetch::group_shards;
use crate::store::{Holding, Store};
use crate::time::format_nanos;
use std::collections::BTreeMap;
use std::fmt::Write;

/// What an import of `job` would fetch now: its shards still to fetch and the counts, read
/// from its store without a write.
pub(crate) async fn planned(job: &Job) -> anyhow::Result<(Vec<Shard>, PlanCounts)> {
    let store = crate::store::of_job(job)?;
    store.pending(job, data_until(job), true).await
}

/// What the store of `job` holds, read without a write: the figures the estimate goes by.
pub(crate) async fn held(job: &Job) -> anyhow::Result<Vec<Holding>> {
    Ok(crate::store::of_job(job)?.status().await?.0)
}

/// The dry run's report of `job`: which shards, about how many requests and how long at the
/// rate limit, given what the store holds (`held`). Empty `todo`: nothing to fetch.
pub(crate) fn describe(job: &Job, todo: &[Shard], counts: PlanCounts, held: &[Holding]) -> String {
    let settings = &job.settings;
    let unit = job.dataset.unit().noun();
    let mut out = String::new();
    let where_to = crate::store::open(settings).describe();
    let _ = writeln!(
        out,
        "{} {} (feed {}) {} into {where_to}:",
        job.dataset.noun(),
        job.symbol_list(),
        settings.feed.as_str(),
        job.range,
    );
    // `data_until` is now itself unless the SIP delay holds it back (its now came first).
    let (now, available) = (now_ns(), data_until(job));
    if job.range.end_ns > available && available < now {
        let _ = writeln!(
            out,
            "  END is clamped to {} (--sip-delay {} minutes)",
            format_nanos(available),
            settings.sip_delay_minutes
        );
    }
    let _ = writeln!(
        out,
        "  {} {unit} to fetch of {} ({} done by earlier runs, {} to resume)",
        todo.len(),
        counts.total,
        counts.skipped,
        counts.resumed
    );
    let mut per_symbol: BTreeMap<&str, Vec<&Shard>> = BTreeMap::new();
    for s in todo {
        per_symbol.entry(s.symbol.as_str()).or_default().push(s);
    }
    for (symbol, shards) in &per_symbol {
        let (first, last) = (shards[0].day, shards[shards.len() - 1].day);
        let _ = writeln!(
            out,
            "  {symbol}: {} {unit}, {first} to {last}",
            shards.len()
        );
    }
    if todo.is_empty() {
        return out;
    }
    let (per_unit, basis) = expected_rows(job, held);
    let req = super::request_of(job);
    let groups = group_shards(todo, req.symbols_per_request);
    let pages: u64 = groups
        .iter()
        .map(|g| {
            let rows: f64 = g
                .iter()
                .map(|&i| per_unit * span_of(job, &todo[i as usize]))
                .sum();
            ((rows / f64::from(PAGE_LIMIT)).ceil() as u64).max(1)
        })
        .sum();
    let _ = writeln!(
        out,
        "  about {pages} requests: {} request group{}, {} rows a {} per symbol ({basis}), {PAGE_LIMIT} rows a page",
        groups.len(),
        if groups.len() == 1 { "" } else { "s" },
        indicatif::HumanCount(per_unit.round() as u64),
        unit.trim_end_matches('s'),
    );
    let _ = match settings.rate_limit {
        0 => writeln!(
            out,
            "  no client-side rate limit (--rate-limit 0): as fast as the server answers"
        ),
        n => {
            let interval = 60.0 / f64::from(n);
            writeln!(
                out,
                "  about {} at --rate-limit {n}/min (a request every {interval:.2} s; the \
                 responses overlap the pacing)",
                human_secs(pages as f64 * interval)
            )
        }
    };
    out
}

/// What one shard spans of a whole unit (1 for a whole day or month; less for a range given
/// with timestamps, or a day the SIP delay cuts short).
fn span_of(job: &Job, shard: &Shard) -> f64 {
    let (from, to) = job.dataset.unit().span(shard.day);
    let whole = (to - from).max(1) as f64;
    ((shard.end_ns - shard.start_ns) as f64 / whole).clamp(0.0, 1.0)
}

/// Rows a unit (day; bars: month) of the job's dataset is expected to hold per symbol, and
/// where the figure comes from: the average of what the store holds of these symbols, else
/// the dataset's typical density.
fn expected_rows(job: &Job, held: &[Holding]) -> (f64, String) {
    let key = job.dataset.key();
    let feed = job.settings.feed.as_str();
    let (mut rows, mut units) = (0i64, 0usize);
    for h in held {
        let ours = job.symbols.iter().any(|s| s.as_str() == h.symbol);
        if ours && h.dataset == key && h.feed == feed {
            rows += h.rows;
            units += h.days;
        }
    }
    if units > 0 {
        return (
            rows as f64 / units as f64,
            format!(
                "the average of the {units} {} of these symbols the store holds",
                job.dataset.unit().noun()
            ),
        );
    }
    let days_per_unit = match job.dataset.unit() {
        crate::resume::ShardUnit::Session | crate::resume::ShardUnit::UtcDay => 1.0,
        // A month holds about 21 trading days.
        _ => 21.0,
    };
    let (per_day, basis) = match (job.dataset.kind(), job.dataset.bar_spec()) {
        (Kind::Bars, Some((tf, _))) => (
            tf.bars_per_session() as f64,
            format!("at most {} {tf} bars a session", tf.bars_per_session()),
        ),
        (Kind::CorporateActions, _) => (1.0, "a few actions a symbol".to_string()),
        _ if job.dataset.asset() == crate::dataset::Asset::Options => {
            (100.0, "a thin option contract's".to_string())
        }
        _ => (
            f64::from(TYPICAL_ROWS_A_DAY),
            format!(
                "none held to go by: AAPL's {} quotes a day of 2024, a liquid symbol's",
                indicatif::HumanCount(u64::from(TYPICAL_ROWS_A_DAY))
            ),
        ),
    };
    (per_day * days_per_unit, basis)
}

/// A liquid stock's rows a day when the store holds none to go by: AAPL's quotes of 2024,
/// about 9.3 million over 252 sessions.
const TYPICAL_ROWS_A_DAY: u32 = 37_000;

/// `3.6 s`, `12 min 30 s`, `2 h 5 min`.
fn human_secs(secs: f64) -> String {
    let s = secs.round() as u64;
    match s {
        0..=59 => format!("{secs:.1} s"),
        60..=3_599 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3_600, s % 3_600 / 60),
    }
}
