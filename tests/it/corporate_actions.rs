//! Corporate actions (`/v1/corporate-actions`): every group with every field, by process
//! date, through the same pipeline; the split-adjusted views checked against the API's own
//! `adjustment=split` bars; the Parquet store and back. (PostgreSQL:
//! `postgres::corporate_actions_go_into_postgres`.)

use crate::common::{assert_one_line_failure, small, standin, Workdir};
use data::standin::actions::ledger;
use std::collections::BTreeMap;

/// What the stand-in's ledger holds for `symbol` from `from` to `to`: id -> (group, record).
fn expected(symbol: &str, from: &str, to: &str) -> BTreeMap<String, (String, serde_json::Value)> {
    ledger(symbol, from.parse().unwrap(), to.parse().unwrap())
        .into_iter()
        .map(|(group, _, record)| {
            (
                record["id"].as_str().unwrap().to_string(),
                (group.to_string(), record),
            )
        })
        .collect()
}

async fn stored(w: &Workdir, symbol: &str) -> BTreeMap<String, (String, serde_json::Value)> {
    let rows: Vec<(String, String, String)> =
        sqlx::query_as("SELECT id, action, fields FROM corporate_actions_view WHERE symbol = ?")
            .bind(symbol)
            .fetch_all(&mut w.connect().await)
            .await
            .unwrap();
    rows.into_iter()
        .map(|(id, action, fields)| (id, (action, serde_json::from_str(&fields).unwrap())))
        .collect()
}

/// `data import-api KIND SYMBOLS START END --api-url URL` plus `extra`.
fn import<'a>(
    kind: &'a str,
    symbols: &'a str,
    (start, end): (&'a str, &'a str),
    url: &'a str,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec!["import-api", kind, symbols, start, end, "--api-url", url];
    args.extend_from_slice(extra);
    args
}

/// Raw bars through the split-adjusted view, and the API's own split-adjusted bars.
const ADJUSTED_VS_API: &str = "SELECT v.t_ns, v.open, v.high, v.low, v.close, v.volume, v.vwap, \
     b.open, b.high, b.low, b.close, b.volume, b.vwap FROM bars_split_adjusted_view v \
     JOIN symbols s ON s.symbol = v.symbol AND s.feed = v.feed \
     JOIN bars b ON b.symbol_id = s.id AND b.timeframe = v.timeframe AND b.t = v.t_ns \
     AND b.adjustment = 'split' WHERE v.symbol = 'AAPL' ORDER BY v.t_ns";

type Pair = (
    i64,
    f64,
    f64,
    f64,
    f64,
    f64,
    f64,
    f64,
    f64,
    f64,
    f64,
    i64,
    f64,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_group_lands_with_every_field_and_adjusts_bars_as_the_api_does() {
    let s = standin(small(2_000)).await;
    let url = s.url();
    let w = Workdir::new();
    let span = ("2020-01-01", "2022-12-31");
    let run = w
        .run(&import(
            "corporate-actions",
            "AAPL,META,MSFT",
            span,
            &url,
            &[],
        ))
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    for symbol in ["AAPL", "META", "MSFT"] {
        assert_eq!(
            stored(&w, symbol).await,
            expected(symbol, span.0, span.1),
            "{symbol}"
        );
    }
    // Splits, dividends and the rename are there, each in its own group with its fields.
    let groups: Vec<(String, i64)> = sqlx::query_as(
        "SELECT action, count(*) FROM corporate_actions GROUP BY action ORDER BY action",
    )
    .fetch_all(&mut w.connect().await)
    .await
    .unwrap();
    assert_eq!(
        groups,
        vec![
            ("cash_dividends".to_string(), 36),
            ("forward_splits".to_string(), 1),
            ("name_changes".to_string(), 1),
        ]
    );
    // No daily bars yet: the dividends cannot be priced, and the log says so.
    assert!(
        w.log().contains(
            "[ADJUST] adjustment factors rewritten for 3 symbols: 1 splits, 0 cash dividends; \
             36 dividends left out"
        ),
        "{}",
        w.log()
    );
    // status lists them, with no "missing" day: actions are events, not a daily series.
    let run = w.run(&["status", "--json"]).await;
    let status: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let aapl = status["holdings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["dataset"] == "corporate_actions" && h["symbol"] == "AAPL")
        .expect("AAPL's actions in status")
        .clone();
    assert_eq!(aapl["rows"], 13);
    assert_eq!(aapl["missing_trading_days"], serde_json::json!([]));

    // The split-adjusted view of raw daily bars equals Alpaca's adjustment=split bars, across
    // AAPL's 4:1 split of 2020-08-31.
    let week = ("2020-08-24", "2020-09-04");
    for adjustment in ["raw", "split"] {
        let run = w
            .run(&import(
                "bars",
                "AAPL",
                week,
                &url,
                &["--timeframe", "1Day", "--adjustment", adjustment],
            ))
            .await;
        assert_eq!(run.code, Some(0), "{}", run.stderr);
    }
    let pairs: Vec<Pair> = sqlx::query_as(ADJUSTED_VS_API)
        .fetch_all(&mut w.connect().await)
        .await
        .unwrap();
    assert_eq!(pairs.len(), 10, "two weeks of sessions");
    let split_at = data::time::new_york_time_nanos("2020-08-31".parse().unwrap(), 0, 0);
    for p in &pairs {
        assert_eq!(
            (p.1, p.2, p.3, p.4, p.5, p.6),
            (p.7, p.8, p.9, p.10, p.11 as f64, p.12),
            "bar at {}",
            p.0
        );
    }
    let raw_before: f64 = sqlx::query_scalar(
        "SELECT close FROM bars WHERE adjustment = 'raw' AND t = (SELECT min(t) FROM bars)",
    )
    .fetch_one(&mut w.connect().await)
    .await
    .unwrap();
    assert!(pairs[0].0 < split_at && pairs[0].4 == raw_before * 0.25);
    assert!(pairs[9].0 >= split_at && pairs[9].4 == pairs[9].10);

    // --types: only those groups, as a dataset of its own.
    let w2 = Workdir::new();
    let run = w2
        .run(&import(
            "corporate-actions",
            "AAPL,META",
            span,
            &url,
            &["--types", "name_change,forward_split"],
        ))
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(w2.scalar("SELECT count(*) FROM corporate_actions").await, 2);
    let key: String = sqlx::query_scalar("SELECT DISTINCT dataset FROM import_progress")
        .fetch_one(&mut w2.connect().await)
        .await
        .unwrap();
    assert_eq!(key, "corporate_actions/types=forward_split,name_change");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_and_dividend_adjusted_bars_equal_the_apis_adjustment_all() {
    let s = standin(small(300)).await;
    let url = s.url();
    let w = Workdir::new();
    // Every dividend from 2024 to today adjusts 2024's prices, so the ledger and the raw
    // daily closes before each ex-date run to today.
    let today = data::time::new_york_date(data::run::now_ns()).to_string();
    let to_today = ("2024-01-01", today.as_str());
    let runs: [Vec<&str>; 3] = [
        import("bars", "NVDA", to_today, &url, &["--timeframe", "1Day"]),
        import("corporate-actions", "NVDA", to_today, &url, &[]),
        import(
            "bars",
            "NVDA",
            ("2024-01-01", "2024-12-31"),
            &url,
            &["--timeframe", "1Day", "--adjustment", "all"],
        ),
    ];
    for args in &runs {
        let run = w.run(args).await;
        assert_eq!(run.code, Some(0), "{}", run.stderr);
    }
    let dividends = ledger(
        "NVDA",
        "2024-01-01".parse().unwrap(),
        today.parse().unwrap(),
    )
    .iter()
    .filter(|(g, _, _)| *g == "cash_dividends")
    .count();
    assert!(
        w.log().contains(&format!(
            "adjustment factors rewritten for 1 symbols: 1 splits, {dividends} cash dividends\n"
        )),
        "{}",
        w.log()
    );
    let rows: Vec<(i64, f64, f64, f64, f64)> = sqlx::query_as(
        "SELECT v.t_ns, v.close, b.close, v.volume, CAST(b.volume AS REAL) FROM bars_adjusted_view v \
         JOIN symbols s ON s.symbol = v.symbol AND s.feed = v.feed \
         JOIN bars b ON b.symbol_id = s.id AND b.timeframe = v.timeframe AND b.t = v.t_ns \
         AND b.adjustment = 'all' ORDER BY v.t_ns",
    )
    .fetch_all(&mut w.connect().await)
    .await
    .unwrap();
    assert_eq!(rows.len(), 252, "2024's sessions");
    for (t, ours, theirs, vol, their_vol) in &rows {
        assert!(
            ((ours - theirs) / theirs).abs() < 1e-12,
            "close at {t}: {ours} vs the API's {theirs}"
        );
        assert_eq!(vol, their_vol, "volume at {t}");
    }
    // Both adjustments are in it: before the 10:1 split, a tenth and a little less.
    let raw_first: f64 = w
        .scalar_f64("SELECT close FROM bars WHERE adjustment = 'raw' ORDER BY t LIMIT 1")
        .await;
    assert!(rows[0].1 < raw_first * 0.1 && rows[0].1 > raw_first * 0.09);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corporate_actions_round_trip_through_the_parquet_store() {
    let s = standin(small(100)).await;
    let url = s.url();
    let w = Workdir::new();
    let span = ("2024-01-01", "2024-12-31");
    let run = w
        .run(&import(
            "corporate-actions",
            "NVDA,MSFT",
            span,
            &url,
            &["--format", "parquet"],
        ))
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let file = w
        .path()
        .join("data/historical/corporate_actions/symbol=NVDA/month=2024-06/part-0.parquet");
    assert!(file.is_file(), "{}", file.display());
    let run = w
        .run(&[
            "load-historical",
            "corporate-actions",
            "NVDA,MSFT",
            span.0,
            span.1,
        ])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    for symbol in ["NVDA", "MSFT"] {
        assert_eq!(
            stored(&w, symbol).await,
            expected(symbol, span.0, span.1),
            "{symbol}"
        );
    }
    // Loading them rewrote NVDA's split factors: its 10:1 split of 2024-06-10.
    let factors: Vec<(i64, f64)> =
        sqlx::query_as("SELECT until_t, price_factor FROM split_factors WHERE symbol = 'NVDA'")
            .fetch_all(&mut w.connect().await)
            .await
            .unwrap();
    assert_eq!(
        factors,
        vec![(
            data::time::new_york_time_nanos("2024-06-10".parse().unwrap(), 0, 0),
            0.1
        )]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_corporate_action_requests_are_one_line_usage_errors() {
    let s = standin(small(100)).await;
    let url = s.url();
    let w = Workdir::new();
    let span = ("2024-01-01", "2024-12-31");
    for (args, needle) in [
        (
            import(
                "corporate-actions",
                "AAPL",
                span,
                &url,
                &["--types", "split"],
            ),
            "--types: unknown corporate action type \"split\"",
        ),
        (
            import("corporate-actions", "BTC/USD", span, &url, &[]),
            "corporate actions are of stocks",
        ),
        (
            import(
                "corporate-actions",
                "AAPL",
                span,
                &url,
                &["--timeframe", "1Day"],
            ),
            "--timeframe applies to bars only",
        ),
        (
            import("quotes", "AAPL", span, &url, &["--types", "cash_dividend"]),
            "--types applies to corporate-actions only",
        ),
    ] {
        assert_one_line_failure(&w.run(&args).await, 2, needle);
    }
    assert!(s.request_log().is_empty());
}
