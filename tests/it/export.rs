//! `data export`: stored rows out as CSV, JSON lines or Parquet, from the database or the
//! Parquet store, with the New York date and time added; the same bytes from either store;
//! a file written whole or not at all; one-line usage errors.

use crate::common::{small, standin, Workdir};
use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Int64Type, Time64NanosecondType, TimestampMicrosecondType};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// Imports AAPL and MSFT quotes of 2024-01-02..03 into both the database and the store.
async fn both_stores(w: &Workdir, url: &str) {
    for extra in [&[][..], &["--format", "parquet"][..]] {
        let mut args = vec![
            "import-api",
            "quotes",
            "AAPL,MSFT",
            "2024-01-02",
            "2024-01-03",
            "--api-url",
            url,
        ];
        args.extend_from_slice(extra);
        let run = w.run(&args).await;
        assert_eq!(run.code, Some(0), "{}", run.stderr);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_from_the_database_and_from_the_store_are_the_same_bytes() {
    let s = standin(small(2_000)).await;
    let w = Workdir::new();
    both_stores(&w, &s.url()).await;
    let export = |from: &'static str| {
        vec![
            "export",
            "quotes",
            "AAPL",
            "2024-01-02",
            "--to",
            "csv",
            "--from",
            from,
        ]
    };
    let db = w.run(&export("database")).await;
    assert_eq!(db.code, Some(0), "{}", db.stderr);
    let store = w.run(&export("store")).await;
    assert_eq!(store.code, Some(0), "{}", store.stderr);
    assert_eq!(db.stdout, store.stdout);
    let lines: Vec<&str> = db.stdout.lines().collect();
    assert_eq!(
        lines[0],
        "symbol,t,t_ns,seq,bid_exchange,bid_price,bid_size,ask_exchange,ask_price,ask_size,\
         conditions,tape,ny_date,ny_time"
    );
    // One New York day of AAPL: 2,000 quotes, each with its exact nanoseconds, and the
    // New York wall-clock time five hours behind UTC in January.
    assert_eq!(lines.len(), 1 + 2_000);
    let mut c = w.connect().await;
    let (t, bid): (i64, f64) = sqlx::query_as(
        "SELECT q.t, q.bid_price FROM quotes q JOIN symbols s ON s.id = q.symbol_id \
         WHERE s.symbol = 'AAPL' ORDER BY q.t, q.seq LIMIT 1",
    )
    .fetch_one(&mut c)
    .await
    .unwrap();
    let first: Vec<&str> = lines[1].split(',').collect();
    assert_eq!(first[0], "AAPL");
    let utc = chrono::DateTime::from_timestamp_nanos(t);
    assert_eq!(first[1], utc.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string());
    assert_eq!(first[2], t.to_string());
    assert_eq!(first[5].parse::<f64>().unwrap(), bid);
    let ny = utc - chrono::Duration::hours(5);
    assert_eq!(first[first.len() - 2], "2024-01-02");
    assert_eq!(
        first[first.len() - 1],
        ny.format("%H:%M:%S%.9f").to_string()
    );
    // The default store is the one holding the rows (the database first).
    let default = w
        .run(&["export", "quotes", "AAPL", "2024-01-02", "--to", "csv"])
        .await;
    assert_eq!(default.stdout, db.stdout);
    assert!(
        default.stderr.contains("from the database"),
        "{}",
        default.stderr
    );
    // The end-of-run line names the rows and where they went.
    assert!(
        db.stderr
            .lines()
            .any(|l| l.starts_with("\u{2713} 2,000 quotes of AAPL in ")
                && l.ends_with(" \u{2192} standard output")),
        "{}",
        db.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jsonl_and_parquet_hold_every_row_of_both_symbols() {
    let s = standin(small(2_000)).await;
    let w = Workdir::new();
    both_stores(&w, &s.url()).await;
    // JSON lines from the store, to a file.
    let run = w
        .run(&[
            "export",
            "quotes",
            "AAPL,MSFT",
            "2024-01-02",
            "2024-01-03",
            "--to",
            "jsonl",
            "--from",
            "store",
            "--output",
            "q.jsonl",
        ])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    let text = std::fs::read_to_string(w.path().join("q.jsonl")).unwrap();
    let rows: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2 * 2 * 2_000);
    assert_eq!(rows[0]["symbol"], "AAPL");
    assert_eq!(rows[rows.len() - 1]["symbol"], "MSFT");
    assert!(rows[0]["conditions"].is_array(), "{}", rows[0]);
    assert_eq!(rows[0]["ny_date"], "2024-01-02");
    assert_eq!(rows[rows.len() - 1]["ny_date"], "2024-01-03");
    // No partial file is left beside it.
    let names: Vec<String> = std::fs::read_dir(w.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.contains("partial")), "{names:?}");

    // Parquet from the database: the same rows, t to the nanosecond, the New York columns.
    let run = w
        .run(&[
            "export",
            "quotes",
            "AAPL,MSFT",
            "2024-01-02",
            "2024-01-03",
            "--to",
            "parquet",
            "--from",
            "database",
            "-o",
            "q.parquet",
        ])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let file = std::fs::File::open(w.path().join("q.parquet")).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let (mut n, mut i) = (0, 0);
    for batch in reader {
        let batch = batch.unwrap();
        // As the store keeps it: `t` in microseconds, `t_ns` exact.
        let t = batch
            .column_by_name("t_ns")
            .unwrap()
            .as_primitive::<Int64Type>();
        let micros = batch
            .column_by_name("t")
            .unwrap()
            .as_primitive::<TimestampMicrosecondType>();
        let date = batch
            .column_by_name("ny_date")
            .unwrap()
            .as_primitive::<Date32Type>();
        let clock = batch
            .column_by_name("ny_time")
            .unwrap()
            .as_primitive::<Time64NanosecondType>();
        for r in 0..batch.num_rows() {
            let json_t = rows[i]["t"].as_str().unwrap();
            let ns = chrono::DateTime::parse_from_rfc3339(json_t)
                .unwrap()
                .timestamp_nanos_opt()
                .unwrap();
            assert_eq!(t.value(r), ns, "row {i}");
            assert_eq!(micros.value(r), ns.div_euclid(1_000), "row {i}");
            assert_eq!(rows[i]["t_ns"].as_i64(), Some(ns), "row {i}");
            // January: New York is UTC-5.
            let local = ns - 5 * 3_600_000_000_000;
            assert_eq!(
                i64::from(date.value(r)),
                local.div_euclid(86_400_000_000_000)
            );
            assert_eq!(clock.value(r), local.rem_euclid(86_400_000_000_000));
            i += 1;
        }
        n += batch.num_rows();
    }
    assert_eq!(n, rows.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_exports_are_one_line_errors() {
    let w = Workdir::new();
    let run = w
        .run(&["export", "quotes", "AAPL", "2024-01-02", "--to", "parquet"])
        .await;
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert_eq!(
        run.stderr.trim(),
        "error: --to parquet writes a binary file: name it with --output FILE (or - for standard output)"
    );
    let run = w
        .run(&["export", "quotes", "AAPL", "2024-01-02", "--to", "xml"])
        .await;
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    // Nothing imported yet: neither store holds the rows.
    let run = w
        .run(&["export", "quotes", "AAPL", "2024-01-02", "--to", "csv"])
        .await;
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let last = run.stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with(
            "error: neither the database nor the Parquet store data/historical holds AAPL \
             quotes in 2024-01-02T09:00:00Z .. 2024-01-03T01:00:00Z: import them first"
        ),
        "{last}"
    );
    assert!(run.stdout.is_empty());
    assert!(
        !w.path().join("data/market.db").exists(),
        "looking creates no database"
    );
}
