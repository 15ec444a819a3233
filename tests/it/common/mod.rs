//! Shared helpers for the integration tests: run the real `data` binary in a fresh temp
//! folder against an in-process stand-in, and read back what it wrote.

#![allow(dead_code)]

use data::standin::generate::quotes_between;
use data::standin::{Standin, StandinConfig};
use data::time::DateRange;
use sqlx::{Connection, Row, SqliteConnection};
use std::path::{Path, PathBuf};
use std::process::Output;
use tempfile::TempDir;

pub const KEY: &str = "test-key-AKXYZ";
pub const SECRET: &str = "test-secret-do-not-print";

/// Variables the binary reads; cleared so the developer's environment cannot leak in.
fn our_vars() -> Vec<&'static str> {
    let mut v: Vec<&str> = data::config::KEYS.iter().map(|k| k.env).collect();
    v.extend(data::config::SECRET_ENVS);
    v.extend(data::secrets::SECRET_ENVS);
    v.push(data::run::TEST_NOW_ENV);
    v.extend(["DATA_LOG", data::config::CONFIG_ENV]);
    v
}

/// Every command a user runs, as typed after `data` (the ones whose `--help` is checked).
pub const COMMANDS: &[&[&str]] = &[
    &["import-api"],
    &["load-historical"],
    &["archive"],
    &["export"],
    &["sync"],
    &["status"],
    &["config", "show"],
    &["completions"],
];

pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from(o: Output) -> Self {
        Run {
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// A fresh working folder where `data` runs as a user would run it.
pub struct Workdir {
    pub dir: TempDir,
}

impl Workdir {
    pub fn new() -> Self {
        Workdir {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn db_path(&self) -> PathBuf {
        self.path().join("data/market.db")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path().join("data/logs/app.log")).unwrap_or_default()
    }

    /// The command with credentials set and fast retries; `args` follow `data`. The binary
    /// is this build's, or the one `DATA_TEST_BIN` names: the same tests against another
    /// version (an earlier commit built in a `git worktree`), to see which failures it has.
    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let bin =
            std::env::var("DATA_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_data").into());
        let mut cmd = tokio::process::Command::new(bin);
        cmd.current_dir(self.path()).args(args);
        for v in our_vars() {
            cmd.env_remove(v);
        }
        cmd.env("APCA_API_KEY_ID", KEY)
            .env("APCA_API_SECRET_KEY", SECRET)
            .env("BULK_IMPORT_RETRY_BASE_MS", "5")
            // No client-side pacing unless a test asks for it (the default is the free plan's
            // 200/min, which would make every multi-page test slow).
            .env("BULK_IMPORT_RATE_LIMIT", "0")
            .stdin(std::process::Stdio::null())
            // A test that gives up on a run (a timeout) does not leave it running.
            .kill_on_drop(true);
        cmd
    }

    pub async fn run(&self, args: &[&str]) -> Run {
        self.run_cmd(self.command(args)).await
    }

    pub async fn run_cmd(&self, mut cmd: tokio::process::Command) -> Run {
        Run::from(cmd.output().await.expect("run data"))
    }

    /// `data import-api quotes SYMBOL START END --api-url URL` plus `extra`.
    pub async fn import(
        &self,
        url: &str,
        symbol: &str,
        start: &str,
        end: &str,
        extra: &[&str],
    ) -> Run {
        let mut args = vec!["import-api", "quotes", symbol, start, end, "--api-url", url];
        args.extend_from_slice(extra);
        self.run(&args).await
    }

    pub async fn connect(&self) -> SqliteConnection {
        let url = format!("sqlite://{}", self.db_path().display());
        SqliteConnection::connect(&url).await.expect("open test db")
    }

    /// One integer a query of the test database gives.
    pub async fn scalar(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(&mut self.connect().await)
            .await
            .expect("scalar")
    }

    /// One number a query of the test database gives.
    pub async fn scalar_f64(&self, sql: &str) -> f64 {
        sqlx::query_scalar(sql)
            .fetch_one(&mut self.connect().await)
            .await
            .expect("scalar")
    }

    pub async fn count(&self) -> i64 {
        let mut c = self.connect().await;
        sqlx::query_scalar("SELECT count(*) FROM quotes")
            .fetch_one(&mut c)
            .await
            .expect("count")
    }

    /// Every stored quote of `symbol` in key order, as comparable text rows.
    pub async fn rows(&self, symbol: &str) -> Vec<String> {
        let mut c = self.connect().await;
        let rows = sqlx::query(
            "SELECT q.t, q.seq, q.bid_exchange, q.bid_price, q.bid_size, q.ask_exchange, \
             q.ask_price, q.ask_size, q.conditions, q.tape \
             FROM quotes q JOIN symbols s ON s.id = q.symbol_id WHERE s.symbol = ? ORDER BY q.t, q.seq",
        )
        .bind(symbol)
        .fetch_all(&mut c)
        .await
        .expect("rows");
        rows.iter()
            .map(|r| {
                format!(
                    "{}|{}|{}|{:?}|{}|{}|{:?}|{}|{}|{}",
                    r.get::<i64, _>(0),
                    r.get::<i64, _>(1),
                    r.get::<String, _>(2),
                    r.get::<f64, _>(3),
                    r.get::<i64, _>(4),
                    r.get::<String, _>(5),
                    r.get::<f64, _>(6),
                    r.get::<i64, _>(7),
                    r.get::<String, _>(8),
                    r.get::<String, _>(9),
                )
            })
            .collect()
    }
}

/// What the stand-in serves for `symbol` between the user's START and END, in the same text
/// form as `Workdir::rows`, with `seq` numbered the way the importer numbers it.
pub fn expected_rows(symbol: &str, start: &str, end: &str, per_day: u32) -> Vec<String> {
    let range = DateRange::parse(start, end).expect("range");
    let mut out = Vec::new();
    let (mut last_t, mut seq) = (i64::MIN, 0);
    for q in quotes_between(symbol, "sip", range.start_ns, range.end_ns, per_day) {
        seq = if q.t == last_t { seq + 1 } else { 0 };
        last_t = q.t;
        out.push(format!(
            "{}|{}|{}|{:?}|{}|{}|{:?}|{}|{}|{}",
            q.t,
            seq,
            q.bid_exchange as char,
            q.bid_price(),
            q.bid_size,
            q.ask_exchange as char,
            q.ask_price(),
            q.ask_size,
            q.conditions,
            q.tape as char
        ));
    }
    out
}

pub async fn standin(cfg: StandinConfig) -> Standin {
    Standin::start(cfg).await.expect("start stand-in")
}

pub fn small(per_day: u32) -> StandinConfig {
    StandinConfig {
        quotes_per_day: per_day,
        ..StandinConfig::default()
    }
}

/// Asserts a failure printed exactly one line on stderr, no panic, and the exit code.
pub fn assert_one_line_failure(run: &Run, code: i32, needle: &str) {
    assert_eq!(run.code, Some(code), "exit code; stderr: {}", run.stderr);
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    let last = lines.last().copied().unwrap_or("");
    assert!(
        last.starts_with("error: "),
        "last stderr line: {last:?}\nall: {}",
        run.stderr
    );
    assert!(last.contains(needle), "expected {needle:?} in {last:?}");
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    assert!(!run.stderr.contains("RUST_BACKTRACE"), "{}", run.stderr);
}
