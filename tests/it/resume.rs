//! Resume, pacing and concurrency (issue 6): the real binary killed with SIGKILL at several
//! points and rerun, shards fetched concurrently, requests paced to the plan's limit.

use crate::common::{expected_rows, small, standin, Workdir};
use data::standin::{Logged, StandinConfig};
use data::time::parse_rfc3339_nanos;
use sqlx::Row;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const START: &str = "2024-01-02";
const END: &str = "2024-01-09"; // six weekdays
const PER_DAY: u32 = 3_000;

/// Order-independent checksum of every column of every row: the wrapping sum of each row's
/// FNV-1a hash.
fn checksum(rows: &[String]) -> u64 {
    rows.iter()
        .map(|r| {
            r.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
            })
        })
        .fold(0u64, u64::wrapping_add)
}

/// Saved progress: day -> (done, last_t).
async fn progress(w: &Workdir) -> BTreeMap<String, (bool, Option<i64>)> {
    let mut c = w.connect().await;
    sqlx::query("SELECT day, done, last_t FROM import_progress WHERE dataset = 'quotes'")
        .fetch_all(&mut c)
        .await
        .unwrap_or_default()
        .iter()
        .map(|r| {
            (
                r.get::<String, _>(0),
                (r.get::<bool, _>(1), r.get::<Option<i64>, _>(2)),
            )
        })
        .collect()
}

fn day_of(r: &Logged) -> String {
    let start = r.start.as_deref().unwrap_or_default();
    let ns = parse_rfc3339_nanos(start).expect("start");
    data::time::new_york_date(ns).to_string()
}

/// Checks what a rerun fetched against the progress committed before it: nothing of a done
/// day, and a started day only from its last committed quote on.
fn assert_fetched_only_missing(
    requests: &[Logged],
    before: &BTreeMap<String, (bool, Option<i64>)>,
) {
    for r in requests.iter().filter(|r| !r.continued) {
        let day = day_of(r);
        match before.get(&day) {
            Some((true, _)) => panic!("done day {day} fetched again: {r:?}"),
            Some((false, Some(last))) => {
                let start = parse_rfc3339_nanos(r.start.as_deref().unwrap_or_default()).unwrap();
                assert_eq!(
                    start, *last,
                    "started day {day} must resume at its last committed quote"
                );
            }
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_several_points_then_rerun_equals_a_clean_import() {
    let s = standin(StandinConfig {
        max_page: Some(400),
        delay: Duration::from_millis(30),
        ..small(PER_DAY)
    })
    .await;
    let url = s.url();
    let args = [
        "import-api",
        "quotes",
        "AAPL",
        START,
        END,
        "--api-url",
        &url,
        "--batch-size",
        "700",
        "--concurrency",
        "2",
    ];
    let w = Workdir::new();
    let deadline = || Instant::now() + Duration::from_secs(60);

    // 1. Early: as soon as the first request was answered, before any batch could commit.
    let mut child = w.command(&args).spawn().expect("spawn");
    let until = deadline();
    while s.request_log().is_empty() {
        assert!(Instant::now() < until, "no request");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    child.start_kill().unwrap();
    child.wait().await.unwrap();

    // 2. Between batches: right after the third batch line of this run is logged.
    // 3. Mid-batch: once 13 more requests were answered and a day is done (pages of 400
    //    into batches of 700, so rows of an uncommitted batch are in hand).
    let mut committed_before = Vec::new();
    for point in ["between", "mid"] {
        let before = progress(&w).await;
        committed_before.push(w.count().await);
        let (log_lines, requests) = (w.log().matches("[DB] Batch").count(), s.request_log().len());
        let mut child = w.command(&args).spawn().expect("spawn");
        let until = deadline();
        loop {
            let ready = match point {
                "between" => w.log().matches("[DB] Batch").count() >= log_lines + 3,
                _ => {
                    s.request_log().len() >= requests + 13
                        && progress(&w).await.values().any(|(done, _)| *done)
                }
            };
            if ready {
                break;
            }
            assert!(Instant::now() < until, "no progress before kill {point}");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        child.start_kill().unwrap();
        child.wait().await.unwrap();
        assert_fetched_only_missing(&s.request_log()[requests..], &before);
        assert!(
            w.count().await >= *committed_before.last().unwrap(),
            "a kill lost committed rows"
        );
    }
    let before = progress(&w).await;
    assert!(
        before.values().any(|(done, _)| *done),
        "some day finished before the last kill: {before:?}"
    );
    assert!(
        before.len() < 6 || before.values().any(|(done, _)| !*done),
        "the kills left nothing to resume: {before:?}"
    );

    // The final rerun completes the import, fetching only what is missing.
    let requests = s.request_log().len();
    let run = w.run(&args).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stderr.contains("[RESUME] "), "{}", run.stderr);
    assert_fetched_only_missing(&s.request_log()[requests..], &before);
    let resumed = s.request_log().len() - requests;

    // Identical to a clean import: every row, every column.
    let clean = Workdir::new();
    let run = clean.run(&args).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let (got, want) = (w.rows("AAPL").await, clean.rows("AAPL").await);
    assert_eq!(got.len(), 6 * PER_DAY as usize);
    assert_eq!(checksum(&got), checksum(&want));
    assert_eq!(got, want);
    assert_eq!(got, expected_rows("AAPL", START, END, PER_DAY));
    let clean_requests = s.request_log().len() - requests - resumed;
    assert!(
        resumed < clean_requests,
        "the rerun fetched {resumed} pages, a clean import {clean_requests}"
    );
    let done = progress(&w).await;
    assert_eq!(done.len(), 6);
    assert!(done.values().all(|(d, _)| *d), "{done:?}");

    // Once complete, a rerun fetches nothing; --restart fetches everything again.
    let requests = s.request_log().len();
    let run = w.run(&args).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stderr.contains("all 6 days of") && run.stderr.contains("nothing to fetch"),
        "{}",
        run.stderr
    );
    assert_eq!(s.request_log().len(), requests);
    let mut restart = args.to_vec();
    restart.push("--restart");
    let run = w.run(&restart).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(s.request_log().len() - requests, clean_requests);
    assert_eq!(w.rows("AAPL").await, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overlapping_range_fetches_only_the_new_days() {
    let s = standin(StandinConfig {
        max_page: Some(1_000),
        ..small(2_000)
    })
    .await;
    let w = Workdir::new();
    let run = w
        .import(&s.url(), "AAPL", "2024-01-02", "2024-01-04", &[])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let first = s.request_log().len();
    assert_eq!(first, 6, "3 days of 2 pages");
    let run = w
        .import(&s.url(), "AAPL", "2024-01-03", "2024-01-05", &[])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("[RESUME] 2 of 3 days already imported (skipped)"),
        "{}",
        run.stderr
    );
    let again: Vec<String> = s.request_log()[first..].iter().map(day_of).collect();
    assert_eq!(again, vec!["2024-01-05", "2024-01-05"]);
    assert_eq!(
        w.rows("AAPL").await,
        expected_rows("AAPL", "2024-01-02", "2024-01-05", 2_000)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_failure_keeps_finished_days_and_the_rerun_completes() {
    // The API goes down after 9 requests: days finished by then stay done.
    let s = standin(StandinConfig {
        max_page: Some(500),
        fail_after: Some(9),
        ..small(1_000)
    })
    .await;
    let w = Workdir::new();
    let args = ["--concurrency", "1", "--max-attempts", "2"];
    let run = w
        .import(&s.url(), "AAPL", "2024-01-02", "2024-01-08", &args)
        .await;
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let before = progress(&w).await;
    let done: Vec<&String> = before
        .iter()
        .filter(|(_, (d, _))| *d)
        .map(|(k, _)| k)
        .collect();
    // 2 pages a day: requests 1-8 finished four days, the 9th was day 5's first page.
    assert_eq!(
        done,
        vec!["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"]
    );
    assert_eq!(before.get("2024-01-08").map(|p| p.0), Some(false));

    let s2 = standin(StandinConfig {
        max_page: Some(500),
        ..small(1_000)
    })
    .await;
    let run = w
        .import(&s2.url(), "AAPL", "2024-01-02", "2024-01-08", &args)
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_fetched_only_missing(&s2.request_log(), &before);
    let days: Vec<String> = s2.request_log().iter().map(day_of).collect();
    assert!(
        !days.is_empty() && days.len() <= 2 && days.iter().all(|d| d == "2024-01-08"),
        "{days:?}"
    );
    assert_eq!(
        w.rows("AAPL").await,
        expected_rows("AAPL", "2024-01-02", "2024-01-08", 1_000)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_shards_give_the_same_rows_and_thinning_as_one_at_a_time() {
    let s = standin(StandinConfig {
        max_page: Some(300),
        delay: Duration::from_millis(5),
        ..small(1_500)
    })
    .await;
    let mut results = Vec::new();
    for k in ["1", "8"] {
        let w = Workdir::new();
        for thin in [&[][..], &["--nbbo-changes", "--aggregate", "1s"][..]] {
            let mut args = vec!["--concurrency", k, "--batch-size", "1000"];
            args.extend_from_slice(thin);
            let run = w.import(&s.url(), "AAPL", START, END, &args).await;
            assert_eq!(run.code, Some(0), "{}", run.stderr);
            let shown = if k == "1" {
                "1 at a time"
            } else {
                "6 at a time"
            };
            assert!(
                run.stderr.contains(&format!("fetching 6 days, {shown}")),
                "{}",
                run.stderr
            );
        }
        let mut c = w.connect().await;
        let agg: Vec<(i64, i64, f64, i64)> = sqlx::query_as(
            "SELECT bucket_t, last_t, bid_price, quote_count FROM quotes_aggregated ORDER BY bucket_t",
        )
        .fetch_all(&mut c)
        .await
        .unwrap();
        results.push((w.rows("AAPL").await, agg));
    }
    assert_eq!(results[0].0, expected_rows("AAPL", START, END, 1_500));
    assert_eq!(results[0].0, results[1].0);
    assert!(!results[0].1.is_empty());
    assert_eq!(
        results[0].1, results[1].1,
        "aggregates differ with concurrency"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_and_summary_show_days_requests_retries() {
    let s = standin(StandinConfig {
        max_page: Some(500),
        fail_every: Some(5),
        ..small(1_000)
    })
    .await;
    let w = Workdir::new();
    let run = w
        .import(
            &s.url(),
            "AAPL",
            "2024-01-02",
            "2024-01-04",
            &["--batch-size", "500", "--concurrency", "1"],
        )
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    // 3 days x 2 pages = 6 pages; every 5th request fails once, so 7 requests, 1 retry.
    assert!(
        run.stderr.contains("7 requests (") && run.stderr.contains("1 retries, 0 rate-limited"),
        "{}",
        run.stderr
    );
    let batch2 = w
        .log()
        .lines()
        .find(|l| l.contains("[DB] Batch 2:"))
        .unwrap_or_default()
        .to_string();
    assert!(
        batch2.contains(", days 1/3, ") && batch2.contains(" requests/min"),
        "{batch2}"
    );
    let last = w
        .log()
        .lines()
        .find(|l| l.contains("[DB] Batch 6:"))
        .unwrap_or_default()
        .to_string();
    assert!(last.contains(", days 3/3, "), "{last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_paced_to_the_rate_limit() {
    // The server allows 10 requests per second and warns only by refusing; the client is
    // told 540/min (9 a second) and fetches 4 days at once. Requests are spaced, not
    // bursted: none is refused, and the rate never exceeds the limit.
    let s = standin(StandinConfig {
        max_page: Some(200),
        rate_limit: Some(10),
        rate_window: Duration::from_millis(1000),
        rate_headers_on_429_only: true,
        ..small(1_000)
    })
    .await;
    let w = Workdir::new();
    let started = Instant::now();
    let run = w
        .import(
            &s.url(),
            "AAPL",
            "2024-01-02",
            "2024-01-05",
            &["--rate-limit", "540", "--concurrency", "4"],
        )
        .await;
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let log = s.request_log();
    assert_eq!(log.len(), 20, "4 days x 5 pages");
    assert!(
        log.iter().all(|r| r.status == 200),
        "refused: {:?}",
        log.iter().filter(|r| r.status != 200).count()
    );
    // 20 requests spaced 111 ms apart take at least 2.1 s.
    assert!(secs >= 2.1, "{secs:.2}s: faster than the limit allows");
    assert!(
        run.stderr.contains("at most 540 requests/min"),
        "{}",
        run.stderr
    );
}

/// Shared requests (`--symbols-per-request`) killed mid-import: the rerun asks only for the
/// symbol-days not done (a started one alone, from its last committed quote) and ends with
/// exactly the rows of a clean import.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_requests_killed_then_rerun_equal_a_clean_import() {
    let s = standin(StandinConfig {
        max_page: Some(400),
        delay: Duration::from_millis(30),
        ..small(PER_DAY)
    })
    .await;
    let url = s.url();
    let end = "2024-01-04";
    let args = [
        "import-api",
        "quotes",
        "AAPL,MSFT",
        START,
        end,
        "--api-url",
        &url,
        "--batch-size",
        "700",
        "--concurrency",
        "1",
        "--symbols-per-request",
        "2",
    ];
    let w = Workdir::new();
    let done_days = || async {
        let mut c = w.connect().await;
        let rows: Vec<(String, String, bool)> = sqlx::query_as(
            "SELECT symbol, day, done FROM import_progress WHERE dataset = 'quotes'",
        )
        .fetch_all(&mut c)
        .await
        .unwrap_or_default();
        rows.into_iter()
            .filter(|r| r.2)
            .map(|(s, d, _)| (s, d))
            .collect::<Vec<_>>()
    };
    let mut child = w.command(&args).spawn().expect("spawn");
    let until = Instant::now() + Duration::from_secs(60);
    // Kill once AAPL's first day is done and MSFT's has started (same request).
    loop {
        if w.log().matches("[DB] Batch").count() >= 6 && !done_days().await.is_empty() {
            break;
        }
        assert!(Instant::now() < until, "no progress before the kill");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    let done = done_days().await;
    assert!(
        done.contains(&("AAPL".to_string(), "2024-01-02".to_string())),
        "{done:?}"
    );
    assert!(done.len() < 6, "{done:?}");
    let requests = s.request_log().len();
    let run = w.run(&args).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    for r in s.request_log()[requests..].iter().filter(|r| !r.continued) {
        let day = day_of(r);
        for symbol in r.symbols.split(',') {
            assert!(
                !done.contains(&(symbol.to_string(), day.clone())),
                "done {symbol} {day} fetched again: {r:?}"
            );
        }
    }
    for symbol in ["AAPL", "MSFT"] {
        assert_eq!(
            w.rows(symbol).await,
            expected_rows(symbol, START, end, PER_DAY),
            "{symbol}"
        );
    }
}
