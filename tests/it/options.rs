//! The import options: --skip-duplicates, --drop-indexes (including a kill -9 mid-import),
//! the thinning transforms, and settings resolution through `data config show`.

use crate::common::*;
use data::standin::StandinConfig;
use std::time::Duration;

/// Creates the database (the importer's schema) with a secondary index of the user's own on
/// `quotes(t)`: the schema keeps none (the primary key serves time slices), but
/// `--drop-indexes` drops and rebuilds whatever secondary indexes a table has.
async fn with_time_index(w: &Workdir) {
    let url = format!("sqlite:{}", w.db_path().display());
    drop(
        data::store::sql::sqlite::SqliteSink::open(&url, Duration::from_secs(5))
            .await
            .expect("create the database"),
    );
    let mut c = w.connect().await;
    sqlx::query("CREATE INDEX quotes_time_idx ON quotes (t)")
        .execute(&mut c)
        .await
        .expect("create the index");
}

async fn index_names(w: &Workdir) -> Vec<String> {
    let mut c = w.connect().await;
    sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'quotes' AND sql IS NOT NULL",
    )
    .fetch_all(&mut c)
    .await
    .unwrap()
}

async fn scalar(w: &Workdir, sql: &str) -> i64 {
    let mut c = w.connect().await;
    sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skip_duplicates_inserts_a_fresh_range_and_falls_back_to_upsert_on_a_filled_one() {
    let s = standin(small(3_000)).await;
    let w = Workdir::new();
    let run = w
        .import(
            &s.url(),
            "AAPL",
            "2024-01-02",
            "2024-01-02",
            &["--skip-duplicates"],
        )
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stderr.contains("batches of 10000, plain insert"),
        "{}",
        run.stderr
    );
    let expected = expected_rows("AAPL", "2024-01-02", "2024-01-02", 3_000);
    assert_eq!(w.rows("AAPL").await, expected);

    // The same range again, via the environment variable: detected before writing.
    let mut cmd = w.command(&[
        "import-api",
        "quotes",
        "AAPL",
        "2024-01-02",
        "2024-01-02",
        "--api-url",
        &s.url(),
    ]);
    cmd.env("BULK_IMPORT_SKIP_DUPLICATES", "true");
    let run = w.run_cmd(cmd).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("--skip-duplicates: quotes already holds AAPL rows in"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("batches of 10000, upsert"),
        "{}",
        run.stderr
    );
    assert_eq!(w.rows("AAPL").await, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_insert_meeting_existing_rows_mid_import_rewrites_the_batch_as_upsert() {
    use data::pipeline::Sink;
    use data::store::sql::sqlite::{SqliteSink, WriteMode};
    let w = Workdir::new();
    let url = format!("sqlite:{}", w.db_path().display());
    let range = data::time::DateRange::parse("2024-01-02", "2024-01-02").unwrap();
    let generated: Vec<_> =
        data::standin::generate::quotes_between("AAPL", "sip", range.start_ns, range.end_ns, 500)
            .collect();
    let quotes = data::standin::generate::quotes_batch("AAPL", &generated).unwrap();
    assert_eq!(quotes.num_rows(), 500);
    let mut sink = SqliteSink::open(&url, Duration::from_secs(1))
        .await
        .unwrap();
    sink.set_target(&data::dataset::QUOTES, data::dataset::DatasetId::Quotes);
    sink.write_batch(&quotes.slice(100, 100), &[])
        .await
        .unwrap();
    // Another importer wrote rows 100..200; this one believed the range empty.
    sink.set_mode(WriteMode::Insert);
    sink.write_batch(&quotes.slice(0, 150), &[]).await.unwrap();
    assert_eq!(sink.mode(), WriteMode::Upsert, "switched to upsert");
    sink.write_batch(&quotes.slice(150, 350), &[])
        .await
        .unwrap();
    drop(sink);
    assert_eq!(w.count().await, 500, "no row lost or duplicated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_indexes_drops_and_rebuilds_the_time_index() {
    let s = standin(small(2_000)).await;
    let w = Workdir::new();
    with_time_index(&w).await;
    let run = w
        .import(
            &s.url(),
            "AAPL",
            "2024-01-02",
            "2024-01-03",
            &["--drop-indexes", "--skip-duplicates"],
        )
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("[DB] dropped index quotes_time_idx for the import"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("[DB] rebuilt index quotes_time_idx in "),
        "{}",
        run.stderr
    );
    assert_eq!(index_names(&w).await, vec!["quotes_time_idx"]);
    assert_eq!(scalar(&w, "SELECT count(*) FROM dropped_indexes").await, 0);
    assert_eq!(
        w.rows("AAPL").await,
        expected_rows("AAPL", "2024-01-02", "2024-01-03", 2_000)
    );
    // The rebuilt index is complete: a time-only query through it sees every row.
    assert_eq!(
        scalar(
            &w,
            "SELECT count(*) FROM quotes INDEXED BY quotes_time_idx WHERE t > 0"
        )
        .await,
        4_000
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_drop_indexes_import_leaves_a_record_and_the_next_run_rebuilds_the_index() {
    let s = standin(StandinConfig {
        max_page: Some(500),
        delay: Duration::from_millis(60),
        ..small(10_000)
    })
    .await;
    let w = Workdir::new();
    with_time_index(&w).await;
    let url = s.url();
    let args = [
        "import-api",
        "quotes",
        "AAPL",
        "2024-01-02",
        "2024-01-03",
        "--api-url",
        &url,
    ];
    let mut with_drop = args.to_vec();
    with_drop.extend(["--drop-indexes", "--batch-size", "1000"]);
    let mut child = w.command(&with_drop).spawn().expect("spawn");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !w.log().contains("[DB] Batch 2:") {
        assert!(std::time::Instant::now() < deadline, "no batches logged");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.start_kill().unwrap(); // SIGKILL: no chance to clean up
    let status = child.wait().await.unwrap();
    assert_eq!(status.code(), None, "killed by a signal");
    assert!(
        index_names(&w).await.is_empty(),
        "index is dropped while the import runs"
    );
    assert_eq!(scalar(&w, "SELECT count(*) FROM dropped_indexes").await, 1);
    let partial = w.count().await;
    assert!((2_000..20_000).contains(&partial), "{partial}");

    // Any later run that opens the database rebuilds it first, then imports normally.
    let run = w.run(&args).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stderr.contains("[DB] rebuilt index quotes_time_idx, left dropped by an interrupted --drop-indexes import"),
        "{}",
        run.stderr
    );
    assert_eq!(index_names(&w).await, vec!["quotes_time_idx"]);
    assert_eq!(scalar(&w, "SELECT count(*) FROM dropped_indexes").await, 0);
    assert_eq!(
        w.rows("AAPL").await,
        expected_rows("AAPL", "2024-01-02", "2024-01-03", 10_000)
    );
}

/// Parsed fields of `expected_rows` lines: t, bid price, bid size, ask price, ask size.
fn fields(row: &str) -> (i64, String, String, String, String) {
    let f: Vec<&str> = row.split('|').collect();
    (
        f[0].parse().unwrap(),
        f[3].into(),
        f[4].into(),
        f[6].into(),
        f[7].into(),
    )
}

type QuoteRow = (i64, i64, String, f64, i64, String, f64, i64, String, String);

async fn thinned_rows(w: &Workdir, spec: &str) -> Vec<String> {
    let mut c = w.connect().await;
    let rows: Vec<QuoteRow> = sqlx::query_as(
        "SELECT q.t, q.seq, q.bid_exchange, q.bid_price, q.bid_size, q.ask_exchange, q.ask_price, \
         q.ask_size, q.conditions, q.tape FROM quotes_thinned q JOIN thinnings th ON th.id = q.thinning_id \
         WHERE th.spec = ? ORDER BY q.t, q.seq",
    )
    .bind(spec)
    .fetch_all(&mut c)
    .await
    .unwrap();
    rows.into_iter()
        .map(|r| {
            format!(
                "{}|{}|{}|{:?}|{}|{}|{:?}|{}|{}|{}",
                r.0, r.1, r.2, r.3, r.4, r.5, r.6, r.7, r.8, r.9
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_and_nbbo_changes_keep_exactly_the_expected_quotes_in_their_own_table() {
    let s = standin(StandinConfig {
        max_page: Some(333),
        ..small(2_000)
    })
    .await;
    let w = Workdir::new();
    let all = expected_rows("AAPL", "2024-01-02", "2024-01-02", 2_000);

    let run = w
        .import(
            &s.url(),
            "AAPL",
            "2024-01-02",
            "2024-01-02",
            &["--sample", "7", "--batch-size", "100"],
        )
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let every7: Vec<String> = all.iter().step_by(7).cloned().collect();
    assert_eq!(thinned_rows(&w, "sample=7").await, every7);
    assert!(
        run.stderr.contains(&format!(
            "[DONE] AAPL quotes (sample=7 -> quotes_thinned): 2000 quotes in, {} rows kept",
            every7.len()
        )),
        "{}",
        run.stderr
    );

    let run = w
        .import(
            &s.url(),
            "AAPL",
            "2024-01-02",
            "2024-01-02",
            &["--nbbo-changes"],
        )
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let mut last = None;
    let changes: Vec<String> = all
        .iter()
        .filter(|r| {
            let (_, bp, bs, ap, asz) = fields(r);
            let key = Some((bp, bs, ap, asz));
            let keep = key != last;
            last = key;
            keep
        })
        .cloned()
        .collect();
    assert!(changes.len() < all.len() && changes.len() > all.len() / 2);
    assert_eq!(thinned_rows(&w, "nbbo-changes").await, changes);

    let run = w
        .import(
            &s.url(),
            "AAPL",
            "2024-01-02",
            "2024-01-02",
            &["--sample", "3", "--nbbo-changes"],
        )
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let both: Vec<String> = changes.iter().step_by(3).cloned().collect();
    assert_eq!(thinned_rows(&w, "nbbo-changes,sample=3").await, both);

    assert_eq!(
        w.count().await,
        0,
        "raw quotes table untouched by thinned imports"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregate_writes_one_row_per_interval_with_the_last_quote_and_its_count() {
    let s = standin(small(20_000)).await;
    let w = Workdir::new();
    let (start, end) = ("2024-01-02T14:30:00Z", "2024-01-02T14:40:00Z");
    let run = w
        .import(&s.url(), "AAPL", start, end, &["--aggregate", "1000ms"])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);

    let all = expected_rows("AAPL", start, end, 20_000);
    // (second, last quote's row, count), computed from the raw quotes.
    let mut expected: Vec<(i64, String, i64)> = Vec::new();
    for r in &all {
        let t = fields(r).0;
        let sec = t - t.rem_euclid(1_000_000_000);
        match expected.last_mut() {
            Some((s, last, n)) if *s == sec => {
                *last = r.clone();
                *n += 1;
            }
            _ => expected.push((sec, r.clone(), 1)),
        }
    }
    let mut c = w.connect().await;
    let got: Vec<(i64, i64, f64, i64, f64, i64, i64)> = sqlx::query_as(
        "SELECT bucket_t_ns, last_t_ns, bid_price, bid_size, ask_price, ask_size, quote_count \
         FROM quotes_aggregated_view WHERE thinning = 'aggregate=1s' AND symbol = 'AAPL' ORDER BY bucket_t_ns",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    assert_eq!(got.len(), expected.len());
    for (g, (sec, last, n)) in got.iter().zip(&expected) {
        let (t, bp, bs, ap, asz) = fields(last);
        assert_eq!(
            (
                g.0,
                g.1,
                format!("{:?}", g.2),
                g.3.to_string(),
                format!("{:?}", g.4),
                g.5.to_string(),
                g.6
            ),
            (*sec, t, bp, bs, ap, asz, *n)
        );
    }
    assert_eq!(got.iter().map(|g| g.6).sum::<i64>(), all.len() as i64);
    assert!(
        run.stderr
            .contains(&format!("{} quotes in, {} rows kept", all.len(), got.len())),
        "{}",
        run.stderr
    );
    assert_eq!(w.count().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_thinning_arguments_are_one_line_errors() {
    let w = Workdir::new();
    for (extra, code, needle) in [
        (
            vec!["--aggregate", "2d"],
            2,
            "aggregate width \"2d\" has unknown unit \"d\"",
        ),
        (vec!["--aggregate", "0s"], 2, "must be more than zero"),
        (
            vec!["--sample", "0"],
            2,
            "invalid value '0' for '--sample <N>'",
        ),
    ] {
        let mut args = vec![
            "import-api",
            "quotes",
            "AAPL",
            "2024-01-02",
            "2024-01-02",
            "--api-url",
            "http://127.0.0.1:9",
        ];
        args.extend(extra);
        let run = w.run(&args).await;
        assert_one_line_failure(&run, code, needle);
        assert_eq!(run.stderr.trim_end().lines().count(), 1, "{}", run.stderr);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_show_prints_each_value_with_its_source_and_redacts_secrets() {
    let w = Workdir::new();
    std::fs::create_dir_all(w.path().join("config")).unwrap();
    std::fs::write(
        w.path().join("config/default.toml"),
        "batch_size = 2500\nfeed = \"iex\"\nmax_attempts = 4\n",
    )
    .unwrap();
    let mut cmd = w.command(&["config", "show", "--batch-size", "700"]);
    cmd.env("APCA_API_FEED", "sip")
        .env("DATABASE_URL", "postgres://me:pa55word@db.example/market");
    let run = w.run_cmd(cmd).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let out = &run.stdout;
    let line = |key: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("{key} ")))
            .unwrap_or("")
            .to_string()
    };
    assert!(
        line("batch_size").contains("= 700") && line("batch_size").ends_with("(flag --batch-size)"),
        "{out}"
    );
    assert!(
        line("feed").contains("= sip") && line("feed").ends_with("(env APCA_API_FEED)"),
        "{out}"
    );
    assert!(
        line("max_attempts").contains("= 4")
            && line("max_attempts").ends_with("(file config/default.toml)"),
        "{out}"
    );
    assert!(
        line("request_timeout").contains("= 60") && line("request_timeout").ends_with("(default)"),
        "{out}"
    );
    assert!(
        line("database_url").contains("postgres://me:<redacted>@db.example/market"),
        "{out}"
    );
    assert!(line("APCA_API_SECRET_KEY").contains("<redacted>"), "{out}");
    for secret in [SECRET, KEY, "pa55word"] {
        assert!(
            !out.contains(secret) && !run.stderr.contains(secret),
            "{secret} leaked: {out}"
        );
    }
    assert_eq!(out.lines().count(), data::config::KEYS.len() + 2);

    // --config names another file; a bad value there is reported with its key and file.
    std::fs::write(w.path().join("other.toml"), "batch_size = 0\n").unwrap();
    let run = w.run(&["config", "show", "--config", "other.toml"]).await;
    assert_one_line_failure(
        &run,
        2,
        "invalid batch_size \"0\" from file other.toml: must be between 1 and 1000000",
    );
    std::fs::write(w.path().join("broken.toml"), "batch_size = [\n").unwrap();
    let run = w.run(&["config", "show", "--config", "broken.toml"]).await;
    assert_one_line_failure(&run, 2, "settings file broken.toml is not valid TOML");
    let mut cmd = w.command(&["import-api", "quotes", "AAPL", "2024-01-02", "2024-01-02"]);
    cmd.env("HISTORICAL_DATA_FORMAT", "csv");
    let run = w.run_cmd(cmd).await;
    assert_one_line_failure(
        &run,
        2,
        "invalid format \"csv\" from env HISTORICAL_DATA_FORMAT: must be database or parquet",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_slices_across_symbols_are_served_by_the_primary_key() {
    let s = standin(small(2_000)).await;
    let w = Workdir::new();
    let run = w
        .import(&s.url(), "AAPL,MSFT", "2024-01-02", "2024-01-03", &[])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(index_names(&w).await.is_empty(), "no secondary index");
    // 2024-01-02 14:30-15:30 UTC, both symbols.
    let (from, until) = (1_704_205_800_000_000_000_i64, 1_704_209_400_000_000_000_i64);
    let slice = "SELECT count(*) FROM quotes WHERE t BETWEEN ?1 AND ?2";
    let mut c = w.connect().await;
    let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(&format!("EXPLAIN QUERY PLAN {slice}"))
        .bind(from)
        .bind(until)
        .fetch_all(&mut c)
        .await
        .unwrap();
    assert!(
        plan.iter()
            .any(|p| p.3.contains("PRIMARY KEY (ANY(symbol_id) AND t>? AND t<?)")),
        "the import's statistics let the planner skip-scan the key: {plan:?}"
    );
    let counted: i64 = sqlx::query_scalar(slice)
        .bind(from)
        .bind(until)
        .fetch_one(&mut c)
        .await
        .unwrap();
    let scanned: i64 =
        sqlx::query_scalar("SELECT count(*) FROM quotes NOT INDEXED WHERE t + 0 BETWEEN ?1 AND ?2")
            .bind(from)
            .bind(until)
            .fetch_one(&mut c)
            .await
            .unwrap();
    assert_eq!(counted, scanned);
    assert!(counted > 0 && counted < 8_000, "{counted}");
}

/// Issue 35: the repo's settings file once set every key, so `config show` run in the repo
/// said every value came from the file. It lists them commented out: with it, every value
/// is `default`; with one key set in it, that key is `file` and the rest `default`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_show_marks_only_the_keys_a_settings_file_sets() {
    let w = Workdir::new();
    std::fs::create_dir_all(w.path().join("config")).unwrap();
    let repo_file = include_str!("../../config/default.toml");
    std::fs::write(w.path().join("config/default.toml"), repo_file).unwrap();
    let keys = data::config::KEYS.len();
    // Without the variables the test harness sets for imports (fast retries, no pacing).
    let show = || {
        let mut cmd = w.command(&["config", "show"]);
        cmd.env_remove("BULK_IMPORT_RETRY_BASE_MS")
            .env_remove("BULK_IMPORT_RATE_LIMIT");
        w.run_cmd(cmd)
    };
    let run = show().await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let settings: Vec<&str> = run.stdout.lines().take(keys).collect();
    assert_eq!(settings.len(), keys, "{}", run.stdout);
    assert!(
        settings.iter().all(|l| l.ends_with("(default)")),
        "{}",
        run.stdout
    );
    let one = repo_file.replace("# batch_size = 10000", "batch_size = 2500");
    assert_ne!(one, repo_file);
    std::fs::write(w.path().join("config/default.toml"), one).unwrap();
    let run = show().await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let settings: Vec<&str> = run.stdout.lines().take(keys).collect();
    for line in settings {
        match line.starts_with("batch_size ") {
            true => assert!(
                line.contains("= 2500") && line.ends_with("(file config/default.toml)"),
                "{line}"
            ),
            false => assert!(line.ends_with("(default)"), "{line}"),
        }
    }
}
