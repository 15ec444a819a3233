//! The pipeline between a source and a sink: the bounded channel, the batcher, and
//! cancellation.
//!
//! A source task sends pages (`Vec<R>`) into a bounded `mpsc` channel, so at most
//! `CHANNEL_PAGES` pages wait in memory whatever the date range; the batcher cuts them into
//! `batch_size` batches and hands each to the sink, which commits it in one transaction
//! before the next is written. While the sink writes, the source is already fetching the
//! next page. The pipeline knows nothing about Alpaca or SQL: any `Sink` plugs in.

use crate::model::Record;
use crate::transform::Transform;
use std::future::Future;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// Pages allowed to wait between the source and the batcher. Two keeps the fetcher one page
/// ahead of the writer (overlap) while bounding memory to a few pages.
pub const CHANNEL_PAGES: usize = 2;

/// A destination that commits each batch atomically: when `write_batch` returns `Ok`, every
/// row of the batch is durable; when it returns `Err`, none of them is.
pub trait Sink<R: Record>: Send {
    fn write_batch(&mut self, rows: &[R]) -> impl Future<Output = anyhow::Result<()>> + Send;

    /// The source completed: make everything written so far durable (e.g. close the last
    /// file). Database sinks commit per batch and have nothing left to do.
    fn finish(&mut self) -> impl Future<Output = anyhow::Result<()>> + Send {
        async { Ok(()) }
    }

    /// The import failed or was interrupted: discard anything not yet durable.
    fn abort(&mut self) {}

    /// The tag of this sink's log lines: `[DB] Batch N: ...`.
    fn label(&self) -> &'static str {
        "DB"
    }
}

/// Reported after each committed batch.
#[derive(Debug, Clone, Copy)]
pub struct BatchCommitted {
    /// The sink's log tag (`DB`, `FILE`).
    pub label: &'static str,
    pub number: u64,
    pub rows: usize,
    pub total_rows: u64,
    pub last_time_ns: i64,
    pub write_time: Duration,
}

/// How a batcher run ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatcherTotals {
    pub batches: u64,
    pub rows: u64,
    /// True when it stopped because of cancellation rather than the source finishing.
    pub cancelled: bool,
}

/// A cancellation switch shared by the source and the batcher.
pub fn cancellation() -> (watch::Sender<bool>, watch::Receiver<bool>) {
    watch::channel(false)
}

/// Receives pages until the channel closes (source done or failed) or `cancel` turns true,
/// passes each through `transform`, and writes a batch each time `batch_size` rows are
/// buffered, and the remainder at the end. On cancellation the rows already received are
/// written as a final batch, so Ctrl-C finishes the batch in hand rather than losing it.
pub async fn run_batcher<T, S, F>(
    rx: &mut mpsc::Receiver<Vec<T::In>>,
    transform: &mut T,
    sink: &mut S,
    batch_size: usize,
    mut cancel: watch::Receiver<bool>,
    mut on_commit: F,
) -> anyhow::Result<BatcherTotals>
where
    T: Transform,
    S: Sink<T::Out>,
    F: FnMut(&BatchCommitted),
{
    let batch_size = batch_size.max(1);
    let mut buf: Vec<T::Out> = Vec::with_capacity(batch_size);
    let mut kept: Vec<T::Out> = Vec::new();
    let mut totals = BatcherTotals::default();
    let mut ended = false;
    while !ended {
        let page = tokio::select! {
            biased;
            _ = cancel.wait_for(|c| *c) => { totals.cancelled = true; None }
            page = rx.recv() => page,
        };
        kept.clear();
        match page {
            Some(page) => transform.apply(page, &mut kept),
            None => {
                transform.finish(&mut kept);
                ended = true;
            }
        }
        let mut rows = kept.drain(..);
        loop {
            let room = batch_size - buf.len();
            buf.extend(rows.by_ref().take(room));
            if buf.len() < batch_size {
                break;
            }
            let done = flush(&buf, &mut totals, sink).await?;
            on_commit(&done);
            buf.clear();
        }
    }
    if !buf.is_empty() {
        let done = flush(&buf, &mut totals, sink).await?;
        on_commit(&done);
    }
    Ok(totals)
}

async fn flush<R: Record, S: Sink<R>>(
    buf: &[R],
    totals: &mut BatcherTotals,
    sink: &mut S,
) -> anyhow::Result<BatchCommitted> {
    let started = Instant::now();
    sink.write_batch(buf).await?;
    totals.batches += 1;
    totals.rows += buf.len() as u64;
    Ok(BatchCommitted {
        label: sink.label(),
        number: totals.batches,
        rows: buf.len(),
        total_rows: totals.rows,
        last_time_ns: buf.last().map(|r| r.time_ns()).unwrap_or_default(),
        write_time: started.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transform::Passthrough;

    #[derive(Debug, Clone, PartialEq)]
    struct Row(i64);
    impl Record for Row {
        fn time_ns(&self) -> i64 {
            self.0
        }
    }

    /// Records every batch; fails the batch numbered `fail_on` (1-based).
    #[derive(Default)]
    struct MemSink {
        batches: Vec<Vec<i64>>,
        fail_on: Option<usize>,
    }
    impl Sink<Row> for MemSink {
        async fn write_batch(&mut self, rows: &[Row]) -> anyhow::Result<()> {
            if Some(self.batches.len() + 1) == self.fail_on {
                anyhow::bail!("disk full");
            }
            self.batches.push(rows.iter().map(|r| r.0).collect());
            Ok(())
        }
    }

    async fn run(
        pages: Vec<Vec<i64>>,
        batch: usize,
        sink: &mut MemSink,
    ) -> anyhow::Result<(BatcherTotals, Vec<BatchCommitted>)> {
        let (tx, mut rx) = mpsc::channel(CHANNEL_PAGES);
        let (_cancel_tx, cancel_rx) = cancellation();
        let producer = tokio::spawn(async move {
            for p in pages {
                tx.send(p.into_iter().map(Row).collect()).await.unwrap();
            }
        });
        let mut seen = Vec::new();
        let totals = run_batcher(
            &mut rx,
            &mut Passthrough::default(),
            sink,
            batch,
            cancel_rx,
            |c| seen.push(*c),
        )
        .await;
        producer.abort();
        totals.map(|t| (t, seen))
    }

    #[tokio::test]
    async fn batches_cut_across_pages_in_order() {
        let mut sink = MemSink::default();
        let pages = vec![vec![1, 2, 3, 4], vec![5], vec![], vec![6, 7, 8, 9, 10, 11]];
        let (totals, seen) = run(pages, 3, &mut sink).await.unwrap();
        assert_eq!(
            sink.batches,
            vec![vec![1, 2, 3], vec![4, 5, 6], vec![7, 8, 9], vec![10, 11]]
        );
        assert_eq!(
            totals,
            BatcherTotals {
                batches: 4,
                rows: 11,
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
    }

    #[tokio::test]
    async fn exact_multiple_leaves_no_empty_batch() {
        let mut sink = MemSink::default();
        let (totals, _) = run(vec![vec![1, 2], vec![3, 4]], 2, &mut sink)
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
        let err = run(vec![vec![1, 2, 3, 4, 5]], 2, &mut sink)
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "disk full");
        assert_eq!(sink.batches, vec![vec![1, 2]]);
    }

    #[tokio::test]
    async fn cancellation_writes_what_was_received_then_stops() {
        let (tx, mut rx) = mpsc::channel(CHANNEL_PAGES);
        let (cancel_tx, cancel_rx) = cancellation();
        tx.send(vec![Row(1), Row(2), Row(3)]).await.unwrap();
        let mut sink = MemSink::default();
        let batcher = async {
            run_batcher(
                &mut rx,
                &mut Passthrough::default(),
                &mut sink,
                2,
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
        drop(tx);
    }
}
