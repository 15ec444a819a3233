//! `--dry-run` of `import-api` and `sync`: what an import would fetch, planned exactly as the
//! import plans it (the same shards, the same progress), without a data request, a log file
//! or a write: each store reads its progress without creating or migrating anything.

use super::data_until;
use crate::job::Job;
use crate::resume::{PlanCounts, Shard};
use crate::run::now_ns;
use crate::source::alpaca::PAGE_LIMIT;
use crate::source::fetch::group_shards;
use crate::store::Store;
use crate::time::format_nanos;
use std::collections::BTreeMap;
use std::fmt::Write;

/// What an import of `job` would fetch now: its shards still to fetch and the counts, read
/// from its store without a write.
pub(crate) async fn planned(job: &Job) -> anyhow::Result<(Vec<Shard>, PlanCounts)> {
    let store = crate::store::of_job(job)?;
    store.pending(job, data_until(job), true).await
}

/// The dry run's report of `job`: which shards, how many requests at least, how long at the
/// rate limit. Empty `todo`: nothing to fetch.
pub(crate) fn describe(job: &Job, todo: &[Shard], counts: PlanCounts) -> String {
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
    let req = super::request_of(job);
    let requests = group_shards(todo, req.symbols_per_request).len();
    let _ = writeln!(
        out,
        "  at least {requests} requests (one per request group; a group with more than \
         {PAGE_LIMIT} rows takes one more per {PAGE_LIMIT})"
    );
    let _ = match settings.rate_limit {
        0 => writeln!(out, "  no client-side rate limit (--rate-limit 0)"),
        n => writeln!(
            out,
            "  at least {:.1} s at --rate-limit {n}/min, plus the responses' own time",
            requests as f64 * 60.0 / f64::from(n)
        ),
    };
    out
}
