//! How close the import runs to what this machine allows, all measured in one run on the
//! same pages of AAPL quotes from the in-process stand-in:
//!
//! - **decode only**: the pages' bodies (fetched untimed, gzip-compressed as the stand-in
//!   and Alpaca send them) through the page decoder, and apart from it the client's gunzip of
//!   those bodies in CPU time — what a user's cores pay, without the server's compression.
//!   The stand-in compresses at `BENCH_GZIP_LEVEL` (default 6, zlib's); the same pages
//!   compressed at level 1 are inflated beside;
//! - **raw sink**: the decoded rows into the same `quotes` table with the best hand-written
//!   path (the sink's own binding loop: one 64-row prepared plain INSERT reused, 10,000 rows
//!   per transaction, values bound straight from the columns, no transaction bookkeeping);
//! - **INSERT … SELECT**: SQLite copying those rows into the same table of a fresh database
//!   (its own ceiling: no binding at all);
//! - **end to end**: `data import-api quotes` into SQLite and into Parquet (this build), the
//!   same from a stand-in that sends the pages plain (`--no-gzip`: no gunzip), with
//!   `BENCH_PG_URL=postgres://USER@HOST:PORT` also into a fresh PostgreSQL database on that
//!   server (`ceilings_pg`, dropped and created before each import), and with
//!   `BENCH_BASELINE=<binary>` an earlier release on the same range; each import's peak RSS
//!   is reported too.
//!
//! - **memory at many requests in flight**: peak RSS of this build's imports into SQLite and
//!   into Parquet at the default `--concurrency auto` from a stand-in that answers after
//!   `BENCH_DELAY_MS` (default 250) with no rate limit — the case where `auto` climbs to its
//!   cap of 64, as for a paid plan over a slow network — and at a fixed `--concurrency 64`
//!   from the prompt stand-in (every fetcher holding a page while it waits for the writer).
//!
//! The stand-in replays the pages it has served (`StandinConfig::replay`), filled by one
//! untimed import per binary, so the timed imports pay for the client alone, not for the
//! JSON generation and gzip compression of a server sharing their two cores.
//!
//! Each is reported in rows/s (median of `BENCH_RUNS`, default 3) and the end-to-end import
//! as a percentage of each ceiling. `BENCH_MONTHS` (default 12) sets the range from
//! 2024-01-01.
//!
//! ```sh
//! BENCH_BASELINE=../base/target/release/data BENCH_PG_URL=postgres://root@127.0.0.1:5432 \
//!     cargo bench --bench ceilings
//! ```

#[path = "common/rss.rs"]
mod rss;
use arrow_array::RecordBatch;
use data::dataset::{DatasetId, QUOTES};
use data::model::{Feed, Symbol};
use data::resume::{shards_of, ShardUnit};
use data::retry::RetryPolicy;
use data::source::alpaca::{AlpacaClient, ClientConfig, Credentials, Request};
use data::source::{page::decode_page, response::SeqAssigner};
use data::standin::{Standin, StandinConfig};
use data::store::sql::encode::Encoder;
use data::store::sql::sqlite::{
    bind_and_insert, Checkpointer, Inserts, SqliteSink, StatementCache,
};
use data::time::DateRange;
use rss::wait_rss;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BATCH: usize = 10_000;
const ROWS_PER_INSERT: usize = 64;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn range(months: usize) -> DateRange {
    let end = chrono::NaiveDate::from_ymd_opt(2024, 1, 1)
        .and_then(|d| d.checked_add_months(chrono::Months::new(months as u32)))
        .and_then(|d| d.pred_opt())
        .expect("end date");
    DateRange::parse("2024-01-01", &end.to_string()).expect("range")
}

/// Every page body of the range's shards, one at a time, to `each` (untimed fetches), which
/// returns the page's continuation token.
async fn pages(url: &str, range: DateRange, mut each: impl FnMut(&[u8]) -> Option<String>) {
    let client = AlpacaClient::new(
        &ClientConfig {
            base_url: url.to_string(),
            feed: Feed::Sip,
            retry: RetryPolicy::default(),
            request_timeout: Duration::from_secs(60),
            rate_limit: 0,
            asof: None,
        },
        &Credentials::new("bench", "bench"),
    )
    .expect("client");
    // Bodies as sent (gzip): the benchmark times the gunzip itself.
    let http = reqwest::Client::new();
    let symbol = Symbol::parse("AAPL").expect("symbol");
    let req = Request::quotes();
    for shard in shards_of(&symbol, range, i64::MAX, ShardUnit::Session) {
        let span = shard.fetch_range();
        let mut token: Option<String> = None;
        loop {
            let url = client.page_url(&req, std::slice::from_ref(&symbol), &span, token.as_deref());
            let body = http
                .get(url)
                .header("APCA-API-KEY-ID", "bench")
                .header("APCA-API-SECRET-KEY", "bench")
                .header("Accept-Encoding", "gzip")
                .send()
                .await
                .expect("get")
                .bytes()
                .await
                .expect("body");
            token = each(&body);
            if token.is_none() {
                break;
            }
        }
    }
}

/// `INSERT INTO quotes (...) VALUES (...) x rows`.
fn insert_sql(rows: usize) -> String {
    let cols = QUOTES.columns();
    let one = format!("({})", vec!["?"; cols.len()].join(","));
    format!(
        "INSERT INTO quotes ({}) VALUES {}",
        cols.join(", "),
        vec![one.as_str(); rows].join(",")
    )
}

/// A connection and its INSERT statements, prepared once and kept (as the sink keeps its
/// own); the statements drop first.
struct Raw {
    statements: StatementCache<usize>,
    conn: rusqlite::Connection,
}

/// Writes `rows` (decoded quotes) with 64-row prepared statements in one transaction; with
/// `checkpoints`, tells it of the commit (as the sink does).
fn raw_insert(
    raw: &mut Raw,
    rows: &RecordBatch,
    symbol_id: i64,
    checkpoints: Option<&Checkpointer>,
) {
    let enc = Encoder::new(
        &QUOTES,
        DatasetId::Quotes,
        rows,
        vec![symbol_id; rows.num_rows()],
        None,
    )
    .expect("encoder");
    let tx = raw.conn.transaction().expect("begin");
    let insert = Inserts {
        cache: &mut raw.statements,
        key: |len| len,
        sql: insert_sql,
    };
    // SAFETY: the transaction's own open connection, which the cached statements belong
    // to, used by nothing else meanwhile.
    unsafe {
        let db = std::ptr::NonNull::new(tx.handle()).expect("handle");
        bind_and_insert(db, ROWS_PER_INSERT, insert, &enc).expect("insert");
    }
    tx.commit().expect("commit");
    if let Some(c) = checkpoints {
        c.after_commit();
    }
}

/// A fresh database with the importer's schema, opened with its pragmas.
async fn fresh_db(path: &Path) -> rusqlite::Connection {
    let sink = SqliteSink::open(
        &format!("sqlite:{}", path.display()),
        Duration::from_secs(5),
    )
    .await
    .expect("schema");
    drop(sink);
    let conn = rusqlite::Connection::open(path).expect("open");
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA cache_size = -16384;",
    )
    .expect("pragmas");
    conn
}

struct Round {
    /// The client's gunzip of the bodies as sent, in CPU time of the thread doing it.
    gunzip: Duration,
    /// The same for the pages compressed at level 1 (flate2's zlib-rs: zlib-ng's quick
    /// strategy), beside; and their bytes.
    gunzip_fast: Duration,
    wire_fast: u64,
    /// Bytes on the wire, and as JSON.
    wire: u64,
    json: u64,
    decode: Duration,
    raw_sink: Duration,
    /// The same with the WAL checkpointed on another thread.
    raw_bg: Duration,
    insert_select: Duration,
    rows: u64,
}

async fn ceilings(url: &str, range: DateRange, dir: &Path) -> Round {
    let raw_path = dir.join("raw.db");
    let conn = fresh_db(&raw_path).await;
    let symbol_id: i64 = conn
        .query_row(
            "INSERT INTO symbols (symbol) VALUES ('AAPL') RETURNING id",
            [],
            |r| r.get(0),
        )
        .expect("symbol");
    // The same again into a database whose WAL is checkpointed on another thread, as the
    // sink's are (`Checkpointer`): the raw sink with the import's own commit path.
    let bg_path = dir.join("raw_bg.db");
    let bg = fresh_db(&bg_path).await;
    bg.execute(
        "INSERT INTO symbols (id, symbol) VALUES (?1, 'AAPL')",
        [symbol_id],
    )
    .expect("symbol");
    // SAFETY: `bg` is open and not in use during the call.
    let checkpoints = unsafe {
        Checkpointer::start(
            std::ptr::NonNull::new(bg.handle()).expect("handle"),
            &bg_path,
        )
    }
    .expect("a WAL database");
    let mut raw = Raw {
        statements: StatementCache::default(),
        conn,
    };
    let mut raw_bg_db = Raw {
        statements: StatementCache::default(),
        conn: bg,
    };
    let mut raw_bg = Duration::ZERO;
    let aapl = [Symbol::parse("AAPL").expect("symbol")];
    let cols = DatasetId::Quotes.kind().columns();
    let (mut decode, mut raw_sink, mut rows) = (Duration::ZERO, Duration::ZERO, 0u64);
    let (mut gunzip, mut wire, mut json) = (Duration::ZERO, 0u64, 0u64);
    let (mut gunzip_fast, mut wire_fast) = (Duration::ZERO, 0u64);
    let mut plain = Vec::new();
    let mut again = Vec::new();
    let mut seq = SeqAssigner::default();
    let mut pending: Vec<RecordBatch> = Vec::new();
    let mut pending_rows = 0;
    let mut flush =
        |pending: &mut Vec<RecordBatch>, raw_sink: &mut Duration, raw_bg: &mut Duration| {
            if pending.is_empty() {
                return;
            }
            let all = data::batch::concat(&pending[0].schema(), pending).expect("concat");
            pending.clear();
            let started = Instant::now();
            raw_insert(&mut raw, &all, symbol_id, None);
            *raw_sink += started.elapsed();
            let started = Instant::now();
            raw_insert(&mut raw_bg_db, &all, symbol_id, Some(&checkpoints));
            *raw_bg += started.elapsed();
        };
    pages(url, range, |body| {
        // The client's own gunzip (src/source/gzip.rs), into a buffer reused as it does, in
        // CPU time as the import's is measured.
        let started = thread_cpu();
        let n = data::source::gzip::inflate(body, &mut plain).expect("a gzip body");
        gunzip += thread_cpu().saturating_sub(started);
        (wire, json) = (wire + body.len() as u64, json + n as u64);
        let started = Instant::now();
        let mut page = decode_page(&plain[..n], cols, &aapl).expect("decode");
        decode += started.elapsed();
        // After the decode, not to disturb it: the same page compressed at level 1
        // (untimed), inflated beside.
        let fast = data::standin::gzip(&plain[..n], 1);
        let started = thread_cpu();
        let m = data::source::gzip::inflate(&fast, &mut again).expect("a gzip body");
        gunzip_fast += thread_cpu().saturating_sub(started);
        assert_eq!(again[..m], plain[..n]);
        wire_fast += fast.len() as u64;
        for (_, run) in page.runs.drain(..) {
            let run = seq.assign(run).expect("seq");
            rows += run.num_rows() as u64;
            pending_rows += run.num_rows();
            pending.push(run);
        }
        if pending_rows >= BATCH {
            pending_rows = 0;
            flush(&mut pending, &mut raw_sink, &mut raw_bg);
        }
        page.next_page_token
    })
    .await;
    flush(&mut pending, &mut raw_sink, &mut raw_bg);
    drop(checkpoints);
    let copy = fresh_db(&dir.join("copy.db")).await;
    let started = Instant::now();
    copy.execute_batch(&format!(
        "ATTACH DATABASE '{}' AS src; BEGIN; INSERT INTO quotes SELECT * FROM src.quotes; COMMIT;",
        raw_path.display()
    ))
    .expect("insert select");
    let insert_select = started.elapsed();
    Round {
        gunzip,
        gunzip_fast,
        wire_fast,
        wire,
        json,
        decode,
        raw_sink,
        raw_bg,
        insert_select,
        rows,
    }
}

/// CPU time of the calling thread so far.
fn thread_cpu() -> Duration {
    // SAFETY: clock_gettime only writes the struct it is given.
    let mut t: libc::timespec = unsafe { std::mem::zeroed() };
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// One import's measures.
struct Imported {
    wall: Duration,
    /// The CPU time its summary reports (this build only).
    cpu: Option<f64>,
    /// Peak resident set, bytes.
    rss: u64,
}

/// A fresh, empty database `ceilings_pg` on the PostgreSQL server `server`; its URL.
fn fresh_pg(rt: &tokio::runtime::Runtime, server: &str) -> String {
    use sqlx::Connection;
    rt.block_on(async {
        let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres"))
            .await
            .expect("BENCH_PG_URL: cannot connect to its postgres database");
        for sql in [
            "DROP DATABASE IF EXISTS ceilings_pg WITH (FORCE)",
            "CREATE DATABASE ceilings_pg",
        ] {
            sqlx::query(sql).execute(&mut admin).await.expect(sql);
        }
    });
    format!("{server}/ceilings_pg")
}

/// The most requests in flight an import's batch lines report (its log file under `dir`).
fn most_in_flight(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("data/logs/app.log"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.rsplit("concurrency ").next()?.trim().parse().ok())
        .max()
        .unwrap_or(0)
}

/// Peak RSS (median and highest of `runs`, MB) and the most requests in flight, of this
/// build's imports from `url` with `extra` options, into SQLite and into Parquet.
fn memory_rows(label: &str, bin: &Path, url: &str, range: DateRange, runs: usize, extra: &[&str]) {
    for (store, format) in [("SQLite", None), ("Parquet", Some("parquet"))] {
        let mut opts: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        if let Some(f) = format {
            opts.extend(["--format".to_string(), f.to_string()]);
        }
        let mut rss = Vec::new();
        let mut k = 0;
        let mut walls = Vec::new();
        for _ in 0..runs {
            let dir = tempfile::tempdir().expect("temp dir");
            let done = import(bin, url, range, dir.path(), &opts);
            rss.push(done.rss);
            walls.push(done.wall);
            k = k.max(most_in_flight(dir.path()));
        }
        rss.sort_unstable();
        println!(
            "| {label}, into {store} | {k} | {:.0} MB | {:.0} MB | {:.2} s |",
            rss[rss.len() / 2] as f64 / 1e6,
            rss[rss.len() - 1] as f64 / 1e6,
            median(walls).as_secs_f64()
        );
    }
}

/// One import (`extra`: more options, e.g. `--format parquet`).
fn import(bin: &Path, url: &str, range: DateRange, dir: &Path, extra: &[String]) -> Imported {
    let (start, end) = (
        data::time::new_york_date(range.start_ns).to_string(),
        data::time::new_york_date(range.end_ns).to_string(),
    );
    let log = dir.join("stderr.log");
    let started = Instant::now();
    let child = Command::new(bin)
        .args([
            "import-api",
            "quotes",
            "AAPL",
            &start,
            &end,
            "--api-url",
            url,
        ])
        .args(extra)
        .current_dir(dir)
        .env("APCA_API_KEY_ID", "bench")
        .env("APCA_API_SECRET_KEY", "bench")
        .env("BULK_IMPORT_RATE_LIMIT", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("spawn data");
    let (status, rss) = wait_rss(child);
    let wall = started.elapsed();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "{text}");
    let cpu = text
        .split(", CPU ")
        .nth(1)
        .and_then(|s| s.split('s').next())
        .and_then(|s| s.parse().ok());
    Imported { wall, cpu, rss }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// An import timed: its label, the options that choose the store, and whether it is also
/// timed from plain bodies.
struct Store {
    label: &'static str,
    extra: Vec<String>,
    plain_too: bool,
    /// PostgreSQL: a fresh database before each import, on this server.
    pg: Option<String>,
}

impl Store {
    /// The options of one import (a fresh database first, for PostgreSQL).
    fn prepare(&self, rt: &tokio::runtime::Runtime) -> Vec<String> {
        let mut extra = self.extra.clone();
        if let Some(server) = &self.pg {
            extra.extend(["--database-url".to_string(), fresh_pg(rt, server)]);
        }
        extra
    }
}

fn main() {
    let runs = env_usize("BENCH_RUNS", 3).max(1);
    let range = range(env_usize("BENCH_MONTHS", 12).clamp(1, 12));
    let ours = Path::new(env!("CARGO_BIN_EXE_data")).to_path_buf();
    let baseline = std::env::var_os("BENCH_BASELINE").map(std::path::PathBuf::from);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // The stand-in keeps every page as sent and replays it (a caching proxy's work: no JSON
    // generation or compression on the shared cores during the timed imports), so the rounds
    // time the clients. One untimed import per binary fills it: gzip bodies for this build,
    // plain ones for a baseline that does not ask for gzip.
    let gzip_level = env_usize(
        "BENCH_GZIP_LEVEL",
        data::standin::DEFAULT_GZIP_LEVEL as usize,
    );
    let standin = rt
        .block_on(Standin::start(StandinConfig {
            replay: true,
            gzip_level: gzip_level as u32,
            ..StandinConfig::default()
        }))
        .expect("stand-in");
    let url = standin.url();
    // The same pages sent plain (`--no-gzip`), for this build's imports without gunzip.
    let plain = rt
        .block_on(Standin::start(StandinConfig {
            replay: true,
            gzip: false,
            ..StandinConfig::default()
        }))
        .expect("stand-in");
    let plain_url = plain.url();
    let bins: Vec<(&str, &Path)> = std::iter::once(("this build", ours.as_path()))
        .chain(baseline.as_deref().map(|b| ("baseline", b)))
        .collect();
    for (_, bin) in &bins {
        let dir = tempfile::tempdir().expect("temp dir");
        import(bin, &url, range, dir.path(), &[]);
    }
    let dir = tempfile::tempdir().expect("temp dir");
    import(&ours, &plain_url, range, dir.path(), &[]);
    drop(dir);
    let mut stores = vec![
        Store {
            label: "SQLite",
            extra: Vec::new(),
            plain_too: true,
            pg: None,
        },
        Store {
            label: "Parquet",
            extra: vec!["--format".into(), "parquet".into()],
            plain_too: true,
            pg: None,
        },
    ];
    match std::env::var("BENCH_PG_URL") {
        Ok(server) => stores.push(Store {
            label: "PostgreSQL",
            extra: Vec::new(),
            plain_too: false,
            pg: Some(server.trim_end_matches('/').to_string()),
        }),
        Err(_) => eprintln!("BENCH_PG_URL is not set: no PostgreSQL imports in this run"),
    }
    // By store: this build's imports from plain bodies (wall, CPU); wall times by binary,
    // this build's CPU, and the highest peak RSS of this build's imports.
    let mut plain_walls = vec![Vec::new(); stores.len()];
    let mut plain_cpus = vec![Vec::new(); stores.len()];
    let mut walls = vec![vec![Vec::new(); bins.len()]; stores.len()];
    let mut cpus = vec![Vec::new(); stores.len()];
    let mut peak_rss = vec![0u64; stores.len()];
    let mut rounds = Vec::new();
    for round in 0..runs {
        let dir = tempfile::tempdir().expect("temp dir");
        let r = rt.block_on(ceilings(&url, range, dir.path()));
        drop(dir);
        let mut line = format!(
            "round {}: gunzip {:.2}s (level 1: {:.2}s), decode {:.2}s, raw sink {:.2}s ({:.2}s checkpointing beside), INSERT...SELECT {:.2}s",
            round + 1,
            r.gunzip.as_secs_f64(),
            r.gunzip_fast.as_secs_f64(),
            r.decode.as_secs_f64(),
            r.raw_sink.as_secs_f64(),
            r.raw_bg.as_secs_f64(),
            r.insert_select.as_secs_f64(),
        );
        for (m, store) in stores.iter().enumerate() {
            let mut order: Vec<usize> = (0..bins.len()).collect();
            if round % 2 == 1 {
                order.reverse();
            }
            for b in order {
                let dir = tempfile::tempdir().expect("temp dir");
                let extra = store.prepare(&rt);
                let done = import(bins[b].1, &url, range, dir.path(), &extra);
                walls[m][b].push(done.wall);
                if b == 0 {
                    cpus[m].extend(done.cpu);
                    peak_rss[m] = peak_rss[m].max(done.rss);
                }
                line += &format!(
                    ", {} {} {:.2}s",
                    store.label,
                    bins[b].0,
                    done.wall.as_secs_f64()
                );
            }
            if store.plain_too {
                let dir = tempfile::tempdir().expect("temp dir");
                let extra = store.prepare(&rt);
                let done = import(&ours, &plain_url, range, dir.path(), &extra);
                plain_walls[m].push(done.wall);
                plain_cpus[m].extend(done.cpu);
                line += &format!(
                    ", {} plain bodies {:.2}s",
                    store.label,
                    done.wall.as_secs_f64()
                );
            }
        }
        println!("{line}");
        rounds.push(r);
    }
    let rows = rounds[0].rows as f64;
    let rate = |d: Duration| rows / d.as_secs_f64().max(1e-9);
    let decode = median(rounds.iter().map(|r| r.decode).collect());
    let raw = median(rounds.iter().map(|r| r.raw_sink).collect());
    let raw_bg = median(rounds.iter().map(|r| r.raw_bg).collect());
    let copy = median(rounds.iter().map(|r| r.insert_select).collect());
    let gunzip = median(rounds.iter().map(|r| r.gunzip).collect());
    let gunzip_fast = median(rounds.iter().map(|r| r.gunzip_fast).collect());
    let ours_sqlite = median(walls[0][0].clone());
    let ours_parquet = median(walls[1][0].clone());
    println!(
        "\nCeilings: AAPL quotes {range} ({} rows), median of {runs}",
        rounds[0].rows
    );
    println!("| stage | time | rows/s | SQLite import as % of it | Parquet import as % of it |");
    println!("|---|---:|---:|---:|---:|");
    for (name, d, parquet) in [
        ("decode only", decode, true),
        ("raw sink (64-row prepared INSERT)", raw, false),
        (
            "raw sink, WAL checkpointed on another thread (as the sink's)",
            raw_bg,
            false,
        ),
        ("SQLite INSERT ... SELECT", copy, false),
    ] {
        println!(
            "| {name} | {:.2} s | {:.0} | {:.0}% | {} |",
            d.as_secs_f64(),
            rate(d),
            100.0 * rate(ours_sqlite) / rate(d),
            if parquet {
                format!("{:.0}%", 100.0 * rate(ours_parquet) / rate(d))
            } else {
                String::new()
            }
        );
    }
    for (m, store) in stores.iter().enumerate() {
        let label = store.label;
        let ours_t = median(walls[m][0].clone());
        println!(
            "| import into {label}, this build | {:.2} s | {:.0} | | |",
            ours_t.as_secs_f64(),
            rate(ours_t)
        );
        if store.plain_too {
            let p = median(plain_walls[m].clone());
            println!(
                "| import into {label}, this build, plain bodies (no gzip) | {:.2} s | {:.0} | | |",
                p.as_secs_f64(),
                rate(p)
            );
        }
        if bins.len() > 1 {
            let b = median(walls[m][1].clone());
            println!(
                "| import into {label}, baseline | {:.2} s | {:.0} | this build: {:.2}x | |",
                b.as_secs_f64(),
                rate(b),
                b.as_secs_f64() / ours_t.as_secs_f64()
            );
        }
    }
    let middle = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    for (m, store) in stores.iter().enumerate() {
        let label = store.label;
        let cpu = middle(std::mem::take(&mut cpus[m]));
        println!(
            "\nThe import into {label} used {cpu:.1} s of CPU ({:.2} us/row, {:.2} cores on \
             average) and at most {:.0} MB of memory (peak RSS); the client's gunzip of its \
             pages ({:.0} MB on the wire at gzip level {gzip_level} for {:.0} MB of JSON) takes \
             {:.2} s of CPU, {:.1}% of it. Compressed at level 1 (zlib-rs: {:.0} MB), they would \
             take {:.2} s, {:.1}%.",
            cpu * 1e6 / rows,
            cpu / median(walls[m][0].clone()).as_secs_f64(),
            peak_rss[m] as f64 / 1e6,
            rounds[0].wire as f64 / 1e6,
            rounds[0].json as f64 / 1e6,
            gunzip.as_secs_f64(),
            100.0 * gunzip.as_secs_f64() / cpu,
            rounds[0].wire_fast as f64 / 1e6,
            gunzip_fast.as_secs_f64(),
            100.0 * gunzip_fast.as_secs_f64() / cpu,
        );
        if store.plain_too {
            let plain_cpu = middle(std::mem::take(&mut plain_cpus[m]));
            println!(
                "From plain bodies it used {plain_cpu:.1} s of CPU ({:.2} us/row): gzip bodies cost it {:+.1} s.",
                plain_cpu * 1e6 / rows,
                cpu - plain_cpu
            );
        }
    }
    // Memory where it grows: with many requests in flight.
    let delay = Duration::from_millis(env_usize("BENCH_DELAY_MS", 250) as u64);
    let slow = rt
        .block_on(Standin::start(StandinConfig {
            replay: true,
            delay,
            ..StandinConfig::default()
        }))
        .expect("stand-in");
    let slow_url = slow.url();
    let dir = tempfile::tempdir().expect("temp dir");
    import(&ours, &slow_url, range, dir.path(), &[]);
    drop(dir);
    println!(
        "\nMemory with many requests in flight (this build, median of {runs}):\n\
         | import | most in flight | peak RSS (median) | peak RSS (highest) | wall |\n\
         |---|---:|---:|---:|---:|"
    );
    let auto = format!("default `auto`, responses after {} ms", delay.as_millis());
    memory_rows(&auto, &ours, &slow_url, range, runs, &[]);
    memory_rows(
        "`--concurrency 64`, prompt responses",
        &ours,
        &url,
        range,
        runs,
        &["--concurrency", "64"],
    );
    if let Some(server) = stores.iter().find_map(|s| s.pg.as_deref()) {
        rt.block_on(async {
            use sqlx::Connection;
            if let Ok(mut admin) = sqlx::PgConnection::connect(&format!("{server}/postgres")).await
            {
                let _ = sqlx::query("DROP DATABASE IF EXISTS ceilings_pg WITH (FORCE)")
                    .execute(&mut admin)
                    .await;
            }
        });
    }
}
