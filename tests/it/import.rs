//! The real `data` binary against the in-process stand-in: imports checked row by row,
//! idempotent reruns, the batch log, faults survived, and interruption.

use crate::common::*;
use data::standin::StandinConfig;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_a_few_days_row_by_row_across_short_pages_and_a_weekend() {
    // Friday 5 and Monday 8 January 2024; the weekend has no quotes.
    let s = standin(StandinConfig {
        max_page: Some(777),
        ..small(3_000)
    })
    .await;
    let w = Workdir::new();
    let run = w
        .import(
            &s.url(),
            "AAPL",
            "2024-01-05",
            "2024-01-08",
            &["--batch-size", "1000"],
        )
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);

    let expected = expected_rows("AAPL", "2024-01-05", "2024-01-08", 3_000);
    assert_eq!(expected.len(), 6_000);
    let got = w.rows("AAPL").await;
    assert_eq!(got.len(), expected.len());
    for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
        assert_eq!(g, e, "row {i} differs");
    }
    // Some quotes really do share a nanosecond and were kept apart by seq.
    assert!(got.iter().any(|r| r.split('|').nth(1) != Some("0")));

    // One log line per committed batch, in the file and on stderr, then a summary.
    let log = w.log();
    for n in 1..=6 {
        let needle = format!(
            "[DB] Batch {n}: 1000 rows committed, {} total, last quote 2024-01-",
            n * 1000
        );
        assert!(log.contains(&needle), "missing {needle:?} in log:\n{log}");
        assert!(run.stderr.contains(&needle), "missing {needle:?} on stderr");
    }
    assert!(!log.contains("[DB] Batch 7:"));
    // WAL, so readers can query while an import writes.
    let mut c = w.connect().await;
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    assert!(
        log.contains("[DONE] AAPL quotes: 6000 rows, 8 pages, 6 batches"),
        "{log}"
    );
    // Not a terminal: no progress bar drawn, every stderr line is a log line, and the last
    // is the line a person reads.
    let lines: Vec<&str> = run.stderr.lines().collect();
    let (end, log_lines) = lines.split_last().unwrap();
    for line in log_lines {
        assert!(
            line.starts_with("20") && line.contains(" INFO "),
            "unexpected stderr line {line:?}"
        );
    }
    assert!(
        end.starts_with("\u{2713} 6,000 quotes of AAPL in ")
            && end.ends_with(" s \u{2192} data/market.db (2 days)"),
        "{end:?}"
    );
}

/// `--batch-size 1`: one transaction per quote, back to back from each page. It once hung
/// for good after a few hundred to a few thousand commits (sqlx's connection hand-over,
/// see `sink::sqlite::lock_connection`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_row_batches_commit_every_quote_and_finish() {
    let s = standin(small(4_000)).await;
    let w = Workdir::new();
    let mut cmd = w.command(&[
        "import-api",
        "quotes",
        "AAPL",
        "2024-01-02",
        "2024-01-02",
        "--api-url",
        &s.url(),
        "--batch-size",
        "1",
    ]);
    cmd.kill_on_drop(true);
    let run = tokio::time::timeout(Duration::from_secs(300), w.run_cmd(cmd))
        .await
        .expect("4,000 one-row batches did not finish in 5 minutes: the import hung");
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(
        w.rows("AAPL").await,
        expected_rows("AAPL", "2024-01-02", "2024-01-02", 4_000)
    );
    let log = w.log();
    assert_eq!(log.matches("[DB] Batch ").count(), 4_000);
    assert!(
        log.contains("[DB] Batch 4000: 1 rows committed, 4000 total"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rerunning_the_same_import_leaves_exactly_the_same_rows() {
    let s = standin(small(4_000)).await;
    let w = Workdir::new();
    let first = w
        .import(&s.url(), "MSFT", "2024-03-04", "2024-03-05", &[])
        .await;
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    let before = w.rows("MSFT").await;
    assert_eq!(before.len(), 8_000);
    let second = w
        .import(
            &s.url(),
            "MSFT",
            "2024-03-04",
            "2024-03-05",
            &["--batch-size", "3000"],
        )
        .await;
    assert_eq!(second.code, Some(0), "{}", second.stderr);
    assert_eq!(w.rows("MSFT").await, before);
    // An overlapping range adds only the new day.
    let third = w
        .import(&s.url(), "MSFT", "2024-03-05", "2024-03-06", &[])
        .await;
    assert_eq!(third.code, Some(0), "{}", third.stderr);
    assert_eq!(
        w.rows("MSFT").await,
        expected_rows("MSFT", "2024-03-04", "2024-03-06", 4_000)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timestamps_and_iex_feed_are_sent_as_given() {
    let s = standin(small(20_000)).await;
    let w = Workdir::new();
    let (start, end) = ("2024-07-01T14:30:00Z", "2024-07-01T14:45:00.5Z");
    let run = w
        .import(&s.url(), "aapl", start, end, &["--feed", "iex"])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let range = data::time::DateRange::parse(start, end).unwrap();
    let n = data::standin::generate::quotes_between(
        "AAPL",
        "iex",
        range.start_ns,
        range.end_ns,
        20_000,
    )
    .count();
    assert!(n > 0);
    assert_eq!(w.count().await, n as i64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_server_errors_and_truncated_bodies() {
    // Requests 3, 6, 9, ... answer 5xx; requests 4, 8, ... drop the connection mid-body.
    let s = standin(StandinConfig {
        max_page: Some(250),
        fail_every: Some(3),
        truncate_every: Some(4),
        ..small(2_500)
    })
    .await;
    let w = Workdir::new();
    let run = w
        .import(
            &s.url(),
            "AAPL",
            "2024-01-02",
            "2024-01-02",
            &["--batch-size", "600"],
        )
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(
        w.rows("AAPL").await,
        expected_rows("AAPL", "2024-01-02", "2024-01-02", 2_500)
    );
    let err = &run.stderr;
    assert!(
        err.contains("HTTP 500 from Alpaca: internal server error occurred (code 50010000)"),
        "{err}"
    );
    assert!(
        err.contains("HTTP 502 from Alpaca: 502 Bad Gateway;"),
        "{err}"
    );
    assert!(
        err.contains("HTTP 503 from Alpaca: 503 Service Unavailable;"),
        "{err}"
    );
    assert!(
        err.contains("broke while reading the response body"),
        "{err}"
    );
    assert!(
        err.contains("[DONE] AAPL quotes: 2500 rows, 10 pages, 5 batches"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follows_the_servers_rate_limit_headers_without_429s() {
    // Three requests per one-second window; the import needs eight pages. With no
    // client-side limit, only X-RateLimit-Remaining: 0 and the reset time pace it.
    let s = standin(StandinConfig {
        max_page: Some(250),
        rate_limit: Some(3),
        rate_window: Duration::from_millis(1000),
        ..small(2_000)
    })
    .await;
    let w = Workdir::new();
    let started = std::time::Instant::now();
    let run = w
        .import(&s.url(), "AAPL", "2024-01-02", "2024-01-02", &[])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(w.count().await, 2_000);
    assert!(
        run.stderr.contains("8 requests (")
            && run.stderr.contains("0 retries, 0 rate-limited (429)"),
        "{}",
        run.stderr
    );
    assert!(s.request_log().iter().all(|r| r.status == 200));
    // 8 pages at 3 per window span three windows, so at least one whole window passed.
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_is_never_fatal_and_is_counted() {
    // A server that warns only by refusing: 429s are waited out until the reset, and do not
    // use up the single attempt allowed per request.
    let s = standin(StandinConfig {
        max_page: Some(250),
        rate_limit: Some(3),
        rate_window: Duration::from_millis(1000),
        rate_headers_on_429_only: true,
        ..small(2_000)
    })
    .await;
    let w = Workdir::new();
    let run = w
        .import(
            &s.url(),
            "AAPL",
            "2024-01-02",
            "2024-01-02",
            &["--max-attempts", "1"],
        )
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(w.count().await, 2_000);
    let refused = s.request_log().iter().filter(|r| r.status == 429).count();
    assert!(
        refused >= 1,
        "the server never refused: {:?}",
        s.request_log()
    );
    assert!(
        run.stderr
            .contains("HTTP 429 rate limited by Alpaca: too many requests. (code 42910000)"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!("{} requests (", 8 + refused))
            && run
                .stderr
                .contains(&format!("{refused} rate-limited (429)")),
        "{refused} refused; {}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gives_up_after_the_attempt_budget_and_says_so() {
    let s = standin(StandinConfig {
        fail_every: Some(1),
        ..small(1_000)
    })
    .await;
    let w = Workdir::new();
    let run = w
        .import(
            &s.url(),
            "AAPL",
            "2024-01-02",
            "2024-01-02",
            &["--max-attempts", "3"],
        )
        .await;
    assert_one_line_failure(&run, 1, "gave up after 3 attempts over ");
    assert!(
        run.stderr
            .contains("no rows were committed; rerun the same command to finish"),
        "{}",
        run.stderr
    );
    assert_eq!(s.requests(), 3);
    assert_eq!(w.count().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_mid_import_keeps_the_committed_batches_and_a_rerun_completes() {
    // Two pages succeed, then the API answers 503 to everything.
    let s = standin(StandinConfig {
        max_page: Some(500),
        fail_after: Some(2),
        ..small(2_000)
    })
    .await;
    let w = Workdir::new();
    let run = w
        .import(
            &s.url(),
            "AAPL",
            "2024-01-02",
            "2024-01-02",
            &["--batch-size", "500", "--max-attempts", "2"],
        )
        .await;
    assert_one_line_failure(&run, 1, "gave up after 2 attempts over");
    assert!(
        run.stderr
            .contains("HTTP 503 from Alpaca: 503 Service Unavailable"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("1000 rows in 2 batches were committed, up to 2024-01-02T"),
        "{}",
        run.stderr
    );
    assert!(
        w.log().contains("ERROR importing AAPL quotes from"),
        "the error is in the log file too"
    );
    assert_eq!(
        w.count().await,
        1_000,
        "committed batches survive the failure"
    );

    let healthy = standin(StandinConfig {
        max_page: Some(500),
        ..small(2_000)
    })
    .await;
    let rerun = w
        .import(&healthy.url(), "AAPL", "2024-01-02", "2024-01-02", &[])
        .await;
    assert_eq!(rerun.code, Some(0), "{}", rerun.stderr);
    assert_eq!(
        w.rows("AAPL").await,
        expected_rows("AAPL", "2024-01-02", "2024-01-02", 2_000)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_refusals_are_fatal_and_show_the_message_without_secrets() {
    let creds = Some(("right-key".to_string(), "right-secret".to_string()));
    let s = standin(StandinConfig {
        credentials: creds.clone(),
        ..small(1_000)
    })
    .await;
    let w = Workdir::new();
    let run = w
        .import(&s.url(), "AAPL", "2024-01-02", "2024-01-02", &[])
        .await;
    assert_one_line_failure(
        &run,
        1,
        "Alpaca refused the credentials (HTTP 403: forbidden.): check APCA_API_KEY_ID and \
         APCA_API_SECRET_KEY",
    );
    assert!(
        !run.stderr.contains("rerun the same command"),
        "rerunning cannot help: {}",
        run.stderr
    );
    assert_eq!(s.requests(), 1, "a 403 is not retried");

    let html = standin(StandinConfig {
        credentials: creds,
        html_errors: true,
        ..small(1_000)
    })
    .await;
    let run = w
        .import(&html.url(), "AAPL", "2024-01-02", "2024-01-02", &[])
        .await;
    assert_one_line_failure(&run, 1, "HTTP 403: 403 Forbidden");

    for text in [run.stderr.as_str(), w.log().as_str()] {
        assert!(
            !text.contains(SECRET) && !text.contains(KEY),
            "secret leaked: {text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupt_commits_the_batch_in_hand_exits_130_and_a_rerun_completes() {
    let s = standin(StandinConfig {
        max_page: Some(500),
        delay: Duration::from_millis(60),
        ..small(10_000)
    })
    .await;
    let w = Workdir::new();
    let mut cmd = w.command(&[
        "import-api",
        "quotes",
        "AAPL",
        "2024-01-02",
        "2024-01-03",
        "--api-url",
        &s.url(),
        "--batch-size",
        "1000",
    ]);
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().expect("spawn");
    let pid = child.id().expect("pid");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !w.log().contains("[DB] Batch 2:") {
        assert!(std::time::Instant::now() < deadline, "no batches logged");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("interrupt received: finishing the current batch"),
        "{stderr}"
    );
    assert!(stderr.contains("[INTERRUPTED] AAPL quotes: "), "{stderr}");
    assert!(
        stderr.contains("rerun the same command to finish"),
        "{stderr}"
    );
    let committed = w.count().await;
    assert!(
        (2_000..20_000).contains(&committed),
        "{committed} rows after interrupt"
    );
    let reported = format!("{committed} rows in ");
    assert!(
        stderr.contains(&reported),
        "summary should report {committed} rows: {stderr}"
    );

    let rerun = w
        .import(&s.url(), "AAPL", "2024-01-02", "2024-01-03", &[])
        .await;
    assert_eq!(rerun.code, Some(0), "{}", rerun.stderr);
    assert_eq!(
        w.rows("AAPL").await,
        expected_rows("AAPL", "2024-01-02", "2024-01-03", 10_000)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_database_fails_after_the_busy_timeout_and_keeps_its_rows() {
    use sqlx::Connection;
    let s = standin(small(1_000)).await;
    let w = Workdir::new();
    let first = w
        .import(&s.url(), "AAPL", "2024-01-02", "2024-01-02", &[])
        .await;
    assert_eq!(first.code, Some(0), "{}", first.stderr);

    // Another writer holds the write lock for the whole second run.
    let mut other = w.connect().await;
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .unwrap();
    sqlx::query("INSERT INTO symbols (symbol) VALUES ('LOCK')")
        .execute(&mut other)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let run = w
        .import(
            &s.url(),
            "AAPL",
            "2024-01-03",
            "2024-01-03",
            &["--busy-timeout", "1"],
        )
        .await;
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_one_line_failure(&run, 1, "is locked by another writer (waited 1.0s)");
    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
    other.close().await.unwrap();
    assert_eq!(w.count().await, 1_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_responses_time_out_and_are_retried_within_the_budget() {
    let s = standin(StandinConfig {
        delay: Duration::from_millis(2_500),
        ..small(1_000)
    })
    .await;
    let w = Workdir::new();
    let run = w
        .import(
            &s.url(),
            "AAPL",
            "2024-01-02",
            "2024-01-02",
            &["--request-timeout", "1", "--max-attempts", "2"],
        )
        .await;
    assert_one_line_failure(&run, 1, "gave up after 2 attempts over ");
    assert!(
        run.stderr
            .contains(&format!("request to {} timed out", s.url())),
        "{}",
        run.stderr
    );
    assert_eq!(s.requests(), 2);
}

/// Alpaca gzips bodies for clients that accept it; the stand-in does too, and the import is
/// the same row for row either way. The summary reports the importer's CPU time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_bodies_import_exactly_like_plain_ones() {
    let expected = expected_rows("AAPL", "2024-01-05", "2024-01-08", 3_000);
    for gzip in [true, false] {
        let s = standin(StandinConfig {
            gzip,
            ..small(3_000)
        })
        .await;
        let w = Workdir::new();
        let run = w
            .import(&s.url(), "AAPL", "2024-01-05", "2024-01-08", &[])
            .await;
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        assert_eq!(w.rows("AAPL").await, expected, "gzip {gzip}");
        let log = s.request_log();
        assert!(!log.is_empty());
        assert!(log.iter().all(|r| r.gzip == gzip), "{log:?}");
        assert!(run.stderr.contains(" rows/s, CPU "), "{}", run.stderr);
    }
    let body = br#"{"quotes":{},"next_page_token":null}"#;
    let mut back = Vec::new();
    use std::io::Read;
    flate2::read::GzDecoder::new(&data::standin::gzip(body, data::standin::DEFAULT_GZIP_LEVEL)[..])
        .read_to_end(&mut back)
        .unwrap();
    assert_eq!(back, body);
}
