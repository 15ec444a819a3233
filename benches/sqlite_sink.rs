//! The SQLite sink alone: rows/s committing 10,000-row batches of decoded quotes, in each
//! write mode, beside a raw baseline measured in the same run: the fastest plain
//! prepared-statement insert (rusqlite, one single-row INSERT prepared once and reused, one
//! transaction per batch) into the same table with the same pragmas.
//!
//! Run with `cargo bench --bench sqlite_sink`. Cases are interleaved round by round on fresh
//! databases so machine noise hits them alike; each reports the median of `BENCH_RUNS`
//! (default 5) runs of `BENCH_ROWS` rows (default 500,000).

use arrow_array::RecordBatch;
use data::pipeline::Sink;
use data::standin::generate::{quotes_batch, quotes_between, GenQuote};
use data::store::sql::sqlite::{SqliteSink, WriteMode, QUOTES};
use data::time::DateRange;
use std::path::Path;
use std::time::{Duration, Instant};

const BATCH: usize = 10_000;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `n` generated quotes with their `seq`, and the same as one pipeline batch.
fn quotes(n: usize) -> (Vec<(GenQuote, u32)>, RecordBatch) {
    let range = DateRange::parse("2024-01-01", "2024-12-31").expect("range");
    let (mut last, mut seq) = (i64::MIN, 0);
    let gen: Vec<GenQuote> = quotes_between("AAPL", "sip", range.start_ns, range.end_ns, 37_000)
        .take(n)
        .collect();
    let batch = quotes_batch("AAPL", &gen).expect("batch");
    let rows = gen
        .into_iter()
        .map(|g| {
            seq = if g.t == last { seq + 1 } else { 0 };
            last = g.t;
            (g, seq)
        })
        .collect();
    (rows, batch)
}

/// `rows` in slices of `BATCH`.
fn batches(rows: &RecordBatch) -> impl Iterator<Item = RecordBatch> + '_ {
    (0..rows.num_rows())
        .step_by(BATCH)
        .map(move |s| rows.slice(s, BATCH.min(rows.num_rows() - s)))
}

#[derive(Clone, Copy, PartialEq)]
enum Case {
    Baseline,
    Upsert,
    Insert,
    UpsertNoIndex,
    InsertNoIndex,
    UpsertExisting,
}

impl Case {
    const ALL: [Case; 6] = [
        Case::Baseline,
        Case::Upsert,
        Case::Insert,
        Case::UpsertNoIndex,
        Case::InsertNoIndex,
        Case::UpsertExisting,
    ];
    fn name(self) -> &'static str {
        match self {
            Case::Baseline => "raw baseline (rusqlite prepared INSERT)",
            Case::Upsert => "sink upsert (default)",
            Case::Insert => "sink plain insert (--skip-duplicates)",
            Case::UpsertNoIndex => "sink upsert, index dropped",
            Case::InsertNoIndex => "sink plain insert, index dropped",
            Case::UpsertExisting => "sink upsert of rows already present",
        }
    }
}

/// The baseline: what a hand-written importer with a prepared statement reaches.
fn baseline(path: &Path, rows: &[(GenQuote, u32)]) -> Duration {
    let mut conn = rusqlite::Connection::open(path).expect("open");
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA cache_size = -16384;",
    )
    .expect("pragmas");
    let symbol_id: i64 = conn
        .query_row(
            "INSERT INTO symbols (symbol) VALUES ('AAPL') ON CONFLICT (symbol, feed) DO UPDATE SET symbol = symbol RETURNING id",
            [],
            |r| r.get(0),
        )
        .expect("symbol");
    let started = Instant::now();
    for batch in rows.chunks(BATCH) {
        let tx = conn.transaction().expect("begin");
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO quotes (symbol_id, t, seq, bid_exchange, bid_price, bid_size, \
                     ask_exchange, ask_price, ask_size, conditions, tape) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                )
                .expect("prepare");
            for (q, seq) in batch {
                stmt.execute(rusqlite::params![
                    symbol_id,
                    q.t,
                    seq,
                    char::from(q.bid_exchange).to_string(),
                    q.bid_price(),
                    q.bid_size,
                    char::from(q.ask_exchange).to_string(),
                    q.ask_price(),
                    q.ask_size,
                    q.conditions,
                    char::from(q.tape).to_string()
                ])
                .expect("insert");
            }
        }
        tx.commit().expect("commit");
    }
    started.elapsed()
}

async fn sink_run(path: &Path, rows: &RecordBatch, case: Case) -> Duration {
    let url = format!("sqlite:{}", path.display());
    let mut sink = SqliteSink::open(&url, Duration::from_secs(5))
        .await
        .expect("open");
    sink.set_target(&QUOTES, data::dataset::DatasetId::Quotes);
    if matches!(case, Case::UpsertNoIndex | Case::InsertNoIndex) {
        sink.drop_secondary_indexes(&QUOTES).await.expect("drop");
    }
    if matches!(case, Case::Insert | Case::InsertNoIndex) {
        sink.set_mode(WriteMode::Insert);
    }
    if case == Case::UpsertExisting {
        for batch in batches(rows) {
            sink.write_batch(&batch, &[]).await.expect("prefill");
        }
    }
    let started = Instant::now();
    for batch in batches(rows) {
        sink.write_batch(&batch, &[]).await.expect("write batch");
    }
    started.elapsed()
}

fn main() {
    let n = env_usize("BENCH_ROWS", 500_000);
    let runs = env_usize("BENCH_RUNS", 5).max(1);
    let (rows, batch) = quotes(n);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); Case::ALL.len()];
    for _ in 0..runs {
        for (i, case) in Case::ALL.iter().enumerate() {
            let dir = tempfile::tempdir().expect("temp dir");
            let path = dir.path().join("bench.db");
            let t = rt.block_on(async {
                if *case == Case::Baseline {
                    // Same schema (migrations applied by the sink), then the raw writer.
                    drop(
                        SqliteSink::open(
                            &format!("sqlite:{}", path.display()),
                            Duration::from_secs(5),
                        )
                        .await
                        .expect("schema"),
                    );
                    baseline(&path, &rows)
                } else {
                    sink_run(&path, &batch, *case).await
                }
            });
            times[i].push(t);
        }
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    let base = rate(median(&mut times[0].clone()));
    println!("SQLite sink: {n} quotes in batches of {BATCH}, WAL, synchronous=NORMAL; median of {runs} runs");
    println!("| case | rows/s (median) | min | max | vs baseline |");
    println!("|---|---:|---:|---:|---:|");
    for (i, case) in Case::ALL.iter().enumerate() {
        let mut v = times[i].clone();
        let m = rate(median(&mut v));
        println!(
            "| {} | {:.0} | {:.0} | {:.0} | {:.0}% |",
            case.name(),
            m,
            rate(v[v.len() - 1]),
            rate(v[0]),
            100.0 * m / base
        );
    }
}
