//! The pipeline between a source and a sink: the bounded channel, the batcher, and
//! cancellation.
//!
//! A source splits its work into shards (a symbol's New York day, for the API) and sends
//! each shard's pages as [`Chunk`]s into one bounded `mpsc` channel — several shards may be
//! in flight at once, their chunks interleaved, each shard's own chunks in order. At most
//! `CHANNEL_PAGES` chunks wait in the channel whatever the date range. The batcher runs each
//! shard's chunks through that shard's own transform state, cuts the rows into `batch_size`
//! batches and hands each to the sink together with the [`Mark`]s of the shards it touches
//! (how far each shard got, and which shards are now complete); the sink commits rows and
//! marks in one transaction before the next batch is written, so progress is never ahead of
//! or behind the data. The pipeline knows nothing about Alpaca or SQL: any `Sink` plugs in.

use crate::batch;
use crate::transform::Transform;
use arrow_array::RecordBatch;
use arrow_schema::{Schema, SchemaRef};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// Chunks allowed to wait between the sources and the batcher. Two keeps the fetchers a
/// page ahead of the writer (overlap) while bounding memory; each concurrent fetcher holds
/// at most one more page while it waits to send.
pub const CHANNEL_PAGES: usize = 2;

/// How much lower (in nice steps) than the process the threads that feed or follow the
/// writer run: the fetch/decode workers and SQLite's checkpointer.
const HELPER_NICE: i32 = 5;

/// Lowers the calling thread's scheduling priority below the process's ([`HELPER_NICE`]).
/// The batcher and sink run on the main thread and set the pace of a database import; the
/// runtime's workers (fetching, gunzip, decoding) and the SQLite checkpointer have less
/// work and fill the time the writer leaves. With more runnable threads than cores, a
/// writer at equal priority is regularly preempted by them (measured: about a tenth of a
/// SQLite import's wall time); a step below, they still use every idle cycle. Linux only
/// (a thread's nice value is its own there); elsewhere nothing changes.
pub fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        use std::sync::OnceLock;
        // The process's own nice value, read once (from whichever thread asks first: all
        // start at the process's value).
        static BASE: OnceLock<i32> = OnceLock::new();
        // SAFETY: plain system calls on this thread's own id.
        unsafe {
            let tid = libc::gettid() as libc::id_t;
            let base = *BASE.get_or_init(|| libc::getpriority(libc::PRIO_PROCESS, 0));
            libc::setpriority(libc::PRIO_PROCESS, tid, (base + HELPER_NICE).min(19));
        }
    }
}

/// The index of a shard in the run's plan.
pub type ShardId = u32;

/// What travels through the channel: some rows of one shard, in the shard's order, as one
/// columnar batch (its schema is the dataset's row list, see [`crate::batch`]). `last` says
/// the shard is complete after these rows (the batch may be empty).
#[derive(Debug)]
pub struct Chunk {
    pub shard: ShardId,
    pub rows: RecordBatch,
    pub last: bool,
}

/// How far one shard got, committed with the batch that carries its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    pub shard: ShardId,
    /// The stream position `(t, seq)` of the shard's last row in this batch, when rows can
    /// resume after it ([`batch::position`]).
    pub position: Option<(i64, u32)>,
    /// Every row of the shard is in this batch or an earlier one.
    pub done: bool,
}

/// A destination that commits each batch atomically: when `write_batch` returns `Ok`, every
/// row of the batch and every mark is durable; when it returns `Err`, none of them is.
/// `rows` may be empty (of any schema) when a batch only completes shards.
pub trait Sink: Send {
    fn write_batch(
        &mut self,
        rows: &RecordBatch,
        marks: &[Mark],
    ) -> impl Future<Output = anyhow::Result<()>> + Send;

    /// The source completed: make everything written so far durable (e.g. close the last
    /// file). Database sinks commit per batch and have nothing left to do.
    fn finish(&mut self) -> impl Future<Output = anyhow::Result<()>> + Send {
        async { Ok(()) }
    }

    /// The import failed or was interrupted: discard anything not yet durable.
    fn abort(&mut self) {}

    /// Where the rows go, for the line that ends a run (`data/market.db`, a Parquet store's
    /// folder); empty when there is nothing to name.
    fn destination(&self) -> String {
        String::new()
    }

    /// The tag of this sink's log lines: `[DB] Batch N: ...`.
    fn label(&self) -> &'static str {
        "DB"
    }

    /// Whether a written batch stays when the run stops (a database's transactions), or
    /// only whole units do (the Parquet store publishes a day's file when the day is whole,
    /// and a stop discards the days in progress).
    fn keeps_batches(&self) -> bool {
        true
    }
}

/// Reported after each committed batch.
#[derive(Debug, Clone, Copy)]
pub struct BatchCommitted {
    /// The sink's log tag (`DB`, `FILE`).
    pub label: &'static str,
    /// Batches with rows so far (a commit that only completes shards keeps the number).
    pub number: u64,
    pub rows: usize,
    pub total_rows: u64,
    pub last_time_ns: i64,
    pub write_time: Duration,
    /// Shards this commit completed.
    pub shards_done: u32,
}

/// How a batcher run ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatcherTotals {
    pub batches: u64,
    pub rows: u64,
    pub shards_done: u64,
    /// True when it stopped because of cancellation rather than the source finishing.
    pub cancelled: bool,
}

/// A cancellation switch shared by the sources and the batcher.
pub fn cancellation() -> (watch::Sender<bool>, watch::Receiver<bool>) {
    watch::channel(false)
}

/// Rows waiting for the next batch: slices of the transforms' output, each of one shard,
/// and the shards whose last chunk has arrived.
struct Pending {
    parts: Vec<(ShardId, RecordBatch)>,
    rows: usize,
    ended: Vec<ShardId>,
    /// The schema of the rows (known from the first chunk).
    schema: Option<SchemaRef>,
}

impl Pending {
    /// The marks for a batch of everything pending: each shard's last position, and `done`
    /// for the shards that ended.
    fn marks(&self) -> Vec<Mark> {
        let mut marks: Vec<Mark> = Vec::new();
        for (shard, part) in self.parts.iter().rev() {
            if part.num_rows() > 0 && !marks.iter().any(|m| m.shard == *shard) {
                marks.push(Mark {
                    shard: *shard,
                    position: batch::position(part, part.num_rows() - 1),
                    done: false,
                });
            }
        }
        marks.reverse();
        for &shard in &self.ended {
            match marks.iter_mut().find(|m| m.shard == shard) {
                Some(m) => m.done = true,
                None => marks.push(Mark {
                    shard,
                    position: None,
                    done: true,
                }),
            }
        }
        marks
    }
}

/// Receives chunks until the channel closes (sources done or failed) or `cancel` turns true,
/// passes each shard's chunks through its own transform (made by `make_transform`, so state
/// such as an NBBO filter's last quote never leaks between shards fetched concurrently),
/// and writes a batch each time `batch_size` rows are buffered, and the remainder at the
/// end. On cancellation the rows already received are written as a final batch, so Ctrl-C
/// finishes the batch in hand rather than losing it.
pub async fn run_batcher<T, S, M, F>(
    rx: &mut mpsc::Receiver<Chunk>,
    mut make_transform: M,
    sink: &mut S,
    batch_size: usize,
    idle_commit: Option<std::time::Duration>,
    mut cancel: watch::Receiver<bool>,
    mut on_commit: F,
) -> anyhow::Result<BatcherTotals>
where
    T: Transform,
    S: Sink,
    M: FnMut() -> T,
    F: FnMut(&BatchCommitted),
{
    let batch_size = batch_size.max(1);
    let mut pending = Pending {
        parts: Vec::new(),
        rows: 0,
        ended: Vec::new(),
        schema: None,
    };
    let mut transforms: HashMap<ShardId, T> = HashMap::new();
    let mut kept: Vec<RecordBatch> = Vec::new();
    let mut totals = BatcherTotals::default();
    loop {
        // With `idle_commit`, shards already complete are committed (a smaller batch) once
        // no rows came for that long: coordinated importers wait on each other's done marks.
        let idle = idle_commit.filter(|_| !pending.ended.is_empty());
        let idle = async move {
            match idle {
                Some(wait) => tokio::time::sleep(wait).await,
                None => std::future::pending().await,
            }
        };
        let chunk = tokio::select! {
            biased;
            _ = cancel.wait_for(|c| *c) => { totals.cancelled = true; None }
            chunk = rx.recv() => chunk,
            () = idle => {
                let done = flush(&mut pending, &mut totals, sink).await?;
                on_commit(&done);
                continue;
            }
        };
        // A closed channel or cancellation: shards without their last chunk stay incomplete
        // (their transform state is dropped, not flushed: a half interval is not a row).
        let Some(chunk) = chunk else { break };
        kept.clear();
        let transform = transforms
            .entry(chunk.shard)
            .or_insert_with(&mut make_transform);
        transform.apply(chunk.rows, &mut kept)?;
        if chunk.last {
            transform.finish(&mut kept)?;
            transforms.remove(&chunk.shard);
        }
        let mut rest: Vec<RecordBatch> = kept.drain(..).filter(|b| b.num_rows() > 0).collect();
        rest.reverse();
        let mut ended = false;
        loop {
            // Fill the batch from the front of what the transform kept, slicing a part that
            // does not fit.
            while pending.rows < batch_size {
                let Some(part) = rest.pop() else { break };
                pending.schema.get_or_insert_with(|| part.schema());
                let room = batch_size - pending.rows;
                if part.num_rows() > room {
                    rest.push(part.slice(room, part.num_rows() - room));
                    pending.rows += room;
                    pending.parts.push((chunk.shard, part.slice(0, room)));
                } else {
                    pending.rows += part.num_rows();
                    pending.parts.push((chunk.shard, part));
                }
            }
            // The shard's last row is now pending: it is done with the batch that holds it.
            if chunk.last && rest.is_empty() && !ended {
                pending.ended.push(chunk.shard);
                ended = true;
            }
            if pending.rows < batch_size {
                break;
            }
            let done = flush(&mut pending, &mut totals, sink).await?;
            on_commit(&done);
        }
    }
    if pending.rows > 0 || !pending.ended.is_empty() {
        let done = flush(&mut pending, &mut totals, sink).await?;
        on_commit(&done);
    }
    Ok(totals)
}

async fn flush<S: Sink>(
    pending: &mut Pending,
    totals: &mut BatcherTotals,
    sink: &mut S,
) -> anyhow::Result<BatchCommitted> {
    let started = Instant::now();
    let marks = pending.marks();
    let schema = pending
        .schema
        .clone()
        .unwrap_or_else(|| Arc::new(Schema::empty()));
    let parts: Vec<RecordBatch> = pending.parts.drain(..).map(|(_, b)| b).collect();
    let rows_batch = if parts.is_empty() {
        RecordBatch::new_empty(schema)
    } else {
        batch::concat(&schema, &parts)?
    };
    sink.write_batch(&rows_batch, &marks).await?;
    let rows = rows_batch.num_rows();
    if rows > 0 {
        totals.batches += 1;
    }
    totals.rows += rows as u64;
    let shards_done = marks.iter().filter(|m| m.done).count() as u32;
    totals.shards_done += u64::from(shards_done);
    let done = BatchCommitted {
        label: sink.label(),
        number: totals.batches,
        rows,
        total_rows: totals.rows,
        last_time_ns: rows
            .checked_sub(1)
            .and_then(|i| batch::event_time(&rows_batch, i))
            .unwrap_or_default(),
        write_time: started.elapsed(),
        shards_done,
    };
    pending.rows = 0;
    pending.ended.clear();
    Ok(done)
}

/// A future the claim methods return (boxed: claims are shared as `Arc<dyn ShardClaims>`).
pub type ClaimFuture<'a, T> = std::pin::Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// `--coordinate`: several importers share one job's shards. A source asks before it fetches
/// a group of shards (by their index in the plan), and takes over those of importers that
/// died once its own list is through. The store implements it where the job's rows go
/// (`data_job::claims`: PostgreSQL lease rows, or marker objects in a bucket); the source knows
/// only this face.
pub trait ShardClaims: Send + Sync {
    /// Of `ids`, those this importer now holds (the others are held or done elsewhere).
    fn claim<'a>(&'a self, ids: &'a [u32]) -> ClaimFuture<'a, anyhow::Result<Vec<u32>>>;
    /// Past the list: waits for a shard whose lease expired and holds it; `None` when every
    /// shard is done or this importer's own, or on cancellation.
    fn take_over<'a>(
        &'a self,
        cancel: &'a mut watch::Receiver<bool>,
    ) -> ClaimFuture<'a, anyhow::Result<Option<Vec<u32>>>>;
    /// Renews the held leases until dropped (run as its own task).
    fn renew(self: Arc<Self>) -> ClaimFuture<'static, ()>;
}

/// What a source did, for the summary line.
#[derive(Debug, Default, Clone)]
pub struct Fetched {
    /// API pages, or Parquet files read.
    pub pages: u64,
    pub rows: u64,
    /// Rows fetched per symbol (API sources).
    pub by_symbol: BTreeMap<String, u64>,
    /// Rows the server sent outside the range asked for, dropped (API sources).
    pub out_of_range: u64,
}

/// The channel a source feeds.
pub type Feed = mpsc::Sender<Chunk>;

/// Sends `rows` of `shard` down `tx` in chunks of at most `page` rows, so the channel holds
/// what it holds for an import. `closes`: the last chunk completes the shard (one empty
/// chunk when there are no rows); otherwise no chunk does. `false` when the receiver is gone.
pub async fn send_rows(
    tx: &Feed,
    shard: ShardId,
    rows: &RecordBatch,
    page: usize,
    closes: bool,
) -> bool {
    let (n, page) = (rows.num_rows(), page.max(1));
    let mut start = 0;
    while start < n || (closes && start == 0 && n == 0) {
        let len = page.min(n - start);
        let last = closes && start + len == n;
        let chunk = Chunk {
            shard,
            rows: rows.slice(start, len),
            last,
        };
        if tx.send(chunk).await.is_err() {
            return false;
        }
        if last {
            break;
        }
        start += len;
    }
    true
}
/// The run's cancellation switch, as the source sees it.
pub type Cancel = watch::Receiver<bool>;
/// The source's task: what it fetched, or why it failed.
pub type SourceTask = JoinHandle<anyhow::Result<Fetched>>;

/// Where a pipeline's rows come from: a task feeding the channel, and what progress can
/// show about it.
pub trait Source {
    /// Whether running the same command again can get further after the source failed
    /// with `error`: not after a refusal (keys, plan, parameters), which needs a change
    /// first.
    fn rerun_helps(_error: &anyhow::Error) -> bool
    where
        Self: Sized,
    {
        true
    }
    /// Shards to fetch, when the source works in shards.
    fn shard_count(&self) -> Option<u64> {
        None
    }
    /// Request counters, when the source makes requests.
    fn requests(&self) -> Option<Arc<RequestStats>> {
        None
    }
    /// What the source reads its rows in: `pages` or `files`.
    fn page_word(&self) -> &'static str {
        "pages"
    }
    /// Commit the shards already complete when no rows came for this long (None: only
    /// by batch size and at the end).
    fn idle_commit(&self) -> Option<Duration> {
        None
    }
    fn spawn(self, tx: Feed, cancel: Cancel) -> SourceTask;
}

/// The most requests in flight adaptive concurrency goes to (`concurrency = auto`).
pub const MAX_AUTO: usize = 64;
/// Where adaptive concurrency starts (the fixed default it replaced).
pub const START_AUTO: usize = 4;

/// Counters for the progress line and the summary.
#[derive(Debug, Default)]
pub struct RequestStats {
    /// HTTP requests sent (every attempt).
    pub requests: AtomicU64,
    /// Attempts after the first for the same page.
    pub retries: AtomicU64,
    /// 429 responses received.
    pub rate_limited: AtomicU64,
    /// Responses received (any status), and the time they took in all, from sending to the
    /// whole body (the pacer's wait not included).
    pub responses: AtomicU64,
    pub latency_ns: AtomicU64,
    /// The requests in flight allowed now (fixed, or as adaptive concurrency set it).
    pub concurrency: std::sync::atomic::AtomicUsize,
}

impl RequestStats {
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }
    pub fn rate_limited(&self) -> u64 {
        self.rate_limited.load(Ordering::Relaxed)
    }
    pub fn concurrency(&self) -> usize {
        self.concurrency.load(Ordering::Relaxed)
    }
    /// A response that took `d`.
    pub fn responded(&self, d: std::time::Duration) {
        self.responses.fetch_add(1, Ordering::Relaxed);
        self.latency_ns
            .fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transform::Passthrough;

    /// Records every batch (as its times) and its marks; fails the batch numbered
    /// `fail_on` (1-based).
    #[derive(Default)]
    struct MemSink {
        batches: Vec<Vec<i64>>,
        marks: Vec<Vec<Mark>>,
        fail_on: Option<usize>,
    }
    impl Sink for MemSink {
        async fn write_batch(&mut self, rows: &RecordBatch, marks: &[Mark]) -> anyhow::Result<()> {
            if Some(self.batches.len() + 1) == self.fail_on {
                anyhow::bail!("disk full");
            }
            let t = batch::times(rows, "t")
                .map(<[i64]>::to_vec)
                .unwrap_or_default();
            self.batches.push(t);
            self.marks.push(marks.to_vec());
            Ok(())
        }
    }

    /// Rows with a time `t` and `seq` 0.
    fn rows(times: &[i64]) -> RecordBatch {
        use arrow_array::UInt32Array;
        use arrow_schema::{DataType, Field, TimeUnit};
        let schema = Arc::new(Schema::new(vec![
            Field::new(
                "t",
                DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
                false,
            ),
            Field::new("seq", DataType::UInt32, false),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                batch::ts_array(times.to_vec()),
                Arc::new(UInt32Array::from(vec![0; times.len()])),
            ],
        )
        .unwrap()
    }

    fn chunk(shard: ShardId, times: &[i64], last: bool) -> Chunk {
        Chunk {
            shard,
            rows: rows(times),
            last,
        }
    }

    async fn run(
        chunks: Vec<Chunk>,
        batch: usize,
        sink: &mut MemSink,
    ) -> anyhow::Result<(BatcherTotals, Vec<BatchCommitted>)> {
        let (tx, mut rx) = mpsc::channel(CHANNEL_PAGES);
        let (_cancel_tx, cancel_rx) = cancellation();
        let producer = tokio::spawn(async move {
            for c in chunks {
                tx.send(c).await.unwrap();
            }
        });
        let mut seen = Vec::new();
        let totals = run_batcher(
            &mut rx,
            || Passthrough,
            sink,
            batch,
            None,
            cancel_rx,
            |c| seen.push(*c),
        )
        .await;
        producer.abort();
        totals.map(|t| (t, seen))
    }

    fn mark(shard: ShardId, at: Option<i64>, done: bool) -> Mark {
        Mark {
            shard,
            position: at.map(|t| (t, 0)),
            done,
        }
    }

    #[tokio::test]
    async fn batches_cut_across_pages_in_order() {
        let mut sink = MemSink::default();
        let chunks = vec![
            chunk(0, &[1, 2, 3, 4], false),
            chunk(0, &[5], false),
            chunk(0, &[], false),
            chunk(0, &[6, 7, 8, 9, 10, 11], true),
        ];
        let (totals, seen) = run(chunks, 3, &mut sink).await.unwrap();
        assert_eq!(
            sink.batches,
            vec![vec![1, 2, 3], vec![4, 5, 6], vec![7, 8, 9], vec![10, 11]]
        );
        assert_eq!(
            totals,
            BatcherTotals {
                batches: 4,
                rows: 11,
                shards_done: 1,
                cancelled: false
            }
        );
        let log: Vec<(u64, usize, u64, i64)> = seen
            .iter()
            .map(|c| (c.number, c.rows, c.total_rows, c.last_time_ns))
            .collect();
        assert_eq!(
            log,
            vec![(1, 3, 3, 3), (2, 3, 6, 6), (3, 3, 9, 9), (4, 2, 11, 11)]
        );
        // The shard is done only in the batch holding its last row.
        assert_eq!(sink.marks[2], vec![mark(0, Some(9), false)]);
        assert_eq!(sink.marks[3], vec![mark(0, Some(11), true)]);
    }

    #[tokio::test]
    async fn interleaved_shards_get_their_own_positions_and_completion() {
        let mut sink = MemSink::default();
        let chunks = vec![
            chunk(0, &[10, 11], false),
            chunk(1, &[20, 21, 22], false),
            chunk(0, &[12], true),
            chunk(2, &[], true),
            chunk(1, &[23], true),
        ];
        let (totals, _) = run(chunks, 4, &mut sink).await.unwrap();
        assert_eq!(sink.batches, vec![vec![10, 11, 20, 21], vec![22, 12, 23]]);
        assert_eq!(
            sink.marks,
            vec![
                vec![mark(0, Some(11), false), mark(1, Some(21), false)],
                vec![
                    mark(0, Some(12), true),
                    mark(1, Some(23), true),
                    mark(2, None, true)
                ],
            ]
        );
        assert_eq!(totals.shards_done, 3);
    }

    #[tokio::test]
    async fn a_shard_ending_after_a_full_batch_is_committed_with_no_rows() {
        let mut sink = MemSink::default();
        let (totals, seen) = run(
            vec![chunk(0, &[1, 2], false), chunk(0, &[], true)],
            2,
            &mut sink,
        )
        .await
        .unwrap();
        assert_eq!(sink.batches, vec![vec![1, 2], vec![]]);
        assert_eq!(sink.marks[1], vec![mark(0, None, true)]);
        assert_eq!((totals.batches, totals.rows), (1, 2));
        assert_eq!(seen[1].number, 1, "a marks-only commit is not a batch");
    }

    #[tokio::test]
    async fn exact_multiple_leaves_no_empty_batch() {
        let mut sink = MemSink::default();
        let (totals, _) = run(
            vec![chunk(0, &[1, 2], false), chunk(0, &[3, 4], false)],
            2,
            &mut sink,
        )
        .await
        .unwrap();
        assert_eq!(sink.batches, vec![vec![1, 2], vec![3, 4]]);
        assert_eq!(totals.batches, 2);
    }

    #[tokio::test]
    async fn a_failed_batch_stops_the_run_and_keeps_earlier_batches() {
        let mut sink = MemSink {
            fail_on: Some(2),
            ..Default::default()
        };
        let err = run(vec![chunk(0, &[1, 2, 3, 4, 5], true)], 2, &mut sink)
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "disk full");
        assert_eq!(sink.batches, vec![vec![1, 2]]);
    }

    #[tokio::test]
    async fn cancellation_writes_what_was_received_then_stops() {
        let (tx, mut rx) = mpsc::channel(CHANNEL_PAGES);
        let (cancel_tx, cancel_rx) = cancellation();
        tx.send(chunk(0, &[1, 2, 3], false)).await.unwrap();
        let mut sink = MemSink::default();
        let batcher = async {
            run_batcher(
                &mut rx,
                || Passthrough,
                &mut sink,
                2,
                None,
                cancel_rx,
                |_| {},
            )
            .await
        };
        let canceller = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            cancel_tx.send(true).unwrap();
        };
        let (totals, ()) = tokio::join!(batcher, canceller);
        let totals = totals.unwrap();
        assert!(totals.cancelled);
        assert_eq!(sink.batches, vec![vec![1, 2], vec![3]]);
        assert_eq!(sink.marks[1], vec![mark(0, Some(3), false)]);
        drop(tx);
    }
}
