//! Secrets never leak: every credential set to a distinctive sentinel (Alpaca's key and
//! secret, the database's password in its URL and in `password=`/`sslpassword=`, a
//! password in the API URL, the S3, Azure and GCS keys, `PGPASSWORD`), then every command
//! run in full (import-api into SQLite, the Parquet store and PostgreSQL, load-historical,
//! archive, status, sync, config show, a dry run, a failing import whose error echoes the
//! request's headers), and every output, log and written file searched for them.

use crate::common::{small, standin, Run, Workdir};
use crate::postgres::PgDb;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use std::path::Path;

const SENTINELS: &[(&str, &str)] = &[
    ("APCA_API_KEY_ID", "SENTINEL-ALPACA-KEY-4711"),
    ("APCA_API_SECRET_KEY", "SENTINEL-ALPACA-SECRET-4712"),
    ("AWS_ACCESS_KEY_ID", "SENTINEL-AWS-KEY-ID-4713"),
    ("AWS_SECRET_ACCESS_KEY", "SENTINEL-AWS-SECRET-4714"),
    ("AWS_SESSION_TOKEN", "SENTINEL-AWS-TOKEN-4715"),
    ("AZURE_STORAGE_ACCOUNT_KEY", "SENTINEL-AZURE-KEY-4716"),
    ("GOOGLE_SERVICE_ACCOUNT_KEY", "SENTINEL-GCS-KEY-4717"),
    ("PGPASSWORD", "SENTINEL-PGPASSWORD-4718"),
];
const DB_PASSWORD: &str = "SENTINEL-DB-PASSWORD-4719";
const SSL_PASSWORD: &str = "SENTINEL-SSL-PASSWORD-4720";
const URL_PASSWORD: &str = "SENTINEL-URL-PASSWORD-4721";

/// Every sentinel, and the common stem a partial leak would still show.
fn leaked(text: &str) -> Option<&'static str> {
    let all = SENTINELS
        .iter()
        .map(|(_, v)| *v)
        .chain([DB_PASSWORD, SSL_PASSWORD, URL_PASSWORD]);
    for s in all {
        if text.contains(s) {
            return Some(s);
        }
    }
    text.contains("SENTINEL").then_some("SENTINEL")
}

/// Every file under `dir`, read as bytes (SQLite, Parquet, logs, locks).
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                out.push((p.display().to_string(), bytes));
            }
        }
    }
    out
}

async fn run(w: &Workdir, args: &[&str]) -> Run {
    let mut cmd = w.command(args);
    for (k, v) in SENTINELS {
        cmd.env(k, v);
    }
    w.run_cmd(cmd).await
}

fn check(what: &str, run: &Run) {
    for text in [&run.stdout, &run.stderr] {
        if let Some(s) = leaked(text) {
            panic!("{what} printed {s}:\n{text}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_credential_appears_in_any_output_log_or_file_of_any_command() {
    let s = standin(small(200)).await;
    let w = Workdir::new();
    // The API URL with a password in its userinfo (a proxy's, say).
    let api = s
        .url()
        .replacen("http://", &format!("http://user:{URL_PASSWORD}@"), 1);
    let mut runs: Vec<(String, Run)> = Vec::new();
    let mut go = |name: &str, r: Run| runs.push((name.to_string(), r));
    let imp = [
        "import-api",
        "quotes",
        "AAPL",
        "2024-01-03",
        "2024-01-04",
        "--api-url",
        &api,
    ];
    go("import-api", run(&w, &imp).await);
    let mut parquet = imp.to_vec();
    parquet.extend(["--format", "parquet"]);
    go("import-api parquet", run(&w, &parquet).await);
    go(
        "load-historical",
        run(
            &w,
            &[
                "load-historical",
                "quotes",
                "AAPL",
                "2024-01-03",
                "2024-01-04",
            ],
        )
        .await,
    );
    go(
        "archive",
        run(
            &w,
            &["archive", "quotes", "AAPL", "--older-than", "2024-01-04"],
        )
        .await,
    );
    go("status", run(&w, &["status"]).await);
    go("status --json", run(&w, &["status", "--json"]).await);
    go("sync", run(&w, &["sync", "--api-url", &api]).await);
    go(
        "config show",
        run(&w, &["config", "show", "--api-url", &api]).await,
    );
    let mut dry = imp.to_vec();
    dry.push("--dry-run");
    go("dry run", run(&w, &dry).await);
    // PostgreSQL: the password in the URL and in the query string (the server trusts
    // local connections, so any password is accepted).
    if let Some(db) = PgDb::new().await {
        let url = db.url.replacen(
            "postgres://root@",
            &format!("postgres://root:{DB_PASSWORD}@"),
            1,
        );
        let url = format!("{url}?sslpassword={SSL_PASSWORD}&password={DB_PASSWORD}");
        let mut pg = imp.to_vec();
        pg.extend(["--database-url", &url]);
        let r = run(&w, &pg).await;
        assert_eq!(r.code, Some(0), "{}", r.stderr);
        go("import-api postgres", r);
        go(
            "status postgres",
            run(&w, &["status", "--database-url", &url]).await,
        );
        go(
            "config show postgres",
            run(&w, &["config", "show", "--database-url", &url]).await,
        );
        // A database URL that fails: its error line names the URL, redacted.
        let bad =
            format!("postgres://root:{DB_PASSWORD}@127.0.0.1:9/nowhere?password={DB_PASSWORD}");
        let mut fails = imp.to_vec();
        fails.extend(["--database-url", &bad]);
        go("import-api unreachable postgres", run(&w, &fails).await);
    }
    // A proxy's 403 that echoes every request header, the APCA keys among them.
    let echo = axum::Router::new().fallback(|headers: HeaderMap| async move {
        let all: Vec<String> = headers
            .iter()
            .map(|(k, v)| format!("{k}={}", v.to_str().unwrap_or("")))
            .collect();
        (StatusCode::FORBIDDEN, all.join("\n")).into_response()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let echo_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, echo).await;
    });
    let r = run(
        &w,
        &[
            "import-api",
            "quotes",
            "AAPL",
            "2024-01-03",
            "2024-01-03",
            "--api-url",
            &echo_url,
        ],
    )
    .await;
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    go("import-api echoing server", r);
    for (name, r) in &runs {
        check(name, r);
    }
    let written = files(w.path());
    assert!(
        written.iter().any(|(p, _)| p.ends_with("app.log")),
        "{:?}",
        written.iter().map(|(p, _)| p).collect::<Vec<_>>()
    );
    for (path, bytes) in written {
        let text = String::from_utf8_lossy(&bytes);
        if let Some(s) = leaked(&text) {
            panic!("{path} holds {s}");
        }
    }
    // The imports did happen: the check is not vacuous.
    assert!(w.count().await > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_on_an_empty_postgres_database_creates_nothing() {
    let Some(db) = PgDb::new().await else {
        return;
    };
    let w = Workdir::new();
    let tables = "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'";
    assert_eq!(db.scalar(tables).await, 0);
    let r = w.run(&["status", "--database-url", &db.url]).await;
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(
        r.stdout
            .contains("holds no tables of data (nothing imported)"),
        "{}",
        r.stdout
    );
    assert_eq!(db.scalar(tables).await, 0, "status created tables");
    let r = w
        .run(&[
            "import-api",
            "quotes",
            "AAPL",
            "2024-01-03",
            "2024-01-03",
            "--dry-run",
            "--database-url",
            &db.url,
        ])
        .await;
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(db.scalar(tables).await, 0, "a dry run created tables");
}
