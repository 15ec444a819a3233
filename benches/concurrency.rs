//! Concurrency and pacing (issues 6 and 14): the real `data` binary importing a full year of
//! AAPL quotes (9,324,000 on 2024's 252 trading days, 1,008 pages) into SQLite from stand-ins
//! that answer after a network-like delay, at `--concurrency` 1, 2, 4, 8, 16 (or any list,
//! `auto` included), against the same import at zero latency; and a
//! long run against a stand-in limited to 200 requests per minute (Alpaca's free plan),
//! reporting the request rate sustained and the 429s received.
//!
//! `cargo bench --bench concurrency`. Environment:
//! - `BENCH_RUNS` rounds (default 3; medians reported), rounds interleave the cases;
//! - `BENCH_CONCURRENCY` (default `1,2,4,8,16`; `auto` is adaptive concurrency),
//!   `BENCH_LATENCY_MS` (default 150); issue 14's row:
//!   `BENCH_LATENCY_MS=600 BENCH_CONCURRENCY=8,16,32,64,auto BENCH_PACING_DAYS=0`;
//! - `BENCH_ZERO_K` concurrencies of the zero-latency reference runs (default `4`);
//! - `BENCH_PACING_DAYS` trading days for the 200/min run (default 65, 260 requests, ~80 s;
//!   `0` skips it).
//!
//! K = 1 at 150 ms takes about three minutes per round.

use data::standin::{Standin, StandinConfig};

/// The stand-in's settings here: it generates and compresses every page on the two cores
/// the importer uses, so it gzips at level 1 (a fifth of level 6's CPU), lest its
/// compression set the pace. benches/ceilings replays pages compressed at the default.
fn cheap_gzip() -> StandinConfig {
    StandinConfig {
        gzip_level: 1,
        ..StandinConfig::default()
    }
}
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const YEAR_QUOTES: f64 = 9_324_000.0;

struct Sample {
    wall: Duration,
    max_rss_kb: i64,
    summary: String,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn run_data(dir: &Path, args: &[&str]) -> Sample {
    let log = dir.join("stderr.log");
    let started = Instant::now();
    // Reaped by wait4 below (which also gives the child's own peak RSS), not by Child::wait.
    #[allow(clippy::zombie_processes)]
    let child = Command::new(env!("CARGO_BIN_EXE_data"))
        .args(args)
        .current_dir(dir)
        .env("APCA_API_KEY_ID", "bench")
        .env("APCA_API_SECRET_KEY", "bench")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("spawn data");
    let mut status = 0;
    // SAFETY: plain FFI call on our own child's pid with valid out-pointers.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    let wall = started.elapsed();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        r > 0 && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{args:?} failed: {text}"
    );
    let summary = text
        .lines()
        .find(|l| l.contains("[DONE]"))
        .unwrap_or_default()
        .to_string();
    Sample {
        wall,
        max_rss_kb: usage.ru_maxrss,
        summary,
    }
}

/// `N requests (R/min), X retries, Y rate-limited (429)` from the summary line.
fn requests_part(summary: &str) -> String {
    summary
        .split("; ")
        .nth(1)
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn number_before(text: &str, suffix: &str) -> Option<f64> {
    let at = text.find(suffix)?;
    text[..at].rsplit([' ', '(']).next()?.parse().ok()
}

fn main() {
    let runs: usize = env_or("BENCH_RUNS", 3usize).max(1);
    let latency_ms: u64 = env_or("BENCH_LATENCY_MS", 150u64);
    let pacing_days: usize = env_or("BENCH_PACING_DAYS", 65usize);
    let ks: Vec<String> = std::env::var("BENCH_CONCURRENCY")
        .unwrap_or_else(|_| "1,2,4,8,16".into())
        .split(',')
        .map(|k| k.trim().to_string())
        .filter(|k| k == "auto" || k.parse::<usize>().is_ok())
        .collect();

    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let fast = Standin::start(cheap_gzip()).await.expect("stand-in");
            let slow = Standin::start(StandinConfig {
                delay: Duration::from_millis(latency_ms),
                ..cheap_gzip()
            })
            .await
            .expect("stand-in");
            let limited = Standin::start(StandinConfig {
                rate_limit: Some(200),
                rate_window: Duration::from_secs(60),
                delay: Duration::from_millis(latency_ms),
                ..cheap_gzip()
            })
            .await
            .expect("stand-in");
            tx.send((fast.url(), slow.url(), limited.url()))
                .expect("send urls");
            std::future::pending::<()>().await;
        });
    });
    let (fast, slow, limited) = rx.recv().expect("stand-in urls");

    // (label, url, concurrency); the first case is the reference for the ratios.
    let zero_ks: Vec<usize> = std::env::var("BENCH_ZERO_K")
        .unwrap_or_else(|_| "4".into())
        .split(',')
        .filter_map(|k| k.trim().parse().ok())
        .collect();
    let mut cases: Vec<(String, String, String)> = zero_ks
        .iter()
        .map(|&k| (format!("zero latency, K={k}"), fast.clone(), k.to_string()))
        .collect();
    for k in &ks {
        cases.push((format!("{latency_ms} ms, K={k}"), slow.clone(), k.clone()));
    }
    let mut samples: Vec<Vec<Sample>> = cases.iter().map(|_| Vec::new()).collect();
    for round in 0..runs {
        for (i, (label, url, k)) in cases.iter().enumerate() {
            let dir = tempfile::tempdir().expect("temp dir");
            let s = run_data(
                dir.path(),
                &[
                    "import-api",
                    "quotes",
                    "AAPL",
                    "2024-01-01",
                    "2024-12-31",
                    "--api-url",
                    url,
                    "--rate-limit",
                    "10000",
                    "--concurrency",
                    k,
                ],
            );
            eprintln!(
                "round {} {label:<28} {:>7.2}s {:>7} KB  {}",
                round + 1,
                s.wall.as_secs_f64(),
                s.max_rss_kb,
                requests_part(&s.summary)
            );
            samples[i].push(s);
        }
    }
    let mut medians = Vec::new();
    println!(
        "Full-year AAPL import (9,324,000 quotes, 1,008 pages) into SQLite, --rate-limit 10000; median of {runs} runs"
    );
    println!("| stand-in latency, concurrency | wall (median) | quotes/s | vs zero latency | peak RSS (median) | requests |");
    println!("|---|---:|---:|---:|---:|---|");
    for ((label, _, _), v) in cases.iter().zip(samples.iter_mut()) {
        v.sort_by_key(|s| s.wall);
        let m = &v[v.len() / 2];
        medians.push(m.wall.as_secs_f64());
        let mut rss: Vec<i64> = v.iter().map(|s| s.max_rss_kb).collect();
        rss.sort();
        println!(
            "| {label} | {:.1} s | {:.0} | {:.2}× | {:.0} MB | {} |",
            m.wall.as_secs_f64(),
            YEAR_QUOTES / m.wall.as_secs_f64(),
            m.wall.as_secs_f64() / medians[0],
            rss[rss.len() / 2] as f64 / 1024.0,
            requests_part(&m.summary)
        );
    }

    if pacing_days == 0 {
        return;
    }
    // A long run at the free plan's limit: the stand-in refuses the 201st request of each
    // minute window; the importer is told 200/min.
    let end = {
        let mut d = chrono::NaiveDate::from_ymd_opt(2024, 1, 2).expect("date");
        let mut n = 0;
        loop {
            if data::nyse::is_trading_day(d) {
                n += 1;
                if n == pacing_days {
                    break d;
                }
            }
            d = d.succ_opt().expect("date");
        }
    };
    let end = end.to_string();
    println!();
    println!(
        "Free plan pacing: {pacing_days} trading days ({} pages) from a stand-in limited to 200 requests per minute window, {latency_ms} ms latency, --rate-limit 200 --concurrency 4"
    , pacing_days * 4);
    println!("| run | wall | requests | requests/min (average over the run) | retries | 429s |");
    println!("|---|---:|---:|---:|---:|---:|");
    for round in 0..runs.min(2) {
        let dir = tempfile::tempdir().expect("temp dir");
        let s = run_data(
            dir.path(),
            &[
                "import-api",
                "quotes",
                "AAPL",
                "2024-01-02",
                &end,
                "--api-url",
                &limited,
                "--rate-limit",
                "200",
                "--concurrency",
                "4",
            ],
        );
        let part = requests_part(&s.summary);
        let requests = number_before(&part, " requests").unwrap_or(0.0);
        let retries = number_before(&part, " retries").unwrap_or(0.0);
        let refused = number_before(&part, " rate-limited").unwrap_or(0.0);
        println!(
            "| {} | {:.1} s | {requests:.0} | {:.1} | {retries:.0} | {refused:.0} |",
            round + 1,
            s.wall.as_secs_f64(),
            requests * 60.0 / s.wall.as_secs_f64(),
        );
    }
}
