//! `--concurrency auto` (the default): at 600 ms per response, it reaches within the first
//! minute a K that hides that latency, inside the pace the rate limit sets.

use crate::common::{expected_rows, standin, Workdir};
use data::standin::StandinConfig;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_concurrency_hides_600_ms_of_latency_within_a_minute() {
    // 21 January days x 20 pages of 100 quotes, each answered after 600 ms: 420 requests,
    // 252 s one at a time. At 1,200 requests/min (20/s), hiding 600 ms takes 12 in flight.
    let s = standin(StandinConfig {
        quotes_per_day: 2_000,
        max_page: Some(100),
        delay: Duration::from_millis(600),
        ..StandinConfig::default()
    })
    .await;
    let w = Workdir::new();
    let started = std::time::Instant::now();
    let run = w
        .import(
            &s.url(),
            "AAPL",
            "2024-01-02",
            "2024-01-31",
            &["--rate-limit", "1200", "--batch-size", "1000"],
        )
        .await;
    let took = started.elapsed();
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stderr.contains("concurrency auto (from 4, up to 64)"),
        "{}",
        run.stderr
    );
    assert_eq!(
        w.rows("AAPL").await,
        expected_rows("AAPL", "2024-01-02", "2024-01-31", 2_000)
    );
    // The K of each batch line, with the line's time since the first.
    let mut seen: Vec<(f64, usize)> = Vec::new();
    let mut first: Option<chrono::DateTime<chrono::Utc>> = None;
    for line in w.log().lines().filter(|l| l.contains("[DB] Batch")) {
        let at: chrono::DateTime<chrono::Utc> = line[..27].parse().expect("a log time");
        let k: usize = line
            .rsplit(", concurrency ")
            .next()
            .and_then(|k| k.trim().parse().ok())
            .expect("the batch line ends with the concurrency");
        let t0 = *first.get_or_insert(at);
        seen.push(((at - t0).as_seconds_f64(), k));
    }
    let reached = seen.iter().find(|(_, k)| *k >= 12);
    assert!(
        reached.is_some_and(|(t, _)| *t < 60.0),
        "no K >= 12 within a minute: {seen:?}"
    );
    assert!(
        seen.iter().all(|(_, k)| *k <= 20),
        "beyond what 20 requests/s can use: {seen:?}"
    );
    assert!(
        took < Duration::from_secs(90),
        "{took:?}: latency not hidden (252 s one at a time)"
    );
}
