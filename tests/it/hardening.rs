//! Regression tests of issue 30's adversarial findings about files, settings, concurrency
//! and what a run says: each named after the failure it guards, each through the real
//! binary. (Hostile API servers: `hostile.rs`.)

use crate::common::{assert_one_line_failure, small, standin, Workdir};
use arrow_array::RecordBatch;
use data::standin::StandinConfig;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use std::path::{Path, PathBuf};

fn day_file(w: &Workdir, day: &str) -> PathBuf {
    w.path().join(format!(
        "data/historical/quotes/symbol=AAPL/date={day}/part-0.parquet"
    ))
}

fn read_all(p: &Path) -> Vec<RecordBatch> {
    ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(p).unwrap())
        .unwrap()
        .build()
        .unwrap()
        .map(|b| b.unwrap())
        .collect()
}

/// Writes `batches` to `p` as another tool would: its own compression, the given columns.
fn rewrite(p: &Path, batches: &[RecordBatch], compression: Compression) {
    let props = WriterProperties::builder()
        .set_compression(compression)
        .build();
    let file = std::fs::File::create(p).unwrap();
    let mut w = ArrowWriter::try_new(file, batches[0].schema(), Some(props)).unwrap();
    for b in batches {
        w.write(b).unwrap();
    }
    w.close().unwrap();
}

/// Two days of AAPL quotes in the Parquet store of a fresh folder (100 a day).
async fn two_days_in_the_store() -> (Workdir, data::standin::Standin) {
    let s = standin(small(100)).await;
    let w = Workdir::new();
    let run = w
        .import(
            &s.url(),
            "AAPL",
            "2024-01-03",
            "2024-01-04",
            &["--format", "parquet"],
        )
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    (w, s)
}

async fn load(w: &Workdir) -> crate::common::Run {
    w.run(&[
        "load-historical",
        "quotes",
        "AAPL",
        "2024-01-03",
        "2024-01-04",
    ])
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_historical_refuses_a_day_file_without_the_expected_columns() {
    let (w, _s) = two_days_in_the_store().await;
    let p = day_file(&w, "2024-01-04");
    let batches: Vec<RecordBatch> = read_all(&p)
        .into_iter()
        .map(|b| {
            let keep: Vec<usize> = (0..b.num_columns())
                .filter(|&i| b.schema().field(i).name() != "bid_price")
                .collect();
            b.project(&keep).unwrap()
        })
        .collect();
    rewrite(&p, &batches, Compression::UNCOMPRESSED);
    let run = load(&w).await;
    assert_one_line_failure(
        &run,
        1,
        "date=2024-01-04/part-0.parquet is not a file of quotes: it has no column bid_price",
    );
    let loaded: i64 = w.scalar("SELECT count(*) FROM quotes").await;
    assert_eq!(loaded, 100, "the good day only; nothing of the bad one");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_historical_refuses_a_day_file_holding_another_days_rows() {
    let (w, _s) = two_days_in_the_store().await;
    std::fs::copy(day_file(&w, "2024-01-03"), day_file(&w, "2024-01-04")).unwrap();
    let run = load(&w).await;
    assert_one_line_failure(&run, 1, "outside the day it is named for (2024-01-04)");
    let loaded: i64 = w.scalar("SELECT count(*) FROM quotes").await;
    assert_eq!(loaded, 100, "nothing of the mislabelled file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_historical_refuses_a_truncated_day_file_and_import_fetches_it_again() {
    let (w, s) = two_days_in_the_store().await;
    let p = day_file(&w, "2024-01-04");
    let len = std::fs::metadata(&p).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
    f.set_len(len / 2).unwrap();
    let run = load(&w).await;
    assert_one_line_failure(&run, 1, "date=2024-01-04/part-0.parquet");
    // A plain rerun of the import does not take the cut file for a finished day.
    let run = w
        .import(
            &s.url(),
            "AAPL",
            "2024-01-03",
            "2024-01-04",
            &["--format", "parquet"],
        )
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stderr.contains("has no Parquet footer"),
        "{}",
        run.stderr
    );
    let run = load(&w).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let loaded: i64 = w.scalar("SELECT count(*) FROM quotes").await;
    assert_eq!(loaded, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_historical_reads_files_rewritten_with_snappy_gzip_or_lz4() {
    let (w, _s) = two_days_in_the_store().await;
    let direct = Workdir::new();
    let p3 = day_file(&w, "2024-01-03");
    let p4 = day_file(&w, "2024-01-04");
    rewrite(&p3, &read_all(&p3), Compression::SNAPPY);
    rewrite(
        &p4,
        &read_all(&p4),
        Compression::GZIP(parquet::basic::GzipLevel::default()),
    );
    let run = load(&w).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(w.scalar("SELECT count(*) FROM quotes").await, 200);
    rewrite(&p4, &read_all(&p4), Compression::LZ4_RAW);
    let run = direct
        .run(&[
            "load-historical",
            "quotes",
            "AAPL",
            "2024-01-04",
            "2024-01-04",
            "--historical-path",
            &w.path().join("data/historical").display().to_string(),
        ])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(direct.scalar("SELECT count(*) FROM quotes").await, 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_url_without_a_database_or_another_scheme_is_a_usage_error() {
    let w = Workdir::new();
    for (url, needle) in [
        ("postgres://", "a PostgreSQL URL must name its database"),
        (
            "postgres://root@127.0.0.1:5432",
            "a PostgreSQL URL must name its database",
        ),
        (
            "postgresql://root@127.0.0.1:5432/",
            "a PostgreSQL URL must name its database",
        ),
        ("mysql://root@localhost/db", "unsupported database"),
    ] {
        let run = w
            .run(&[
                "import-api",
                "quotes",
                "AAPL",
                "2024-01-03",
                "2024-01-03",
                "--database-url",
                url,
            ])
            .await;
        assert_one_line_failure(&run, 2, needle);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_setting_of_the_wrong_toml_type_is_refused() {
    let w = Workdir::new();
    std::fs::write(w.path().join("settings.toml"), "batch_size = \"5\"\n").unwrap();
    let run = w
        .run(&["config", "show", "--config", "settings.toml"])
        .await;
    assert_one_line_failure(
        &run,
        2,
        "invalid batch_size in file settings.toml: expected a whole number, found string",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_file_that_cannot_be_written_is_a_warning_not_silence() {
    let s = standin(small(50)).await;
    let w = Workdir::new();
    let run = w
        .import(
            &s.url(),
            "AAPL",
            "2024-01-03",
            "2024-01-03",
            &["--log-file", "/dev/full"],
        )
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(w.count().await, 50);
    let warnings = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("warning: cannot write the log file /dev/full"))
        .count();
    assert_eq!(warnings, 1, "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_importers_starting_on_a_new_sqlite_file_both_finish() {
    let s = standin(small(200)).await;
    for _ in 0..6 {
        let w = Workdir::new();
        let url = s.url();
        let (a, b) = tokio::join!(
            w.import(&url, "AAPL", "2024-01-03", "2024-01-03", &[]),
            w.import(&url, "MSFT", "2024-01-03", "2024-01-03", &[]),
        );
        assert_eq!(a.code, Some(0), "{}", a.stderr);
        assert_eq!(b.code, Some(0), "{}", b.stderr);
        assert_eq!(w.count().await, 400);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_import_started_twice_at_once_is_refused_by_the_second() {
    let s = standin(StandinConfig {
        delay: std::time::Duration::from_millis(400),
        max_page: Some(50),
        ..small(1_000)
    })
    .await;
    let w = Workdir::new();
    let url = s.url();
    let args = [
        "import-api",
        "quotes",
        "AAPL",
        "2024-01-03",
        "2024-01-04",
        "--api-url",
        &url,
        "--concurrency",
        "1",
    ];
    let first = w
        .command(&args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !w.log().contains("[DB] Batch") && !w.log().contains("[API] fetching") {
        assert!(std::time::Instant::now() < deadline, "{}", w.log());
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let second = w.run(&args).await;
    assert_one_line_failure(
        &second,
        1,
        "another import of quotes of AAPL is running on this store (lock data/market.db.lock)",
    );
    let first = crate::common::Run::from(first.wait_with_output().await.expect("wait"));
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    assert_eq!(w.count().await, 2_000);
    // Every line of the shared log names its run: two ids, the second's error among them.
    let runs: std::collections::BTreeSet<String> = w
        .log()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1).map(str::to_string))
        .collect();
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert!(
        runs.iter().all(|r| r.starts_with("run=") && r.len() == 10),
        "{runs:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_from_the_standin_over_http_are_marked_synthetic() {
    // The stand-in as the `alpaca-standin` binary serves it: it says its data is synthetic.
    let s = standin(StandinConfig {
        says_synthetic: true,
        ..small(50)
    })
    .await;
    let w = Workdir::new();
    // No Alpaca keys needed, and none sent: the stand-in is not Alpaca.
    let mut cmd = w.command(&[
        "import-api",
        "quotes",
        "AAPL",
        "2024-01-03",
        "2024-01-03",
        "--api-url",
        &s.url(),
    ]);
    cmd.env_remove("APCA_API_KEY_ID")
        .env_remove("APCA_API_SECRET_KEY");
    let run = w.run_cmd(cmd).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stderr.contains("[STANDIN]"), "{}", run.stderr);
    let synthetic: i64 = w
        .scalar("SELECT synthetic FROM symbols WHERE symbol = 'AAPL'")
        .await;
    assert_eq!(synthetic, 1);
    let status = w.run(&["status", "--json"]).await;
    assert_eq!(status.code, Some(0), "{}", status.stderr);
    assert!(
        status.stdout.contains("\"synthetic\": true"),
        "{}",
        status.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bar_stored_while_its_minute_was_open_is_fetched_again_and_updated() {
    use data::time::parse_rfc3339_nanos;
    // 15:30:30 New York on 2024-01-03: the 15:30 bar is half a minute old.
    let mid = "2024-01-03T20:30:30Z";
    let later = "2024-01-04T02:00:00Z";
    let at = |now: &str| StandinConfig {
        fixed_now: Some(parse_rfc3339_nanos(now).unwrap()),
        ..small(20_000)
    };
    let w = Workdir::new();
    let import = |s: &data::standin::Standin, now: &str| {
        let mut cmd = w.command(&[
            "import-api",
            "bars",
            "AAPL",
            "2024-01-03",
            "2024-01-03",
            "--timeframe",
            "1Min",
            "--sip-delay",
            "0",
            "--api-url",
            &s.url(),
        ]);
        cmd.env(data::run::TEST_NOW_ENV, now);
        w.run_cmd(cmd)
    };
    let early = standin(at(mid)).await;
    let run = import(&early, mid).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let bar = "SELECT CAST(volume AS REAL) FROM bars WHERE t = (SELECT max(t) FROM bars)";
    let open_volume = w.scalar_f64(bar).await;
    let open_count: i64 = w.scalar("SELECT count(*) FROM bars").await;
    let open_t: i64 = w.scalar("SELECT max(t) FROM bars").await;
    assert_eq!(open_t, parse_rfc3339_nanos("2024-01-03T20:30:00Z").unwrap());
    drop(early);
    let done = standin(at(later)).await;
    let run = import(&done, later).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let full_volume: f64 = w
        .scalar_f64(&format!(
            "SELECT CAST(volume AS REAL) FROM bars WHERE t = {open_t}"
        ))
        .await;
    assert!(
        full_volume > open_volume,
        "{full_volume} after {open_volume}"
    );
    // Every bar now equals the stand-in's whole day, the once-open one included.
    let trades = data::standin::generate::DayTrades::new(
        "AAPL",
        "sip",
        chrono::NaiveDate::from_ymd_opt(2024, 1, 3).unwrap(),
        20_000,
    )
    .unwrap();
    let expected = data::standin::generate::day_bars(
        &trades,
        chrono::NaiveDate::from_ymd_opt(2024, 1, 3).unwrap(),
        60_000_000_000,
    );
    let count: i64 = w.scalar("SELECT count(*) FROM bars").await;
    assert_eq!(count as usize, expected.len());
    assert!(count > open_count);
    let want = expected.iter().find(|b| b.t == open_t).unwrap();
    assert_eq!(full_volume, want.volume);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_on_a_read_only_database_reads_it_and_an_import_says_read_only() {
    let s = standin(small(50)).await;
    let w = Workdir::new();
    let run = w
        .import(&s.url(), "AAPL", "2024-01-03", "2024-01-03", &[])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    // Root ignores permission bits; this test means something only for other users.
    let root = unsafe { libc::geteuid() } == 0;
    let dir = w.path().join("data");
    let set = |mode: u32| {
        use std::os::unix::fs::PermissionsExt;
        for p in [dir.join("market.db"), dir.clone()] {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        }
    };
    set(0o555);
    let status = w.run(&["status"]).await;
    let import = w
        .import(&s.url(), "AAPL", "2024-01-04", "2024-01-04", &[])
        .await;
    set(0o755);
    assert_eq!(status.code, Some(0), "{}", status.stderr);
    assert!(status.stdout.contains("AAPL"), "{}", status.stdout);
    if !root {
        assert_one_line_failure(&import, 1, "read-only");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_parquet_import_says_it_kept_only_whole_files_not_committed_rows() {
    let s = standin(StandinConfig {
        max_page: Some(500),
        delay: std::time::Duration::from_millis(60),
        ..small(10_000)
    })
    .await;
    let w = Workdir::new();
    let mut cmd = w.command(&[
        "import-api",
        "quotes",
        "AAPL",
        "2024-01-02",
        "2024-01-03",
        "--api-url",
        &s.url(),
        "--batch-size",
        "1000",
        "--format",
        "parquet",
        "--concurrency",
        "1",
    ]);
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().expect("spawn");
    let pid = child.id().expect("pid");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !w.log().contains("[FILE] Batch 2:") {
        assert!(std::time::Instant::now() < deadline, "no batches logged");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    unsafe { libc::kill(pid as i32, libc::SIGINT) };
    let out = crate::common::Run::from(child.wait_with_output().await.expect("wait"));
    assert_eq!(out.code, Some(130), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("only the day (month) files written whole are kept, the ones in progress were discarded"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("rows in 2 batches were committed"),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_symbol_summary_of_many_symbols_is_one_short_line() {
    let s = standin(small(10)).await;
    let w = Workdir::new();
    let symbols: Vec<String> = (0..26)
        .map(|i| format!("S{}", (b'A' + i as u8) as char))
        .collect();
    let list = symbols.join(",");
    let run = w
        .import(&s.url(), &list, "2024-01-03", "2024-01-03", &[])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let line = run
        .stderr
        .lines()
        .find(|l| l.contains("quotes fetched per symbol:"))
        .unwrap_or_else(|| panic!("{}", run.stderr));
    assert!(line.contains("SA 10, SB 10"), "{line}");
    assert!(line.ends_with("and 6 more symbols with 60 rows"), "{line}");
    assert!(!line.contains("SZ"), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinated_importer_alone_does_not_speak_of_others() {
    let Some(db) = crate::postgres::PgDb::new().await else {
        return;
    };
    let s = standin(small(100)).await;
    let w = Workdir::new();
    let run = w
        .import(
            &s.url(),
            "AAPL",
            "2024-01-03",
            "2024-01-04",
            &["--database-url", &db.url, "--coordinate"],
        )
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "[COORD] this importer fetched 2 of the job's 2 shards (0 taken over from importers whose leases expired); no other importer fetched any"
        ),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_into_a_marked_parquet_store_finds_every_file_whole() {
    // The stand-in's rows mark the symbol's folder with a `.synthetic` file: not a day file.
    let s = standin(StandinConfig {
        says_synthetic: true,
        ..small(100)
    })
    .await;
    let w = Workdir::new();
    let args = ["--format", "parquet"];
    let first = w
        .import(&s.url(), "AAPL", "2024-01-03", "2024-01-04", &args)
        .await;
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    let again = w
        .import(&s.url(), "AAPL", "2024-01-03", "2024-01-04", &args)
        .await;
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    assert!(
        !again.stderr.contains("no Parquet footer"),
        "{}",
        again.stderr
    );
    assert!(
        again.stderr.contains("nothing to fetch"),
        "{}",
        again.stderr
    );
}

/// A store written before `t_ns` (a nanosecond `t` alone) loads exactly, and a file a tool
/// rewrote keeping `t` alone, in microseconds, loads at the microsecond (its row groups
/// pruned in the right unit, not skipped as if they held nanoseconds).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_without_t_ns_load_and_older_ones_exactly() {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Int64Type, TimestampMicrosecondType};
    use arrow_array::{Array, ArrayRef, TimestampNanosecondArray};
    use arrow_schema::{Field, Schema};
    use std::sync::Arc;
    let (w, _s) = two_days_in_the_store().await;
    let p3 = day_file(&w, "2024-01-03");
    let p4 = day_file(&w, "2024-01-04");
    let mut want: Vec<i64> = Vec::new();
    // 2024-01-03 as an earlier version wrote it: `t` the exact nanoseconds, no `t_ns`.
    let older: Vec<RecordBatch> = read_all(&p3)
        .iter()
        .map(|b| {
            let ns = b
                .column_by_name("t_ns")
                .unwrap()
                .as_primitive::<Int64Type>();
            want.extend(ns.values().iter());
            let t = TimestampNanosecondArray::from(ns.values().to_vec()).with_timezone("UTC");
            let mut fields = vec![Field::new("t", t.data_type().clone(), false)];
            let mut cols: Vec<ArrayRef> = vec![Arc::new(t)];
            for (f, c) in b.schema().fields().iter().zip(b.columns()).skip(2) {
                fields.push(f.as_ref().clone());
                cols.push(c.clone());
            }
            RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).unwrap()
        })
        .collect();
    rewrite(&p3, &older, Compression::SNAPPY);
    // 2024-01-04 without `t_ns`: `t` alone, in microseconds.
    let micros: Vec<RecordBatch> = read_all(&p4)
        .iter()
        .map(|b| {
            let t = b.column(0).as_primitive::<TimestampMicrosecondType>();
            want.extend(t.values().iter().map(|v| v * 1_000));
            let keep: Vec<usize> = (0..b.num_columns()).filter(|&i| i != 1).collect();
            b.project(&keep).unwrap()
        })
        .collect();
    rewrite(&p4, &micros, Compression::SNAPPY);
    let run = load(&w).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let got: Vec<i64> = sqlx::query_scalar("SELECT t FROM quotes ORDER BY t, seq")
        .fetch_all(&mut w.connect().await)
        .await
        .unwrap();
    assert_eq!(got, want);
    assert!(
        want[..100].iter().any(|t| t % 1_000 != 0),
        "nanoseconds kept"
    );
}
