//! Issue 17: the Parquet store in an S3 bucket against a local folder, and several importers
//! sharing one job.
//!
//! - **year**: the full year of AAPL quotes (9,324,000, 1,008 pages) from a zero-latency
//!   stand-in into the Parquet store in a local folder and in a bucket of an S3-compatible
//!   server on loopback (moto's), rounds interleaved, medians;
//! - **coordinate**: one job (`BENCH_COORD_SYMBOLS` symbols x January 2024's 21 trading days,
//!   one page each) run by 1, 2 and 3 importers started together with `--coordinate
//!   --concurrency 4` against a stand-in answering after 600 ms, claims in PostgreSQL and in
//!   the bucket; wall time until the last importer exits, the speedup over one importer, and
//!   the stand-in's request count (every shard fetched once: requests = shards).
//!
//! `cargo bench --bench shared_store`. Environment: `BENCH_RUNS` (default 3),
//! `BENCH_PARTS` (default `year,coordinate`), `BENCH_S3_ENDPOINT` (else
//! `DATA_TEST_S3_ENDPOINT`; start `moto_server -p 5055` and set it to
//! http://127.0.0.1:5055; without it the bucket cases are skipped), `BENCH_PG_URL` (default
//! postgres://root@127.0.0.1:5432/postgres; each run gets a fresh database),
//! `BENCH_LATENCY_MS` (default 600), `BENCH_COORD_SYMBOLS` (default 6).

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
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const YEAR_QUOTES: f64 = 9_324_000.0;
const COORD_DAYS: usize = 21;
const SYMBOLS: [&str; 10] = [
    "AAPL", "MSFT", "NVDA", "TSLA", "AMZN", "GOOG", "META", "AMD", "INTC", "NFLX",
];

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The server's S3 settings for `data`, as a user sets them.
fn s3_env(cmd: &mut Command, endpoint: &str) {
    cmd.env("AWS_ACCESS_KEY_ID", "bench")
        .env("AWS_SECRET_ACCESS_KEY", "bench-secret")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ALLOW_HTTP", "true");
}

fn data(dir: &Path, args: &[&str], s3: Option<&str>) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_data"));
    cmd.args(args)
        .current_dir(dir)
        .env("APCA_API_KEY_ID", "bench")
        .env("APCA_API_SECRET_KEY", "bench")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("stderr.log")).expect("log file"));
    if let Some(endpoint) = s3 {
        s3_env(&mut cmd, endpoint);
    }
    cmd.spawn().expect("spawn data")
}

fn wait_ok(mut child: Child, dir: &Path) {
    let status = child.wait().expect("wait");
    let log = std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default();
    assert!(status.success(), "data failed: {log}");
}

/// A fresh bucket named after `what` (moto creates it on a plain PUT).
fn bucket(rt: &tokio::runtime::Runtime, endpoint: &str, what: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "bench-{what}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    rt.block_on(async {
        let r = reqwest::Client::new()
            .put(format!("{endpoint}/{name}"))
            .send()
            .await
            .expect("the S3 server answers");
        assert!(r.status().is_success(), "cannot create bucket {name}");
    });
    name
}

/// A fresh PostgreSQL database; its URL.
fn database(rt: &tokio::runtime::Runtime, admin: &str) -> String {
    use sqlx::Connection;
    static N: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "bench_coord_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    rt.block_on(async {
        let mut c = sqlx::PgConnection::connect(admin)
            .await
            .expect("PostgreSQL answers");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut c)
            .await
            .expect("create database");
    });
    let base = admin.rsplit_once('/').map_or(admin, |(b, _)| b);
    format!("{base}/{name}")
}

fn main() {
    let runs: usize = env_or("BENCH_RUNS", 3);
    let parts = std::env::var("BENCH_PARTS").unwrap_or_else(|_| "year,coordinate".into());
    let s3 = std::env::var("BENCH_S3_ENDPOINT")
        .or_else(|_| std::env::var("DATA_TEST_S3_ENDPOINT"))
        .ok();
    if s3.is_none() {
        eprintln!("no BENCH_S3_ENDPOINT (or DATA_TEST_S3_ENDPOINT): the bucket cases are skipped");
    }
    let pg: String = env_or(
        "BENCH_PG_URL",
        "postgres://root@127.0.0.1:5432/postgres".to_string(),
    );
    let latency_ms: u64 = env_or("BENCH_LATENCY_MS", 600);
    let n_symbols: usize = env_or("BENCH_COORD_SYMBOLS", 6usize).clamp(1, SYMBOLS.len());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (fast, slow) = rt.block_on(async {
        let fast = Standin::start(cheap_gzip()).await.expect("stand-in");
        let slow = Standin::start(StandinConfig {
            delay: Duration::from_millis(latency_ms),
            quotes_per_day: 1_000,
            ..cheap_gzip()
        })
        .await
        .expect("stand-in");
        (fast, slow)
    });

    if parts.contains("year") {
        let mut cases: Vec<(&str, Vec<f64>)> = vec![("local folder", Vec::new())];
        if s3.is_some() {
            cases.push(("S3 bucket (moto, loopback)", Vec::new()));
        }
        for round in 0..runs {
            for (label, walls) in cases.iter_mut() {
                let dir = tempfile::tempdir().expect("temp dir");
                let (path, endpoint) = match (*label, &s3) {
                    ("local folder", _) => ("store".to_string(), None),
                    (_, Some(e)) => (
                        format!("s3://{}/h", bucket(&rt, e, "year")),
                        Some(e.as_str()),
                    ),
                    _ => continue,
                };
                let args = [
                    "import-api",
                    "quotes",
                    "AAPL",
                    "2024-01-01",
                    "2024-12-31",
                    "--api-url",
                    &fast.url(),
                    "--format",
                    "parquet",
                    "--historical-path",
                    &path,
                    "--rate-limit",
                    "10000",
                    "--concurrency",
                    "4",
                ];
                let started = Instant::now();
                wait_ok(data(dir.path(), &args, endpoint), dir.path());
                let wall = started.elapsed().as_secs_f64();
                eprintln!("round {} year into {label}: {wall:.2} s", round + 1);
                walls.push(wall);
            }
        }
        println!("Full-year AAPL quotes (9,324,000) into the Parquet store, --concurrency 4, zero-latency stand-in; median of {runs}");
        println!("| store | wall (median) | quotes/s | vs local folder |");
        println!("|---|---:|---:|---:|");
        let base = median(cases[0].1.clone());
        for (label, walls) in &cases {
            let m = median(walls.clone());
            println!(
                "| {label} | {m:.1} s | {:.0} | {:.2}× |",
                YEAR_QUOTES / m,
                m / base
            );
        }
    }

    if parts.contains("coordinate") {
        let symbols = SYMBOLS[..n_symbols].join(",");
        let shards = n_symbols * COORD_DAYS;
        let mut backends = vec!["PostgreSQL"];
        if s3.is_some() {
            backends.push("S3 bucket");
        }
        // (backend, importers), walls, requests
        type Case<'a> = ((&'a str, usize), Vec<f64>, Vec<u64>);
        let mut results: Vec<Case> = Vec::new();
        for b in &backends {
            for n in 1..=3 {
                results.push(((b, n), Vec::new(), Vec::new()));
            }
        }
        for round in 0..runs {
            for ((backend, n), walls, requests) in results.iter_mut() {
                let (target, endpoint): (Vec<String>, Option<&str>) = match *backend {
                    "PostgreSQL" => (vec!["--database-url".into(), database(&rt, &pg)], None),
                    _ => {
                        let e = s3.as_deref().expect("endpoint");
                        let url = format!("s3://{}/h", bucket(&rt, e, "coord"));
                        (
                            vec![
                                "--format".into(),
                                "parquet".into(),
                                "--historical-path".into(),
                                url,
                            ],
                            Some(e),
                        )
                    }
                };
                let mut args: Vec<String> = [
                    "import-api",
                    "quotes",
                    &symbols,
                    "2024-01-01",
                    "2024-01-31",
                    "--api-url",
                    &slow.url(),
                    "--coordinate",
                    "--concurrency",
                    "4",
                    "--rate-limit",
                    "0",
                ]
                .iter()
                .map(|s| s.to_string())
                .collect();
                args.extend(target);
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let before = slow.requests();
                let dirs: Vec<_> = (0..*n).map(|_| tempfile::tempdir().expect("dir")).collect();
                let started = Instant::now();
                let children: Vec<Child> = dirs
                    .iter()
                    .map(|d| data(d.path(), &args, endpoint))
                    .collect();
                for (c, d) in children.into_iter().zip(&dirs) {
                    wait_ok(c, d.path());
                }
                let wall = started.elapsed().as_secs_f64();
                let asked = slow.requests() - before;
                eprintln!(
                    "round {} {backend}, {n} importer(s): {wall:.2} s, {asked} requests for {shards} shards",
                    round + 1
                );
                walls.push(wall);
                requests.push(asked);
            }
        }
        println!(
            "One job ({n_symbols} symbols x {COORD_DAYS} trading days = {shards} shards, one page each) at {latency_ms} ms stand-in latency, --concurrency 4 per importer, importers started together with --coordinate; median of {runs}"
        );
        println!("| claims in | importers | wall (median) | speedup vs one | of ideal | requests (each run) |");
        println!("|---|---:|---:|---:|---:|---|");
        let mut one = 0.0;
        for ((backend, n), walls, requests) in &results {
            let m = median(walls.clone());
            if *n == 1 {
                one = m;
            }
            let speedup = one / m;
            println!(
                "| {backend} | {n} | {m:.2} s | {speedup:.2}× | {:.0}% | {} |",
                100.0 * speedup / *n as f64,
                requests
                    .iter()
                    .map(|r| format!(
                        "{r}{}",
                        if *r as usize == shards {
                            " ✓"
                        } else {
                            " ✗"
                        }
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
}
