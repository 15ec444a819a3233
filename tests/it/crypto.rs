//! Crypto (`/v1beta3/crypto/{loc}/...`): pairs such as BTC/USD, UTC days around the clock
//! (weekends included), fractional sizes kept exactly, the trades' taker side, without
//! credentials if need be; into SQLite and the Parquet store and back. (PostgreSQL:
//! `postgres::crypto_goes_into_postgres`.)

use crate::common::{assert_one_line_failure, small, standin, Workdir, KEY, SECRET};
use data::standin::crypto::CryptoDay;
use data::standin::StandinConfig;
use sqlx::Row;

/// Friday 2024-01-05 to Monday 2024-01-08: a weekend in the middle.
const START: &str = "2024-01-05";
const END: &str = "2024-01-08";

fn days() -> Vec<chrono::NaiveDate> {
    let first: chrono::NaiveDate = START.parse().unwrap();
    first.iter_days().take(4).collect()
}

/// What the stand-in serves for `symbol`'s quotes from START to END at location `loc`, as
/// `t|seq|bp|bs|ap|as`.
fn expected_quotes(loc: &str, symbol: &str, per_day: u32) -> Vec<String> {
    let mut out = Vec::new();
    let (mut last_t, mut seq) = (i64::MIN, 0);
    for d in days() {
        let day = CryptoDay::new(loc, symbol, d, per_day);
        for i in 0..day.quote_count() {
            let q = day.quote(i);
            seq = if q.t == last_t { seq + 1 } else { 0 };
            last_t = q.t;
            out.push(format!(
                "{}|{seq}|{:?}|{:?}|{:?}|{:?}",
                q.t, q.bid_price, q.bid_size, q.ask_price, q.ask_size
            ));
        }
    }
    out
}

async fn stored_quotes(w: &Workdir, symbol: &str) -> Vec<String> {
    let rows = sqlx::query(
        "SELECT q.t, q.seq, q.bid_price, q.bid_size, q.ask_price, q.ask_size FROM crypto_quotes q \
         JOIN symbols s ON s.id = q.symbol_id WHERE s.symbol = ? ORDER BY q.t, q.seq",
    )
    .bind(symbol)
    .fetch_all(&mut w.connect().await)
    .await
    .unwrap();
    rows.iter()
        .map(|r| {
            format!(
                "{}|{}|{:?}|{:?}|{:?}|{:?}",
                r.get::<i64, _>(0),
                r.get::<i64, _>(1),
                r.get::<f64, _>(2),
                r.get::<f64, _>(3),
                r.get::<f64, _>(4),
                r.get::<f64, _>(5)
            )
        })
        .collect()
}

fn import<'a>(kind: &'a str, symbols: &'a str, url: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["import-api", kind, symbols, START, END, "--api-url", url];
    args.extend_from_slice(extra);
    args
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crypto_across_a_weekend_lands_exactly_without_credentials() {
    let s = standin(StandinConfig {
        credentials: Some((KEY.into(), SECRET.into())),
        max_page: Some(700),
        ..small(1_000)
    })
    .await;
    let w = Workdir::new();
    let url = s.url();
    let anonymous = |args: &[&str]| {
        let mut cmd = w.command(args);
        cmd.env_remove("APCA_API_KEY_ID")
            .env_remove("APCA_API_SECRET_KEY");
        cmd
    };
    let run = w
        .run_cmd(anonymous(&import("quotes", "BTC/USD,eth/usd", &url, &[])))
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        w.log().contains(
            "no Alpaca credentials (APCA_API_KEY_ID, APCA_API_SECRET_KEY): crypto data is public"
        ),
        "{}",
        w.log()
    );
    for symbol in ["BTC/USD", "ETH/USD"] {
        assert_eq!(
            stored_quotes(&w, symbol).await,
            expected_quotes("us", symbol, 1_000)
        );
    }
    // Every UTC day holds its 1,000 quotes per pair, Saturday and Sunday included.
    let per_day: Vec<(String, i64)> = sqlx::query_as(
        "SELECT date(t / 1000000000, 'unixepoch') AS d, count(*) FROM crypto_quotes GROUP BY d ORDER BY d",
    )
    .fetch_all(&mut w.connect().await)
    .await
    .unwrap();
    let want: Vec<(String, i64)> = days().iter().map(|d| (d.to_string(), 2_000)).collect();
    assert_eq!(per_day, want);
    // The view's utc_date says the same (crypto's days are UTC days).
    let by_view: Vec<(String, i64)> = sqlx::query_as(
        "SELECT utc_date, count(*) FROM crypto_quotes_view GROUP BY utc_date ORDER BY utc_date",
    )
    .fetch_all(&mut w.connect().await)
    .await
    .unwrap();
    assert_eq!(by_view, want);
    // One request per UTC day and pair, paged, each naming the pair with its slash.
    let log = s.request_log();
    assert!(log.iter().all(|r| r.status == 200), "{log:?}");
    assert!(log
        .iter()
        .any(|r| r.symbols == "BTC/USD" && r.start.as_deref() == Some("2024-01-06T00:00:00Z")));
    // A rerun finds every day done and asks nothing.
    let before = log.len();
    let run = w
        .run_cmd(anonymous(&import("quotes", "BTC/USD,ETH/USD", &url, &[])))
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(s.request_log().len(), before);

    // Trades keep fractional sizes and the taker side; bars hold every trade once.
    let run = w
        .run(&import("trades", "BTC/USD", &url, &["--batch-size", "300"]))
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let trades: Vec<(i64, i64, f64, f64, String)> = sqlx::query_as(
        "SELECT t, trade_id, price, size, taker_side FROM crypto_trades ORDER BY t, trade_id",
    )
    .fetch_all(&mut w.connect().await)
    .await
    .unwrap();
    let mut want = Vec::new();
    for d in days() {
        let day = CryptoDay::new("us", "BTC/USD", d, 1_000);
        for i in 0..day.trade_count() {
            let tr = day.trade(i);
            want.push((
                tr.t,
                tr.id as i64,
                tr.price,
                tr.size,
                (tr.taker_side as char).to_string(),
            ));
        }
    }
    assert_eq!(trades, want);
    assert!(trades.iter().any(|t| t.3.fract() != 0.0));
    assert!(["B", "S", "-"]
        .iter()
        .all(|side| trades.iter().any(|t| t.4 == *side)));
    let run = w
        .run(&import("bars", "BTC/USD", &url, &["--timeframe", "1Hour"]))
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    // Every hour of the four UTC days, weekend included, and every trade once.
    assert_eq!(w.scalar("SELECT count(*) FROM crypto_bars").await, 4 * 24);
    assert_eq!(
        w.scalar("SELECT sum(trade_count) FROM crypto_bars").await,
        trades.len() as i64
    );
    let volume_vs_trades: f64 = sqlx::query_scalar(
        "SELECT (SELECT sum(volume) FROM crypto_bars) - (SELECT sum(size) FROM crypto_trades)",
    )
    .fetch_one(&mut w.connect().await)
    .await
    .unwrap();
    assert!(volume_vs_trades.abs() < 1e-6, "{volume_vs_trades}");

    // status names the datasets, the pairs and the location; no day of a weekend is missing.
    let run = w.run(&["status", "--json"]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let status: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let held: Vec<(String, String, String, i64)> = status["holdings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["dataset"].as_str().unwrap().to_string(),
                h["symbol"].as_str().unwrap().to_string(),
                h["feed"].as_str().unwrap().to_string(),
                h["missing_trading_days"]
                    .as_array()
                    .map_or(0, |g| g.len() as i64),
            )
        })
        .collect();
    assert_eq!(
        held,
        vec![
            ("crypto_bars/1Hour".into(), "BTC/USD".into(), "us".into(), 0),
            ("crypto_quotes".into(), "BTC/USD".into(), "us".into(), 0),
            ("crypto_quotes".into(), "ETH/USD".into(), "us".into(), 0),
            ("crypto_trades".into(), "BTC/USD".into(), "us".into(), 0),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crypto_parquet_store_round_trips_through_load_historical() {
    let s = standin(small(800)).await;
    let url = s.url();
    let direct = Workdir::new();
    let run = direct
        .run(&import("quotes", "BTC/USD", &url, &["--loc", "us-1"]))
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);

    let w = Workdir::new();
    let run = w
        .run(&import(
            "quotes",
            "BTC/USD",
            &url,
            &["--loc", "us-1", "--format", "parquet"],
        ))
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    // The pair's folder is BTC-USD (a `/` cannot be in a folder name), under the location's.
    for d in days() {
        let file = w.path().join(format!(
            "data/historical/feed=us-1/crypto_quotes/symbol=BTC-USD/date={d}/part-0.parquet"
        ));
        assert!(file.is_file(), "{}", file.display());
    }
    let run = w
        .run(&[
            "load-historical",
            "quotes",
            "BTC/USD",
            START,
            END,
            "--loc",
            "us-1",
        ])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let loaded = stored_quotes(&w, "BTC/USD").await;
    assert_eq!(loaded.len(), 4 * 800);
    assert_eq!(loaded, stored_quotes(&direct, "BTC/USD").await);
    // The location is part of the rows' identity, and us-1 is not us.
    assert_eq!(loaded, expected_quotes("us-1", "BTC/USD", 800));
    assert_ne!(loaded, expected_quotes("us", "BTC/USD", 800));
    let key: String = sqlx::query_scalar("SELECT DISTINCT dataset FROM import_progress")
        .fetch_one(&mut direct.connect().await)
        .await
        .unwrap();
    assert_eq!(key, "crypto_quotes@us-1");
    let status = w.run(&["status"]).await;
    assert!(
        status
            .stdout
            .lines()
            .filter(|l| l.starts_with("crypto_quotes  BTC/USD  us-1"))
            .count()
            == 2,
        "{}",
        status.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_crypto_symbols_and_options_are_one_line_usage_errors() {
    let s = standin(small(100)).await;
    let url = s.url();
    let w = Workdir::new();
    for (args, needle) in [
        (
            import("quotes", "BTCUSD", &url, &["--asset", "crypto"]),
            "crypto symbol \"BTCUSD\" must be BASE/QUOTE",
        ),
        (
            import("quotes", "BTC/USD,AAPL", &url, &[]),
            "SYMBOLS mixes crypto pairs (BTC/USD) and stock tickers (AAPL)",
        ),
        (
            import("quotes", "BTC/USD", &url, &["--asset", "stocks"]),
            "BTC/USD is a crypto pair, but --asset stocks was given",
        ),
        (
            import("quotes", "BTC/1INCH", &url, &[]),
            "crypto symbol \"BTC/1INCH\" must be BASE/QUOTE",
        ),
        (
            import("quotes", "BTC/USD", &url, &["--feed", "iex"]),
            "--feed applies to stocks; crypto takes --loc",
        ),
        (
            import("quotes", "AAPL", &url, &["--loc", "us"]),
            "--loc applies to crypto only",
        ),
        (
            import("quotes", "BTC/USD", &url, &["--loc", "mars"]),
            "invalid --loc \"mars\"",
        ),
        (
            import(
                "bars",
                "BTC/USD",
                &url,
                &["--timeframe", "1Min", "--adjustment", "split"],
            ),
            "crypto prices are never adjusted",
        ),
        (
            import("quotes", "BTC/USD", &url, &["--nbbo-changes"]),
            "they do not apply to crypto quotes",
        ),
    ] {
        assert_one_line_failure(&w.run(&args).await, 2, needle);
    }
    assert!(s.request_log().is_empty());

    // The stand-in checks as Alpaca does: pairs only, and no stock parameter.
    let http = reqwest::Client::new();
    for (query, message) in [
        (
            "symbols=BTCUSD&start=2024-01-06&end=2024-01-06",
            "invalid symbol: BTCUSD does not match ^[A-Z]+/[A-Z]+$",
        ),
        (
            "symbols=BTC/USD&start=2024-01-06&end=2024-01-06&feed=sip",
            "unexpected parameter: feed",
        ),
    ] {
        let r = http
            .get(format!("{url}/v1beta3/crypto/us/quotes?{query}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400);
        let body: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
        assert_eq!(body["message"], message);
    }
}
