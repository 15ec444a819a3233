//! Trades and bars end to end into SQLite, checked value by value against the stand-in's own
//! generator: corrections overwrite the trade they correct, bars of several timeframes.

use crate::common::{assert_one_line_failure, small, standin, Workdir};
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

/// Every bar of `timeframe` the stand-in serves for `symbol` on the days of the range.
fn expected_bars(
    symbol: &str,
    start: &str,
    end: &str,
    per_day: u32,
    timeframe: &str,
) -> Vec<BarRow> {
    let range = DateRange::parse(start, end).unwrap();
    new_york_dates(range.start_ns, range.end_ns)
        .filter_map(|d| DayTrades::new(symbol, "sip", d, per_day).map(|t| (d, t)))
        .flat_map(|(d, t)| day_bars(&t, d, timeframe_ns(timeframe).unwrap()))
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
        .collect()
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
    // trades_view: every trade, with its ticker, feed, UTC text and New York date; the
    // New York day's bounds on t_ns select exactly that day.
    assert_eq!(
        w.scalar("SELECT count(*) FROM trades_view").await,
        2 * 3 * 990
    );
    assert_eq!(
        w.scalar(
            "SELECT count(*) FROM trades_view WHERE symbol = 'AAPL' AND feed = 'sip' \
             AND ny_date = '2024-01-03'"
        )
        .await,
        w.scalar(
            "SELECT count(*) FROM trades_view WHERE symbol = 'AAPL' \
             AND t_ns >= 1704272400000000000 AND t_ns < 1704330000000000000"
        )
        .await
    );
    assert_eq!(
        w.scalar(
            "SELECT count(*) FROM trades_view WHERE ny_date = '2024-01-03' \
             AND time_utc = strftime('%Y-%m-%dT%H:%M:%S', t_ns / 1000000000, 'unixepoch') \
                 || '.' || printf('%09d', t_ns % 1000000000) || 'Z'"
        )
        .await,
        2 * 990
    );
    // Quotes were not touched by the trades import; resume works per data type.
    assert_eq!(w.count().await, 2 * 3 * 4_000);
    // quotes_view has the New York date too (migration 0012): a day's quotes by ny_date are
    // exactly those within the day's t_ns bounds.
    assert_eq!(
        w.scalar(
            "SELECT count(*) FROM quotes_view WHERE symbol = 'MSFT' AND ny_date = '2024-01-03'"
        )
        .await,
        4_000
    );
    assert_eq!(
        w.scalar(
            "SELECT count(*) FROM quotes_view WHERE symbol = 'MSFT' \
             AND t_ns >= 1704272400000000000 AND t_ns < 1704330000000000000"
        )
        .await,
        4_000
    );
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
        let want = expected_bars("AAPL", "2024-01-02", "2024-01-05", 4_000, tf);
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
            "bars/1Day/raw",
            "AAPL",
            "sip",
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
    // bars_view: the daily bars by New York date, one a day, time_utc the opening time.
    let days: Vec<(String, String)> = sqlx::query_as(
        "SELECT ny_date, time_utc FROM bars_view WHERE symbol = 'AAPL' AND timeframe = '1Day' \
         ORDER BY t_ns",
    )
    .fetch_all(c.as_mut().unwrap())
    .await
    .unwrap();
    assert_eq!(
        days,
        ["02", "03", "04", "05"]
            .map(|d| (
                format!("2024-01-{d}"),
                format!("2024-01-{d}T05:00:00.000000000Z")
            ))
            .to_vec()
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
            "--timeframe",
            "1Min",
        ])
        .await;
    assert_one_line_failure(&run, 2, "--timeframe applies to bars only");
    let run = w
        .run(&["archive", "bars", "AAPL", "--older-than", "2024-01-02"])
        .await;
    assert_one_line_failure(&run, 2, "bars need --timeframe");
}

fn parquet_rows(p: &std::path::Path) -> i64 {
    use parquet::file::reader::FileReader;
    let r = parquet::file::serialized_reader::SerializedFileReader::new(
        std::fs::File::open(p).unwrap(),
    )
    .unwrap();
    r.metadata().file_metadata().num_rows()
}

fn status_lines(stdout: &str) -> Vec<Vec<String>> {
    stdout
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trades_in_the_parquet_store_have_corrections_applied_and_round_trip() {
    let s = standin(StandinConfig {
        max_page: Some(300),
        ..small(4_000)
    })
    .await;
    let w = Workdir::new();
    let url = s.url();
    let import = [
        "import-api",
        "trades",
        "AAPL,MSFT",
        "2024-01-02",
        "2024-01-03",
        "--format",
        "parquet",
        "--api-url",
        &url,
        "--batch-size",
        "700",
    ];
    let run = w.run(&import).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("[FILE] wrote 4 day files, 2024-01-02 to 2024-01-03, 3960 rows"),
        "{}",
        run.stderr
    );
    // Each day file holds the day's 990 trades: the 10 corrections replaced the trades they
    // correct (same id and exchange) instead of being added beside them.
    for symbol in ["AAPL", "MSFT"] {
        for day in ["2024-01-02", "2024-01-03"] {
            let f = w.path().join(format!(
                "data/historical/trades/symbol={symbol}/date={day}/part-0.parquet"
            ));
            assert_eq!(parquet_rows(&f), 990, "{}", f.display());
            use data::batch::{self, Value};
            let trades = data::dataset::DatasetId::Trades;
            let store = data::store::parquet::location::Location::local("/");
            let parts =
                data::store::parquet::reader::read_file(&store, &f, &trades, symbol).unwrap();
            let rows = batch::concat(&parts[0].schema(), &parts).unwrap();
            let t = batch::times(&rows, "t").unwrap();
            assert!(t.windows(2).all(|p| p[0] <= p[1]), "not in time order");
            let cols = trades.kind().columns();
            let cells = batch::all_cells(&rows, cols).unwrap();
            let value = |name: &str, i: usize| cells[batch::index_of(cols, name).unwrap()].value(i);
            let corrected = (0..rows.num_rows())
                .filter(|&i| value("update", i) == Value::Str("corrected".into()))
                .count();
            assert_eq!(corrected, 10);
            let mut ids: Vec<(Value, Value)> = (0..rows.num_rows())
                .map(|i| (value("exchange", i), value("id", i)))
                .collect();
            ids.sort();
            ids.dedup();
            assert_eq!(ids.len(), 990, "an identity appears twice");
            assert_eq!(value("symbol", 0), Value::Str(symbol.into()));
        }
    }
    // A rerun finds the days' files in place and fetches nothing.
    let before = s.request_log().len();
    let run = w.run(&import).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stderr.contains("all 4 days of"), "{}", run.stderr);
    assert_eq!(s.request_log().len(), before);

    // load-historical puts exactly the API's trades into the database.
    let run = w
        .run(&[
            "load-historical",
            "trades",
            "AAPL,MSFT",
            "2024-01-02",
            "2024-01-03",
        ])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    for symbol in ["AAPL", "MSFT"] {
        let want = expected_trades(symbol, "2024-01-02", "2024-01-03", 4_000);
        assert_eq!(stored_trades(&w, symbol).await, want, "{symbol}");
    }

    // Trades of 2024-01-04 imported into the database, then archived with the earlier
    // days: AAPL's trades leave the database for the files, nothing lost or duplicated.
    let run = w
        .run(&[
            "import-api",
            "trades",
            "AAPL",
            "2024-01-04",
            "2024-01-04",
            "--api-url",
            &url,
        ])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let run = w
        .run(&["archive", "trades", "AAPL", "--older-than", "2024-01-05"])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("[DONE] archived AAPL trades before 2024-01-05: 3 days, 2970 rows moved"),
        "{}",
        run.stderr
    );
    assert!(stored_trades(&w, "AAPL").await.is_empty());
    assert_eq!(stored_trades(&w, "MSFT").await.len(), 1980);
    let status = w.run(&["status"]).await;
    assert_eq!(status.code, Some(0), "{}", status.stderr);
    let lines = status_lines(&status.stdout);
    let row = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(
        lines.contains(&row(&[
            "trades",
            "AAPL",
            "sip",
            "parquet",
            "2024-01-02",
            "2024-01-04",
            "3",
            "2970",
            "none"
        ])),
        "{}",
        status.stdout
    );
    // And back: the three archived days load into the database as they were.
    let run = w
        .run(&[
            "load-historical",
            "trades",
            "AAPL",
            "2024-01-02",
            "2024-01-04",
        ])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(
        stored_trades(&w, "AAPL").await,
        expected_trades("AAPL", "2024-01-02", "2024-01-04", 4_000)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bars_in_the_parquet_store_are_whole_months_and_round_trip() {
    let s = standin(small(2_000)).await;
    let w = Workdir::new();
    let url = s.url();
    let run = w
        .run(&[
            "import-api",
            "bars",
            "AAPL",
            "2024-01-30",
            "2024-02-01",
            "--timeframe",
            "15Min",
            "--format",
            "parquet",
            "--api-url",
            &url,
        ])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("the Parquet store keeps whole New York months: importing"),
        "{}",
        run.stderr
    );
    let want = expected_bars("AAPL", "2024-01-01", "2024-02-29", 2_000, "15Min");
    let jan =
        data::time::new_york_time_nanos(chrono::NaiveDate::from_ymd_opt(2024, 2, 1).unwrap(), 0, 0);
    let in_jan = want.iter().filter(|b| b.0 < jan).count() as i64;
    let dir = w
        .path()
        .join("data/historical/bars/timeframe=15Min/adjustment=raw/symbol=AAPL");
    assert_eq!(
        parquet_rows(&dir.join("month=2024-01/part-0.parquet")),
        in_jan
    );
    assert_eq!(
        parquet_rows(&dir.join("month=2024-02/part-0.parquet")),
        want.len() as i64 - in_jan
    );
    assert!(
        run.stderr
            .contains("[FILE] wrote 2 month files, 2024-01-01 to 2024-02-01"),
        "{}",
        run.stderr
    );

    let run = w
        .run(&[
            "load-historical",
            "bars",
            "AAPL",
            "2024-01-01",
            "2024-02-29",
            "--timeframe",
            "15Min",
        ])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let stored = |sql: &'static str| {
        let w = &w;
        async move {
            let mut c = w.connect().await;
            sqlx::query_as::<_, BarRow>(sql)
                .fetch_all(&mut c)
                .await
                .unwrap()
        }
    };
    let all = "SELECT t, open, high, low, close, volume, trade_count, vwap FROM bars                WHERE timeframe = '15Min' AND adjustment = 'raw' ORDER BY t";
    assert_eq!(stored(all).await, want);

    // The database and the store list the same days.
    let status = w.run(&["status"]).await;
    let lines = status_lines(&status.stdout);
    let days: Vec<&Vec<String>> = lines
        .iter()
        .filter(|l| l.first().map(String::as_str) == Some("bars/15Min/raw"))
        .collect();
    assert_eq!(days.len(), 2, "{}", status.stdout);
    assert_eq!(days[0][4..8], days[1][4..8], "{}", status.stdout);
    assert_eq!(days[0][7], want.len().to_string(), "{}", status.stdout);

    // Archiving before 2024-02-15 moves January only: February is not wholly before it.
    let run = w
        .run(&[
            "archive",
            "bars",
            "AAPL",
            "--older-than",
            "2024-02-15",
            "--timeframe",
            "15Min",
        ])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "[DONE] archived AAPL 15Min bars before 2024-02-15: 1 months, {in_jan} rows moved"
        )),
        "{}",
        run.stderr
    );
    assert_eq!(stored(all).await, want[in_jan as usize..]);
    assert_eq!(
        parquet_rows(&dir.join("month=2024-01/part-0.parquet")),
        in_jan
    );
}

/// `--symbols-per-request`: several symbols' trade days in one request, pages mixing them; a
/// symbol's day is complete (its progress done, its Parquet file committed) as soon as the
/// next symbol's records arrive, not only when the request ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trades_of_several_symbols_can_share_requests() {
    let s = standin(StandinConfig {
        max_page: Some(300),
        no_data_symbols: vec!["ZZZZ".into()],
        ..small(4_000)
    })
    .await;
    let w = Workdir::new();
    let url = s.url();
    let base = [
        "import-api",
        "trades",
        "AAPL,MSFT,ZZZZ",
        "2024-01-02",
        "2024-01-03",
        "--api-url",
        &url,
        "--symbols-per-request",
        "3",
        "--concurrency",
        "1",
        "--batch-size",
        "100",
    ];
    let run = w.run(&base).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("[API] 6 symbol-days share 2 multi-symbol requests (up to 3 symbols each)"),
        "{}",
        run.stderr
    );
    for symbol in ["AAPL", "MSFT"] {
        let want = expected_trades(symbol, "2024-01-02", "2024-01-03", 4_000);
        assert_eq!(stored_trades(&w, symbol).await, want, "{symbol}");
    }
    assert!(
        run.stderr.contains("[WARN] no data for ZZZZ"),
        "{}",
        run.stderr
    );
    // 2 days x 2,000 records of two symbols, 300 to a page: 7 requests a day (one symbol per
    // request would take 4 each for AAPL and MSFT plus 1 for ZZZZ: 9 a day).
    let log = s.request_log();
    assert_eq!(log.len(), 14, "{log:?}");
    assert!(log.iter().all(|r| r.symbols == "AAPL,MSFT,ZZZZ"), "{log:?}");
    // AAPL's day was marked done while MSFT's records of the same request were still coming:
    // MSFT's ~1,000 records of that day went in as batches of 100 showing 1 day done.
    let one_done = w
        .log()
        .lines()
        .filter(|l| l.contains("[DB] Batch") && l.contains(", days 1/6,"))
        .count();
    assert!(one_done >= 5, "{one_done}: {}", w.log());
    // Into the Parquet store the same way: each day file complete, corrections applied.
    let mut pq = base.to_vec();
    pq.extend(["--format", "parquet"]);
    let run = w.run(&pq).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    for symbol in ["AAPL", "MSFT"] {
        for day in ["2024-01-02", "2024-01-03"] {
            let f = w.path().join(format!(
                "data/historical/trades/symbol={symbol}/date={day}/part-0.parquet"
            ));
            assert_eq!(parquet_rows(&f), 990, "{}", f.display());
        }
    }
    // A bad value is named.
    let mut bad = base.to_vec();
    bad[8] = "0";
    let run = w.run(&bad).await;
    assert_one_line_failure(&run, 2, "invalid symbols_per_request \"0\"");
}
