//! The PostgreSQL sink alone, beside the alternatives measured in the same run: the sink's
//! binary COPY straight in (fresh range, or `--skip-duplicates`) and through a staging table
//! with an ordered upsert, a text COPY straight in (the format the sink does not use), and
//! multi-row `INSERT` with bound parameters, with `ON CONFLICT` (the upsert the sink does) and
//! plain (the path COPY replaces). `BENCH_ROWS=9694000` is the full year's volume.
//!
//! Needs a server: `BENCH_POSTGRES_URL` or `DATA_TEST_POSTGRES_URL` (e.g.
//! postgres://root@127.0.0.1:5432/postgres); each case runs in a fresh database.
//! Run with `cargo bench --bench postgres_sink`; `BENCH_ROWS` (default 500,000) and
//! `BENCH_RUNS` (default 3); medians reported.

use arrow_array::RecordBatch;
use data::pipeline::Sink;
use data::standin::generate::quotes_between;
use data::standin::generate::{quotes_batch, GenQuote};
use data::store::sql::postgres::PgSink;
use data::store::sql::sqlite::WriteMode;
use data::time::DateRange;
use sqlx::{Connection, PgConnection};
use std::time::{Duration, Instant};

const BATCH: usize = 10_000;
const COLS: &str = "symbol_id, t, seq, bid_exchange, bid_price, bid_size, ask_exchange, ask_price, ask_size, conditions, tape";
const UPSERT_TAIL: &str = "ON CONFLICT (symbol_id, t, seq) DO UPDATE SET bid_exchange = EXCLUDED.bid_exchange, \
    bid_price = EXCLUDED.bid_price, bid_size = EXCLUDED.bid_size, ask_exchange = EXCLUDED.ask_exchange, \
    ask_price = EXCLUDED.ask_price, ask_size = EXCLUDED.ask_size, conditions = EXCLUDED.conditions, tape = EXCLUDED.tape";

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

/// PostgreSQL text COPY encoding of quotes (symbol_id 1), for the text-vs-binary comparison.
fn text_rows(rows: &[(GenQuote, u32)]) -> Vec<u8> {
    fn esc(out: &mut Vec<u8>, s: &str) {
        for b in s.bytes() {
            match b {
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\t' => out.extend_from_slice(b"\\t"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                _ => out.push(b),
            }
        }
    }
    let mut out = Vec::with_capacity(rows.len() * 100);
    let (mut ib, mut fb) = (itoa::Buffer::new(), ryu::Buffer::new());
    for (q, seq) in rows {
        out.extend_from_slice(b"1\t");
        out.extend_from_slice(ib.format(q.t).as_bytes());
        out.push(b'\t');
        out.extend_from_slice(ib.format(*seq).as_bytes());
        out.push(b'\t');
        esc(&mut out, &char::from(q.bid_exchange).to_string());
        out.push(b'\t');
        out.extend_from_slice(fb.format(q.bid_price()).as_bytes());
        out.push(b'\t');
        out.extend_from_slice(ib.format(q.bid_size).as_bytes());
        out.push(b'\t');
        esc(&mut out, &char::from(q.ask_exchange).to_string());
        out.push(b'\t');
        out.extend_from_slice(fb.format(q.ask_price()).as_bytes());
        out.push(b'\t');
        out.extend_from_slice(ib.format(q.ask_size).as_bytes());
        out.push(b'\t');
        esc(&mut out, q.conditions);
        out.push(b'\t');
        esc(&mut out, &char::from(q.tape).to_string());
        out.push(b'\n');
    }
    out
}

async fn text_copy_direct(conn: &mut PgConnection, rows: &[(GenQuote, u32)]) {
    for batch in rows.chunks(BATCH) {
        let mut tx = conn.begin().await.expect("begin");
        let mut copy = tx
            .copy_in_raw(&format!("COPY quotes ({COLS}) FROM STDIN (FORMAT text)"))
            .await
            .expect("copy");
        copy.send(text_rows(batch)).await.expect("send");
        copy.finish().await.expect("finish");
        tx.commit().await.expect("commit");
    }
}

async fn multirow_insert(conn: &mut PgConnection, rows: &[(GenQuote, u32)], upsert: bool) {
    // PostgreSQL allows 65,535 bound parameters per statement: 5,957 rows of 11 columns.
    let per = 65_535 / 11;
    for batch in rows.chunks(BATCH) {
        let mut tx = conn.begin().await.expect("begin");
        for chunk in batch.chunks(per) {
            let mut sql = format!("INSERT INTO quotes ({COLS}) VALUES ");
            for i in 0..chunk.len() {
                let p = i * 11;
                if i > 0 {
                    sql.push(',');
                }
                sql.push('(');
                sql.push_str(
                    &(1..=11)
                        .map(|k| format!("${}", p + k))
                        .collect::<Vec<_>>()
                        .join(","),
                );
                sql.push(')');
            }
            if upsert {
                sql.push(' ');
                sql.push_str(UPSERT_TAIL);
            }
            let mut q = sqlx::query(&sql);
            for (r, seq) in chunk {
                q = q
                    .bind(1i32)
                    .bind(r.t)
                    .bind(*seq as i32)
                    .bind(char::from(r.bid_exchange).to_string())
                    .bind(r.bid_price())
                    .bind(r.bid_size as i64)
                    .bind(char::from(r.ask_exchange).to_string())
                    .bind(r.ask_price())
                    .bind(r.ask_size as i64)
                    .bind(r.conditions)
                    .bind(char::from(r.tape).to_string());
            }
            q.execute(&mut *tx).await.expect("insert");
        }
        tx.commit().await.expect("commit");
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Case {
    SinkFresh,
    SinkStaging,
    SinkPlain,
    TextDirect,
    MultiRowInsert,
    MultiRowPlain,
}

const CASES: [(Case, &str); 6] = [
    (
        Case::SinkFresh,
        "sink default, fresh range: span probe + binary COPY straight in",
    ),
    (
        Case::SinkStaging,
        "sink, rows may exist: binary COPY to staging + upsert",
    ),
    (
        Case::SinkPlain,
        "sink --skip-duplicates: binary COPY straight in",
    ),
    (Case::TextDirect, "text COPY straight in (for comparison)"),
    (
        Case::MultiRowInsert,
        "multi-row INSERT ... ON CONFLICT (bound parameters)",
    ),
    (
        Case::MultiRowPlain,
        "plain multi-row INSERT, no ON CONFLICT (bound parameters)",
    ),
];

fn main() {
    let Some(admin) = std::env::var("BENCH_POSTGRES_URL")
        .or_else(|_| std::env::var("DATA_TEST_POSTGRES_URL"))
        .ok()
    else {
        println!("postgres_sink NOT RUN: set BENCH_POSTGRES_URL (e.g. postgres://root@127.0.0.1:5432/postgres)");
        return;
    };
    let n = env_usize("BENCH_ROWS", 500_000);
    let runs = env_usize("BENCH_RUNS", 3).max(1);
    let (rows, batch) = quotes(n);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let base = admin
        .rsplit_once('/')
        .map(|(b, _)| b.to_string())
        .unwrap_or(admin.clone());
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); CASES.len()];
    let mut sizes = vec![String::new(); CASES.len()];
    rt.block_on(async {
        let mut adminc = PgConnection::connect(&admin).await.expect("connect");
        for _ in 0..runs {
            for (i, (case, _)) in CASES.iter().enumerate() {
                let name = format!("data_bench_{}", std::process::id());
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut adminc)
                    .await
                    .expect("drop");
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut adminc)
                    .await
                    .expect("create");
                let url = format!("{base}/{name}");
                let mut sink = PgSink::open(&url).await.expect("open");
                sink.set_target(&data::dataset::QUOTES, data::dataset::DatasetId::Quotes);
                // Symbol id 1, as the raw paths assume.
                sink.write_batch(&batch.slice(0, 1), &[])
                    .await
                    .expect("symbol");
                let mut conn = PgConnection::connect(&url).await.expect("connect");
                sqlx::query("TRUNCATE quotes")
                    .execute(&mut conn)
                    .await
                    .expect("truncate");
                let started = Instant::now();
                match case {
                    Case::SinkFresh | Case::SinkStaging | Case::SinkPlain => {
                        if *case == Case::SinkPlain {
                            sink.set_mode(WriteMode::Insert);
                        }
                        if *case == Case::SinkStaging {
                            sink.set_optimistic(false);
                        }
                        for start in (0..n.min(batch.num_rows())).step_by(BATCH) {
                            let len = BATCH.min(batch.num_rows() - start);
                            sink.write_batch(&batch.slice(start, len), &[])
                                .await
                                .expect("write");
                        }
                    }
                    Case::TextDirect => text_copy_direct(&mut conn, &rows).await,
                    Case::MultiRowInsert => multirow_insert(&mut conn, &rows, true).await,
                    Case::MultiRowPlain => multirow_insert(&mut conn, &rows, false).await,
                }
                times[i].push(started.elapsed());
                let count: i64 = sqlx::query_scalar("SELECT count(*) FROM quotes")
                    .fetch_one(&mut conn)
                    .await
                    .expect("count");
                assert_eq!(count as usize, n);
                sizes[i] =
                    sqlx::query_scalar("SELECT pg_size_pretty(pg_total_relation_size('quotes'))")
                        .fetch_one(&mut conn)
                        .await
                        .expect("size");
                drop(conn);
                drop(sink);
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut adminc)
                    .await
                    .expect("drop");
            }
        }
    });
    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    let medians: Vec<f64> = times
        .iter_mut()
        .map(|v| {
            v.sort();
            rate(v[v.len() / 2])
        })
        .collect();
    let (insert, plain) = (medians[4], medians[5]);
    println!("PostgreSQL sink: {n} quotes in batches of {BATCH}, one transaction per batch; median of {runs} runs");
    println!("| path | wall (median) | rows/s | vs INSERT ... ON CONFLICT | vs plain INSERT | table + index size |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (i, (_, name)) in CASES.iter().enumerate() {
        println!(
            "| {name} | {:.1} s | {:.0} | {:.2}× | {:.2}× | {} |",
            n as f64 / medians[i],
            medians[i],
            medians[i] / insert,
            medians[i] / plain,
            sizes[i]
        );
    }
}
