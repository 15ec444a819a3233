//! Fetching a plan's shards through the Alpaca client: requests grouped by day (month) where
//! the endpoint takes several symbols, up to K in flight (fixed, or adaptive), each paging in
//! order into the pipeline's bounded channel; a shard's last chunk marks it complete. The
//! first request that fails for good stops the others; cancellation stops them quietly.

use super::adapt::Limiter;
use super::alpaca::{AlpacaClient, ApiError, Request, SeqAssigner};
use anyhow::Context;
use arrow_array::RecordBatch;
use data_core::batch;
use data_core::dataset::Column;
use data_core::dataset::Role;
use data_core::model::Symbol;
use data_core::pipeline::{Chunk, ShardClaims, ShardId};
use data_core::resume::Shard;
use data_core::time::DateRange;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, watch};

/// What the source did, for the summary line.
#[derive(Debug, Default, Clone)]
pub(crate) struct SourceStats {
    pub pages: u64,
    pub rows: u64,
    /// Quotes fetched per symbol.
    pub by_symbol: std::collections::BTreeMap<String, u64>,
    /// Rows the server sent outside the range asked for: dropped, counted.
    pub out_of_range: u64,
}

/// Pages in a row that may bring no row while still handing out a next token. Alpaca's
/// pages may be short while a token remains, but a server that pages through nothing
/// for this long is broken (or hostile): the request fails instead of running for ever.
pub const MAX_EMPTY_PAGES: u32 = 50;

impl std::ops::AddAssign for SourceStats {
    fn add_assign(&mut self, o: Self) {
        self.pages += o.pages;
        self.rows += o.rows;
        self.out_of_range += o.out_of_range;
        for (symbol, rows) in o.by_symbol {
            *self.by_symbol.entry(symbol).or_default() += rows;
        }
    }
}

/// The plan's shards as requests: shards of the same day (month) with the same span, not
/// resumed, share a request of up to `per_request` symbols; the others go alone. Groups keep
/// plan order (by their first shard).
pub fn group_shards(shards: &[Shard], per_request: usize) -> Vec<Vec<ShardId>> {
    let mut groups: Vec<Vec<ShardId>> = Vec::new();
    let mut open: HashMap<(chrono::NaiveDate, i64, i64), usize> = HashMap::new();
    for (i, shard) in shards.iter().enumerate() {
        let id = i as ShardId;
        if per_request <= 1 || shard.resume_after.is_some() {
            groups.push(vec![id]);
            continue;
        }
        let key = (shard.day, shard.start_ns, shard.end_ns);
        match open.get(&key) {
            Some(&g) if groups[g].len() < per_request => groups[g].push(id),
            _ => {
                open.insert(key, groups.len());
                groups.push(vec![id]);
            }
        }
    }
    groups
}

/// What every fetcher shares.
#[derive(Clone, Copy)]
struct Fetch<'a> {
    client: &'a AlpacaClient,
    req: &'a Request,
    shards: &'a [Shard],
    tx: &'a mpsc::Sender<Chunk>,
    limiter: &'a Limiter,
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Streams one request's shards into `tx`, page by page, as chunks tagged with each row's
/// shard; a shard's last chunk says it is complete — as soon as a later symbol's records
/// arrive (the API sorts by symbol), or when the request is exhausted. A
/// resumed shard (always alone) starts at its last committed row's nanosecond and drops the
/// rows up to and including it. Returns `None` when stopped early (cancelled, or the
/// receiver is gone) without error.
async fn stream_group(
    fetch: &Fetch<'_>,
    group: &[ShardId],
    cancel: &mut watch::Receiver<bool>,
) -> Result<Option<SourceStats>, ApiError> {
    let Fetch {
        client,
        req,
        shards,
        tx,
        limiter,
    } = *fetch;
    let members: Vec<(ShardId, &Shard)> = group
        .iter()
        .filter_map(|&id| shards.get(id as usize).map(|s| (id, s)))
        .collect();
    let Some((_, first)) = members.first() else {
        return Ok(Some(SourceStats::default()));
    };
    let mut range = first.fetch_range();
    // Set when Alpaca refused SIP data of the last 15 minutes and the request was cut
    // short: its shards then get no last chunk, so none is recorded as done.
    let mut cut_short = false;
    let symbols: Vec<Symbol> = members.iter().map(|(_, s)| s.symbol.clone()).collect();
    let mut seq: Vec<SeqAssigner> = vec![SeqAssigner::default(); members.len()];
    let mut finished = vec![false; members.len()];
    // The greatest symbol whose records have arrived (the API sorts by symbol).
    let mut reached: Option<String> = None;
    let mut stats = SourceStats::default();
    let mut token: Option<String> = None;
    // Every token this request has been handed: one handed out again would page in a
    // circle. The page that repeated one is asked for once more, then it is an error.
    let mut tokens_seen: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut repeats = 0u32;
    let mut empty_pages = 0u32;
    let mut held: Vec<(usize, RecordBatch)> = Vec::new();
    loop {
        let page = tokio::select! {
            biased;
            _ = cancel.wait_for(|c| *c) => return Ok(None),
            page = client.page(req, &symbols, &range, token.as_deref()) => page,
        };
        let page = match page {
            Err(e) if token.is_none() && e.is_recent_sip_refusal() => {
                let Some(until) = recent_sip_clamp(&range) else {
                    return Err(e);
                };
                tracing::warn!(
                    "[API] {} {}: Alpaca refused SIP data of the last 15 minutes (the free \
                     plan's rule); asking up to {} instead, and the day stays unfinished for \
                     a later run (--sip-delay sets the margin)",
                    symbols
                        .iter()
                        .map(Symbol::as_str)
                        .collect::<Vec<_>>()
                        .join(","),
                    first.day,
                    data_core::time::format_nanos(until)
                );
                range.end_ns = until;
                cut_short = true;
                if range.end_ns < range.start_ns {
                    return Ok(Some(stats));
                }
                continue;
            }
            other => other?,
        };
        stats.pages += 1;
        if let Some(next) = &page.next_page_token {
            if tokens_seen.contains(next) {
                repeats += 1;
                if repeats > 1 {
                    return Err(ApiError::Misbehaving(format!(
                        "the server handed out the same next_page_token again for {} {}: \
                         paging would never end (asked twice); nothing of the unfinished \
                         request is marked done",
                        req.path, first.day
                    )));
                }
                tracing::warn!(
                    "[API] {} {}: the server handed out a page token it had already given; \
                     asking for that page once more",
                    req.path,
                    first.day
                );
                continue;
            }
            tokens_seen.insert(next.clone());
            if page.rows() == 0 {
                empty_pages += 1;
                if empty_pages >= MAX_EMPTY_PAGES {
                    return Err(ApiError::Misbehaving(format!(
                        "the server sent {MAX_EMPTY_PAGES} pages in a row with no rows and a \
                         next page token for {} {}: paging would never end; nothing of the \
                         unfinished request is marked done",
                        req.path, first.day
                    )));
                }
            } else {
                empty_pages = 0;
            }
        }
        let last = page.next_page_token.is_none();
        let mut runs = page.runs;
        if !req.by_symbol {
            // Records grouped otherwise (corporate actions: by type): the request's rows are
            // held to its last page (a month of actions is small), then each symbol's are
            // handed over in time order, so resume points stay in order.
            held.append(&mut runs);
            if let Some(t) = page.next_page_token {
                token = Some(t);
                continue;
            }
            runs = in_time_order(std::mem::take(&mut held), req.cols)?;
        }
        if let Some(&(m, _)) = runs.iter().find(|(m, _)| finished[*m]) {
            return Err(ApiError::Decode(format!(
                "records for {} arrived after those of a later symbol: the multi-symbol order \
                 is broken (rerun with --symbols-per-request 1)",
                members[m].1.symbol
            )));
        }
        // Records come sorted by symbol: once a later symbol's records arrived, the earlier
        // symbols are complete; when the request is exhausted, all are.
        for (m, _) in &runs {
            let symbol = members[*m].1.symbol.as_str();
            if reached.as_deref().is_none_or(|r| symbol > r) {
                reached = Some(symbol.to_string());
            }
        }
        let complete = |m: usize| {
            last || reached
                .as_deref()
                .is_some_and(|r| members[m].1.symbol.as_str() < r)
        };
        for (m, done) in finished.iter().enumerate() {
            if complete(m) && !done && !runs.iter().any(|(k, _)| *k == m) {
                runs.push((m, RecordBatch::new_empty(batch::schema(req.cols))));
            }
        }
        for (m, run) in runs {
            let (id, shard) = members[m];
            finished[m] = complete(m);
            let last = finished[m] && !cut_short;
            // Rows outside the range asked for are not this shard's: dropped and counted.
            let run = match batch::times(&run, Role::Time.name()) {
                Some(t)
                    if req.by_symbol
                        && t.iter().any(|&t| t < range.start_ns || t > range.end_ns) =>
                {
                    let keep: Vec<bool> = t
                        .iter()
                        .map(|&t| t >= range.start_ns && t <= range.end_ns)
                        .collect();
                    stats.out_of_range += keep.iter().filter(|k| !**k).count() as u64;
                    batch::filter(&run, keep).map_err(|e| ApiError::Decode(format!("{e:#}")))?
                }
                _ => run,
            };
            let mut run = seq[m]
                .assign(run)
                .map_err(|e| ApiError::Decode(format!("{e:#}")))?;
            if let Some(after) = shard.resume_after {
                let keep = (0..run.num_rows())
                    .map(|i| batch::position(&run, i).is_some_and(|p| p > after))
                    .collect();
                run = batch::filter(&run, keep).map_err(|e| ApiError::Decode(format!("{e:#}")))?;
            }
            let n = run.num_rows() as u64;
            stats.rows += n;
            *stats
                .by_symbol
                .entry(shard.symbol.as_str().to_string())
                .or_default() += n;
            if last || n > 0 {
                let waited = std::time::Instant::now();
                let chunk = Chunk {
                    shard: id,
                    rows: run,
                    last,
                };
                if tx.send(chunk).await.is_err() {
                    return Ok(None);
                }
                limiter.blocked(waited.elapsed());
            }
        }
        match page.next_page_token {
            Some(t) => token = Some(t),
            None => return Ok(Some(stats)),
        }
    }
}

/// Held runs, one per member: its rows joined and ordered by time, then id.
fn in_time_order(
    held: Vec<(usize, RecordBatch)>,
    cols: &'static [Column],
) -> Result<Vec<(usize, RecordBatch)>, ApiError> {
    let mut members: Vec<usize> = held.iter().map(|(m, _)| *m).collect();
    members.sort_unstable();
    members.dedup();
    let schema = batch::schema(cols);
    members
        .into_iter()
        .map(|m| {
            let parts: Vec<RecordBatch> = held
                .iter()
                .filter(|(k, _)| *k == m)
                .map(|(_, b)| b.clone())
                .collect();
            batch::concat(&schema, &parts)
                .and_then(|b| batch::sort_by_time(&b, "id"))
                .map(|b| (m, b))
                .map_err(|e| ApiError::Decode(format!("{e:#}")))
        })
        .collect()
}

/// The end to ask for after Alpaca refused recent SIP data for `range`: 16 minutes ago (the
/// free plan's 15, and a minute for clocks that disagree), or `None` when that would not
/// shorten the request (asking again could not help).
fn recent_sip_clamp(range: &DateRange) -> Option<i64> {
    let now = data_core::time::now_ns();
    let until = now - 16 * 60 * data_core::time::NANOS_PER_SEC;
    (until < range.end_ns).then_some(until)
}

/// Fetches `shards` with up to `concurrency` requests in flight (`None`: adaptive, see
/// [`super::adapt`]), each paging sequentially,
/// all feeding the one channel; shards are taken in plan order, several symbols' shards of
/// a day (month) together where the request allows ([`group_shards`]). The first request
/// that fails (after the retry policy gave up) stops the others and fails the run; stopping
/// early on cancellation is not an error.
pub(crate) async fn stream_shards(
    client: AlpacaClient,
    req: Request,
    shards: Arc<Vec<Shard>>,
    concurrency: Option<usize>,
    claims: Option<Arc<dyn ShardClaims>>,
    tx: mpsc::Sender<Chunk>,
    cancel: watch::Receiver<bool>,
) -> anyhow::Result<SourceStats> {
    let limiter = Limiter::new(concurrency, client.rate_per_min, client.stats());
    // Coordinated (`--coordinate`): held leases are renewed while the fetchers run.
    let _renewing = claims.clone().map(|c| AbortOnDrop(tokio::spawn(c.renew())));
    // Adaptive mode's decisions run beside the fetchers and stop with them.
    let _adapting = limiter
        .is_adaptive()
        .then(|| AbortOnDrop(tokio::spawn(limiter.clone().adapt())));
    let groups = Arc::new(group_shards(&shards, req.symbols_per_request));
    if groups.len() < shards.len() {
        tracing::info!(
            "[API] {} symbol-{} share {} multi-symbol request{} (up to {} symbols each)",
            shards.len(),
            req.unit,
            groups.len(),
            if groups.len() == 1 { "" } else { "s" },
            req.symbols_per_request
        );
    }
    let req = Arc::new(req);
    let next = Arc::new(AtomicUsize::new(0));
    // Coordinated importers start at different places of the same list, so they rarely
    // contend for one claim.
    let start = match &claims {
        Some(_) => fastrand::usize(..groups.len().max(1)),
        None => 0,
    };
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..limiter.max().clamp(1, groups.len().max(1)) {
        let (client, shards, next, tx) = (client.clone(), shards.clone(), next.clone(), tx.clone());
        let (req, groups, limiter) = (req.clone(), groups.clone(), limiter.clone());
        let claims = claims.clone();
        let mut cancel = cancel.clone();
        workers.spawn(async move {
            let mut stats = SourceStats::default();
            loop {
                let Some(_permit) = limiter.acquire().await else {
                    return Ok(stats);
                };
                let i = match next.fetch_add(1, Ordering::Relaxed) {
                    k if k < groups.len() => (start + k) % groups.len(),
                    k => k,
                };
                // Coordinated, a group is fetched only once claimed (the shards another
                // importer holds are left out); past the list, the shards of importers that
                // died are taken over as their leases expire.
                let group: Vec<u32> = match (groups.get(i), &claims) {
                    (Some(group), None) => group.clone(),
                    (Some(group), Some(c)) => match c.claim(group).await? {
                        held if held.is_empty() => continue,
                        held => held,
                    },
                    (None, Some(c)) => match c.take_over(&mut cancel).await? {
                        Some(held) => held,
                        None => return Ok(stats),
                    },
                    (None, None) => return Ok(stats),
                };
                let group = &group;
                let fetch = Fetch {
                    client: &client,
                    req: &req,
                    shards: &shards,
                    tx: &tx,
                    limiter: &limiter,
                };
                let got = stream_group(&fetch, group, &mut cancel)
                    .await
                    .with_context(|| {
                        let names: Vec<String> = group
                            .iter()
                            .filter_map(|&id| shards.get(id as usize))
                            .map(|s| s.symbol.to_string())
                            .collect();
                        let day = shards
                            .get(group[0] as usize)
                            .map_or(String::new(), |s| s.day.to_string());
                        format!("{} {day}", names.join(","))
                    })?;
                match got {
                    Some(s) => stats += s,
                    None => return Ok(stats),
                }
            }
        });
    }
    drop(tx);
    let mut total = SourceStats::default();
    while let Some(joined) = workers.join_next().await {
        let result: anyhow::Result<SourceStats> = joined
            .map_err(|e| anyhow::anyhow!("a fetch task failed: {e}"))
            .and_then(|r| r);
        match result {
            Ok(s) => total += s,
            Err(e) => {
                workers.abort_all();
                return Err(e);
            }
        }
    }
    Ok(total)
}
