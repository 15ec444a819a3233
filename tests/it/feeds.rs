//! The feed is part of a dataset's identity: SIP and IEX rows of one symbol and day never
//! mix, in the database or the Parquet store, and databases from before the feed was told
//! apart keep their rows, labelled sip.

use crate::common::{small, standin, Workdir};
use sqlx::Connection;

/// Rows per feed of AAPL's quotes.
async fn per_feed(w: &Workdir) -> Vec<(String, i64)> {
    let mut c = w.connect().await;
    sqlx::query_as(
        "SELECT s.feed, count(*) FROM quotes q JOIN symbols s ON s.id = q.symbol_id \
         WHERE s.symbol = 'AAPL' GROUP BY s.feed ORDER BY s.feed",
    )
    .fetch_all(&mut c)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iex_and_sip_of_one_symbol_and_day_are_kept_apart() {
    let s = standin(small(1_000)).await;
    let w = Workdir::new();
    for feed in ["sip", "iex", "sip"] {
        let run = w
            .import(
                &s.url(),
                "AAPL",
                "2024-01-02",
                "2024-01-02",
                &["--feed", feed],
            )
            .await;
        assert_eq!(run.code, Some(0), "{}", run.stderr);
    }
    // The stand-in's IEX carries a tenth of SIP; the second sip run found its day done.
    assert_eq!(
        per_feed(&w).await,
        vec![("iex".to_string(), 100), ("sip".to_string(), 1_000)]
    );
    assert_eq!(
        s.request_log().len(),
        2,
        "the iex day was not taken for done"
    );
    let mut c = w.connect().await;
    let keys: Vec<String> =
        sqlx::query_scalar("SELECT dataset FROM import_progress ORDER BY dataset")
            .fetch_all(&mut c)
            .await
            .unwrap();
    assert_eq!(keys, vec!["quotes", "quotes@iex"]);
    let view: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM quotes_view WHERE symbol = 'AAPL' AND feed = 'iex'",
    )
    .fetch_one(&mut c)
    .await
    .unwrap();
    assert_eq!(view, 100);

    // The Parquet store keeps each feed under its own folder.
    for feed in ["sip", "iex"] {
        let run = w
            .import(
                &s.url(),
                "AAPL",
                "2024-01-02",
                "2024-01-02",
                &["--feed", feed, "--format", "parquet"],
            )
            .await;
        assert_eq!(run.code, Some(0), "{}", run.stderr);
    }
    let sip = w
        .path()
        .join("data/historical/quotes/symbol=AAPL/date=2024-01-02");
    let iex = w
        .path()
        .join("data/historical/feed=iex/quotes/symbol=AAPL/date=2024-01-02");
    assert!(sip.is_dir() && iex.is_dir());

    let status = w.run(&["status"]).await;
    assert_eq!(status.code, Some(0), "{}", status.stderr);
    let rows: Vec<Vec<&str>> = status
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .filter(|l: &Vec<&str>| l.first() == Some(&"quotes"))
        .collect();
    let seen: Vec<(&str, &str, &str)> = rows.iter().map(|l| (l[2], l[3], l[7])).collect();
    assert_eq!(
        seen,
        vec![
            ("iex", "database", "100"),
            ("iex", "parquet", "100"),
            ("sip", "database", "1000"),
            ("sip", "parquet", "1000"),
        ],
        "{}",
        status.stdout
    );

    // load-historical --feed iex reads the iex folder into the iex rows of another database.
    let run = w
        .run(&[
            "load-historical",
            "quotes",
            "AAPL",
            "2024-01-02",
            "2024-01-02",
            "--feed",
            "iex",
            "--database-url",
            "sqlite:data/other.db",
        ])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let other = format!("sqlite://{}", w.path().join("data/other.db").display());
    let mut c = sqlx::SqliteConnection::connect(&other).await.unwrap();
    let loaded: Vec<(String, i64)> = sqlx::query_as(
        "SELECT s.feed, count(*) FROM quotes q JOIN symbols s ON s.id = q.symbol_id GROUP BY s.feed",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    assert_eq!(loaded, vec![("iex".to_string(), 100)]);
}

/// A database made before feeds were told apart (migrations up to 0005) keeps its rows, now
/// labelled sip, and its progress: the same import finds its day done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_from_before_feeds_is_labelled_sip() {
    let s = standin(small(500)).await;
    let w = Workdir::new();
    std::fs::create_dir_all(w.db_path().parent().unwrap()).unwrap();
    {
        let url = format!("sqlite://{}?mode=rwc", w.db_path().display());
        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
        let mut old = sqlx::migrate!("./migrations/sqlite");
        let before: Vec<_> = old
            .migrations
            .iter()
            .filter(|m| m.version <= 5)
            .cloned()
            .collect();
        assert_eq!(before.len(), 5);
        old.migrations = std::borrow::Cow::Owned(before);
        old.run(&mut c).await.unwrap();
        sqlx::raw_sql(
            "INSERT INTO symbols (id, symbol) VALUES (7, 'AAPL'); \
             INSERT INTO quotes VALUES (7, 1704186000000000000, 0, 'Q', 1.5, 1, 'P', 1.6, 2, '[\"R\"]', 'C'); \
             INSERT INTO import_progress (dataset, symbol, day, start_ns, end_ns, last_t, last_seq, done, updated_at) \
             VALUES ('quotes', 'AAPL', '2024-01-02', 1704186000000000000, 1704243600000000000, 1704186000000000000, 0, 1, '2024-01-03T00:00:00Z');",
        )
        .execute(&mut c)
        .await
        .unwrap();
    }
    let run = w
        .import(&s.url(), "AAPL", "2024-01-02", "2024-01-02", &[])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stderr.contains("all 1 days of"), "{}", run.stderr);
    assert_eq!(s.request_log().len(), 0, "its day was done already");
    assert_eq!(per_feed(&w).await, vec![("sip".to_string(), 1)]);
    let mut c = w.connect().await;
    let id: i64 =
        sqlx::query_scalar("SELECT id FROM symbols WHERE symbol = 'AAPL' AND feed = 'sip'")
            .fetch_one(&mut c)
            .await
            .unwrap();
    assert_eq!(id, 7, "the same id");
    let run = w
        .import(
            &s.url(),
            "AAPL",
            "2024-01-02",
            "2024-01-02",
            &["--feed", "iex"],
        )
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(
        per_feed(&w).await,
        vec![("iex".to_string(), 50), ("sip".to_string(), 1)]
    );
}
