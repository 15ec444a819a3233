//! `data sync`: every dataset the store holds brought up to now, exactly, through the
//! import's resume points; one line when there is nothing to do; one sync at a time.

use crate::common::{expected_rows, small, standin, Workdir};
use chrono::NaiveDate;
use data::run::now_ns;
use data::standin::StandinConfig;
use data::time::{new_york_date, new_york_time_nanos, NANOS_PER_SEC};
use std::time::Duration;

/// The NYSE trading day before `day`.
fn trading_day_before(day: NaiveDate) -> NaiveDate {
    let mut d = day.pred_opt().unwrap();
    while !data::nyse::is_trading_day(d) {
        d = d.pred_opt().unwrap();
    }
    d
}

/// `--sip-delay` minutes that put "data available until" at `t_ns` or just after it.
fn delay_to(t_ns: i64) -> String {
    ((now_ns() - t_ns) / (60 * NANOS_PER_SEC)).to_string()
}

/// The last three trading days before today (oldest first), and a `--sip-delay` that makes
/// the latest of them the last complete day (today's session not begun).
fn recent_days() -> ([NaiveDate; 3], String) {
    let p = trading_day_before(new_york_date(now_ns()));
    let d2 = trading_day_before(p);
    let d1 = trading_day_before(d2);
    let close = data::nyse::session(p).extended_close().unwrap();
    (
        [d1, d2, p],
        delay_to(new_york_time_nanos(p, close.0, close.1)),
    )
}

/// IEX quotes of `symbol` before `until_ns`.
async fn iex_rows(w: &Workdir, symbol: &str, until_ns: i64) -> i64 {
    let mut c = w.connect().await;
    sqlx::query_scalar(
        "SELECT count(*) FROM quotes q JOIN symbols s ON s.id = q.symbol_id \
         WHERE s.symbol = ? AND s.feed = 'iex' AND q.t < ?",
    )
    .bind(symbol)
    .bind(until_ns)
    .fetch_one(&mut c)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_after_a_partial_import_ends_exactly_and_then_has_nothing_to_do() {
    let s = standin(small(200)).await;
    let w = Workdir::new();
    let ([d1, d2, p], delay) = recent_days();
    let (d1s, d2s, ps) = (d1.to_string(), d2.to_string(), p.to_string());
    // AAPL sip: D1 whole, D2 cut at noon (as if imported then).
    let noon = delay_to(new_york_time_nanos(d2, 12, 0));
    let run = w
        .import(&s.url(), "AAPL", &d1s, &d2s, &["--sip-delay", &noon])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let partial = w.rows("AAPL").await.len();
    assert!(partial < expected_rows("AAPL", &d1s, &d2s, 200).len());
    // MSFT iex: D1 only.
    let run = w
        .import(&s.url(), "MSFT", &d1s, &d1s, &["--feed", "iex"])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);

    // Narrowed to MSFT: AAPL is left as it was.
    let url = s.url();
    let base = [
        "sync",
        "--api-url",
        url.as_str(),
        "--sip-delay",
        delay.as_str(),
    ];
    let with = |extra: &[&'static str]| -> Vec<String> {
        base.iter().chain(extra).map(|a| a.to_string()).collect()
    };
    let w = &w;
    let sync = |args: Vec<String>| async move {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        w.run(&a).await
    };
    let run = sync(with(&["--symbols", "MSFT"])).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    // IEX has no delay: today's session so far comes too, if it has begun.
    let today = new_york_time_nanos(new_york_date(now_ns()), 0, 0);
    assert_eq!(
        iex_rows(w, "MSFT", today).await,
        3 * 20,
        "D1, D2 and P, 20 IEX quotes each"
    );
    assert_eq!(w.rows("AAPL").await.len(), partial);

    let run = sync(with(&[])).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stderr
            .contains(&format!("[SYNC] quotes AAPL (feed sip): from {d2s}")),
        "{}",
        run.stderr
    );
    assert_eq!(
        w.rows("AAPL").await,
        expected_rows("AAPL", &d1s, &ps, 200),
        "D2 completed and P fetched, exactly"
    );

    // Narrowed to what is complete (MSFT's IEX has today's session to come, if it began).
    let before = s.request_log().len();
    let run = sync(with(&["quotes", "--symbols", "AAPL"])).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(lines.len(), 1, "one line: {}", run.stderr);
    assert!(
        lines[0].contains("[SYNC] 1 dataset of the database up to date; nothing to fetch"),
        "{}",
        lines[0]
    );
    assert_eq!(s.request_log().len(), before, "no request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sync_while_one_runs_does_nothing_and_the_first_ends_exactly() {
    let s = standin(StandinConfig {
        delay: Duration::from_millis(400),
        max_page: Some(50),
        ..small(200)
    })
    .await;
    let w = Workdir::new();
    let ([d1, _, p], delay) = recent_days();
    let d1s = d1.to_string();
    let run = w.import(&s.url(), "AAPL", &d1s, &d1s, &[]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let url = s.url();
    let args = ["sync", "--api-url", &url, "--sip-delay", &delay];
    let first = w.command(&args).output();
    let first = tokio::spawn(first);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !w.log().contains("to fetch") {
        assert!(std::time::Instant::now() < deadline, "{}", w.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let second = w.run(&args).await;
    assert_eq!(second.code, Some(0), "{}", second.stderr);
    assert!(
        second
            .stderr
            .contains("another data sync is running on this store"),
        "{}",
        second.stderr
    );
    let first = first.await.unwrap().unwrap();
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert_eq!(
        w.rows("AAPL").await,
        expected_rows("AAPL", &d1s, &p.to_string(), 200)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_of_an_empty_store_says_so_in_one_line() {
    let w = Workdir::new();
    let run = w.run(&["sync"]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("[SYNC] nothing to sync: the database holds no data yet"),
        "{}",
        run.stderr
    );
    assert!(!w.db_path().exists(), "sync creates no database");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_extends_the_parquet_store_by_whole_days() {
    let s = standin(small(200)).await;
    let w = Workdir::new();
    let ([d1, d2, p], delay) = recent_days();
    let d1s = d1.to_string();
    let run = w
        .import(&s.url(), "AAPL", &d1s, &d1s, &["--format", "parquet"])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let url = s.url();
    let run = w
        .run(&[
            "sync",
            "--format",
            "parquet",
            "--api-url",
            &url,
            "--sip-delay",
            &delay,
        ])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    for day in [d1, d2, p] {
        let file = w.path().join(format!(
            "data/historical/quotes/symbol=AAPL/date={day}/part-0.parquet"
        ));
        assert!(file.is_file(), "{}: {}", file.display(), run.stderr);
    }
    let run = w
        .run(&[
            "sync",
            "--format",
            "parquet",
            "--api-url",
            &url,
            "--sip-delay",
            &delay,
        ])
        .await;
    assert!(
        run.stderr
            .contains("[SYNC] 1 dataset of the Parquet store data/historical up to date"),
        "{}",
        run.stderr
    );
}

/// `--dry-run` says what would be fetched, with no request and no write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_runs_fetch_nothing_and_write_nothing() {
    let s = standin(small(200)).await;
    let url = s.url();
    let w = Workdir::new();
    let args = [
        "import-api",
        "quotes",
        "AAPL,MSFT",
        "2024-01-02",
        "2024-01-04",
        "--api-url",
        &url,
        "--rate-limit",
        "200",
        "--dry-run",
    ];
    let run = w.run(&args).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let out = &run.stdout;
    assert!(
        out.contains("dry run: quotes AAPL,MSFT (feed sip)"),
        "{out}"
    );
    assert!(
        out.contains("6 days to fetch of 6 (0 done by earlier runs, 0 to resume)"),
        "{out}"
    );
    assert!(
        out.contains("AAPL: 3 days, 2024-01-02 to 2024-01-04"),
        "{out}"
    );
    // No rows held to go by: a liquid symbol's 37,000 quotes a day, 4 pages a day.
    assert!(
        out.contains(
            "about 24 requests: 6 request groups, 37,000 rows a day per symbol (none held"
        ),
        "{out}"
    );
    assert!(out.contains("about 7.2 s at --rate-limit 200/min"), "{out}");
    assert!(out.contains("nothing was fetched or written"), "{out}");
    assert!(s.request_log().is_empty(), "no request");
    assert!(
        !w.path().join("data").exists(),
        "nothing written, not even a log"
    );

    // After a real import of AAPL's first day, the plan knows it.
    let run = w
        .import(&url, "AAPL", "2024-01-02", "2024-01-02", &[])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let requests = s.request_log().len();
    let log = w.log();
    let run = w.run(&args).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stdout
            .contains("5 days to fetch of 6 (1 done by earlier runs, 0 to resume)"),
        "{}",
        run.stdout
    );
    // The holiday costs nothing.
    let holiday = w
        .run(&[
            "import-api",
            "quotes",
            "AAPL",
            "2024-07-03",
            "2024-07-05",
            "--dry-run",
        ])
        .await;
    assert!(
        holiday.stdout.contains("2 days to fetch of 2"),
        "{}",
        holiday.stdout
    );

    let sync = w.run(&["sync", "--dry-run", "--api-url", &url]).await;
    assert_eq!(sync.code, Some(0), "{}", sync.stderr);
    assert!(
        sync.stdout
            .contains("dry run, from 2024-01-02: quotes AAPL (feed sip)"),
        "{}",
        sync.stdout
    );
    assert!(
        sync.stdout.contains("nothing was fetched or written"),
        "{}",
        sync.stdout
    );
    assert_eq!(s.request_log().len(), requests, "no request");
    assert_eq!(w.log(), log, "no log line");
    assert!(
        !w.path().join("data/market.db.sync.lock").exists(),
        "no lock file"
    );
}

/// `status` draws each dataset's trading days (full, partial, missing), and `--json` gives
/// the same for scripts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_draws_full_partial_and_missing_days() {
    let s = standin(small(200)).await;
    let w = Workdir::new();
    let ([d1, _, p], _) = recent_days();
    let (d1s, ps) = (d1.to_string(), p.to_string());
    let run = w.import(&s.url(), "AAPL", &d1s, &d1s, &[]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let noon = delay_to(new_york_time_nanos(p, 12, 0));
    let run = w
        .import(&s.url(), "AAPL", &ps, &ps, &["--sip-delay", &noon])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let status = w.run(&["status"]).await;
    assert_eq!(status.code, Some(0), "{}", status.stderr);
    let strip = status
        .stdout
        .lines()
        .find(|l| l.starts_with("AAPL quotes sip database"))
        .unwrap_or_default()
        .to_string();
    assert!(strip.ends_with("  #.+"), "{strip:?}\n{}", status.stdout);
    assert!(
        status.stdout.contains("# full, + partial"),
        "{}",
        status.stdout
    );

    let json = w.run(&["status", "--json"]).await;
    assert_eq!(json.code, Some(0), "{}", json.stderr);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    let h = &v["holdings"][0];
    assert_eq!(
        (h["dataset"].as_str(), h["feed"].as_str()),
        (Some("quotes"), Some("sip"))
    );
    let states: Vec<&str> = h["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, vec!["full", "missing", "partial"]);
    assert_eq!(h["days"][0]["rows"], 200);
    assert_eq!(h["missing_trading_days"].as_array().unwrap().len(), 1);
}

/// The browser to render `status --html` with: `DATA_TEST_CHROMIUM`, else Debian's chromium.
fn chromium() -> Option<String> {
    std::env::var("DATA_TEST_CHROMIUM")
        .ok()
        .or_else(|| Some("/usr/bin/chromium".to_string()))
        .filter(|p| std::path::Path::new(p).exists())
}

/// `status --html` is a page a real browser draws: headless Chromium's screenshot has a
/// green, a red and an orange cell where the full, missing and partial days are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_draws_each_trading_day_in_a_real_browser() {
    let Some(browser) = chromium() else {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "chromium test NOT RUN: no /usr/bin/chromium (apt-get install chromium) and DATA_TEST_CHROMIUM is not set"
        );
        return;
    };
    let s = standin(small(200)).await;
    let w = Workdir::new();
    let ([d1, _, p], _) = recent_days();
    let (d1s, ps) = (d1.to_string(), p.to_string());
    let run = w.import(&s.url(), "AAPL", &d1s, &d1s, &[]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let noon = delay_to(new_york_time_nanos(p, 12, 0));
    let run = w
        .import(&s.url(), "AAPL", &ps, &ps, &["--sip-delay", &noon])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let run = w.run(&["status", "--html", "status.html"]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let page = w.path().join("status.html");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        html.contains(&format!("title=\"{d1s}: 200 rows, full\"")),
        "{html}"
    );

    let shot = w.path().join("status.png");
    let profile = w.path().join("chromium-profile");
    let out = std::process::Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            "--window-size=800,200",
            &format!("--user-data-dir={}", profile.display()),
            &format!("--screenshot={}", shot.display()),
            &format!("file://{}", page.display()),
        ])
        .output()
        .expect("run chromium");
    assert!(
        shot.exists(),
        "no screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let decoder = png::Decoder::new(std::fs::File::open(&shot).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let pixel = |x: u32, y: u32| {
        let at = (y as usize * info.width as usize + x as usize) * channels;
        (buf[at], buf[at + 1], buf[at + 2])
    };
    use data::coverage::page::*;
    let y = MARGIN + HEAD + 1 + CELL / 2;
    let cell = |j: u32| pixel(MARGIN + LABEL + j * STEP + CELL / 2, y);
    let (full, missing, partial) = (cell(0), cell(1), cell(2));
    assert!(
        full.1 > full.0 + 40 && full.1 > full.2 + 40,
        "day 1 green: {full:?}"
    );
    assert!(missing.0 > 180 && missing.1 < 90, "day 2 red: {missing:?}");
    assert!(
        partial.0 > 200 && partial.1 > 120 && partial.2 < 140,
        "day 3 orange: {partial:?}"
    );
    let after = cell(3);
    assert!(
        after.0 > 240 && after.1 > 240 && after.2 > 240,
        "nothing after day 3: {after:?}"
    );
}

/// Holes inside a dataset's span stay holes for `sync` (listed by `status`) until
/// `--fill-gaps` asks for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_fills_holes_only_when_asked() {
    let s = standin(small(200)).await;
    let w = Workdir::new();
    let ([d1, d2, p], delay) = recent_days();
    for day in [d1, p] {
        let day = day.to_string();
        let run = w.import(&s.url(), "AAPL", &day, &day, &[]).await;
        assert_eq!(run.code, Some(0), "{}", run.stderr);
    }
    let url = s.url();
    let sync = [
        "sync",
        "--api-url",
        url.as_str(),
        "--sip-delay",
        delay.as_str(),
    ];
    let run = w.run(&sync).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stderr.contains("nothing to fetch"), "{}", run.stderr);
    let status = w.run(&["status"]).await;
    assert!(
        status.stdout.contains(&format!("1: {d2}")),
        "the hole is listed: {}",
        status.stdout
    );
    let mut fill = sync.to_vec();
    fill.push("--fill-gaps");
    let run = w.run(&fill).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(
        w.rows("AAPL").await,
        expected_rows("AAPL", &d1.to_string(), &p.to_string(), 200),
        "the hole filled, nothing else fetched twice"
    );
}
