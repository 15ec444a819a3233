//! The PostgreSQL sink against the real server: imports checked row by row, idempotence,
//! the options, several importers at once, a dropped connection, kill -9 during
//! --drop-indexes, archive/status, and bad URLs. Each test works in its own fresh database.
//!
//! The server's URL comes from DATA_TEST_POSTGRES_URL (e.g.
//! postgres://root@127.0.0.1:5432/postgres; `.ci/run` sets it). Without it, the tests use
//! the server listening on 127.0.0.1:5432 (as `$USER`, database `postgres`) when one answers
//! there; when none does, every test here prints that it was NOT RUN and returns.

use crate::common::*;
use data::standin::StandinConfig;
use sqlx::{Connection, PgConnection, Row};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

pub const PG_ENV: &str = "DATA_TEST_POSTGRES_URL";

/// A fresh database on the test server, dropped at the end of the test.
pub(crate) struct PgDb {
    admin: String,
    name: String,
    pub(crate) url: String,
}

/// The server to test against: `DATA_TEST_POSTGRES_URL`, else the local default when a
/// server answers there (found once per test binary).
async fn server_url() -> Result<String, String> {
    static FOUND: tokio::sync::OnceCell<Result<String, String>> =
        tokio::sync::OnceCell::const_new();
    FOUND
        .get_or_init(|| async {
            if let Ok(url) = std::env::var(PG_ENV) {
                return Ok(url);
            }
            let user = std::env::var("USER").unwrap_or_else(|_| "postgres".into());
            let local = format!("postgres://{user}@127.0.0.1:5432/postgres");
            let tried =
                tokio::time::timeout(Duration::from_secs(3), PgConnection::connect(&local)).await;
            match tried {
                Ok(Ok(c)) => {
                    let _ = c.close().await;
                    Ok(local)
                }
                Ok(Err(e)) => Err(format!("{local} did not answer ({e})")),
                Err(_) => Err(format!("{local} did not answer within 3 s")),
            }
        })
        .await
        .clone()
}

impl PgDb {
    pub(crate) async fn new() -> Option<PgDb> {
        let admin = match server_url().await {
            Ok(url) => url,
            Err(why) => {
                // Written past the test harness's output capture, so it shows in every run.
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "PostgreSQL test NOT RUN: {why}; start a server there or set {PG_ENV}"
                );
                return None;
            }
        };
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "data_test_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let mut c = PgConnection::connect(&admin)
            .await
            .expect("connect to the test server");
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
            .execute(&mut c)
            .await
            .unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut c)
            .await
            .unwrap();
        let base = admin
            .rsplit_once('/')
            .map(|(b, _)| b.to_string())
            .unwrap_or(admin.clone());
        let url = format!("{base}/{name}");
        Some(PgDb { admin, name, url })
    }

    async fn conn(&self) -> PgConnection {
        PgConnection::connect(&self.url).await.expect("connect")
    }

    pub(crate) async fn scalar(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(&mut self.conn().await)
            .await
            .unwrap()
    }

    pub(crate) async fn rows(&self, symbol: &str) -> Vec<String> {
        let rows = sqlx::query(
            "SELECT q.t, q.seq::BIGINT, q.bid_exchange, q.bid_price, q.bid_size, q.ask_exchange, q.ask_price, \
             q.ask_size, q.conditions, q.tape FROM quotes q JOIN symbols s ON s.id = q.symbol_id \
             WHERE s.symbol = $1 ORDER BY q.t, q.seq",
        )
        .bind(symbol)
        .fetch_all(&mut self.conn().await)
        .await
        .unwrap();
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

/// The test's database is dropped however the test ends, a failed assertion included (a
/// drop guard): `cargo test` leaves the server holding no database it did not hold before.
/// The drop runs on a thread of its own with its own runtime, as `Drop` cannot await.
impl Drop for PgDb {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let mut c = PgConnection::connect(&admin).await.ok()?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut c)
                    .await
                    .ok()
            })
        });
        let _ = dropped.join();
    }
}

async fn import_pg(
    w: &Workdir,
    db: &PgDb,
    url: &str,
    symbol: &str,
    start: &str,
    end: &str,
    extra: &[&str],
) -> Run {
    let mut args = vec!["--database-url", db.url.as_str()];
    args.extend_from_slice(extra);
    w.import(url, symbol, start, end, &args).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_exactly_the_standin_rows_idempotently_with_copy() {
    let Some(db) = PgDb::new().await else { return };
    let s = standin(StandinConfig {
        max_page: Some(700),
        ..small(3_000)
    })
    .await;
    let w = Workdir::new();
    let run = import_pg(
        &w,
        &db,
        &s.url(),
        "AAPL",
        "2024-01-05",
        "2024-01-08",
        &["--batch-size", "1000"],
    )
    .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("[DB] Batch 6: 1000 rows committed, 6000 total"),
        "{}",
        run.stderr
    );
    let expected = expected_rows("AAPL", "2024-01-05", "2024-01-08", 3_000);
    assert_eq!(db.rows("AAPL").await, expected);
    let again = import_pg(&w, &db, &s.url(), "AAPL", "2024-01-05", "2024-01-08", &[]).await;
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    assert_eq!(db.rows("AAPL").await, expected);
    // The timestamptz view agrees with the exact nanoseconds to the microsecond.
    let off: i64 = db
        .scalar("SELECT max(abs((extract(epoch FROM time_utc) * 1e6)::BIGINT - t_ns / 1000)) FROM quotes_view")
        .await;
    assert!(off <= 1, "{off}");
    // The New York date of each quote (migration 0012): 2024-01-05 is a Friday of 3,000.
    assert_eq!(
        db.scalar("SELECT count(*) FROM quotes_view WHERE ny_date = DATE '2024-01-05'")
            .await,
        3_000
    );
    assert!(
        !w.db_path().exists(),
        "no SQLite file when the URL is postgres://"
    );
    drop(db);
}

/// Time slices across symbols go through quotes_time_idx, a BRIN index (migration 0010): the
/// planner uses it, and the slice it returns is exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_time_slice_across_symbols_uses_the_brin_index() {
    let Some(db) = PgDb::new().await else { return };
    let s = standin(small(2_000)).await;
    let w = Workdir::new();
    let run = import_pg(
        &w,
        &db,
        &s.url(),
        "AAPL,MSFT",
        "2024-01-02",
        "2024-01-04",
        &[],
    )
    .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(
        db.scalar(
            "SELECT count(*) FROM pg_indexes WHERE indexname = 'quotes_time_idx' \
             AND indexdef LIKE '%USING brin (t)%'"
        )
        .await,
        1
    );
    // New York's 2024-01-03 (05:00 to 05:00 UTC) in nanoseconds: both symbols' rows of that
    // day and no other.
    let (from, to) = (1_704_258_000_000_000_000i64, 1_704_344_400_000_000_000i64);
    let slice = format!("FROM quotes WHERE t >= {from} AND t < {to}");
    let mut c = PgConnection::connect(&db.url).await.expect("connect");
    sqlx::query("SET enable_seqscan = off")
        .execute(&mut c)
        .await
        .unwrap();
    let plan: Vec<String> = sqlx::query_scalar(&format!("EXPLAIN SELECT count(*) {slice}"))
        .fetch_all(&mut c)
        .await
        .unwrap();
    assert!(
        plan.iter()
            .any(|l| l.contains("Bitmap Index Scan on quotes_time_idx")),
        "{plan:?}"
    );
    let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) {slice}"))
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(n, 4_000);
    drop(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_work_against_postgres() {
    let Some(db) = PgDb::new().await else { return };
    let s = standin(small(2_000)).await;
    let w = Workdir::new();
    let run = import_pg(
        &w,
        &db,
        &s.url(),
        "AAPL",
        "2024-01-02",
        "2024-01-02",
        &["--skip-duplicates", "--drop-indexes"],
    )
    .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stderr.contains("plain insert"), "{}", run.stderr);
    assert!(
        run.stderr.contains("[DB] rebuilt index quotes_time_idx in"),
        "{}",
        run.stderr
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM pg_indexes WHERE indexname = 'quotes_time_idx'")
            .await,
        1
    );
    let run = import_pg(
        &w,
        &db,
        &s.url(),
        "AAPL",
        "2024-01-02",
        "2024-01-02",
        &["--skip-duplicates"],
    )
    .await;
    assert!(
        run.stderr.contains("already holds AAPL rows"),
        "{}",
        run.stderr
    );
    assert_eq!(
        db.rows("AAPL").await,
        expected_rows("AAPL", "2024-01-02", "2024-01-02", 2_000)
    );

    let run = import_pg(
        &w,
        &db,
        &s.url(),
        "AAPL",
        "2024-01-02",
        "2024-01-02",
        &["--sample", "10"],
    )
    .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(
        db.scalar("SELECT count(*) FROM quotes_thinned_view WHERE thinning = 'sample=10'")
            .await,
        200
    );
    let run = import_pg(
        &w,
        &db,
        &s.url(),
        "AAPL",
        "2024-01-02",
        "2024-01-02",
        &["--aggregate", "1m"],
    )
    .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(db.scalar("SELECT sum(quote_count)::BIGINT FROM quotes_aggregated_view WHERE thinning = 'aggregate=1m'").await, 2_000);

    // status and archive/load-historical against the server.
    let status = w.run(&["status", "--database-url", &db.url]).await;
    let lines: Vec<Vec<&str>> = status
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(
        lines.contains(&vec![
            "quotes",
            "AAPL",
            "sip",
            "database",
            "2024-01-02",
            "2024-01-02",
            "1",
            "2000",
            "none"
        ]),
        "{}",
        status.stdout
    );
    let run = w
        .run(&[
            "archive",
            "quotes",
            "AAPL",
            "--older-than",
            "2024-01-03",
            "--database-url",
            &db.url,
        ])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(db.scalar("SELECT count(*) FROM quotes").await, 0);
    let run = w
        .run(&[
            "load-historical",
            "quotes",
            "AAPL",
            "2024-01-02",
            "2024-01-02",
            "--database-url",
            &db.url,
        ])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(
        db.rows("AAPL").await,
        expected_rows("AAPL", "2024-01-02", "2024-01-02", 2_000)
    );
    drop(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_importers_at_once_end_with_exactly_one_clean_import() {
    let Some(db) = PgDb::new().await else { return };
    let s = standin(StandinConfig {
        max_page: Some(1_000),
        ..small(4_000)
    })
    .await;
    let w = Workdir::new();
    let url = s.url();
    let jobs = [
        ("AAPL", "2024-01-02", "2024-01-04"),
        ("AAPL", "2024-01-03", "2024-01-05"),
        ("AAPL", "2024-01-02", "2024-01-05"),
        ("MSFT", "2024-01-02", "2024-01-03"),
    ];
    let runs = futures_util::future::join_all(jobs.iter().map(|(sym, a, b)| {
        let w = &w;
        let (db_url, url) = (db.url.clone(), url.clone());
        async move {
            let mut cmd = w.command(&[
                "import-api",
                "quotes",
                sym,
                a,
                b,
                "--api-url",
                &url,
                "--database-url",
                &db_url,
                "--batch-size",
                "1500",
            ]);
            cmd.env("BULK_IMPORT_LOG_FILE", format!("log-{sym}-{a}-{b}.log"));
            w.run_cmd(cmd).await
        }
    }))
    .await;
    for r in &runs {
        assert_eq!(r.code, Some(0), "{}", r.stderr);
    }
    assert_eq!(
        db.rows("AAPL").await,
        expected_rows("AAPL", "2024-01-02", "2024-01-05", 4_000)
    );
    assert_eq!(
        db.rows("MSFT").await,
        expected_rows("MSFT", "2024-01-02", "2024-01-03", 4_000)
    );
    assert_eq!(db.scalar("SELECT count(*) FROM symbols").await, 2);
    drop(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_is_reconnected_and_no_batch_is_lost() {
    let Some(db) = PgDb::new().await else { return };
    let s = standin(StandinConfig {
        max_page: Some(500),
        delay: Duration::from_millis(40),
        ..small(10_000)
    })
    .await;
    let w = Workdir::new();
    let url = s.url();
    let args = [
        "import-api",
        "quotes",
        "AAPL",
        "2024-01-02",
        "2024-01-02",
        "--api-url",
        &url,
        "--database-url",
        &db.url,
        "--batch-size",
        "500",
    ];
    let child = w
        .command(&args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !w.log().contains("[DB] Batch 3:") {
        assert!(
            std::time::Instant::now() < deadline,
            "no batches logged: {}",
            w.log()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let killed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()) k",
    )
    .bind(&db.name)
    .fetch_one(&mut db.conn().await)
    .await
    .unwrap();
    assert!(killed >= 1);
    let out = child.wait_with_output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("reconnecting and retrying the batch"),
        "{stderr}"
    );
    assert_eq!(
        db.rows("AAPL").await,
        expected_rows("AAPL", "2024-01-02", "2024-01-02", 10_000)
    );
    drop(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_drop_indexes_import_is_healed_by_the_next_run() {
    let Some(db) = PgDb::new().await else { return };
    let s = standin(StandinConfig {
        max_page: Some(500),
        delay: Duration::from_millis(40),
        ..small(10_000)
    })
    .await;
    let w = Workdir::new();
    let url = s.url();
    let args = [
        "import-api",
        "quotes",
        "AAPL",
        "2024-01-02",
        "2024-01-02",
        "--api-url",
        &url,
        "--database-url",
        &db.url,
    ];
    let mut with_drop = args.to_vec();
    with_drop.extend(["--drop-indexes", "--batch-size", "500"]);
    let mut child = w.command(&with_drop).spawn().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !w.log().contains("[DB] Batch 2:") {
        assert!(
            std::time::Instant::now() < deadline,
            "no batches logged: {}",
            w.log()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    assert_eq!(
        db.scalar("SELECT count(*) FROM pg_indexes WHERE indexname = 'quotes_time_idx'")
            .await,
        0
    );
    assert_eq!(db.scalar("SELECT count(*) FROM dropped_indexes").await, 1);
    let run = w.run(&args).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("[DB] rebuilt index quotes_time_idx, left dropped by an interrupted"),
        "{}",
        run.stderr
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM pg_indexes WHERE indexname = 'quotes_time_idx'")
            .await,
        1
    );
    assert_eq!(
        db.rows("AAPL").await,
        expected_rows("AAPL", "2024-01-02", "2024-01-02", 10_000)
    );
    drop(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_servers_give_one_line_errors_without_the_password() {
    let Some(db) = PgDb::new().await else { return };
    let s = standin(small(100)).await;
    let w = Workdir::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let unreachable = format!("postgres://root:hunter2@127.0.0.1:{port}/nowhere");
    let first = w
        .import(
            &s.url(),
            "AAPL",
            "2024-01-02",
            "2024-01-02",
            &["--database-url", &unreachable],
        )
        .await;
    assert_one_line_failure(
        &first,
        1,
        &format!("cannot connect (PostgreSQL postgres://root:<redacted>@127.0.0.1:{port}/nowhere)"),
    );
    let base = db
        .url
        .rsplit_once('/')
        .unwrap()
        .0
        .replace("postgres://root@", "postgres://root:hunter2@");
    let missing = format!("{base}/no_such_database_here");
    let run = w
        .import(
            &s.url(),
            "AAPL",
            "2024-01-02",
            "2024-01-02",
            &["--database-url", &missing],
        )
        .await;
    assert_one_line_failure(&run, 1, "database \"no_such_database_here\" does not exist");
    for r in [&first, &run] {
        assert!(
            !r.stderr.contains("hunter2") && !w.log().contains("hunter2"),
            "{}",
            r.stderr
        );
    }
    drop(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_import_resumes_from_the_progress_committed_in_postgres() {
    let Some(db) = PgDb::new().await else { return };
    let s = standin(StandinConfig {
        max_page: Some(500),
        delay: Duration::from_millis(20),
        ..small(2_000)
    })
    .await;
    let w = Workdir::new();
    let url = s.url();
    let args = [
        "import-api",
        "quotes",
        "AAPL",
        "2024-01-02",
        "2024-01-09",
        "--api-url",
        &url,
        "--database-url",
        &db.url,
        "--batch-size",
        "700",
        "--concurrency",
        "2",
    ];
    let mut child = w.command(&args).spawn().expect("spawn");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    // Kill (SIGKILL) once at least one day is recorded done.
    loop {
        let done: i64 = sqlx::query_scalar("SELECT count(*) FROM import_progress WHERE done")
            .fetch_one(&mut db.conn().await)
            .await
            .unwrap_or(0);
        if done > 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no day finished");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    let done: Vec<String> = sqlx::query_scalar(
        "SELECT day::text FROM import_progress WHERE done AND dataset = 'quotes' ORDER BY day",
    )
    .fetch_all(&mut db.conn().await)
    .await
    .unwrap();
    assert!(!done.is_empty() && done.len() < 6, "{done:?}");
    let before = s.request_log().len();
    let run = w.run(&args).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "[RESUME] {} of 6 days already imported (skipped)",
            done.len()
        )),
        "{}",
        run.stderr
    );
    for r in &s.request_log()[before..] {
        let start = r.start.as_deref().unwrap_or_default();
        assert!(
            !done.iter().any(|d| start.starts_with(d.as_str())),
            "done day fetched again: {r:?}"
        );
    }
    assert_eq!(
        db.rows("AAPL").await,
        expected_rows("AAPL", "2024-01-02", "2024-01-09", 2_000)
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM import_progress WHERE done")
            .await,
        6
    );
    drop(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trades_and_bars_go_into_postgres() {
    let Some(db) = PgDb::new().await else { return };
    let s = standin(StandinConfig {
        max_page: Some(400),
        ..small(4_000)
    })
    .await;
    let w = Workdir::new();
    let url = s.url();
    for extra in [&["trades"][..], &["bars", "--timeframe", "5Min"][..]] {
        let mut args = vec![
            "import-api",
            extra[0],
            "AAPL,MSFT",
            "2024-01-02",
            "2024-01-03",
        ];
        args.extend_from_slice(&extra[1..]);
        args.extend([
            "--api-url",
            &url,
            "--database-url",
            &db.url,
            "--batch-size",
            "500",
        ]);
        let run = w.run(&args).await;
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        // Idempotent: a --restart rerun upserts the same rows.
        args.push("--restart");
        let run = w.run(&args).await;
        assert_eq!(run.code, Some(0), "{}", run.stderr);
    }
    // 1,000 trade records per symbol-day, 10 of them corrections that overwrite a trade.
    assert_eq!(db.scalar("SELECT count(*) FROM trades").await, 4 * 990);
    assert_eq!(
        db.scalar("SELECT count(*) FROM trades WHERE update_flag = 'corrected'")
            .await,
        40
    );
    // Bars hold every original trade once.
    assert_eq!(
        db.scalar("SELECT sum(trade_count)::BIGINT FROM bars WHERE timeframe = '5Min'")
            .await,
        4 * 990
    );
    assert_eq!(
        db.scalar("SELECT (SELECT sum(size) FROM trades)::BIGINT - (SELECT sum(volume) FROM bars)::BIGINT")
            .await,
        0
    );
    // The views: each row once, time_utc a timestamptz to the microsecond of t_ns (a double's
    // rounding may move it by one), and the
    // New York date of each bar and trade.
    assert_eq!(db.scalar("SELECT count(*) FROM trades_view").await, 4 * 990);
    assert_eq!(
        db.scalar("SELECT count(*) FROM bars_view WHERE timeframe = '5Min'")
            .await,
        db.scalar("SELECT count(*) FROM bars WHERE timeframe = '5Min'")
            .await
    );
    let off = db
        .scalar(
            "SELECT max(abs((extract(epoch FROM time_utc) * 1e6)::BIGINT - t_ns / 1000)) \
             FROM trades_view",
        )
        .await;
    assert!(off <= 1, "{off}");
    let day = db
        .scalar("SELECT count(*) FROM bars_view WHERE ny_date = DATE '2024-01-03'")
        .await;
    assert!(day > 0);
    assert_eq!(
        db.scalar(
            "SELECT count(*) FROM bars_view WHERE ny_date = DATE '2024-01-03' \
             AND t_ns >= 1704272400000000000 AND t_ns < 1704330000000000000"
        )
        .await,
        day
    );
    // archive and load-historical move trades and bars between PostgreSQL and the Parquet
    // store without changing a value.
    const TRADES: &str = "SELECT ('x' || substr(md5(string_agg(concat_ws('|', symbol_id, t, exchange, trade_id, \
         price, size, conditions, tape, update_flag), ',' ORDER BY symbol_id, t, exchange, trade_id)), 1, 15))::bit(60)::BIGINT FROM trades";
    const BARS: &str = "SELECT ('x' || substr(md5(string_agg(concat_ws('|', symbol_id, timeframe, adjustment, t, \
         open, high, low, close, volume, trade_count, vwap), ',' ORDER BY symbol_id, t)), 1, 15))::bit(60)::BIGINT FROM bars";
    let (trades_before, bars_before) = (db.scalar(TRADES).await, db.scalar(BARS).await);
    let pg = ["--database-url", db.url.as_str()];
    for args in [
        &["archive", "trades", "AAPL", "--older-than", "2024-01-04"][..],
        &[
            "archive",
            "bars",
            "AAPL",
            "--older-than",
            "2024-02-01",
            "--timeframe",
            "5Min",
        ][..],
    ] {
        let run = w.run(&[args, &pg[..]].concat()).await;
        assert_eq!(run.code, Some(0), "{}", run.stderr);
    }
    assert_eq!(db.scalar("SELECT count(*) FROM trades").await, 2 * 990);
    assert_eq!(
        db.scalar("SELECT count(*) FROM bars b JOIN symbols s ON s.id = b.symbol_id WHERE s.symbol = 'AAPL'")
            .await,
        0
    );
    for args in [
        &[
            "load-historical",
            "trades",
            "AAPL",
            "2024-01-02",
            "2024-01-03",
        ][..],
        &[
            "load-historical",
            "bars",
            "AAPL",
            "2024-01-02",
            "2024-01-03",
            "--timeframe",
            "5Min",
        ][..],
    ] {
        let run = w.run(&[args, &pg[..]].concat()).await;
        assert_eq!(run.code, Some(0), "{}", run.stderr);
    }
    assert_eq!(db.scalar(TRADES).await, trades_before);
    assert_eq!(db.scalar(BARS).await, bars_before);
    drop(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crypto_goes_into_postgres() {
    let Some(db) = PgDb::new().await else { return };
    let s = standin(StandinConfig {
        max_page: Some(900),
        ..small(1_000)
    })
    .await;
    let w = Workdir::new();
    let url = s.url();
    for extra in [
        &["quotes"][..],
        &["trades"][..],
        &["bars", "--timeframe", "15Min"][..],
    ] {
        let mut args = vec![
            "import-api",
            extra[0],
            "BTC/USD,ETH/USD",
            "2024-01-06",
            "2024-01-07",
        ];
        args.extend_from_slice(&extra[1..]);
        args.extend(["--api-url", &url, "--database-url", &db.url]);
        let run = w.run(&args).await;
        assert_eq!(run.code, Some(0), "{}", run.stderr);
    }
    // A weekend: two UTC days of 1,000 quotes, 250 trades and 96 quarter-hours per pair.
    assert_eq!(db.scalar("SELECT count(*) FROM crypto_quotes").await, 4_000);
    assert_eq!(db.scalar("SELECT count(*) FROM crypto_trades").await, 1_000);
    assert_eq!(
        db.scalar("SELECT count(*) FROM crypto_bars").await,
        2 * 2 * 96
    );
    assert_eq!(
        db.scalar("SELECT sum(trade_count)::BIGINT FROM crypto_bars")
            .await,
        1_000
    );
    // Exact values, fractional sizes included.
    let stored: Vec<(i64, i32, f64, f64, f64, f64)> = sqlx::query_as(
        "SELECT q.t, q.seq, q.bid_price, q.bid_size, q.ask_price, q.ask_size FROM crypto_quotes q \
         JOIN symbols s ON s.id = q.symbol_id WHERE s.symbol = 'ETH/USD' AND s.feed = 'us' ORDER BY q.t, q.seq",
    )
    .fetch_all(&mut db.conn().await)
    .await
    .unwrap();
    let mut want = Vec::new();
    let (mut last_t, mut seq) = (i64::MIN, 0);
    for d in ["2024-01-06", "2024-01-07"] {
        let day = data::standin::crypto::CryptoDay::new("us", "ETH/USD", d.parse().unwrap(), 1_000);
        for i in 0..day.quote_count() {
            let q = day.quote(i);
            seq = if q.t == last_t { seq + 1 } else { 0 };
            last_t = q.t;
            want.push((q.t, seq, q.bid_price, q.bid_size, q.ask_price, q.ask_size));
        }
    }
    assert_eq!(stored, want);
    let sides = db
        .scalar("SELECT count(DISTINCT taker_side) FROM crypto_trades")
        .await;
    assert_eq!(sides, 3);
    let run = w.run(&["status", "--database-url", &db.url]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    for line in [
        "crypto_bars/15Min  BTC/USD  us    database  2024-01-06  2024-01-07  2     192",
        "crypto_quotes      ETH/USD  us    database  2024-01-06  2024-01-07  2     2000",
        "crypto_trades      ETH/USD  us    database  2024-01-06  2024-01-07  2     500",
    ] {
        assert!(run.stdout.contains(line), "{line}\n{}", run.stdout);
    }
    drop(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_go_into_postgres() {
    let Some(db) = PgDb::new().await else { return };
    let s = standin(StandinConfig {
        max_page: Some(40),
        ..small(100)
    })
    .await;
    let w = Workdir::new();
    let url = s.url();
    for extra in [&["trades"][..], &["bars", "--timeframe", "5Min"][..]] {
        let mut args = vec![
            "import-api",
            extra[0],
            "--underlying",
            "MSFT",
            "--type",
            "call",
            "2024-04-15",
            "2024-04-19",
        ];
        args.extend_from_slice(&extra[1..]);
        args.extend([
            "--api-url",
            &url,
            "--trading-api-url",
            &url,
            "--database-url",
            &db.url,
        ]);
        let run = w.run(&args).await;
        assert_eq!(run.code, Some(0), "{}", run.stderr);
    }
    // The week's one Friday expiry: eleven calls, listed once, upserted by the second run.
    assert_eq!(db.scalar("SELECT count(*) FROM option_contracts").await, 11);
    let contracts: Vec<String> =
        sqlx::query_scalar("SELECT symbol FROM option_contracts ORDER BY symbol")
            .fetch_all(&mut db.conn().await)
            .await
            .unwrap();
    let mut total = 0;
    for c in &contracts {
        let want = crate::option_data::expected_trades(c, "2024-04-15", "2024-04-19");
        let rows: Vec<(i64, i32, String, f64, i64, String)> = sqlx::query_as(
            "SELECT q.t, q.seq, q.exchange, q.price, q.size, q.condition FROM option_trades q \
             JOIN symbols s ON s.id = q.symbol_id WHERE s.symbol = $1 ORDER BY q.t, q.seq",
        )
        .bind(c)
        .fetch_all(&mut db.conn().await)
        .await
        .unwrap();
        let got: Vec<String> = rows
            .iter()
            .map(|(t, seq, x, p, s, cond)| format!("{t}|{seq}|{x}|{p:?}|{s}|{cond}"))
            .collect();
        assert_eq!(got, want, "{c}");
        total += want.len() as i64;
    }
    // Bars hold every trade once.
    assert_eq!(
        db.scalar("SELECT sum(trade_count)::BIGINT FROM option_bars WHERE timeframe = '5Min'")
            .await,
        total
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM option_trades_view WHERE underlying_symbol = 'MSFT' AND type = 'call'")
            .await,
        total
    );
    drop(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corporate_actions_go_into_postgres() {
    let Some(db) = PgDb::new().await else { return };
    let s = standin(small(1_000)).await;
    let w = Workdir::new();
    let url = s.url();
    let pg = ["--api-url", url.as_str(), "--database-url", db.url.as_str()];
    let runs: [&[&str]; 3] = [
        &[
            "import-api",
            "corporate-actions",
            "AAPL,NVDA,META",
            "2020-01-01",
            "2024-12-31",
        ],
        &[
            "import-api",
            "bars",
            "NVDA",
            "2024-06-03",
            "2024-06-14",
            "--timeframe",
            "1Day",
        ],
        &[
            "import-api",
            "bars",
            "NVDA",
            "2024-06-03",
            "2024-06-14",
            "--timeframe",
            "1Day",
            "--adjustment",
            "split",
        ],
    ];
    for args in runs {
        let run = w.run(&[args, &pg[..]].concat()).await;
        assert_eq!(run.code, Some(0), "{}", run.stderr);
    }
    let from: chrono::NaiveDate = "2020-01-01".parse().unwrap();
    let to: chrono::NaiveDate = "2024-12-31".parse().unwrap();
    let want: usize = ["AAPL", "NVDA", "META"]
        .iter()
        .map(|s| data::standin::actions::ledger(s, from, to).len())
        .sum();
    assert_eq!(
        db.scalar("SELECT count(*) FROM corporate_actions").await,
        want as i64
    );
    // Every field, as JSON: the rename's old and new tickers.
    let rename: String = sqlx::query_scalar(
        "SELECT fields->>'old_symbol' || '>' || (fields->>'new_symbol') FROM corporate_actions_view \
         WHERE action = 'name_changes'",
    )
    .fetch_one(&mut db.conn().await)
    .await
    .unwrap();
    assert_eq!(rename, "FB>META");
    // NVDA's 10:1 split of 2024-06-10 in the view equals the API's adjustment=split bars.
    let diff = db
        .scalar(
            "SELECT count(*) FROM bars_split_adjusted_view v JOIN symbols s ON s.symbol = v.symbol \
             AND s.feed = v.feed JOIN bars b ON b.symbol_id = s.id AND b.t = v.t_ns \
             AND b.timeframe = v.timeframe AND b.adjustment = 'split' \
             WHERE abs(v.close - b.close) > 1e-9 * b.close OR abs(v.volume - b.volume) > 1e-6 * b.volume",
        )
        .await;
    assert_eq!(diff, 0);
    assert_eq!(
        db.scalar("SELECT count(*) FROM bars WHERE adjustment = 'split'")
            .await,
        10
    );
    drop(db);
}
