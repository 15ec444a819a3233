//! The SQLite sink alone: rows/s committing 10,000-row batches of decoded quotes.
//!
//! Run with `cargo bench --bench sqlite_sink`. Each case runs several times on a fresh
//! database in a temp folder and reports the median, min and max, so one noisy run on a
//! shared machine does not decide the figure. `BENCH_ROWS` and `BENCH_RUNS` override the
//! defaults (500,000 rows, 5 runs).

use data::model::Quote;
use data::pipeline::Sink;
use data::sink::sqlite::SqliteSink;
use data::standin::generate::quotes_between;
use data::time::DateRange;
use std::sync::Arc;
use std::time::{Duration, Instant};

const BATCH: usize = 10_000;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn quotes(n: usize) -> Vec<Quote> {
    let sym: Arc<str> = Arc::from("AAPL");
    let range = DateRange::parse("2024-01-01", "2024-12-31").expect("range");
    let (mut last, mut seq) = (i64::MIN, 0);
    quotes_between("AAPL", "sip", range.start_ns, range.end_ns, 37_000)
        .take(n)
        .map(|g| {
            seq = if g.t == last { seq + 1 } else { 0 };
            last = g.t;
            g.to_quote(&sym, seq)
        })
        .collect()
}

async fn write_all(sink: &mut SqliteSink, rows: &[Quote]) -> Duration {
    let started = Instant::now();
    for batch in rows.chunks(BATCH) {
        sink.write_batch(batch).await.expect("write batch");
    }
    started.elapsed()
}

fn report(name: &str, rows: usize, mut times: Vec<Duration>) {
    times.sort();
    let rate = |d: &Duration| rows as f64 / d.as_secs_f64();
    let median = times[times.len() / 2];
    println!(
        "{name:<34} median {:>10.0} rows/s   (min {:>10.0}, max {:>10.0}; {} runs of {rows} rows)",
        rate(&median),
        rate(&times[times.len() - 1]),
        rate(&times[0]),
        times.len()
    );
}

fn main() {
    let n = env_usize("BENCH_ROWS", 500_000);
    let runs = env_usize("BENCH_RUNS", 5).max(1);
    let rows = quotes(n);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (mut fresh, mut again) = (Vec::new(), Vec::new());
    rt.block_on(async {
        for _ in 0..runs {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite:{}", dir.path().join("bench.db").display());
            let mut sink = SqliteSink::open(&url, Duration::from_secs(5))
                .await
                .expect("open");
            fresh.push(write_all(&mut sink, &rows).await);
            // The same rows again: the idempotent re-import path (conflicts, no changes).
            again.push(write_all(&mut sink, &rows).await);
        }
    });
    println!("SQLite sink, batches of {BATCH}, WAL, synchronous=NORMAL");
    report("upsert into an empty table", n, fresh);
    report("upsert of rows already present", n, again);
}
