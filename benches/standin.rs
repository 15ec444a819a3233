//! The offline stand-in alone: how fast it serves a full year of AAPL quotes (970 pages of
//! 10,000) to a client that only reads the bytes. It must never be what limits an import
//! benchmark, so this figure should sit well above the end-to-end import rate.
//!
//! Run with `cargo bench --bench standin`. `BENCH_RUNS` (default 3) sets the run count; the
//! median is reported.

use data::standin::{Standin, StandinConfig};
use std::time::{Duration, Instant};

async fn fetch_year(url: &str) -> (u64, u64) {
    let client = reqwest::Client::new();
    let base = format!(
        "{url}/v2/stocks/quotes?symbols=AAPL&start=2024-01-01T09:00:00Z&end=2025-01-01T01:00:00Z&limit=10000"
    );
    let (mut pages, mut bytes, mut token) = (0u64, 0u64, None::<String>);
    loop {
        let u = match &token {
            Some(t) => format!("{base}&page_token={t}"),
            None => base.clone(),
        };
        let body = client
            .get(&u)
            .header("APCA-API-KEY-ID", "k")
            .header("APCA-API-SECRET-KEY", "s")
            .send()
            .await
            .expect("send")
            .bytes()
            .await
            .expect("body");
        pages += 1;
        bytes += body.len() as u64;
        // The token is the last string field; find it without a full JSON parse.
        let tail = &body[body.len().saturating_sub(200)..];
        let tail = String::from_utf8_lossy(tail);
        token = tail
            .split("\"next_page_token\":\"")
            .nth(1)
            .and_then(|t| t.split('"').next())
            .map(str::to_string);
        if token.is_none() {
            return (pages, bytes);
        }
    }
}

fn main() {
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let quotes = 262u64 * 37_000;
    let mut times: Vec<Duration> = Vec::new();
    let mut last = (0, 0);
    rt.block_on(async {
        let s = Standin::start(StandinConfig::default())
            .await
            .expect("stand-in");
        for _ in 0..runs.max(1) {
            let started = Instant::now();
            last = fetch_year(&s.url()).await;
            times.push(started.elapsed());
        }
    });
    times.sort();
    let median = times[times.len() / 2];
    println!(
        "stand-in, full year AAPL: {} pages, {:.0} MB of JSON; median {:.2}s = {:.0} quotes/s, {:.0} MB/s ({} runs, min {:.2}s, max {:.2}s)",
        last.0,
        last.1 as f64 / 1e6,
        median.as_secs_f64(),
        quotes as f64 / median.as_secs_f64(),
        last.1 as f64 / 1e6 / median.as_secs_f64(),
        times.len(),
        times[0].as_secs_f64(),
        times[times.len() - 1].as_secs_f64()
    );
}
