//! The Parquet sink alone: decoded quotes in, zstd day files out, in 10,000-row batches.
//!
//! Run with `cargo bench --bench parquet_sink`. Reports the median of `BENCH_RUNS`
//! (default 5) runs of `BENCH_ROWS` quotes (default 2,000,000, about 54 days of the
//! stand-in's AAPL), each into a fresh folder, and the bytes written per quote.

use arrow_array::RecordBatch;
use data::dataset::DatasetId;
use data::pipeline::{Mark, Sink};
use data::standin::generate::quotes_between;
use data::standin::generate::{quotes_batch, GenQuote};
use data::store::parquet::writer::ParquetSink;
use data::time::DateRange;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn dir_bytes(p: &std::path::Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
        let path = e.path();
        total += if path.is_dir() {
            dir_bytes(&path)
        } else {
            e.metadata().map(|m| m.len()).unwrap_or(0)
        };
    }
    total
}

fn main() {
    let n = env_usize("BENCH_ROWS", 2_000_000);
    let runs = env_usize("BENCH_RUNS", 5).max(1);
    let range = DateRange::parse("2024-01-01", "2024-12-31").expect("range");
    let gen: Vec<GenQuote> = quotes_between("AAPL", "sip", range.start_ns, range.end_ns, 37_000)
        .take(n)
        .collect();
    let rows = quotes_batch("AAPL", &gen).expect("batch");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // One shard per day, each marked done with the batch holding its last row, as the
    // pipeline does, so each day's file is closed as soon as it is complete.
    let symbol = data::model::Symbol::parse("AAPL").expect("symbol");
    let shards = Arc::new(data::resume::day_shards(&symbol, range, i64::MAX));
    let batches: Vec<(RecordBatch, Vec<Mark>)> = {
        let chunks: Vec<(RecordBatch, i64)> = (0..rows.num_rows())
            .step_by(10_000)
            .map(|s| (rows.slice(s, 10_000.min(rows.num_rows() - s)), gen[s].t))
            .collect();
        let mut marked = 0;
        chunks
            .iter()
            .enumerate()
            .map(|(i, batch)| {
                let next_start = chunks.get(i + 1).map(|(_, t)| *t);
                let mut marks = Vec::new();
                while marked < shards.len() && next_start.is_none_or(|t| shards[marked].end_ns < t)
                {
                    marks.push(Mark {
                        shard: marked as u32,
                        position: None,
                        done: true,
                    });
                    marked += 1;
                }
                (batch.0.clone(), marks)
            })
            .collect()
    };
    let mut times: Vec<Duration> = Vec::new();
    let mut bytes = 0;
    for _ in 0..runs {
        let dir = tempfile::tempdir().expect("temp dir");
        let t = rt.block_on(async {
            let mut sink = ParquetSink::new(
                &data::store::parquet::location::Location::local(dir.path()),
                DatasetId::Quotes,
                shards.clone(),
            )
            .expect("sink");
            let started = Instant::now();
            for (batch, marks) in &batches {
                sink.write_batch(batch, marks).await.expect("write");
            }
            sink.finish().await.expect("finish");
            started.elapsed()
        });
        bytes = dir_bytes(dir.path());
        times.push(t);
    }
    times.sort();
    let median = times[times.len() / 2];
    println!(
        "Parquet sink: {n} quotes, median {:.2}s = {:.0} quotes/s (min {:.2}s, max {:.2}s, {runs} runs); {:.1} MB on disk, {:.1} bytes/quote",
        median.as_secs_f64(),
        n as f64 / median.as_secs_f64(),
        times[0].as_secs_f64(),
        times[times.len() - 1].as_secs_f64(),
        bytes as f64 / 1e6,
        bytes as f64 / n as f64
    );
}
