//! Regression tests of issue 30's adversarial findings against the API: servers that page
//! for ever, rate-limit with a reset in the past, send rows outside the range, echo the
//! request's keys in an error, or redirect elsewhere; dates the nanoseconds cannot hold.
//! Each runs the real binary against a small hostile server of its own (axum, in process).

use crate::common::{assert_one_line_failure, small, standin, Workdir, KEY, SECRET};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// What a hostile server saw: requests counted, and the headers of each.
#[derive(Default)]
struct Seen {
    requests: AtomicU64,
    headers: Mutex<Vec<HeaderMap>>,
}

/// Serves `app` on a free port of 127.0.0.1; the server stops with the test's runtime.
async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    url
}

/// `w.import(...)` that must end within a minute: an import paging for ever fails the test
/// instead of hanging it (the binary is killed when the wait is given up).
async fn import_within_a_minute(w: &Workdir, url: &str) -> crate::common::Run {
    let run = w.import(
        url,
        "AAPL",
        "2024-01-03",
        "2024-01-03",
        &["--concurrency", "1"],
    );
    tokio::time::timeout(std::time::Duration::from_secs(60), run)
        .await
        .expect("the import was still running after a minute")
}

/// A quotes page of AAPL with one quote at `t`, and `token` as its next page token.
fn page(t: &str, token: Option<&str>) -> String {
    let token = token.map_or("null".to_string(), |t| format!("\"{t}\""));
    format!(
        r#"{{"quotes":{{"AAPL":[{{"t":"{t}","bx":"Q","bp":185.1,"bs":2,"ax":"P","ap":185.2,"as":3,"c":["R"],"z":"C"}}]}},"next_page_token":{token}}}"#
    )
}

fn json(body: String) -> Response {
    ([("content-type", "application/json")], body).into_response()
}

/// A server whose every page hands out the same next page token.
async fn same_token_server(seen: Arc<Seen>) -> String {
    async fn h(State(seen): State<Arc<Seen>>) -> Response {
        let n = seen.requests.fetch_add(1, Ordering::SeqCst);
        // A different quote each time, so only the token repeats.
        let t = format!("2024-01-03T15:00:{:02}Z", n % 60);
        json(page(&t, Some("SAME")))
    }
    serve(
        Router::new()
            .route("/v2/stocks/quotes", axum::routing::get(h))
            .with_state(seen),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_token_handed_out_again_ends_the_import_instead_of_paging_for_ever() {
    let seen = Arc::new(Seen::default());
    let url = same_token_server(seen.clone()).await;
    let w = Workdir::new();
    let run = import_within_a_minute(&w, &url).await;
    assert_one_line_failure(&run, 1, "the same next_page_token again");
    // The first page, its repeat token answered by asking once more, then the end.
    let n = seen.requests.load(Ordering::SeqCst);
    assert!(n <= 3, "{n} requests: {}", run.stderr);
    // Nothing of the unfinished day is marked done: a rerun fetches it again.
    let done: i64 = w
        .scalar("SELECT count(*) FROM import_progress WHERE done <> 0")
        .await;
    assert_eq!(done, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_pages_with_new_tokens_end_the_import_after_a_bound() {
    async fn h(State(seen): State<Arc<Seen>>) -> Response {
        let n = seen.requests.fetch_add(1, Ordering::SeqCst);
        json(format!(r#"{{"quotes":{{}},"next_page_token":"T{n}"}}"#))
    }
    let seen = Arc::new(Seen::default());
    let url = serve(
        Router::new()
            .route("/v2/stocks/quotes", axum::routing::get(h))
            .with_state(seen.clone()),
    )
    .await;
    let w = Workdir::new();
    let run = import_within_a_minute(&w, &url).await;
    assert_one_line_failure(&run, 1, "pages in a row with no rows and a next page token");
    let n = seen.requests.load(Ordering::SeqCst);
    assert_eq!(
        n,
        data::source::fetch::MAX_EMPTY_PAGES as u64,
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_whose_reset_is_already_past_still_waits_before_asking_again() {
    // 429 for ever, its reset a minute in the past (a client clock ahead of the server's).
    async fn h(State(seen): State<Arc<Seen>>) -> Response {
        seen.requests.fetch_add(1, Ordering::SeqCst);
        let past = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() - 60)
            .unwrap_or(0);
        (
            StatusCode::TOO_MANY_REQUESTS,
            [
                ("X-RateLimit-Limit", "200".to_string()),
                ("X-RateLimit-Remaining", "0".to_string()),
                ("X-RateLimit-Reset", past.to_string()),
            ],
            r#"{"message":"too many requests"}"#,
        )
            .into_response()
    }
    let seen = Arc::new(Seen::default());
    let url = serve(
        Router::new()
            .route("/v2/stocks/quotes", axum::routing::get(h))
            .with_state(seen.clone()),
    )
    .await;
    let w = Workdir::new();
    let mut child = w
        .command(&[
            "import-api",
            "quotes",
            "AAPL",
            "2024-01-03",
            "2024-01-03",
            "--api-url",
            &url,
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    // The floor is 1 s, doubling while the 429s repeat: at most 1 + 2 attempts in 2.5 s
    // (the old client asked again at once: thousands).
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let _ = child.kill().await;
    let n = seen.requests.load(Ordering::SeqCst);
    assert!((1..=3).contains(&n), "{n} requests in 2.5 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_outside_the_asked_range_are_dropped_and_counted_not_stored() {
    // A day's page holding one quote of that day and two of other days.
    async fn h() -> Response {
        json(
            r#"{"quotes":{"AAPL":[
                {"t":"2024-01-02T15:00:00Z","bx":"Q","bp":1.0,"bs":1,"ax":"Q","ap":1.1,"as":1,"c":["R"],"z":"C"},
                {"t":"2024-01-03T15:00:00Z","bx":"Q","bp":2.0,"bs":1,"ax":"Q","ap":2.1,"as":1,"c":["R"],"z":"C"},
                {"t":"2031-05-05T15:00:00Z","bx":"Q","bp":3.0,"bs":1,"ax":"Q","ap":3.1,"as":1,"c":["R"],"z":"C"}]},
                "next_page_token":null}"#
                .to_string(),
        )
    }
    let url = serve(Router::new().route("/v2/stocks/quotes", axum::routing::get(h))).await;
    let w = Workdir::new();
    let run = w
        .import(&url, "AAPL", "2024-01-03", "2024-01-03", &[])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(w.count().await, 1);
    assert_eq!(
        w.scalar_f64("SELECT bid_price FROM quotes").await,
        2.0,
        "the in-range quote is the one kept"
    );
    assert!(
        run.stderr
            .contains("the server sent 2 quotes outside the range asked for; they were dropped"),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_body_echoing_the_request_headers_never_shows_the_keys() {
    // A proxy's 403 page that lists the request's headers, keys included.
    async fn h(headers: HeaderMap) -> Response {
        let echoed: Vec<String> = headers
            .iter()
            .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap_or("")))
            .collect();
        (
            StatusCode::FORBIDDEN,
            [("content-type", "application/json")],
            serde_json::json!({ "message": format!("blocked request: {}", echoed.join("; ")) })
                .to_string(),
        )
            .into_response()
    }
    let url = serve(Router::new().route("/v2/stocks/quotes", axum::routing::get(h))).await;
    let w = Workdir::new();
    let run = w
        .import(&url, "AAPL", "2024-01-03", "2024-01-03", &[])
        .await;
    assert_one_line_failure(&run, 1, "blocked request");
    for text in [&run.stderr, &run.stdout, &w.log()] {
        assert!(!text.contains(KEY) && !text.contains(SECRET), "{text}");
        assert!(text.is_empty() || !text.contains("test-secret"), "{text}");
    }
    assert!(run.stderr.contains("<redacted>"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_to_another_origin_is_not_followed_and_gets_no_keys() {
    // Where the redirect points: records the headers of anything that arrives.
    async fn catch(State(seen): State<Arc<Seen>>, headers: HeaderMap) -> Response {
        seen.requests.fetch_add(1, Ordering::SeqCst);
        seen.headers.lock().unwrap().push(headers);
        json(page("2024-01-03T15:00:00Z", None))
    }
    let seen = Arc::new(Seen::default());
    let elsewhere = serve(Router::new().fallback(catch).with_state(seen.clone())).await;
    let target = format!("{elsewhere}/v2/stocks/quotes");
    let redirect = move || {
        let target = target.clone();
        async move { (StatusCode::FOUND, [("location", target)]).into_response() }
    };
    let url = serve(Router::new().route("/v2/stocks/quotes", axum::routing::get(redirect))).await;
    let w = Workdir::new();
    let run = w
        .import(&url, "AAPL", "2024-01-03", "2024-01-03", &[])
        .await;
    assert_one_line_failure(&run, 1, "redirected to another origin");
    assert_eq!(
        seen.requests.load(Ordering::SeqCst),
        0,
        "the other origin was asked"
    );
    assert!(!run.stderr.contains(SECRET), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dates_the_nanoseconds_cannot_hold_are_a_usage_error_not_wrapped_data() {
    let s = standin(small(50)).await;
    let w = Workdir::new();
    for (start, end, which) in [
        ("9999-12-31", "9999-12-31", "START 9999-12-31"),
        ("0000-01-01", "2024-01-02", "START 0000-01-01"),
        ("1677-09-20", "1677-09-22", "START 1677-09-20"),
        ("2024-01-02", "2262-04-11", "END 2262-04-11"),
    ] {
        let run = w.import(&s.url(), "AAPL", start, end, &[]).await;
        assert_one_line_failure(
            &run,
            2,
            &format!("{which} is outside the dates the stores can hold (1677-09-22 to 2262-04-10"),
        );
    }
    assert!(s.request_log().is_empty(), "nothing is fetched");
    assert!(!w.db_path().exists(), "nothing is written");
}
