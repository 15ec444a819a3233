//! End to end: the real `data` binary importing a full year of AAPL quotes (9,324,000: the
//! stand-in's 37,000 a day on each of 2024's 252 NYSE trading days) from the stand-in, in each mode, reporting wall time, quotes/s, peak RSS (the child's own,
//! from wait4) and database size, as medians over `BENCH_RUNS` rounds (default 3).
//!
//! Run with `cargo bench --bench end_to_end` (about 15 minutes on 2 cores).
//! `BENCH_MODES=default,drop-indexes` runs a subset. Modes are interleaved round by round so
//! machine noise hits them alike. The stand-in runs in this process on its own threads.
//!
//! `BENCH_BASELINE=/path/to/data` also runs every chosen mode with that binary (an earlier
//! release, built in a `git worktree`), interleaved with this one, as `<mode> @baseline`:
//!
//! ```sh
//! git worktree add ../base 6eddcd9 && (cd ../base && cargo build --release --bins)
//! BENCH_BASELINE=../base/target/release/data BENCH_MODES=default cargo bench --bench end_to_end
//! ```

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

/// The quotes the stand-in serves for `from..=to`: its quotes a day on each NYSE trading day
/// (the calendar it and the importer share), early closes included in full.
fn stand_in_quotes(from: &str, to: &str) -> f64 {
    let day = |d: &str| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").expect("a date");
    let days = day(from)
        .iter_days()
        .take_while(|d| *d <= day(to))
        .filter(|d| data::nyse::is_trading_day(*d))
        .count();
    days as f64 * f64::from(data::standin::DEFAULT_QUOTES_PER_DAY)
}

struct Mode {
    name: &'static str,
    args: &'static [&'static str],
    /// A one-day run whose rate is extrapolated to the year (too slow to run in full).
    one_day: bool,
    /// Import the year once untimed first, so the timed run meets every row already present.
    prefill: bool,
}

/// `load-historical` of one month from a Parquet store filled (untimed) by a full-year
/// `--format parquet` import.
const LOAD_MONTH: &str = "load-historical one month (Parquet to SQLite)";
/// A month of AAPL trades (the stand-in serves 9,250 a weekday).
const TRADES_MONTH: &str = "trades: one month of AAPL";
/// A year of 1-minute bars for ten symbols (2,520 symbol-days).
const BARS_YEAR: &str = "1Min bars: a year of 10 symbols";
/// The same trades into the Parquet store.
const TRADES_MONTH_PQ: &str = "trades: one month of AAPL (format parquet)";
/// The same bars into the Parquet store.
const BARS_YEAR_PQ: &str = "1Min bars: a year of 10 symbols (format parquet)";
/// Daily bars for the ten symbols: multi-symbol requests, one per month.
const DAILY_YEAR: &str = "1Day bars: a year of 10 symbols";
/// A month of BTC/USD quotes (the stand-in serves 37,000 a UTC day, weekends included).
const CRYPTO_MONTH: &str = "crypto quotes: a month of BTC/USD";
/// The same crypto quotes into the Parquet store.
const CRYPTO_MONTH_PQ: &str = "crypto quotes: a month of BTC/USD (format parquet)";
/// A year of 1-minute bars of 20 option contracts (AAPL calls and puts expiring 2025-01-17:
/// the stand-in serves them from 2024-02-01, where Alpaca's history starts, to expiry).
const OPTION_BARS_YEAR: &str = "option 1Min bars: a year of 20 contracts";
/// A year of corporate actions of 100 tickers.
const ACTIONS_YEAR: &str = "corporate actions: a year of 100 symbols";
const TEN: &str = "AAPL,MSFT,NVDA,AMZN,GOOGL,META,TSLA,BRK.B,JPM,V";

const MODES: &[Mode] = &[
    Mode {
        name: "default",
        args: &[],
        one_day: false,
        prefill: false,
    },
    Mode {
        name: "skip-duplicates",
        args: &["--skip-duplicates"],
        one_day: false,
        prefill: false,
    },
    Mode {
        name: "drop-indexes",
        args: &["--drop-indexes"],
        one_day: false,
        prefill: false,
    },
    Mode {
        name: "skip-duplicates+drop-indexes",
        args: &["--skip-duplicates", "--drop-indexes"],
        one_day: false,
        prefill: false,
    },
    Mode {
        name: "batch-size-1000",
        args: &["--batch-size", "1000"],
        one_day: false,
        prefill: false,
    },
    Mode {
        name: "batch-size-50000",
        args: &["--batch-size", "50000"],
        one_day: false,
        prefill: false,
    },
    Mode {
        name: "sample-10",
        args: &["--sample", "10"],
        one_day: false,
        prefill: false,
    },
    Mode {
        name: "aggregate-1s",
        args: &["--aggregate", "1s"],
        one_day: false,
        prefill: false,
    },
    Mode {
        name: "nbbo-changes",
        args: &["--nbbo-changes"],
        one_day: false,
        prefill: false,
    },
    Mode {
        name: "re-import (rows present; --restart)",
        // Without --restart the rerun finds every day done and fetches nothing.
        args: &["--restart"],
        one_day: false,
        prefill: true,
    },
    Mode {
        name: "one-by-one (batch-size 1; one day)",
        args: &["--batch-size", "1"],
        one_day: true,
        prefill: false,
    },
    Mode {
        name: "format parquet",
        args: &["--format", "parquet"],
        one_day: false,
        prefill: false,
    },
    Mode {
        name: TRADES_MONTH,
        args: &[],
        one_day: false,
        prefill: false,
    },
    Mode {
        name: BARS_YEAR,
        args: &[],
        one_day: false,
        prefill: false,
    },
    Mode {
        name: TRADES_MONTH_PQ,
        args: &["--format", "parquet"],
        one_day: false,
        prefill: false,
    },
    Mode {
        name: BARS_YEAR_PQ,
        args: &["--format", "parquet"],
        one_day: false,
        prefill: false,
    },
    Mode {
        name: DAILY_YEAR,
        args: &[],
        one_day: false,
        prefill: false,
    },
    Mode {
        name: LOAD_MONTH,
        args: &[],
        one_day: false,
        prefill: true,
    },
    Mode {
        name: CRYPTO_MONTH,
        args: &[],
        one_day: false,
        prefill: false,
    },
    Mode {
        name: CRYPTO_MONTH_PQ,
        args: &["--format", "parquet"],
        one_day: false,
        prefill: false,
    },
    Mode {
        name: OPTION_BARS_YEAR,
        args: &[],
        one_day: false,
        prefill: false,
    },
    Mode {
        name: ACTIONS_YEAR,
        args: &[],
        one_day: false,
        prefill: false,
    },
];

/// The 20 contracts of [`OPTION_BARS_YEAR`]: strikes 140 to 185, calls and puts.
fn twenty_contracts() -> String {
    (0..20)
        .map(|k| {
            let kind = if k % 2 == 0 { 'C' } else { 'P' };
            format!("AAPL250117{kind}{:08}", (140 + (k / 2) * 5) * 1000)
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The 100 tickers of [`ACTIONS_YEAR`].
fn hundred_tickers() -> String {
    (0..100)
        .map(|k| format!("T{k:03}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// A mode whose row count is read from its own summary line (not the year of quotes).
fn counts_own_rows(mode: &Mode) -> bool {
    is_bars(mode)
        || [
            TRADES_MONTH,
            TRADES_MONTH_PQ,
            CRYPTO_MONTH,
            CRYPTO_MONTH_PQ,
            OPTION_BARS_YEAR,
            ACTIONS_YEAR,
        ]
        .contains(&mode.name)
}

struct Sample {
    wall: Duration,
    max_rss_kb: i64,
    db_bytes: u64,
    kept: String,
}

fn dir_bytes(p: &Path) -> u64 {
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

fn is_bars(mode: &Mode) -> bool {
    mode.name == BARS_YEAR || mode.name == BARS_YEAR_PQ || mode.name == DAILY_YEAR
}

fn run_data(bin: &Path, dir: &Path, url: &str, mode: &Mode) -> Sample {
    let (start, end) = if mode.one_day {
        ("2024-01-02", "2024-01-02")
    } else {
        ("2024-01-01", "2024-12-31")
    };
    let log = dir.join("stderr.log");
    let symbols: String;
    let args: Vec<&str> = if mode.name == OPTION_BARS_YEAR {
        symbols = twenty_contracts();
        vec![
            "import-api",
            "bars",
            &symbols,
            "2024-02-01",
            "2025-01-17",
            "--timeframe",
            "1Min",
            "--api-url",
            url,
        ]
    } else if mode.name == ACTIONS_YEAR {
        symbols = hundred_tickers();
        vec![
            "import-api",
            "corporate-actions",
            &symbols,
            "2024-01-01",
            "2024-12-31",
            "--api-url",
            url,
        ]
    } else if mode.name == CRYPTO_MONTH || mode.name == CRYPTO_MONTH_PQ {
        let mut a = vec![
            "import-api",
            "quotes",
            "BTC/USD",
            "2024-01-01",
            "2024-01-31",
            "--api-url",
            url,
        ];
        a.extend(mode.args);
        a
    } else if mode.name == TRADES_MONTH || mode.name == TRADES_MONTH_PQ {
        let mut a = vec![
            "import-api",
            "trades",
            "AAPL",
            "2024-01-01",
            "2024-01-31",
            "--api-url",
            url,
        ];
        a.extend(mode.args);
        a
    } else if is_bars(mode) {
        let tf = if mode.name == DAILY_YEAR {
            "1Day"
        } else {
            "1Min"
        };
        let mut a = vec![
            "import-api",
            "bars",
            TEN,
            "2024-01-01",
            "2024-12-31",
            "--timeframe",
            tf,
            "--api-url",
            url,
        ];
        a.extend(mode.args);
        a
    } else if mode.name == LOAD_MONTH {
        vec![
            "load-historical",
            "quotes",
            "AAPL",
            "2024-11-01",
            "2024-11-30",
        ]
    } else {
        let mut a = vec!["import-api", "quotes", "AAPL", start, end, "--api-url", url];
        a.extend(mode.args);
        a
    };
    let started = Instant::now();
    // Reaped by wait4 below (which also gives the child's own peak RSS), not by Child::wait.
    #[allow(clippy::zombie_processes)]
    let child = Command::new(bin)
        .args(&args)
        .current_dir(dir)
        .env("APCA_API_KEY_ID", "bench")
        .env("APCA_API_SECRET_KEY", "bench")
        // The stand-in has no rate limit; the free plan's default pace would dominate.
        .env("BULK_IMPORT_RATE_LIMIT", "0")
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
    assert!(
        r > 0 && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{} failed: {}",
        mode.name,
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let size = |p: &str| {
        let p = dir.join(p);
        if p.is_dir() {
            dir_bytes(&p)
        } else {
            std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
        }
    };
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let kept = text
        .lines()
        .find(|l| l.contains("[DONE]"))
        .and_then(|l| l.split(": ").nth(1))
        .map(|s| s.split(", ").take(2).collect::<Vec<_>>().join(", "))
        .unwrap_or_default();
    Sample {
        wall,
        max_rss_kb: usage.ru_maxrss,
        db_bytes: size("data/market.db") + size("data/market.db-wal") + size("data/historical"),
        kept,
    }
}

fn main() {
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    let only: Option<Vec<String>> = std::env::var("BENCH_MODES")
        .ok()
        .map(|v| v.split(',').map(|s| s.trim().to_string()).collect());
    let ours = Path::new(env!("CARGO_BIN_EXE_data")).to_path_buf();
    let baseline = std::env::var_os("BENCH_BASELINE").map(std::path::PathBuf::from);
    // (binary, mode, label): every chosen mode with this build, then with the baseline.
    let mut modes: Vec<(std::path::PathBuf, &Mode, String)> = MODES
        .iter()
        .filter(|m| only.as_ref().is_none_or(|o| o.iter().any(|n| n == m.name)))
        .map(|m| (ours.clone(), m, m.name.to_string()))
        .collect();
    if let Some(base) = &baseline {
        let theirs: Vec<_> = modes
            .iter()
            .map(|(_, m, name)| (base.clone(), *m, format!("{name} @baseline")))
            .collect();
        modes.extend(theirs);
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let s = Standin::start(cheap_gzip()).await.expect("stand-in");
            tx.send(s.url()).expect("send url");
            std::future::pending::<()>().await;
        });
    });
    let url = rx.recv().expect("stand-in url");
    let mut samples: Vec<Vec<Sample>> = modes.iter().map(|_| Vec::new()).collect();
    for round in 0..runs {
        // Odd rounds run the modes in reverse, so no mode always follows the same one.
        let mut order: Vec<usize> = (0..modes.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let (bin, mode, label) = &modes[i];
            let dir = tempfile::tempdir().expect("temp dir");
            if mode.prefill {
                let fill = if mode.name == LOAD_MONTH {
                    MODES
                        .iter()
                        .find(|m| m.name == "format parquet")
                        .expect("parquet mode")
                } else {
                    &MODES[0]
                };
                run_data(bin, dir.path(), &url, fill);
            }
            let s = run_data(bin, dir.path(), &url, mode);
            eprintln!(
                "round {} {:<36} {:>7.2}s {:>7} KB  {}",
                round + 1,
                label,
                s.wall.as_secs_f64(),
                s.max_rss_kb,
                s.kept
            );
            samples[i].push(s);
        }
    }
    let year_quotes = stand_in_quotes("2024-01-01", "2024-12-31");
    println!(
        "Full-year AAPL import ({year_quotes:.0} quotes) from the stand-in; median of {runs} runs"
    );
    println!("| mode | wall (median) | rows/s | peak RSS | bytes on disk | rows |");
    println!("|---|---:|---:|---:|---:|---|");
    for ((_, mode, label), v) in modes.iter().zip(samples.iter_mut()) {
        v.sort_by_key(|s| s.wall);
        let m = &v[v.len() / 2];
        let rows_in = |s: &Sample| {
            s.kept
                .split(' ')
                .next()
                .and_then(|n| n.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        let quotes = if counts_own_rows(mode) {
            rows_in(m)
        } else if mode.one_day {
            stand_in_quotes("2024-01-02", "2024-01-02")
        } else if mode.name == LOAD_MONTH {
            stand_in_quotes("2024-11-01", "2024-11-30")
        } else {
            year_quotes
        };
        let rate = quotes / m.wall.as_secs_f64();
        let mut rss: Vec<i64> = v.iter().map(|s| s.max_rss_kb).collect();
        rss.sort();
        let wall = if mode.one_day {
            format!(
                "{:.1} s for one day; year ≈ {:.0} min",
                m.wall.as_secs_f64(),
                year_quotes / rate / 60.0
            )
        } else {
            format!("{:.1} s", m.wall.as_secs_f64())
        };
        println!(
            "| {} | {} | {:.0} | {:.0} MB | {:.0} MB | {} |",
            label,
            wall,
            rate,
            rss[rss.len() / 2] as f64 / 1024.0,
            m.db_bytes as f64 / 1e6,
            m.kept
        );
    }
    if baseline.is_some() {
        let median = |label: &str| {
            modes
                .iter()
                .zip(samples.iter())
                .find(|((_, _, l), _)| l == label)
                .map(|(_, v)| v[v.len() / 2].wall.as_secs_f64())
        };
        for (_, mode, label) in modes.iter().filter(|(_, _, l)| !l.ends_with("@baseline")) {
            if let (Some(a), Some(b)) = (median(label), median(&format!("{label} @baseline"))) {
                println!(
                    "{}: this build {a:.2} s, baseline {b:.2} s: {:.3}x the baseline's speed",
                    mode.name,
                    b / a
                );
            }
        }
    }
}
