//! Visibility: the tracing setup (stderr and the append-only log file, one write per line),
//! the indicatif bar (only when stderr is a terminal), and the `[DB] Batch N` line written
//! after every commit.
//!
//! It observes the pipeline; it never decides anything about it. The total row count is not
//! known while streaming, so the bar measures how far the import is through the date range.

use crate::pipeline::BatchCommitted;
use crate::time::{format_nanos, DateRange};
use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use std::fs::{File, OpenOptions};
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

pub const DEFAULT_LOG_FILE: &str = "data/logs/app.log";
/// Log filter (tracing `EnvFilter` syntax), default `info`.
pub const LOG_FILTER_ENV: &str = "DATA_LOG";

/// The bar being drawn, if any: stderr log lines are printed "under" it.
static BAR: RwLock<Option<ProgressBar>> = RwLock::new(None);
/// The log file, also used to record the final error line.
static LOG_FILE: OnceLock<Arc<File>> = OnceLock::new();

/// Writes one formatted log line to stderr, suspending the bar so lines do not tear it.
pub struct StderrLine(Vec<u8>);

impl Write for StderrLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for StderrLine {
    fn drop(&mut self) {
        let write = || {
            let _ = std::io::stderr().write_all(&self.0);
        };
        match BAR.read().ok().and_then(|b| b.clone()) {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
    }
}

#[derive(Clone, Copy)]
struct BarAwareStderr;

impl<'a> MakeWriter<'a> for BarAwareStderr {
    type Writer = StderrLine;
    fn make_writer(&'a self) -> Self::Writer {
        StderrLine(Vec::with_capacity(256))
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
    let filter =
        || EnvFilter::try_from_env(LOG_FILTER_ENV).unwrap_or_else(|_| EnvFilter::new("info"));
    let stderr_layer = tracing_subscriber::fmt::layer()
        .with_writer(BarAwareStderr)
        .with_target(false)
        .with_ansi(false);
    let file_layer = tracing_subscriber::fmt::layer()
        .with_writer(file)
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
        let _ = (&**f).write_all(format!("{ts} ERROR {line}\n").as_bytes());
    }
}

/// Progress of one import: the bar and the per-batch log line.
pub struct Progress {
    bar: ProgressBar,
    range: DateRange,
    started: Instant,
}

impl Progress {
    pub fn start(range: DateRange, label: &str) -> Self {
        let bar = if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(10_000);
            let style = ProgressStyle::with_template(
                "{prefix} {spinner} {elapsed_precise} [{wide_bar}] {percent:>3}% of range · {msg} · ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(label.to_string());
            bar.set_message("0 rows");
            bar.enable_steady_tick(Duration::from_millis(250));
            bar
        } else {
            ProgressBar::hidden()
        };
        if let Ok(mut slot) = BAR.write() {
            *slot = Some(bar.clone());
        }
        Progress {
            bar,
            range,
            started: Instant::now(),
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Logs `[DB] Batch N: ...` and moves the bar.
    pub fn on_commit(&self, c: &BatchCommitted) {
        tracing::info!(
            "[{}] Batch {}: {} rows {}, {} total, last quote {}, {} ms",
            c.label,
            c.number,
            c.rows,
            if c.label == "DB" {
                "committed"
            } else {
                "written"
            },
            c.total_rows,
            format_nanos(c.last_time_ns),
            c.write_time.as_millis()
        );
        let done = self.range.fraction_done(c.last_time_ns);
        self.bar.set_position((done * 10_000.0) as u64);
        let rate = c.total_rows as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
        self.bar.set_message(format!(
            "{} rows · {:.0} rows/s · at {}",
            c.total_rows,
            rate,
            crate::time::new_york_date(c.last_time_ns)
        ));
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
