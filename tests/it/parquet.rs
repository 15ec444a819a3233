//! The Parquet store through the real binary: `--format parquet` imports, the files' layout
//! and schema as an outside Arrow reader sees them, `load-historical` back into SQLite, a
//! kill during a Parquet import, and missing days.

use crate::common::*;
use data::standin::StandinConfig;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Reads a file with the Arrow reader as any outside tool would; returns rows and schema.
fn read_file(p: &Path) -> (usize, arrow_schema::SchemaRef) {
    let b = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(p).unwrap()).unwrap();
    let schema = b.schema().clone();
    let rows = b.build().unwrap().map(|r| r.unwrap().num_rows()).sum();
    (rows, schema)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_to_parquet_to_sqlite_gives_exactly_the_direct_import() {
    let s = standin(StandinConfig {
        max_page: Some(900),
        ..small(3_000)
    })
    .await;
    let w = Workdir::new();
    let run = w
        .import(
            &s.url(),
            "AAPL",
            "2024-01-05",
            "2024-01-08",
            &["--format", "parquet", "--batch-size", "1000"],
        )
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stderr.contains("[FILE] Batch 1: 1000 rows written"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("[FILE] wrote 2 day files, 2024-01-05 to 2024-01-08, 6000 rows"),
        "{}",
        run.stderr
    );
    let root = w.path().join("data/historical");
    let names: Vec<String> = files(&root)
        .iter()
        .map(|p| p.strip_prefix(&root).unwrap().display().to_string())
        .collect();
    assert_eq!(
        names,
        vec![
            "quotes/symbol=AAPL/date=2024-01-05/part-0.parquet",
            "quotes/symbol=AAPL/date=2024-01-08/part-0.parquet"
        ]
    );
    assert!(
        !w.db_path().exists(),
        "a Parquet import does not touch the database"
    );
    for f in files(&root) {
        let (rows, schema) = read_file(&f);
        assert_eq!(rows, 3_000);
        assert_eq!(schema, data::store::parquet::reader::quotes_schema());
        // `t` in microseconds, which every engine reads, and exact in `t_ns`.
        assert_eq!(
            schema.field(0).data_type().to_string(),
            "Timestamp(µs, \"UTC\")"
        );
        assert_eq!(schema.field(1).name(), "t_ns");
        assert_eq!(schema.field(1).data_type().to_string(), "Int64");
    }

    let run = w
        .run(&[
            "load-historical",
            "quotes",
            "AAPL",
            "2024-01-05",
            "2024-01-08",
            "--batch-size",
            "700",
        ])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stderr.contains("[DB] Batch 1: 700 rows committed"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("[DONE] AAPL quotes: 6000 rows, 2 files, 9 batches"),
        "{}",
        run.stderr
    );
    assert_eq!(
        w.rows("AAPL").await,
        expected_rows("AAPL", "2024-01-05", "2024-01-08", 3_000)
    );

    // Part of a day: only the overlapping rows (and row groups) are read; rerun is idempotent.
    let (from, to) = ("2024-01-08T15:00:00Z", "2024-01-08T15:30:00Z");
    let run = w
        .run(&["load-historical", "quotes", "AAPL", from, to])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let part = expected_rows("AAPL", from, to, 3_000).len();
    assert!(
        part > 0
            && run
                .stderr
                .contains(&format!("[DONE] AAPL quotes: {part} rows, 1 files")),
        "{}",
        run.stderr
    );
    assert_eq!(w.count().await, 6_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timestamps_are_widened_to_whole_days_and_reimport_replaces_files() {
    let s = standin(small(2_000)).await;
    let w = Workdir::new();
    let run = w
        .import(
            &s.url(),
            "MSFT",
            "2024-03-04T15:00:00Z",
            "2024-03-04T16:00:00Z",
            &["--format", "parquet"],
        )
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("the Parquet store keeps whole New York days"),
        "{}",
        run.stderr
    );
    let f = w
        .path()
        .join("data/historical/quotes/symbol=MSFT/date=2024-03-04/part-0.parquet");
    assert_eq!(read_file(&f).0, 2_000);
    let again = w
        .import(
            &s.url(),
            "MSFT",
            "2024-03-04",
            "2024-03-04",
            &["--format", "parquet"],
        )
        .await;
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    assert_eq!(read_file(&f).0, 2_000);
    assert_eq!(files(&w.path().join("data/historical")).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_parquet_import_leaves_no_file_a_reader_would_take_as_complete() {
    let s = standin(StandinConfig {
        max_page: Some(500),
        delay: Duration::from_millis(50),
        ..small(5_000)
    })
    .await;
    let w = Workdir::new();
    let url = s.url();
    let args = [
        "import-api",
        "quotes",
        "AAPL",
        "2024-01-02",
        "2024-01-04",
        "--api-url",
        &url,
        "--format",
        "parquet",
        "--batch-size",
        "500",
        "--concurrency",
        "1",
    ];
    let mut child = w.command(&args).spawn().expect("spawn");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    // Kill in the middle of the second day: one day complete, one half-written.
    while !w.log().contains("[FILE] Batch 13:") {
        assert!(std::time::Instant::now() < deadline, "no progress");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    let root = w.path().join("data/historical");
    let all = files(&root);
    let complete: Vec<&PathBuf> = all
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    assert_eq!(complete.len(), 1, "{all:?}");
    assert_eq!(
        read_file(complete[0]).0,
        5_000,
        "the one visible file is a whole day"
    );
    let hidden: Vec<&PathBuf> = all.iter().filter(|p| !complete.contains(p)).collect();
    assert_eq!(hidden.len(), 1, "{all:?}");
    let name = hidden[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(name.starts_with(".part-0.parquet.tmp-"), "{name}");

    let before = s.request_log().len();
    let run = w.run(&args).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("[RESUME] 1 of 3 days already imported (skipped)"),
        "{}",
        run.stderr
    );
    // The day whose file was in place is not fetched again.
    let rerun = &s.request_log()[before..];
    assert!(!rerun.is_empty());
    assert!(
        rerun
            .iter()
            .all(|r| !r.start.as_deref().unwrap_or("").starts_with("2024-01-02")),
        "{rerun:?}"
    );
    let all = files(&root);
    assert_eq!(all.len(), 3, "stale temp file removed: {all:?}");
    for f in &all {
        assert_eq!(read_file(f).0, 5_000);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_historical_reports_missing_weekdays() {
    let s = standin(small(1_000)).await;
    let w = Workdir::new();
    let run = w
        .import(
            &s.url(),
            "AAPL",
            "2024-01-05",
            "2024-01-05",
            &["--format", "parquet"],
        )
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let run = w
        .run(&[
            "load-historical",
            "quotes",
            "AAPL",
            "2024-01-04",
            "2024-01-09",
        ])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stderr.contains("3 trading day(s) in the range have no file for AAPL in data/historical/quotes: 2024-01-04, 2024-01-08, 2024-01-09"),
        "{}",
        run.stderr
    );
    assert_eq!(w.count().await, 1_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archive_moves_old_days_to_files_and_load_historical_restores_them() {
    let s = standin(small(2_000)).await;
    let w = Workdir::new();
    let run = w
        .import(&s.url(), "AAPL", "2024-01-02", "2024-01-05", &[])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let before = w.rows("AAPL").await;
    assert_eq!(before.len(), 8_000);

    let run = w
        .run(&["archive", "quotes", "AAPL", "--older-than", "2024-01-04"])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stderr.contains("[ARCHIVE] AAPL quotes 2024-01-02: 2000 database rows -> data/historical/quotes/symbol=AAPL/date=2024-01-02/part-0.parquet (2000 rows, verified), 2000 deleted from the database"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("[DONE] archived AAPL quotes before 2024-01-04: 2 days, 4000 rows"),
        "{}",
        run.stderr
    );
    assert_eq!(w.count().await, 4_000);

    let status = w.run(&["status"]).await;
    assert_eq!(status.code, Some(0), "{}", status.stderr);
    let lines: Vec<Vec<&str>> = status
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines[0],
        vec![
            "DATASET", "SYMBOL", "FEED", "STORE", "FIRST", "LAST", "DAYS", "ROWS", "MISSING",
            "TRADING", "DAYS"
        ]
    );
    assert!(
        lines.contains(&vec![
            "quotes",
            "AAPL",
            "sip",
            "database",
            "2024-01-04",
            "2024-01-05",
            "2",
            "4000",
            "none"
        ]),
        "{}",
        status.stdout
    );
    assert!(
        lines.contains(&vec![
            "quotes",
            "AAPL",
            "sip",
            "parquet",
            "2024-01-02",
            "2024-01-03",
            "2",
            "4000",
            "none"
        ]),
        "{}",
        status.stdout
    );

    // A crash after a day's file was written but before its rows were deleted leaves the day
    // in both stores; the rerun must neither lose nor duplicate it.
    let run = w
        .import(&s.url(), "AAPL", "2024-01-03", "2024-01-03", &[])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let run = w
        .run(&["archive", "quotes", "AAPL", "--older-than", "2024-01-04"])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stderr.contains("[ARCHIVE] AAPL quotes 2024-01-03: 2000 database rows -> data/historical/quotes/symbol=AAPL/date=2024-01-03/part-0.parquet (2000 rows, verified)"), "{}", run.stderr);
    let f = w
        .path()
        .join("data/historical/quotes/symbol=AAPL/date=2024-01-03/part-0.parquet");
    assert_eq!(read_file(&f).0, 2_000);

    let run = w
        .run(&[
            "load-historical",
            "quotes",
            "AAPL",
            "2024-01-02",
            "2024-01-03",
        ])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(
        w.rows("AAPL").await,
        before,
        "archive then load-historical restores every row exactly"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reports_gaps_and_empty_stores() {
    let w = Workdir::new();
    let run = w.run(&["status"]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stdout.contains("no data held"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("database data/market.db: does not exist"),
        "{}",
        run.stdout
    );
    assert!(!w.db_path().exists(), "status creates nothing");

    let s = standin(small(500)).await;
    for day in ["2024-01-02", "2024-01-05"] {
        let run = w.import(&s.url(), "AAPL", day, day, &[]).await;
        assert_eq!(run.code, Some(0), "{}", run.stderr);
    }
    let run = w
        .import(
            &s.url(),
            "AAPL",
            "2024-01-02",
            "2024-01-02",
            &["--sample", "5"],
        )
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let run = w.run(&["status"]).await;
    assert!(
        run.stdout.contains("2: 2024-01-03, 2024-01-04"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("quotes_thinned/sample=5"),
        "{}",
        run.stdout
    );
    let bad = w
        .run(&["archive", "quotes", "AAPL", "--older-than", "soon"])
        .await;
    assert_one_line_failure(
        &bad,
        2,
        "--older-than \"soon\": expected a number of days like 30d, or a date YYYY-MM-DD",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsupported_url_is_a_usage_error_never_a_local_folder() {
    let s = crate::common::standin(crate::common::small(100)).await;
    let w = crate::common::Workdir::new();
    for (url, scheme) in [("http://lake/h", "http"), ("ftp://lake/h", "ftp")] {
        let run = w
            .import(
                &s.url(),
                "AAPL",
                "2024-01-02",
                "2024-01-02",
                &["--format", "parquet", "--historical-path", url],
            )
            .await;
        crate::common::assert_one_line_failure(
            &run,
            2,
            &format!(
                "{scheme}:// is not supported: the Parquet store is a folder (a path, or \
                 file:///PATH) or a bucket (s3://BUCKET/PREFIX, gs://BUCKET/PREFIX, \
                 az://CONTAINER/PREFIX or file:///PATH)"
            ),
        );
        assert!(!w.path().join(format!("{scheme}:")).exists());
    }
    // An Azure container needs its storage account: one line naming the variables.
    let mut cmd = w.command(&[
        "import-api",
        "quotes",
        "AAPL",
        "2024-01-02",
        "2024-01-02",
        "--api-url",
        &s.url(),
        "--format",
        "parquet",
        "--historical-path",
        "az://c/h",
    ]);
    for var in ["AZURE_STORAGE_ACCOUNT_NAME", "AZURE_STORAGE_USE_EMULATOR"] {
        cmd.env_remove(var);
    }
    let run = w.run_cmd(cmd).await;
    crate::common::assert_one_line_failure(&run, 2, "cannot use az://c: ");
    assert!(
        run.stderr.contains("AZURE_STORAGE_ACCOUNT_NAME"),
        "{}",
        run.stderr
    );
    assert!(!w.path().join("az:").exists());
    assert!(s.request_log().is_empty());
    // file:// names a local folder.
    let store = w.path().join("lake");
    let url = format!("file://{}", store.display());
    let run = w
        .import(
            &s.url(),
            "AAPL",
            "2024-01-02",
            "2024-01-02",
            &["--format", "parquet", "--historical-path", &url],
        )
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(store
        .join("quotes/symbol=AAPL/date=2024-01-02/part-0.parquet")
        .is_file());
}
