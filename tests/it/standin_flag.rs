//! `import-api --standin`: one command that works offline with no credentials, marked as
//! synthetic everywhere, and never mixed with market data.

use crate::common::{assert_one_line_failure, expected_rows, small, standin, Workdir};
use data::standin::DEFAULT_QUOTES_PER_DAY;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standin_imports_work_offline_are_marked_and_never_mix_with_api_rows() {
    let w = Workdir::new();
    let mut cmd = w.command(&[
        "import-api",
        "quotes",
        "AAPL",
        "2024-01-02",
        "2024-01-04",
        "--standin",
    ]);
    cmd.env_remove("APCA_API_KEY_ID")
        .env_remove("APCA_API_SECRET_KEY");
    let run = w.run_cmd(cmd).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    // The last log line says so, just before the end-of-run line.
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert!(
        lines[lines.len() - 2]
            .contains("[STANDIN] these rows are the offline stand-in's synthetic data"),
        "the summary ends with it: {}",
        run.stderr
    );
    assert!(
        lines[lines.len() - 1].starts_with("\u{2713} 111,000 quotes of AAPL in "),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("synthetic data for trying the tool, not market data"),
        "{}",
        run.stderr
    );
    assert_eq!(
        w.rows("AAPL").await,
        expected_rows("AAPL", "2024-01-02", "2024-01-04", DEFAULT_QUOTES_PER_DAY)
    );
    let status = w.run(&["status"]).await;
    assert!(status.stdout.contains("AAPL    sip*"), "{}", status.stdout);
    assert!(
        status
            .stdout
            .contains("* synthetic rows from the offline stand-in"),
        "{}",
        status.stdout
    );

    // An API import of the same symbol and feed into the same database is refused...
    let s = standin(small(100)).await;
    let run = w
        .import(&s.url(), "AAPL", "2024-01-05", "2024-01-05", &[])
        .await;
    assert_one_line_failure(
        &run,
        1,
        "AAPL (feed sip) in this database holds the stand-in's synthetic rows; importing from the API would mix the two in one dataset: use another --database-url",
    );
    assert!(s.request_log().is_empty(), "refused before any request");
    // ... and another symbol is fine.
    let run = w
        .import(&s.url(), "MSFT", "2024-01-05", "2024-01-05", &[])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let run = w
        .run(&[
            "import-api",
            "quotes",
            "MSFT",
            "2024-01-08",
            "2024-01-08",
            "--standin",
        ])
        .await;
    assert_one_line_failure(
        &run,
        1,
        "MSFT (feed sip) in this database holds market data from the API; --standin would mix",
    );
    let run = w
        .run(&[
            "import-api",
            "quotes",
            "AAPL",
            "2024-01-02",
            "2024-01-02",
            "--standin",
            "--api-url",
            "http://x",
        ])
        .await;
    assert_eq!(run.code, Some(2), "{}", run.stderr);

    // The Parquet store marks the symbol's folder the same way.
    let run = w
        .run(&[
            "import-api",
            "trades",
            "AAPL",
            "2024-01-02",
            "2024-01-02",
            "--standin",
            "--format",
            "parquet",
        ])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(w
        .path()
        .join("data/historical/trades/symbol=AAPL/.synthetic")
        .is_file());
    let run = w
        .run(&[
            "import-api",
            "trades",
            "AAPL",
            "2024-01-03",
            "2024-01-03",
            "--format",
            "parquet",
            "--api-url",
            &s.url(),
        ])
        .await;
    assert_one_line_failure(
        &run,
        1,
        "holds the stand-in's synthetic rows; importing from the API would mix the two",
    );
    // Loaded into the database, they stay marked.
    let run = w
        .run(&[
            "load-historical",
            "trades",
            "AAPL",
            "2024-01-02",
            "2024-01-02",
        ])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let shown = w.run(&["status"]).await.stdout;
    assert!(
        shown
            .lines()
            .any(|l| l.starts_with("trades") && l.contains("sip*") && l.contains("database")),
        "{shown}"
    );
    let status = w.run(&["status"]).await;
    assert!(
        status
            .stdout
            .lines()
            .any(|l| l.starts_with("trades") && l.contains("sip*") && l.contains("parquet")),
        "{}",
        status.stdout
    );
}
