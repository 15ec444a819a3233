//! The Parquet store in an S3 bucket, against a real S3-compatible server: imports whose
//! objects appear only whole, resume by listing, a kill -9 mid-import, status, archive and
//! load-historical back into SQLite, and one-line errors that never show a credential.
//!
//! The server's endpoint comes from DATA_TEST_S3_ENDPOINT (`.ci/run` starts moto's server,
//! `moto_server -p 5055`, and sets it to http://127.0.0.1:5055). Without it every test here
//! prints that it was NOT RUN and returns. Each test works in its own fresh bucket.

use crate::common::*;
use data::standin::StandinConfig;
use futures_util::TryStreamExt;
use object_store::ObjectStore;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

pub const S3_ENV: &str = "DATA_TEST_S3_ENDPOINT";
const KEY_ID: &str = "test-key-id";
const SECRET_KEY: &str = "test-secret-never-shown";

/// A fresh bucket on the test server.
struct Bucket {
    endpoint: String,
    name: String,
}

impl Bucket {
    async fn new() -> Option<Bucket> {
        let Ok(endpoint) = std::env::var(S3_ENV) else {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "S3 test NOT RUN: {S3_ENV} is not set (start `moto_server -p 5055` from PyPI's \
                 moto[server] and set {S3_ENV}=http://127.0.0.1:5055)"
            );
            return None;
        };
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "it-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        // Creating a bucket is the server admin's job, not the tool's: a plain PUT (moto
        // does not check signatures).
        let created = reqwest::Client::new()
            .put(format!("{endpoint}/{name}"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("the S3 server at {endpoint} did not answer: {e}"));
        assert!(created.status().is_success(), "cannot create {name}");
        Some(Bucket { endpoint, name })
    }

    fn url(&self, prefix: &str) -> String {
        format!("s3://{}/{prefix}", self.name)
    }

    /// `data ARGS` in `w` with the standard AWS variables naming this server.
    fn command(&self, w: &Workdir, args: &[&str]) -> tokio::process::Command {
        let mut cmd = w.command(args);
        for (k, v) in self.vars() {
            cmd.env(k, v);
        }
        cmd
    }

    fn vars(&self) -> [(&'static str, String); 5] {
        [
            ("AWS_ACCESS_KEY_ID", KEY_ID.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ALLOW_HTTP", "true".into()),
        ]
    }

    async fn run(&self, w: &Workdir, args: &[&str]) -> Run {
        let run = w.run_cmd(self.command(w, args)).await;
        assert!(!run.stderr.contains(SECRET_KEY) && !run.stdout.contains(SECRET_KEY));
        assert!(
            !w.log().contains(SECRET_KEY),
            "the secret key is in the log"
        );
        run
    }

    fn store(&self) -> object_store::aws::AmazonS3 {
        object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(&self.name)
            .with_endpoint(&self.endpoint)
            .with_allow_http(true)
            .with_region("us-east-1")
            .with_access_key_id(KEY_ID)
            .with_secret_access_key(SECRET_KEY)
            .build()
            .expect("store")
    }

    /// Every object in the bucket, sorted.
    async fn keys(&self) -> Vec<String> {
        let listed: Vec<_> = self.store().list(None).try_collect().await.expect("list");
        let mut keys: Vec<String> = listed.iter().map(|m| m.location.to_string()).collect();
        keys.sort();
        keys
    }

    /// The rows of a stored Parquet object, read as an outside reader would.
    async fn rows(&self, key: &str) -> i64 {
        let bytes = self
            .store()
            .get(&key.into())
            .await
            .expect("get")
            .bytes()
            .await
            .expect("body");
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
            .unwrap_or_else(|e| panic!("{key} is not a whole Parquet file: {e}"));
        reader.metadata().file_metadata().num_rows()
    }
}

fn day_keys(prefix: &str, symbol: &str, days: &[&str]) -> Vec<String> {
    days.iter()
        .map(|d| format!("{prefix}/quotes/symbol={symbol}/date={d}/part-0.parquet"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_into_a_bucket_resumes_by_listing_and_loads_back_exactly() {
    let Some(b) = Bucket::new().await else {
        return;
    };
    let s = standin(small(100)).await;
    let w = Workdir::new();
    let url = b.url("lake/h");
    let import = |end: &'static str| {
        let url = url.clone();
        let api = s.url();
        let (b, w) = (&b, &w);
        async move {
            b.run(
                w,
                &[
                    "import-api",
                    "quotes",
                    "AAPL,MSFT",
                    "2024-01-02",
                    end,
                    "--api-url",
                    &api,
                    "--format",
                    "parquet",
                    "--historical-path",
                    &url,
                ],
            )
            .await
        }
    };
    let run = import("2024-01-03").await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let under = format!("under s3://{}/lake/h/quotes", b.name);
    assert!(run.stderr.contains(&under), "{}", run.stderr);
    let days = ["2024-01-02", "2024-01-03"];
    let mut want = day_keys("lake/h", "AAPL", &days);
    want.extend(day_keys("lake/h", "MSFT", &days));
    // Nothing but the day files: no temporary or partial object, no local folder.
    assert_eq!(b.keys().await, want);
    for key in &want {
        assert_eq!(b.rows(key).await, 100, "{key}");
    }
    assert!(!w.path().join("s3:").exists());

    // Resume by listing: the days held are not asked again; only the new one is.
    let before = s.request_log().len();
    let run = import("2024-01-04").await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let asked: Vec<String> = s.request_log()[before..]
        .iter()
        .map(|r| r.start.clone().unwrap_or_default())
        .collect();
    assert!(!asked.is_empty());
    assert!(
        asked.iter().all(|start| start.starts_with("2024-01-04")),
        "asked again for held days: {asked:?}"
    );
    assert_eq!(b.keys().await.len(), 6);
    let before = s.request_log().len();
    let run = import("2024-01-04").await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(
        s.request_log().len(),
        before,
        "a complete store was asked again"
    );

    // status lists the bucket as it lists a folder.
    let status = b
        .run(&w, &["status", "--historical-path", &url, "--json"])
        .await;
    assert_eq!(status.code, Some(0), "{}", status.stderr);
    let json: serde_json::Value = serde_json::from_str(&status.stdout).expect("json");
    let held = json["holdings"].as_array().expect("holdings");
    assert_eq!(held.len(), 2, "{json}");
    for h in held {
        assert_eq!(h["store"], "parquet");
        assert_eq!(h["rows"], 300);
        assert_eq!(h["first"], "2024-01-02");
        assert_eq!(h["last"], "2024-01-04");
    }

    // load-historical reads the bucket back into SQLite: exactly the stand-in's rows.
    for symbol in ["AAPL", "MSFT"] {
        let run = b
            .run(
                &w,
                &[
                    "load-historical",
                    "quotes",
                    symbol,
                    "2024-01-02",
                    "2024-01-04",
                    "--historical-path",
                    &url,
                ],
            )
            .await;
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        assert_eq!(
            w.rows(symbol).await,
            expected_rows(symbol, "2024-01-02", "2024-01-04", 100)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_import_leaves_only_whole_objects_and_a_rerun_completes_it() {
    let Some(b) = Bucket::new().await else {
        return;
    };
    let s = standin(StandinConfig {
        delay: Duration::from_millis(40),
        ..small(1_000)
    })
    .await;
    let w = Workdir::new();
    let url = b.url("h");
    let args = [
        "import-api",
        "quotes",
        "AAPL",
        "2024-01-02",
        "2024-01-12",
        "--api-url",
        &s.url(),
        "--format",
        "parquet",
        "--historical-path",
        &url,
        "--concurrency",
        "1",
        "--batch-size",
        "100",
    ];
    let mut child = b.command(&w, &args).spawn().expect("spawn");
    // Killed once at least one day file is in the bucket, while the next is being written.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !w.log().contains("rows in s3://") {
        assert!(std::time::Instant::now() < deadline, "no file was written");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    child.start_kill().expect("kill -9");
    let _ = child.wait().await;
    let keys = b.keys().await;
    assert!(!keys.is_empty() && keys.len() < 9, "{keys:?}");
    for key in &keys {
        assert!(key.ends_with("/part-0.parquet"), "{key}");
        assert_eq!(b.rows(key).await, 1_000, "{key} is not a whole day");
    }

    let run = b.run(&w, &args).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let days = [
        "2024-01-02",
        "2024-01-03",
        "2024-01-04",
        "2024-01-05",
        "2024-01-08",
        "2024-01-09",
        "2024-01-10",
        "2024-01-11",
        "2024-01-12",
    ];
    assert_eq!(b.keys().await, day_keys("h", "AAPL", &days));
    let run = b
        .run(
            &w,
            &[
                "load-historical",
                "quotes",
                "AAPL",
                "2024-01-02",
                "2024-01-12",
                "--historical-path",
                &url,
            ],
        )
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(
        w.rows("AAPL").await,
        expected_rows("AAPL", "2024-01-02", "2024-01-12", 1_000)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archive_moves_old_days_into_the_bucket() {
    let Some(b) = Bucket::new().await else {
        return;
    };
    let s = standin(small(500)).await;
    let w = Workdir::new();
    let run = w
        .import(&s.url(), "AAPL", "2024-01-02", "2024-01-05", &[])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let url = b.url("archive");
    let archive = ["archive", "quotes", "AAPL", "--older-than", "2024-01-04"];
    let run = b
        .run(&w, &[&archive[..], &["--historical-path", &url]].concat())
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let line = format!(
        "[ARCHIVE] AAPL quotes 2024-01-02: 500 database rows -> s3://{}/archive/quotes/symbol=AAPL/date=2024-01-02/part-0.parquet (500 rows, verified), 500 deleted from the database",
        b.name
    );
    assert!(run.stderr.contains(&line), "{}", run.stderr);
    assert_eq!(w.count().await, 1_000);
    assert_eq!(
        b.keys().await,
        day_keys("archive", "AAPL", &["2024-01-02", "2024-01-03"])
    );
    // And back: the database holds every row again, exactly.
    let run = b
        .run(
            &w,
            &[
                "load-historical",
                "quotes",
                "AAPL",
                "2024-01-02",
                "2024-01-03",
                "--historical-path",
                &url,
            ],
        )
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(
        w.rows("AAPL").await,
        expected_rows("AAPL", "2024-01-02", "2024-01-05", 500)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_bucket_or_an_unreachable_endpoint_is_one_line_and_nothing_is_fetched() {
    let Some(b) = Bucket::new().await else {
        return;
    };
    let s = standin(small(100)).await;
    let w = Workdir::new();
    let import = |url: String| {
        let api = s.url();
        vec![
            "import-api".to_string(),
            "quotes".into(),
            "AAPL".into(),
            "2024-01-02".into(),
            "2024-01-02".into(),
            "--api-url".into(),
            api,
            "--format".into(),
            "parquet".into(),
            "--historical-path".into(),
            url,
        ]
    };
    let missing = format!("{}-missing", b.name);
    let args = import(format!("s3://{missing}/h"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = b.run(&w, &args).await;
    assert_one_line_failure(
        &run,
        1,
        &format!("cannot list s3://{missing}/h: the bucket {missing} does not exist"),
    );
    // The endpoint of a server that is not there (AWS_ENDPOINT_URL wins over the test's).
    let mut cmd = b.command(&w, &args);
    cmd.env("AWS_ENDPOINT_URL", "http://127.0.0.1:9");
    let run = w.run_cmd(cmd).await;
    assert_one_line_failure(
        &run,
        1,
        "the object store's endpoint cannot be reached: check AWS_ENDPOINT_URL",
    );
    assert!(!run.stderr.contains(SECRET_KEY));
    assert!(
        s.request_log().is_empty(),
        "fetched before the store was usable"
    );
    // A status of an unreadable bucket is an error, not an empty store.
    let run = b
        .run(
            &w,
            &["status", "--historical-path", &format!("s3://{missing}")],
        )
        .await;
    assert_one_line_failure(&run, 1, "the bucket");
}

/// `import-api quotes` of four symbols' 9 days into the bucket, coordinated.
fn coordinated<'a>(api: &'a str, url: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec![
        "import-api",
        "quotes",
        "AAPL,MSFT,NVDA,TSLA",
        "2024-01-02",
        "2024-01-12",
        "--api-url",
        api,
        "--format",
        "parquet",
        "--historical-path",
        url,
        "--coordinate",
        "--concurrency",
        "2",
        "--batch-size",
        "500",
    ];
    a.extend_from_slice(extra);
    a
}

const COORDINATED: [&str; 4] = ["AAPL", "MSFT", "NVDA", "TSLA"];

/// Every day file of the coordinated job, and no claim left behind.
async fn assert_whole_job(b: &Bucket, prefix: &str) {
    let days = [
        "2024-01-02",
        "2024-01-03",
        "2024-01-04",
        "2024-01-05",
        "2024-01-08",
        "2024-01-09",
        "2024-01-10",
        "2024-01-11",
        "2024-01-12",
    ];
    let mut want: Vec<String> = COORDINATED
        .iter()
        .flat_map(|s| day_keys(prefix, s, &days))
        .collect();
    want.sort();
    assert_eq!(b.keys().await, want);
    for key in &want {
        assert_eq!(b.rows(key).await, 500, "{key}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_importers_share_a_bucket_job_each_shard_fetched_once() {
    let Some(b) = Bucket::new().await else {
        return;
    };
    let s = standin(StandinConfig {
        delay: Duration::from_millis(30),
        ..small(500)
    })
    .await;
    let (api, url) = (s.url(), b.url("co"));
    let dirs: Vec<Workdir> = (0..3).map(|_| Workdir::new()).collect();
    let mut children = Vec::new();
    for w in &dirs {
        let mut cmd = b.command(w, &coordinated(&api, &url, &[]));
        cmd.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        children.push(cmd.spawn().expect("spawn"));
    }
    let mut total = 0;
    for c in children {
        let run = Run::from(c.wait_with_output().await.expect("wait"));
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        assert!(
            run.stderr.contains("as objects under s3://"),
            "{}",
            run.stderr
        );
        let (n, taken) = crate::coordinate::fetched(&run.stderr);
        assert_eq!(taken, 0);
        total += n;
    }
    assert_eq!(total, 36, "the shards fetched add up to the job");
    let mut asked = std::collections::HashMap::new();
    for r in s.request_log().iter().filter(|r| !r.continued) {
        *asked
            .entry((r.symbols.clone(), r.start.clone()))
            .or_insert(0) += 1;
    }
    assert!(
        asked.values().all(|&n| n == 1),
        "a shard was fetched twice: {asked:?}"
    );
    assert_eq!(asked.len(), 36);
    assert_whole_job(&b, "co").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_importer_leaves_its_bucket_shards_to_the_others() {
    let Some(b) = Bucket::new().await else {
        return;
    };
    let s = standin(StandinConfig {
        delay: Duration::from_millis(150),
        ..small(500)
    })
    .await;
    let (api, url) = (s.url(), b.url("co"));
    let dirs: Vec<Workdir> = (0..3).map(|_| Workdir::new()).collect();
    let mut children = Vec::new();
    for w in &dirs {
        let mut cmd = b.command(w, &coordinated(&api, &url, &["--lease", "2"]));
        cmd.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        children.push(cmd.spawn().expect("spawn"));
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !dirs[0].log().contains("rows in s3://") {
        assert!(
            std::time::Instant::now() < deadline,
            "no file was published"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    children[0].start_kill().expect("kill -9");
    let _ = children[0].wait().await;
    let mut taken = 0;
    for c in children.drain(1..) {
        let run = Run::from(c.wait_with_output().await.expect("wait"));
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        taken += crate::coordinate::fetched(&run.stderr).1;
    }
    assert!(taken >= 1, "no shard of the killed importer was taken over");
    assert_whole_job(&b, "co").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_file_over_the_part_size_goes_up_in_parts_and_reads_back_whole() {
    let Some(b) = Bucket::new().await else {
        return;
    };
    // 900,000 quotes make a day file of about 6.5 MB: over a 5 MiB part size.
    let s = standin(small(900_000)).await;
    let w = Workdir::new();
    let url = b.url("big");
    let mut cmd = b.command(
        &w,
        &[
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
            &url,
        ],
    );
    cmd.env("BULK_IMPORT_S3_PART_MB", "5");
    let run = w.run_cmd(cmd).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let key = "big/quotes/symbol=AAPL/date=2024-01-02/part-0.parquet";
    assert_eq!(b.keys().await, vec![key.to_string()]);
    let meta = b.store().head(&key.into()).await.expect("head");
    assert!(
        meta.size > 5 << 20,
        "{} bytes: not over one part",
        meta.size
    );
    // A completed multipart upload's ETag ends with its part count.
    let tag = meta.e_tag.unwrap_or_default();
    assert!(
        tag.trim_matches('"').ends_with("-2"),
        "ETag {tag}: not a 2-part upload"
    );
    assert_eq!(b.rows(key).await, 900_000);
}
