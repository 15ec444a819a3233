//! Trades and bars end to end into SQLite, checked value by value against the stand-in's own
//! generator: corrections overwrite the trade they correct, bars of several timeframes.

mod common;

use common::{assert_one_line_failure, small, standin, Workdir};
use data::standin::generate::{day_bars, timeframe_ns, DayTrades};
use data::standin::StandinConfig;
use data::time::{new_york_dates, DateRange};
use std::collections::BTreeMap;

type TradeRow = (i64, String, i64, i64, f64, i64, String, String, String);
type BarRow = (i64, f64, f64, f64, f64, i64, i64, f64);

/// Every trade the stand-in serves for `symbol` in the range, keyed as the table keys it
/// (day, exchange, id), later records (corrections) replacing earlier ones, as text rows.
fn expected_trades(symbol: &str, start: &str, end: &str, per_day: u32) -> Vec<String> {
    let range = DateRange::parse(start, end).unwrap();
    let mut rows: BTreeMap<(i64, char, u64), String> = BTreeMap::new();
    for date in new_york_dates(range.start_ns, range.end_ns) {
        let Some(day) = DayTrades::new(symbol, "sip", date, per_day) else {
            continue;
        };
        let ymd = date.format("%Y%m%d").to_string().parse::<i64>().unwrap();
        for i in day.lower_bound(range.start_ns)..day.lower_bound(range.end_ns + 1) {
            let tr = day.trade(i);
            rows.insert(
                (ymd, tr.exchange as char, tr.id),
                format!(
                    "{}|{}|{}|{}|{:?}|{}|{}|{}|{}",
                    ymd,
                    tr.exchange as char,
                    tr.id,
                    tr.t,
                    tr.price(),
                    tr.size,
                    tr.conditions,
                    tr.tape as char,
                    tr.update.unwrap_or("")
                ),
            );
        }
    }
    rows.into_values().collect()
}

async fn stored_trades(w: &Workdir, symbol: &str) -> Vec<String> {
    let mut c = w.connect().await;
    let rows: Vec<TradeRow> = sqlx::query_as(
        "SELECT day, exchange, trade_id, t, price, size, conditions, tape, update_flag \
         FROM trades JOIN symbols s ON s.id = symbol_id WHERE s.symbol = ? \
         ORDER BY day, exchange, trade_id",
    )
    .bind(symbol)
    .fetch_all(&mut c)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(d, x, i, t, p, s, c, z, u)| format!("{d}|{x}|{i}|{t}|{p:?}|{s}|{c}|{z}|{u}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trades_with_corrections_land_exactly() {
    let s = standin(StandinConfig {
        max_page: Some(300),
        ..small(4_000)
    })
    .await;
    let w = Workdir::new();
    let run = w
        .import(
            &s.url(),
            "AAPL,MSFT",
            "2024-01-02",
            "2024-01-04",
            &["--batch-size", "700"],
        )
        .await;
    // The command above imports quotes; now trades.
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let url = s.url();
    let args = [
        "import-api",
        "trades",
        "AAPL,MSFT",
        "2024-01-02",
        "2024-01-04",
        "--api-url",
        &url,
        "--batch-size",
        "700",
    ];
    let run = w.run(&args).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stderr.contains("[DONE] AAPL,MSFT trades: 6000 rows"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(" total, last trade 2024-01-"),
        "{}",
        run.stderr
    );
    for symbol in ["AAPL", "MSFT"] {
        let want = expected_trades(symbol, "2024-01-02", "2024-01-04", 4_000);
        // 1,000 records a day, 10 of them corrections of an earlier trade.
        assert_eq!(want.len(), 3 * 990);
        let got = stored_trades(&w, symbol).await;
        assert_eq!(got, want, "{symbol}");
        assert_eq!(got.iter().filter(|r| r.ends_with("|corrected")).count(), 30);
    }
    // Quotes were not touched by the trades import; resume works per data type.
    assert_eq!(w.count().await, 2 * 3 * 4_000);
    let before = s.request_log().len();
    let run = w.run(&args).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(
        s.request_log().len(),
        before,
        "done trade days fetched again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bars_of_several_timeframes_match_the_trades_they_come_from() {
    let s = standin(small(4_000)).await;
    let w = Workdir::new();
    let url = s.url();
    let mut c = None;
    for tf in ["1Min", "15Min", "1Hour", "1Day"] {
        let run = w
            .run(&[
                "import-api",
                "bars",
                "AAPL",
                "2024-01-02",
                "2024-01-05",
                "--timeframe",
                tf,
                "--api-url",
                &url,
            ])
            .await;
        assert_eq!(run.code, Some(0), "{tf}: {}", run.stderr);
        let conn = c.get_or_insert(w.connect().await);
        let got: Vec<BarRow> = sqlx::query_as(
            "SELECT t, open, high, low, close, volume, trade_count, vwap FROM bars \
             WHERE timeframe = ? AND adjustment = 'raw' ORDER BY t",
        )
        .bind(tf)
        .fetch_all(&mut *conn)
        .await
        .unwrap();
        let range = DateRange::parse("2024-01-02", "2024-01-05").unwrap();
        let want: Vec<BarRow> = new_york_dates(range.start_ns, range.end_ns)
            .filter_map(|d| DayTrades::new("AAPL", "sip", d, 4_000).map(|t| (d, t)))
            .flat_map(|(d, t)| day_bars(&t, d, timeframe_ns(tf).unwrap()))
            .map(|b| {
                (
                    b.t,
                    b.open,
                    b.high,
                    b.low,
                    b.close,
                    b.volume as i64,
                    b.trades as i64,
                    b.vwap,
                )
            })
            .collect();
        assert!(!want.is_empty());
        assert_eq!(got, want, "{tf}");
    }
    // `data status` lists each bar dataset.
    let status = w.run(&["status"]).await;
    assert_eq!(status.code, Some(0), "{}", status.stderr);
    let lines: Vec<Vec<&str>> = status
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(
        lines.contains(&vec![
            "bars[1Day,raw]",
            "AAPL",
            "database",
            "2024-01-02",
            "2024-01-05",
            "4",
            "4",
            "none"
        ]),
        "{}",
        status.stdout
    );
    // A daily bar opens at New York midnight (05:00Z in January).
    let first: i64 = sqlx::query_scalar("SELECT min(t) FROM bars WHERE timeframe = '1Day'")
        .fetch_one(c.as_mut().unwrap())
        .await
        .unwrap();
    assert_eq!(
        data::time::format_nanos(first),
        "2024-01-02T05:00:00.000000000Z"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bar_and_trade_options_are_named() {
    let w = Workdir::new();
    let base = ["import-api", "bars", "AAPL", "2024-01-02", "2024-01-02"];
    let run = w.run(&base).await;
    assert_one_line_failure(&run, 2, "bars need --timeframe 1Min|5Min|15Min|1Hour|1Day");
    let mut a = base.to_vec();
    a.extend(["--timeframe", "2Min"]);
    let run = w.run(&a).await;
    assert_one_line_failure(&run, 2, "invalid --timeframe \"2Min\"");
    let mut a = base.to_vec();
    a.extend(["--timeframe", "1Min", "--adjustment", "none"]);
    let run = w.run(&a).await;
    assert_one_line_failure(&run, 2, "invalid --adjustment \"none\"");
    let run = w
        .run(&[
            "import-api",
            "trades",
            "AAPL",
            "2024-01-02",
            "2024-01-02",
            "--sample",
            "10",
        ])
        .await;
    assert_one_line_failure(&run, 2, "they do not apply to trades");
    let run = w
        .run(&[
            "load-historical",
            "trades",
            "AAPL",
            "2024-01-02",
            "2024-01-02",
        ])
        .await;
    assert_one_line_failure(&run, 2, "the Parquet store keeps quotes only");
}
