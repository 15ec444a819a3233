//! Visibility: the tracing setup (stderr and the append-only log file, one write per line),
//! the indicatif bar (only when stderr is a terminal), and the `[DB] Batch N` line written
//! after every commit.
//!
//! It observes the pipeline; it never decides anything about it. The total row count is not
//! known while streaming, so the bar counts days (shards) done for an API import, and how
//! far through the date range the rows are otherwise.

use anyhow::Context;
use data_core::pipeline::BatchCommitted;
use data_core::pipeline::RequestStats;
use data_core::time::{format_nanos, DateRange};
use indicatif::{ProgressBar, ProgressState, ProgressStyle};
use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// Log filter (tracing `EnvFilter` syntax), default `info`.
pub const LOG_FILTER_ENV: &str = "DATA_LOG";

/// The target of the lines a terminal shows besides warnings: what a run found and how it
/// ended (`[DONE]`, `[SYNC]`, `[RESUME]`, the SIP clamp), not the per-batch lines.
pub const SUMMARY: &str = "summary";

/// How much goes to stderr (`-q`, default, `-v`). The log file always gets everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    /// Errors only: no bar, no log lines.
    Quiet,
    /// On a terminal: the bar, warnings and the summary lines; otherwise every log line.
    Normal,
    /// Every log line, on a terminal too (under the bar).
    Verbose,
}

static VERBOSITY: OnceLock<Verbosity> = OnceLock::new();

/// Sets stderr's verbosity for this process (before logging starts).
pub fn set_verbosity(v: Verbosity) {
    let _ = VERBOSITY.set(v);
}

fn verbosity() -> Verbosity {
    VERBOSITY.get().copied().unwrap_or(Verbosity::Normal)
}

/// The bar being drawn, if any: stderr log lines are printed "under" it.
static BAR: RwLock<Option<ProgressBar>> = RwLock::new(None);
/// The log file, also used to record the final error line.
static LOG_FILE: OnceLock<Arc<File>> = OnceLock::new();

/// One formatted log line, written whole with one `write` when dropped, secrets scrubbed:
/// to stderr (suspending the bar so lines do not tear it), or to the log file (a line that
/// cannot be written there, on a full disk or `/dev/full`, is a warning on stderr, once).
pub(crate) struct Line {
    text: Vec<u8>,
    file: Option<Arc<File>>,
}

impl Write for Line {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.text.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        let line = data_core::secrets::scrub_bytes(&self.text);
        match &self.file {
            None => to_stderr(&line),
            Some(file) => {
                if let Err(e) = (&**file).write_all(&line) {
                    warn_log_unwritable(&e);
                }
            }
        }
    }
}

/// Writes `bytes` to stderr, the bar (if any) suspended meanwhile.
fn to_stderr(bytes: &[u8]) {
    let write = || {
        let _ = std::io::stderr().write_all(bytes);
    };
    match BAR.read().ok().and_then(|b| b.clone()) {
        Some(bar) => bar.suspend(write),
        None => write(),
    }
}

/// The path of the log file, for the warning when it cannot be written.
static LOG_PATH: OnceLock<std::path::PathBuf> = OnceLock::new();

/// Says once on stderr that the log file is not being written (the run goes on).
fn warn_log_unwritable(e: &std::io::Error) {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        let path = LOG_PATH
            .get()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        to_stderr(
            format!(
                "warning: cannot write the log file {path}: {e}; the run goes on, logging to stderr only\n"
            )
            .as_bytes(),
        );
    }
}

/// This run's short id: six hex digits from the process id and the start time. Every line
/// of the log file carries it after the time, so the lines of two commands appending to
/// the same file at once can be told apart (`grep 'run=3fa2c1' app.log`).
pub(crate) fn run_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() as u64 ^ d.as_secs())
            .unwrap_or(0);
        let mixed =
            (u64::from(std::process::id()) << 20) ^ nanos.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        format!("{:06x}", (mixed ^ (mixed >> 29)) & 0xFF_FFFF)
    })
}

/// The log file's timestamps (RFC 3339, microseconds, UTC) followed by `run=ID`.
struct TimeAndRun;

impl tracing_subscriber::fmt::time::FormatTime for TimeAndRun {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ");
        write!(w, "{now} run={}", run_id())
    }
}

#[derive(Clone)]
struct ScrubbedFile(Arc<File>);

impl<'a> MakeWriter<'a> for ScrubbedFile {
    type Writer = Line;
    fn make_writer(&'a self) -> Self::Writer {
        Line {
            text: Vec::with_capacity(256),
            file: Some(self.0.clone()),
        }
    }
}

#[derive(Clone, Copy)]
struct BarAwareStderr;

impl<'a> MakeWriter<'a> for BarAwareStderr {
    type Writer = Line;
    fn make_writer(&'a self) -> Self::Writer {
        Line {
            text: Vec::with_capacity(256),
            file: None,
        }
    }
}

/// Starts logging to stderr and appending to `log_file` (folders created). Each event is
/// formatted whole and written with one `write` on an unbuffered file, so a
/// `tail -f` sees every line the moment it is logged. Safe to call more than once.
pub fn init_logging(log_file: &Path) -> anyhow::Result<()> {
    if LOG_FILE.get().is_some() {
        return Ok(());
    }
    if let Some(dir) = log_file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the log folder {}", dir.display()))?;
    }
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_file)
        .with_context(|| format!("cannot open the log file {}", log_file.display()))?;
    let file = LOG_FILE.get_or_init(|| Arc::new(file)).clone();
    let _ = LOG_PATH.set(log_file.to_path_buf());
    let filter = || {
        EnvFilter::try_from_env(LOG_FILTER_ENV)
            // sqlx relays server notices ("relation already exists, skipping") at info.
            .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"))
    };
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::Layer;
    // What stderr shows besides the file: everything, or on a terminal warnings and the
    // summary lines (the bar shows the progress), or errors only.
    let on_stderr = match (verbosity(), std::io::stderr().is_terminal()) {
        (Verbosity::Quiet, _) => Targets::new().with_default(LevelFilter::ERROR),
        (Verbosity::Normal, true) => Targets::new()
            .with_default(LevelFilter::WARN)
            .with_target(SUMMARY, LevelFilter::INFO),
        (Verbosity::Normal, false) | (Verbosity::Verbose, _) => {
            Targets::new().with_default(LevelFilter::TRACE)
        }
    };
    let stderr_layer = tracing_subscriber::fmt::layer()
        .with_writer(BarAwareStderr)
        .with_target(false)
        .with_ansi(false)
        .with_filter(on_stderr);
    let file_layer = tracing_subscriber::fmt::layer()
        .with_timer(TimeAndRun)
        .with_writer(ScrubbedFile(file))
        .with_target(false)
        .with_ansi(false);
    let _ = tracing_subscriber::registry()
        .with(filter())
        .with(stderr_layer)
        .with(file_layer)
        .try_init();
    Ok(())
}

/// Appends the final error to the log file (stderr gets it from the caller).
pub fn log_error_to_file(line: &str) {
    if let Some(f) = LOG_FILE.get() {
        let ts = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ");
        let line = data_core::secrets::scrub(line);
        let run = run_id();
        if let Err(e) = (&**f).write_all(format!("{ts} run={run} ERROR {line}\n").as_bytes()) {
            warn_log_unwritable(&e);
        }
    }
}

/// The lines that end this command's runs, printed last by [`print_end_lines`].
static END_LINES: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Keeps the line that ends a run, for the end of the command (the log file has the
/// detailed `[DONE]` line instead).
pub fn finished(line: &str) {
    if let Ok(mut lines) = END_LINES.lock() {
        lines.push(line.to_string());
    }
}

/// Prints the end lines of the command's runs on stderr, after everything else (not with
/// `-q`): what a person reads last.
pub fn print_end_lines() {
    if verbosity() == Verbosity::Quiet {
        return;
    }
    let lines = END_LINES.lock().map(|l| l.clone()).unwrap_or_default();
    for line in lines {
        to_stderr(format!("{line}\n").as_bytes());
    }
}

/// Progress of one import: the bar and the per-batch log line.
pub struct Progress {
    bar: ProgressBar,
    range: DateRange,
    started: Instant,
    /// For sharded imports: (shards to fetch in this run, shards done so far, unit word).
    shards: Option<(u64, u64, &'static str)>,
    requests: Option<Arc<RequestStats>>,
    /// (when, requests so far), for the requests/min over about the last minute.
    samples: VecDeque<(Instant, u64)>,
    /// What a row is, for the batch line: `quote`, `trade`, `bar`.
    item: &'static str,
    /// Rows committed so far, read by the bar's `{rows}` and `{rate}`.
    rows: Arc<AtomicU64>,
}

/// A count in at most six characters: `99,999`, `740k`, `9.30M`, `1.20G`.
pub fn compact(n: u64) -> String {
    match n {
        0..=99_999 => indicatif::HumanCount(n).to_string(),
        100_000..=999_999 => format!("{}k", n / 1_000),
        1_000_000..=999_999_999 => format!("{:.2}M", n as f64 / 1e6),
        _ => format!("{:.2}G", n as f64 / 1e9),
    }
}

/// The bar's template for a terminal `width` columns wide, and the label cut to fit: the
/// label, the bar, `4/20 days` (or `35% of range`), rows, rows/s and the ETA once each on
/// one line that never wraps (at least 60 columns: the fixed parts take at most 38, the
/// rest is shared between the label and the bar); requests/min and the concurrency follow
/// when there is room (`{wide_msg}` is cut to the columns left).
pub fn bar_layout(width: u16, label: &str, unit: Option<&str>) -> (String, String) {
    let width = usize::from(width.max(40));
    // `252/252 days 9.30M rows 456k/s ETA 59m`: 38 at most; then ` [`, `] ` and one column
    // spare so the cursor never sits past the last one.
    let fixed = 38 + 5;
    let room = width.saturating_sub(fixed);
    let label_max = (width / 5).clamp(8, 24).min(room.saturating_sub(6));
    let label = match label.chars().count() > label_max {
        true => {
            let cut: String = label.chars().take(label_max.saturating_sub(1)).collect();
            format!("{cut}\u{2026}")
        }
        false => label.to_string(),
    };
    let bar = room.saturating_sub(label.chars().count()).clamp(4, 30);
    let done = match unit {
        Some(unit) => format!("{{pos}}/{{len}} {unit}"),
        None => "{percent}% of range".to_string(),
    };
    let template = format!(
        "{{prefix}} [{{bar:{bar}}}] {done} {{rows}} rows {{rate}}/s ETA {{eta}}{{wide_msg}}"
    );
    (template, label)
}

impl Progress {
    /// `shards`: how many shards (days) this run fetches, when the source is sharded;
    /// `requests`: the API client's counters, when the source is the API.
    pub fn start(
        range: DateRange,
        label: &str,
        shards: Option<(u64, &'static str)>,
        requests: Option<Arc<RequestStats>>,
    ) -> Self {
        let rows = Arc::new(AtomicU64::new(0));
        let term = console::Term::stderr();
        let bar = if term.is_term() && verbosity() != Verbosity::Quiet {
            let width = term.size_checked().map_or(80, |(_, cols)| cols);
            let (template, label) = bar_layout(width, label, shards.map(|(_, unit)| unit));
            let len = shards.map_or(10_000, |(n, _)| n.max(1));
            let bar = ProgressBar::new(len);
            let (count, rate) = (rows.clone(), rows.clone());
            let style = ProgressStyle::with_template(&template)
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .with_key(
                    "rows",
                    move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
                        let _ = write!(w, "{}", compact(count.load(Ordering::Relaxed)));
                    },
                )
                .with_key(
                    "rate",
                    move |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                        let secs = s.elapsed().as_secs_f64().max(1e-3);
                        let n = (rate.load(Ordering::Relaxed) as f64 / secs) as u64;
                        let _ = write!(w, "{}", compact(n));
                    },
                )
                .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(label);
            bar.enable_steady_tick(Duration::from_millis(250));
            bar
        } else {
            ProgressBar::hidden()
        };
        if let Ok(mut slot) = BAR.write() {
            *slot = Some(bar.clone());
        }
        let started = Instant::now();
        Progress {
            bar,
            range,
            started,
            shards: shards.map(|(n, unit)| (n, 0, unit)),
            requests,
            samples: VecDeque::from([(started, 0)]),
            item: "quote",
            rows,
        }
    }

    /// Names the rows in the batch line (`last trade ...`); quotes by default.
    pub(crate) fn set_item(&mut self, item: &'static str) {
        self.item = item;
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// API requests per minute over about the last minute (since the start, early on).
    fn requests_per_min(&mut self) -> Option<f64> {
        let now_count = self.requests.as_ref()?.requests();
        let now = Instant::now();
        self.samples.push_back((now, now_count));
        while self.samples.len() > 2
            && self
                .samples
                .get(1)
                .is_some_and(|(t, _)| now.duration_since(*t) >= Duration::from_secs(60))
        {
            self.samples.pop_front();
        }
        let (t0, c0) = *self.samples.front()?;
        let secs = now.duration_since(t0).as_secs_f64();
        Some(if secs > 0.0 {
            (now_count - c0) as f64 * 60.0 / secs
        } else {
            0.0
        })
    }

    /// Logs `[DB] Batch N: ...` (for batches with rows) and moves the bar.
    pub fn on_commit(&mut self, c: &BatchCommitted) {
        let mut extra = String::new();
        if let Some((total, done, unit)) = self.shards.as_mut() {
            *done += u64::from(c.shards_done);
            extra.push_str(&format!(", {unit} {done}/{total}"));
            self.bar.set_position(*done);
        }
        let rpm = self.requests_per_min();
        if let Some(rpm) = rpm {
            extra.push_str(&format!(", {rpm:.0} requests/min"));
        }
        if let Some(k) = self.requests.as_ref().map(|r| r.concurrency()) {
            extra.push_str(&format!(", concurrency {k}"));
        }
        if c.rows > 0 {
            tracing::info!(
                "[{}] Batch {}: {} rows {}, {} total, last {} {}, {} ms{extra}",
                c.label,
                c.number,
                c.rows,
                if c.label == "DB" {
                    "committed"
                } else {
                    "written"
                },
                c.total_rows,
                self.item,
                format_nanos(c.last_time_ns),
                c.write_time.as_millis()
            );
        }
        if self.shards.is_none() && c.rows > 0 {
            let done = self.range.fraction_done(c.last_time_ns);
            self.bar.set_position((done * 10_000.0) as u64);
        }
        self.rows.store(c.total_rows, Ordering::Relaxed);
        // Requests/min and the concurrency, where the terminal has room for them.
        let mut tail = String::new();
        if let Some(rpm) = rpm {
            tail.push_str(&format!(" · {rpm:.0} req/min"));
        }
        if let Some(k) = self.requests.as_ref().map(|r| r.concurrency()) {
            tail.push_str(&format!(" · {k} at once"));
        }
        self.bar.set_message(tail);
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
        if let Ok(mut slot) = BAR.write() {
            *slot = None;
        }
    }
}
