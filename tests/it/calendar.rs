//! The NYSE calendar: checked against exchange_calendars' XNYS, and what it changes for an
//! import (holidays cost no request, early closes are asked for to 17:00) and for `status`.

use chrono::{Datelike, NaiveDate};
use data::nyse::{session, Session};

/// Every weekday of 2000–2030 has the session exchange_calendars' XNYS gives it
/// (tests/data/xnys_2000_2030.tsv lists its closed and early-closing weekdays).
#[test]
fn nyse_calendar_matches_exchange_calendars_xnys() {
    let table = include_str!("../data/xnys_2000_2030.tsv");
    let mut listed = std::collections::HashMap::new();
    for line in table.lines() {
        let (day, what) = line.split_once('\t').expect("DATE<TAB>WHAT");
        let day: NaiveDate = day.parse().expect("a date");
        let expected = match what {
            "closed" => Session::Closed,
            "early 13:00" => Session::EarlyClose,
            other => panic!("unexpected entry {other:?} for {day}"),
        };
        listed.insert(day, expected);
    }
    assert_eq!(listed.len(), 362, "the table's size");
    let mut wrong = Vec::new();
    let mut day = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap();
    while day.year() <= 2030 {
        if day.weekday().num_days_from_monday() < 5 {
            let expected = listed.get(&day).copied().unwrap_or(Session::Full);
            if session(day) != expected {
                wrong.push(format!("{day}: {:?}, XNYS {expected:?}", session(day)));
            }
        }
        day = day.succ_opt().unwrap();
    }
    assert!(wrong.is_empty(), "{} days differ: {wrong:#?}", wrong.len());
}

use crate::common::{expected_rows, small, standin, Workdir};
use data::run::now_ns;
use data::standin::StandinConfig;
use data::time::{new_york_date, new_york_time_nanos, NANOS_PER_SEC};
use std::time::Duration;

/// 2024-07-04 (a holiday) costs no request and is no gap; 2024-07-03, an early close, is
/// asked for only up to 17:00 New York (21:00 UTC in summer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holiday_costs_no_request_and_an_early_close_is_asked_to_17() {
    let s = standin(small(500)).await;
    let w = Workdir::new();
    let run = w
        .import(&s.url(), "AAPL", "2024-07-03", "2024-07-05", &[])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let log = s.request_log();
    // Fetched concurrently: in any order.
    let mut asked: Vec<(String, String)> = log
        .iter()
        .map(|r| (r.start.clone().unwrap(), r.end.clone().unwrap()))
        .collect();
    asked.sort();
    assert_eq!(
        asked,
        vec![
            ("2024-07-03T08:00:00Z".into(), "2024-07-03T21:00:00Z".into()),
            ("2024-07-05T08:00:00Z".into(), "2024-07-06T00:00:00Z".into()),
        ],
        "one request per trading day, none for the 4th"
    );
    assert_eq!(
        w.rows("AAPL").await,
        expected_rows("AAPL", "2024-07-03", "2024-07-05", 500)
    );
    let status = w.run(&["status"]).await;
    assert_eq!(status.code, Some(0), "{}", status.stderr);
    let line = status
        .stdout
        .lines()
        .find(|l| l.starts_with("quotes "))
        .unwrap_or_default()
        .to_string();
    assert!(line.ends_with("none"), "no missing trading day: {line:?}");
    assert!(
        status.stdout.contains("MISSING TRADING DAYS"),
        "{}",
        status.stdout
    );

    // The day after Thanksgiving: 17:00 New York is 22:00 UTC in winter.
    let run = w
        .import(&s.url(), "AAPL", "2024-11-29", "2024-11-29", &[])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let last = s.request_log().last().cloned().unwrap();
    assert_eq!(last.end.as_deref(), Some("2024-11-29T22:00:00Z"));
    assert_eq!(
        w.rows("AAPL").await.len(),
        expected_rows("AAPL", "2024-07-03", "2024-07-05", 500).len()
            + expected_rows("AAPL", "2024-11-29", "2024-11-29", 500).len()
    );
}

/// The trading API's calendar, as the stand-in serves it, agrees with the embedded one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standin_serves_v2_calendar() {
    let s = standin(small(10)).await;
    let http = reqwest::Client::new();
    let get = |q: &str| {
        http.get(format!("{}/v2/calendar?{q}", s.url()))
            .header("APCA-API-KEY-ID", "k")
            .header("APCA-API-SECRET-KEY", "s")
            .send()
    };
    let body = get("start=2024-11-27&end=2024-12-02")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let days: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        days,
        serde_json::json!([
            {"date":"2024-11-27","open":"09:30","close":"16:00","session_open":"0400","session_close":"2000","settlement_date":"2024-11-29"},
            {"date":"2024-11-29","open":"09:30","close":"13:00","session_open":"0400","session_close":"1700","settlement_date":"2024-12-02"},
            {"date":"2024-12-02","open":"09:30","close":"16:00","session_open":"0400","session_close":"2000","settlement_date":"2024-12-03"}
        ])
    );
    let bad = get("start=soon").await.unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    let anonymous = http
        .get(format!("{}/v2/calendar", s.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
}

/// The most recent NYSE trading day before today (New York).
fn previous_trading_day() -> chrono::NaiveDate {
    let mut day = new_york_date(now_ns()).pred_opt().unwrap();
    while !data::nyse::is_trading_day(day) {
        day = day.pred_opt().unwrap();
    }
    day
}

/// An import up to today against a free plan's stand-in exits 0 without a refusal (END is
/// clamped to 15 minutes ago); a day the clamp cuts short is not done, and a later run
/// completes it exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sip_delay_clamps_end_and_a_later_run_completes_the_day() {
    let s = standin(StandinConfig {
        sip_delay: Some(Duration::from_secs(15 * 60)),
        ..small(500)
    })
    .await;
    let w = Workdir::new();
    let day = previous_trading_day();
    let d = day.to_string();
    // Tomorrow's END (20:00 New York) is always later than 15 minutes ago.
    let tomorrow = new_york_date(now_ns()).succ_opt().unwrap().to_string();
    let run = w.import(&s.url(), "AAPL", &d, &tomorrow, &[]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        s.request_log().iter().all(|r| r.status == 200),
        "nothing refused: {:?}",
        s.request_log()
    );
    assert!(
        w.log().contains("[API] feed sip: importing up to"),
        "{}",
        w.log()
    );

    // A clamp at noon of that day (a --sip-delay reaching back to it), as if the run had
    // been made then: the morning is imported, the day stays open.
    let w = Workdir::new();
    let noon = new_york_time_nanos(day, 12, 0);
    let now = now_ns();
    let minutes = ((now - noon) / (60 * NANOS_PER_SEC) + 1).to_string();
    let run = w
        .import(&s.url(), "AAPL", &d, &d, &["--sip-delay", &minutes])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let morning = w.rows("AAPL").await;
    let whole = expected_rows("AAPL", &d, &d, 500);
    assert!(
        !morning.is_empty() && morning.len() < whole.len(),
        "{} of {}",
        morning.len(),
        whole.len()
    );
    assert_eq!(morning[..], whole[..morning.len()]);
    let mut c = w.connect().await;
    let done: i64 = sqlx::query_scalar("SELECT done FROM import_progress WHERE day = ?")
        .bind(&d)
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(done, 0, "a day cut short is not done");
    let run = w.import(&s.url(), "AAPL", &d, &d, &[]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        w.log()
            .contains("0 of 1 days already imported (skipped); 1 resumed"),
        "{}",
        w.log()
    );
    assert_eq!(w.rows("AAPL").await, whole, "completed exactly");
}

/// With no delay asked for (`--sip-delay 0`), the free plan's 403 for recent SIP data is
/// answered by asking for less, never by failing: bars of this month reach up to now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recent_sip_refusal_is_answered_by_asking_for_less() {
    let s = standin(StandinConfig {
        sip_delay: Some(Duration::from_secs(15 * 60)),
        ..small(500)
    })
    .await;
    let w = Workdir::new();
    let today = new_york_date(now_ns());
    let first = today.with_day0(0).unwrap().to_string();
    let run = w
        .run(&[
            "import-api",
            "bars",
            "AAPL",
            &first,
            &today.to_string(),
            "--timeframe",
            "1Hour",
            "--sip-delay",
            "0",
            "--api-url",
            &s.url(),
        ])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let log = s.request_log();
    assert_eq!(log.first().map(|r| r.status), Some(403), "{log:?}");
    assert!(log[1..].iter().all(|r| r.status == 200), "{log:?}");
    assert!(
        run.stderr
            .contains("Alpaca refused SIP data of the last 15 minutes (the free plan's rule)"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("error"), "{}", run.stderr);
}
