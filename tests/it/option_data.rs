//! Options (`/v1beta1/options/...`): OCC contract symbols, up to 100 contracts per request,
//! trades and bars (no historical quotes), contract discovery through the trading API's
//! `/v2/options/contracts` with paging, into SQLite and the Parquet store and back.
//! (PostgreSQL: `postgres::options_go_into_postgres`.)

use crate::common::{assert_one_line_failure, small, standin, Workdir};
use data::standin::options::{universe, OptionDay};
use data::standin::StandinConfig;
use std::collections::BTreeSet;

const PUT: &str = "AAPL240419P00140000";
const CALL: &str = "MSFT240419C00400000";

/// The stand-in's trades of `contract` on New York days `first..=last`, as
/// `t|seq|x|p|s|c` rows with `seq` numbered as the importer numbers it.
pub fn expected_trades(contract: &str, first: &str, last: &str) -> Vec<String> {
    let (first, last): (chrono::NaiveDate, chrono::NaiveDate) =
        (first.parse().unwrap(), last.parse().unwrap());
    let mut out = Vec::new();
    let (mut last_t, mut seq) = (i64::MIN, 0);
    for d in first.iter_days().take_while(|d| *d <= last) {
        let Some(day) = OptionDay::new(contract, d) else {
            continue;
        };
        for i in 0..day.len() {
            let tr = day.trade(i);
            seq = if tr.t == last_t { seq + 1 } else { 0 };
            last_t = tr.t;
            out.push(format!(
                "{}|{seq}|{}|{:?}|{}|{}",
                tr.t, tr.exchange as char, tr.price, tr.size, tr.condition
            ));
        }
    }
    out
}

async fn stored_trades(w: &Workdir, contract: &str) -> Vec<String> {
    let rows: Vec<(i64, i64, String, f64, i64, String)> = sqlx::query_as(
        "SELECT q.t, q.seq, q.exchange, q.price, q.size, q.condition FROM option_trades q \
         JOIN symbols s ON s.id = q.symbol_id WHERE s.symbol = ? AND s.feed = 'opra' ORDER BY q.t, q.seq",
    )
    .bind(contract)
    .fetch_all(&mut w.connect().await)
    .await
    .unwrap();
    rows.iter()
        .map(|(t, seq, x, p, s, c)| format!("{t}|{seq}|{x}|{p:?}|{s}|{c}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn option_trades_and_bars_land_exactly_many_contracts_per_request() {
    let s = standin(StandinConfig {
        max_page: Some(150),
        ..small(100)
    })
    .await;
    let url = s.url();
    let w = Workdir::new();
    let contracts = format!("{PUT},{}", CALL.to_lowercase());
    let args = [
        "import-api",
        "trades",
        &contracts,
        "2024-04-15",
        "2024-04-22",
        "--api-url",
        &url,
        "--batch-size",
        "250",
    ];
    let run = w.run(&args).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    for c in [PUT, CALL] {
        let want = expected_trades(c, "2024-04-15", "2024-04-22");
        assert!(want.len() > 100, "{c}");
        assert_eq!(stored_trades(&w, c).await, want, "{c}");
    }
    // Both contracts share each day's request (paged: 150 records a page).
    let log = s.request_log();
    assert!(
        log.iter()
            .all(|r| r.symbols.contains(PUT) && r.symbols.contains(CALL)),
        "{log:?}"
    );
    assert!(log.iter().any(|r| r.continued));
    // Both expire on Friday 2024-04-19: Monday the 22nd is not asked for.
    assert!(
        log.iter()
            .all(|r| r.start.as_deref().is_some_and(|s| s < "2024-04-20")),
        "{log:?}"
    );
    let run = w.run(&args).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(s.request_log().len(), log.len(), "a rerun asked again");

    // Bars from before February 2024: a warning, not a failure; nothing before it.
    let run = w
        .run(&[
            "import-api",
            "bars",
            PUT,
            "2024-01-29",
            "2024-02-02",
            "--timeframe",
            "1Day",
            "--api-url",
            &url,
        ])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        w.log()
            .contains("Alpaca's historical option data starts in February 2024"),
        "{}",
        w.log()
    );
    let days: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT t, trade_count FROM option_bars WHERE timeframe = '1Day' ORDER BY t",
    )
    .fetch_all(&mut w.connect().await)
    .await
    .unwrap();
    let want: Vec<(i64, i64)> = ["2024-02-01", "2024-02-02"]
        .iter()
        .map(|d| {
            let d: chrono::NaiveDate = d.parse().unwrap();
            let day = OptionDay::new(PUT, d).unwrap();
            (
                data::time::new_york_time_nanos(d, 0, 0),
                i64::from(day.len()),
            )
        })
        .collect();
    assert_eq!(days, want);

    // The Parquet store and back: the same rows.
    let run = w
        .run(&[
            "import-api",
            "trades",
            PUT,
            "2024-04-15",
            "2024-04-19",
            "--api-url",
            &url,
            "--format",
            "parquet",
        ])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let file = w.path().join(format!(
        "data/historical/option_trades/symbol={PUT}/date=2024-04-19/part-0.parquet"
    ));
    assert!(file.is_file(), "{}", file.display());
    let back = Workdir::new();
    std::fs::create_dir_all(back.path().join("data")).unwrap();
    let copy = std::process::Command::new("cp")
        .args(["-r"])
        .arg(w.path().join("data/historical"))
        .arg(back.path().join("data/"))
        .status()
        .unwrap();
    assert!(copy.success());
    let run = back
        .run(&["load-historical", "trades", PUT, "2024-04-15", "2024-04-19"])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(
        stored_trades(&back, PUT).await,
        expected_trades(PUT, "2024-04-15", "2024-04-19")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_discovery_pages_stores_and_imports_what_it_lists() {
    // 7 contracts a page, so the listing pages.
    let s = standin(StandinConfig {
        max_page: Some(7),
        ..small(100)
    })
    .await;
    let url = s.url();
    let w = Workdir::new();
    let args = [
        "import-api",
        "trades",
        "--underlying",
        "AAPL",
        "--type",
        "put",
        "--expiry-from",
        "2024-04-08",
        "--expiry-to",
        "2024-04-19",
        "--strike-max",
        "90",
        "2024-04-15",
        "2024-04-19",
        "--api-url",
        &url,
        "--trading-api-url",
        &url,
    ];
    let run = w.run(&args).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let today = chrono::Utc::now().date_naive();
    let d = |s: &str| s.parse::<chrono::NaiveDate>().unwrap();
    let want: BTreeSet<String> = universe("AAPL", today)
        .into_iter()
        .filter(|c| {
            !c.call
                && c.strike <= 90.0
                && c.expiry >= d("2024-04-08")
                && c.expiry <= d("2024-04-19")
        })
        .map(|c| c.symbol)
        .collect();
    assert!(want.len() >= 8, "{want:?}");
    let listed: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT symbol, status, type, underlying_symbol FROM option_contracts ORDER BY symbol",
    )
    .fetch_all(&mut w.connect().await)
    .await
    .unwrap();
    assert_eq!(
        listed.iter().map(|c| c.0.clone()).collect::<BTreeSet<_>>(),
        want
    );
    assert!(listed
        .iter()
        .all(|c| c.1 == "inactive" && c.2 == "put" && c.3 == "AAPL"));
    let pages = want.len().div_ceil(7) + 1; // the inactive pages, and one empty active page
    assert!(
        w.log().contains(&format!(
            "AAPL puts expiring 2024-04-08..2024-04-19, strikes any-90: {} contracts ({} expired) in {pages} pages",
            want.len(),
            want.len()
        )),
        "{}",
        w.log()
    );
    // Every listed contract's trades, exactly.
    for c in &want {
        assert_eq!(
            stored_trades(&w, c).await,
            expected_trades(c, "2024-04-15", "2024-04-19"),
            "{c}"
        );
    }
    assert_eq!(
        w.scalar("SELECT count(DISTINCT underlying_symbol) FROM option_trades_view")
            .await,
        1
    );
    // A rerun lists again (the same rows) and fetches nothing more.
    let data_requests = |s: &data::standin::Standin| {
        s.request_log()
            .iter()
            .filter(|r| r.symbols.contains("240"))
            .count()
    };
    let before = data_requests(&s);
    let run = w.run(&args).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(data_requests(&s), before);
    assert_eq!(
        w.scalar("SELECT count(*) FROM option_contracts").await,
        want.len() as i64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_option_symbols_and_quotes_are_one_line_usage_errors() {
    let s = standin(small(100)).await;
    let url = s.url();
    let w = Workdir::new();
    let import = |kind: &'static str, symbols: &'static str| {
        vec![
            "import-api",
            kind,
            symbols,
            "2024-04-15",
            "2024-04-19",
            "--api-url",
            url.as_str(),
        ]
    };
    for (args, needle) in [
        (
            import("quotes", PUT),
            "Alpaca has no historical option quotes",
        ),
        (
            import("trades", "AAPL240419X00140000"),
            "(C or P must precede the strike)",
        ),
        (
            import("trades", "AAPL241319P00140000"),
            "(the 6 characters before C or P must be the expiry date YYMMDD)",
        ),
        (import("trades", "A240419P0014000"), "(16 to 21 characters)"),
        (
            import("trades", "1AAPL240419P00140000"),
            "(the root must be 1 to 6 letters or digits, from a letter)",
        ),
        (
            import("trades", "AAPL240419P0014000X"),
            "not an OCC contract symbol",
        ),
        (
            import("trades", "AAPL240419P00140000,AAPL"),
            "SYMBOLS mixes option contracts (AAPL240419P00140000) and stock tickers (AAPL)",
        ),
        (
            vec![
                "import-api",
                "trades",
                "AAPL",
                "2024-04-15",
                "2024-04-19",
                "--underlying",
                "AAPL",
            ],
            "with --underlying give only START and END",
        ),
        (
            vec![
                "import-api",
                "trades",
                "2024-04-15",
                "2024-04-19",
                "--underlying",
                "AAPL",
                "--type",
                "straddle",
            ],
            "invalid --type \"straddle\": must be call or put",
        ),
        (
            vec![
                "import-api",
                "bars",
                PUT,
                "2024-04-15",
                "2024-04-19",
                "--timeframe",
                "1Min",
                "--adjustment",
                "split",
            ],
            "option prices are never adjusted",
        ),
    ] {
        assert_one_line_failure(&w.run(&args).await, 2, needle);
    }
    assert!(s.request_log().is_empty());

    // The stand-in checks as Alpaca does: 100 contracts at most, no stock parameter.
    let http = reqwest::Client::new();
    let many: Vec<String> = (0..101)
        .map(|k| format!("AAPL240419P{:08}", 100_000 + k * 1000))
        .collect();
    for (query, message) in [
        (
            format!("symbols={}&start=2024-04-15&end=2024-04-15", many.join(",")),
            "too many symbols: at most 100 contract symbols per request",
        ),
        (
            format!("symbols={PUT}&start=2024-04-15&end=2024-04-15&feed=opra"),
            "unexpected parameter: feed",
        ),
    ] {
        let r = http
            .get(format!("{url}/v1beta1/options/trades?{query}"))
            .header("APCA-API-KEY-ID", "k")
            .header("APCA-API-SECRET-KEY", "s")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400);
        let body: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
        assert_eq!(body["message"], message);
    }
}
