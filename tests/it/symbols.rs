//! Many symbols in one run: a comma-separated list or --symbols-file, per-symbol shards,
//! per-symbol counts and a warning for symbols without data, bad symbols named.

use crate::common::{assert_one_line_failure, expected_rows, small, standin, Workdir};
use data::standin::StandinConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_imports_every_symbol_and_warns_about_one_without_data() {
    let s = standin(StandinConfig {
        max_page: Some(700),
        no_data_symbols: vec!["ZZZZ".into()],
        ..small(1_500)
    })
    .await;
    let w = Workdir::new();
    let run = w
        .import(
            &s.url(),
            "aapl,MSFT,ZZZZ,AAPL",
            "2024-01-02",
            "2024-01-03",
            &["--batch-size", "1000"],
        )
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    for symbol in ["AAPL", "MSFT"] {
        assert_eq!(
            w.rows(symbol).await,
            expected_rows(symbol, "2024-01-02", "2024-01-03", 1_500),
            "{symbol}"
        );
    }
    assert_eq!(w.count().await, 6_000);
    assert!(
        run.stderr.contains("fetching 6 days"),
        "3 symbols x 2 days: {}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("[DONE] quotes fetched per symbol: AAPL 3000, MSFT 3000, ZZZZ 0"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("[WARN] no data for ZZZZ in ")
            && !run.stderr.contains("no data for AAPL"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("[DONE] AAPL,MSFT,ZZZZ quotes: 6000 rows"),
        "{}",
        run.stderr
    );
    // Progress is per symbol and day: a rerun with one more symbol fetches only it.
    let before = s.request_log().len();
    let run = w
        .import(&s.url(), "AAPL,MSFT,IBM", "2024-01-02", "2024-01-03", &[])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        s.request_log()[before..].iter().all(|r| r.symbols == "IBM"),
        "{:?}",
        &s.request_log()[before..]
    );
    assert_eq!(w.count().await, 9_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symbols_file_with_comments_and_duplicates() {
    let s = standin(small(1_000)).await;
    let w = Workdir::new();
    std::fs::write(
        w.path().join("watch.txt"),
        "# my watch list\nAAPL\n\n  msft   # software\nAAPL\nbrk.b\n",
    )
    .unwrap();
    let url = s.url();
    let run = w
        .run(&[
            "import-api",
            "quotes",
            "--symbols-file",
            "watch.txt",
            "2024-01-02",
            "2024-01-02",
            "--api-url",
            &url,
        ])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    for symbol in ["AAPL", "MSFT", "BRK.B"] {
        assert_eq!(
            w.rows(symbol).await,
            expected_rows(symbol, "2024-01-02", "2024-01-02", 1_000),
            "{symbol}"
        );
    }
    assert_eq!(w.count().await, 3_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_symbols_and_arguments_are_named_in_one_line() {
    let w = Workdir::new();
    let url = "http://127.0.0.1:9";
    let run = w
        .import(url, "AAPL,AA$PL", "2024-01-02", "2024-01-02", &[])
        .await;
    assert_one_line_failure(&run, 2, "SYMBOLS: symbol \"AA$PL\" contains '$'");
    std::fs::write(w.path().join("list.txt"), "AAPL\n# fine\nMS FT\n").unwrap();
    let run = w
        .run(&[
            "import-api",
            "quotes",
            "--symbols-file",
            "list.txt",
            "2024-01-02",
            "2024-01-02",
        ])
        .await;
    assert_one_line_failure(&run, 2, "list.txt line 3: symbol \"MS FT\"");
    let run = w.run(&["import-api", "quotes", "AAPL", "2024-01-02"]).await;
    assert_one_line_failure(&run, 2, "missing END: expected SYMBOLS START END");
    let run = w
        .run(&[
            "import-api",
            "quotes",
            "--symbols-file",
            "missing.txt",
            "2024-01-02",
            "2024-01-03",
        ])
        .await;
    assert_one_line_failure(&run, 2, "cannot read the symbols file missing.txt");
    assert!(!w.db_path().exists(), "nothing written on bad input");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_symbols_into_the_parquet_store() {
    let s = standin(small(1_000)).await;
    let w = Workdir::new();
    let run = w
        .import(
            &s.url(),
            "AAPL,MSFT",
            "2024-01-02",
            "2024-01-03",
            &["--format", "parquet"],
        )
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    for symbol in ["AAPL", "MSFT"] {
        for day in ["2024-01-02", "2024-01-03"] {
            let f = w.path().join(format!(
                "data/historical/quotes/symbol={symbol}/date={day}/part-0.parquet"
            ));
            assert!(f.exists(), "{}", f.display());
        }
    }
    assert!(
        run.stderr
            .contains("[DONE] quotes fetched per symbol: AAPL 2000, MSFT 2000"),
        "{}",
        run.stderr
    );
    // The files are the resume record: a rerun fetches nothing.
    let before = s.request_log().len();
    let run = w
        .import(
            &s.url(),
            "AAPL,MSFT",
            "2024-01-02",
            "2024-01-03",
            &["--format", "parquet"],
        )
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(s.request_log().len(), before);
}

/// Daily bars of several symbols: one multi-symbol request per month whose pages mix
/// symbols (the limit is shared), every bar landing under its own symbol, exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daily_bars_of_several_symbols_share_requests_whose_pages_mix_symbols() {
    use data::standin::generate::{day_bars, timeframe_ns, DayTrades};
    use data::time::{new_york_dates, DateRange};
    let s = standin(StandinConfig {
        max_page: Some(8),
        no_data_symbols: vec!["ZZZZ".into()],
        ..small(1_000)
    })
    .await;
    let w = Workdir::new();
    let url = s.url();
    let args = [
        "import-api",
        "bars",
        "AAPL,MSFT,ZZZZ,GOOG",
        "2024-01-02",
        "2024-03-29",
        "--timeframe",
        "1Day",
        "--api-url",
        &url,
        "--batch-size",
        "50",
    ];
    let run = w.run(&args).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("[API] 12 symbol-months share 3 multi-symbol requests"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("[WARN] no data for ZZZZ"),
        "{}",
        run.stderr
    );
    let log = s.request_log();
    assert!(!log.is_empty());
    assert!(
        log.iter().all(|r| r.symbols == "AAPL,MSFT,ZZZZ,GOOG"),
        "{log:?}"
    );
    // 3 months of 3 symbols' ~21 daily bars, 8 to a page: about 8 pages a month, and the
    // page boundaries fall inside symbols' runs.
    let first_requests = log.iter().filter(|r| !r.continued).count();
    assert_eq!(first_requests, 3);
    assert!(log.len() > 20, "{}", log.len());
    let mut c = w.connect().await;
    let range = DateRange::parse("2024-01-02", "2024-03-29").unwrap();
    for symbol in ["AAPL", "MSFT", "GOOG"] {
        let got: Vec<(i64, f64, f64, i64)> = sqlx::query_as(
            "SELECT t, open, close, volume FROM bars JOIN symbols s ON s.id = symbol_id \
             WHERE s.symbol = ? AND timeframe = '1Day' ORDER BY t",
        )
        .bind(symbol)
        .fetch_all(&mut c)
        .await
        .unwrap();
        let want: Vec<(i64, f64, f64, i64)> = new_york_dates(range.start_ns, range.end_ns)
            .filter_map(|d| DayTrades::new(symbol, "sip", d, 1_000).map(|t| (d, t)))
            .flat_map(|(d, t)| day_bars(&t, d, timeframe_ns("1Day").unwrap()))
            .map(|b| (b.t, b.open, b.close, b.volume as i64))
            .collect();
        // 64 weekdays, less MLK day, Presidents' Day and Good Friday.
        assert_eq!(want.len(), 61);
        assert_eq!(got, want, "{symbol}");
    }
    // Done months are not asked for again.
    let before = s.request_log().len();
    let run = w.run(&args).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(s.request_log().len(), before);
}

/// `--asof` is Alpaca's ticker mapping: by default META's history before the rename
/// (2022-06-09) comes from FB, labelled META; `--asof -` gives META's own rows only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renamed_tickers_follow_asof() {
    let s = standin(small(300)).await;
    let w = Workdir::new();
    let run = w
        .import(&s.url(), "META", "2022-06-06", "2022-06-10", &[])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let mut mapped = expected_rows("FB", "2022-06-06", "2022-06-08", 300);
    mapped.extend(expected_rows("META", "2022-06-09", "2022-06-10", 300));
    assert_eq!(w.rows("META").await, mapped, "FB's days, labelled META");

    let raw = Workdir::new();
    let run = raw
        .import(
            &s.url(),
            "META",
            "2022-06-06",
            "2022-06-10",
            &["--asof", "-"],
        )
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(
        raw.rows("META").await,
        expected_rows("META", "2022-06-09", "2022-06-10", 300),
        "no mapping: META from its first day"
    );

    let dated = Workdir::new();
    let run = dated
        .import(
            &s.url(),
            "META",
            "2022-06-06",
            "2022-06-10",
            &["--asof", "2022-01-03"],
        )
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(
        dated.rows("META").await.len(),
        raw.rows("META").await.len(),
        "mapped as of a day before the rename: META's own rows"
    );

    let bad = w
        .import(
            &s.url(),
            "META",
            "2022-06-06",
            "2022-06-10",
            &["--asof", "yesterday"],
        )
        .await;
    assert_one_line_failure(
        &bad,
        2,
        "--asof \"yesterday\": expected a date YYYY-MM-DD, or - to turn Alpaca's ticker mapping off",
    );
}
