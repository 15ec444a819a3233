//! Several importers on one job (`import-api --coordinate`), against the PostgreSQL test
//! server (see tests/it/postgres.rs for how it is found): three processes fetch each shard
//! exactly once (the stand-in's request log) and end with exactly one clean import's rows;
//! one of them killed with SIGKILL mid-way leaves its shards to the other two once its leases
//! expire; and the stores that cannot be shared refuse the flag.

use crate::common::*;
use crate::postgres::PgDb;
use data::standin::StandinConfig;
use std::collections::HashMap;
use std::time::Duration;

const SYMBOLS: &str = "AAPL,MSFT,NVDA,TSLA";
const DAYS: usize = 9; // 2024-01-02 .. 2024-01-12

fn args<'a>(api: &'a str, db: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec![
        "import-api",
        "quotes",
        SYMBOLS,
        "2024-01-02",
        "2024-01-12",
        "--api-url",
        api,
        "--database-url",
        db,
        "--coordinate",
        "--concurrency",
        "2",
        "--batch-size",
        "500",
    ];
    a.extend_from_slice(extra);
    a
}

pub(crate) fn spawn(w: &Workdir, args: &[&str]) -> tokio::process::Child {
    let mut cmd = w.command(args);
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    cmd.spawn().expect("spawn data")
}

/// The `[COORD] this importer fetched N of ... (M taken over ...)` numbers of a run.
pub(crate) fn fetched(stderr: &str) -> (u64, u64) {
    let line = stderr
        .lines()
        .find(|l| l.contains("[COORD] this importer fetched"))
        .unwrap_or_else(|| panic!("no [COORD] summary in: {stderr}"));
    let num = |after: &str| -> u64 {
        line.split(after)
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.trim_start_matches('(').parse().ok())
            .unwrap_or_else(|| panic!("{line}"))
    };
    (num("fetched "), num("shards ("))
}

async fn assert_exact(db: &PgDb, per_day: u32) {
    for symbol in SYMBOLS.split(',') {
        assert_eq!(
            db.rows(symbol).await,
            expected_rows(symbol, "2024-01-02", "2024-01-12", per_day),
            "{symbol}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_importers_fetch_each_shard_once_and_end_exact() {
    let Some(db) = PgDb::new().await else {
        return;
    };
    let s = standin(StandinConfig {
        delay: Duration::from_millis(30),
        ..small(500)
    })
    .await;
    let api = s.url();
    let dirs: Vec<Workdir> = (0..3).map(|_| Workdir::new()).collect();
    let mut children: Vec<_> = dirs
        .iter()
        .map(|w| spawn(w, &args(&api, &db.url, &[])))
        .collect();
    let mut runs = Vec::new();
    for c in children.drain(..) {
        runs.push(Run::from(c.wait_with_output().await.expect("wait")));
    }
    let mut total = 0;
    for run in &runs {
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        let (n, taken) = fetched(&run.stderr);
        assert_eq!(taken, 0);
        total += n;
    }
    let shards = SYMBOLS.split(',').count() * DAYS;
    assert_eq!(
        total as usize, shards,
        "the shards fetched add up to the job"
    );
    // Each shard asked once: no (symbols, start) first page twice.
    let mut asked: HashMap<(String, Option<String>), usize> = HashMap::new();
    for r in s.request_log().iter().filter(|r| !r.continued) {
        *asked
            .entry((r.symbols.clone(), r.start.clone()))
            .or_default() += 1;
    }
    let twice: Vec<_> = asked.iter().filter(|(_, &n)| n > 1).collect();
    assert!(twice.is_empty(), "fetched more than once: {twice:?}");
    assert_eq!(asked.len(), shards);
    assert_exact(&db, 500).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_importer_leaves_its_shards_to_the_others_after_its_lease() {
    let Some(db) = PgDb::new().await else {
        return;
    };
    let s = standin(StandinConfig {
        delay: Duration::from_millis(150),
        ..small(500)
    })
    .await;
    let api = s.url();
    let dirs: Vec<Workdir> = (0..3).map(|_| Workdir::new()).collect();
    let mut children: Vec<_> = dirs
        .iter()
        .map(|w| spawn(w, &args(&api, &db.url, &["--lease", "2"])))
        .collect();
    // The first is killed once it committed a shard, with its next ones leased and fetching.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !dirs[0].log().contains("[DB] Batch") {
        assert!(
            std::time::Instant::now() < deadline,
            "no batch was committed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    children[0].start_kill().expect("kill -9");
    let _ = children[0].wait().await;
    let mut taken = 0;
    for c in children.drain(1..) {
        let run = Run::from(c.wait_with_output().await.expect("wait"));
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        taken += fetched(&run.stderr).1;
        if fetched(&run.stderr).1 > 0 {
            assert!(run.stderr.contains("expired; taken over"), "{}", run.stderr);
        }
    }
    assert!(taken >= 1, "no shard of the killed importer was taken over");
    assert_exact(&db, 500).await;
    let undone = db
        .scalar("SELECT count(*) FROM import_progress WHERE NOT done")
        .await;
    assert_eq!(undone, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_that_cannot_be_shared_refuse_coordinate() {
    let w = Workdir::new();
    let base = [
        "import-api",
        "quotes",
        "AAPL",
        "2024-01-02",
        "2024-01-03",
        "--coordinate",
    ];
    let run = w.run(&base).await;
    assert_one_line_failure(
        &run,
        2,
        "--coordinate shares a job through PostgreSQL (--database-url postgres://...) or a Parquet store in a bucket (--format parquet --historical-path s3://, gs:// or az://...); one SQLite file has one writer",
    );
    let run = w.run(&[&base[..], &["--format", "parquet"]].concat()).await;
    assert_one_line_failure(&run, 2, "--coordinate shares a job through PostgreSQL");
    let run = w
        .run(&[
            "import-api",
            "quotes",
            "AAPL",
            "2024-01-02",
            "2024-01-03",
            "--lease",
            "5",
        ])
        .await;
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("--coordinate"), "{}", run.stderr);
    assert!(!w.path().join("data/market.db").exists());
}
