//! The front door's two figures, measured with this build against the in-process stand-in:
//!
//! - **the dry run's estimate**: `import-api --dry-run` of four days of AAPL quotes at the
//!   free plan's pace (`--rate-limit 200`), against the measured time of the same import
//!   (median of `BENCH_RUNS`, default 3, each into a fresh folder). Its target: within 25%.
//! - **export's memory**: a year of AAPL quotes (9,324,000 rows), imported once untimed into
//!   SQLite and into the Parquet store, exported as CSV (to /dev/null) from each and as one
//!   Parquet file: wall time, rows/s and peak RSS (`VmHWM`, polled) of each. Its target:
//!   under 150 MB. `BENCH_MONTHS` (default 12) shortens the year.
//!
//! ```sh
//! cargo bench --bench front_door
//! ```

#[path = "common/rss.rs"]
mod rss;
use data::standin::{Standin, StandinConfig};
use rss::wait_rss;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

const PACE: &str = "200";
/// The estimate's target: within this fraction of the measured time.
const WITHIN: f64 = 0.25;
/// export's memory target, bytes.
const RSS_TARGET: u64 = 150 * 1024 * 1024;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn data(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_data"));
    cmd.args(args)
        .current_dir(dir)
        .env("APCA_API_KEY_ID", "bench")
        .env("APCA_API_SECRET_KEY", "bench")
        .env("BULK_IMPORT_RATE_LIMIT", "0")
        .stdin(Stdio::null());
    cmd
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The seconds the dry run's report estimates (`about 4.8 s at --rate-limit ...`).
fn estimate_of(report: &str) -> f64 {
    let line = report
        .lines()
        .find(|l| l.contains(" at --rate-limit "))
        .unwrap_or_else(|| panic!("no estimate in {report}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    // `about N s`, `about M min S s` or `about H h M min`.
    match words.as_slice() {
        ["about", n, "s", ..] => n.parse().expect("seconds"),
        ["about", m, "min", s, "s", ..] => {
            m.parse::<f64>().expect("minutes") * 60.0 + s.parse::<f64>().expect("seconds")
        }
        ["about", h, "h", m, "min", ..] => {
            h.parse::<f64>().expect("hours") * 3600.0 + m.parse::<f64>().expect("minutes") * 60.0
        }
        _ => panic!("unreadable estimate: {line}"),
    }
}

fn dry_run_estimate(url: &str, runs: usize) -> bool {
    let import = [
        "import-api",
        "quotes",
        "AAPL",
        "2024-01-02",
        "2024-01-05",
        "--api-url",
        url,
        "--rate-limit",
        PACE,
    ];
    let (mut estimates, mut measured) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut dry = import.to_vec();
        dry.push("--dry-run");
        let out = data(dir.path(), &dry).output().expect("dry run");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report = String::from_utf8_lossy(&out.stdout).into_owned();
        estimates.push(estimate_of(&report));
        let started = Instant::now();
        let out = data(dir.path(), &import).output().expect("import");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        measured.push(started.elapsed().as_secs_f64());
    }
    let (e, m) = (median(estimates), median(measured));
    let off = (e - m).abs() / m;
    println!(
        "dry run at --rate-limit {PACE}, 4 days of AAPL quotes: estimated {e:.2} s, measured \
         {m:.2} s (median of {runs}): {:.0}% off, target within {:.0}%",
        off * 100.0,
        WITHIN * 100.0
    );
    off <= WITHIN
}

fn export_memory(url: &str, runs: usize, months: usize) -> bool {
    let dir = tempfile::tempdir().expect("temp dir");
    let (start, end) = ("2024-01-01".to_string(), {
        let last = chrono::NaiveDate::from_ymd_opt(2024, 1, 1)
            .and_then(|d| d.checked_add_months(chrono::Months::new(months as u32)))
            .and_then(|d| d.pred_opt())
            .expect("a date");
        last.to_string()
    });
    for extra in [&[][..], &["--format", "parquet"][..]] {
        let mut args = vec![
            "import-api",
            "quotes",
            "AAPL",
            &start,
            &end,
            "--api-url",
            url,
            "-q",
        ];
        args.extend_from_slice(extra);
        let status = data(dir.path(), &args).status().expect("import");
        assert!(status.success(), "the untimed import failed");
    }
    let mut ok = true;
    let cases: [(&str, &[&str]); 3] = [
        (
            "csv from the database",
            &["--to", "csv", "--from", "database"],
        ),
        (
            "csv from the Parquet store",
            &["--to", "csv", "--from", "store"],
        ),
        (
            "parquet from the database",
            &["--to", "parquet", "--from", "database", "-o", "out.parquet"],
        ),
    ];
    for (label, extra) in cases {
        let (mut walls, mut peaks, mut rows) = (Vec::new(), Vec::new(), 0u64);
        for _ in 0..runs {
            let mut args = vec!["export", "quotes", "AAPL", &start, &end, "-q"];
            args.extend_from_slice(extra);
            let started = Instant::now();
            let child = data(dir.path(), &args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("export");
            let (status, peak) = wait_rss(child);
            assert!(status.success(), "{label} failed");
            walls.push(started.elapsed().as_secs_f64());
            peaks.push(peak as f64);
            let log =
                std::fs::read_to_string(dir.path().join("data/logs/app.log")).unwrap_or_default();
            rows = log
                .lines()
                .rev()
                .find(|l| l.contains("[DONE]"))
                .and_then(|l| l.split(": ").nth(1))
                .and_then(|s| s.split(' ').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
        }
        let (wall, peak) = (median(walls), median(peaks));
        println!(
            "export {label}: {rows} rows in {wall:.1} s ({:.0} rows/s), peak RSS {:.0} MB \
             (median of {runs}; target under {} MB)",
            rows as f64 / wall,
            peak / 1048576.0,
            RSS_TARGET / 1048576
        );
        ok &= peak < RSS_TARGET as f64;
    }
    ok
}

fn main() {
    let runs = env_usize("BENCH_RUNS", 3);
    let months = env_usize("BENCH_MONTHS", 12);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let standin = rt
        .block_on(Standin::start(StandinConfig::default()))
        .expect("stand-in");
    let url = standin.url();
    let estimate_ok = dry_run_estimate(&url, runs);
    let memory_ok = export_memory(&url, runs, months);
    if !(estimate_ok && memory_ok) {
        eprintln!("a target was missed (see above)");
        std::process::exit(1);
    }
}
