//! Advisory locks on a store: one `sync` at a time (`flock` on a lock file), and one
//! import of the same job at a time (a byte of one lock file per store, or a PostgreSQL
//! advisory lock), so two importers started with the same command do not fetch everything
//! twice blind: the second says so in one line. `--coordinate` importers share a job
//! instead and take no job lock.

use crate::config::{Format, Settings};
use crate::job::Job;
use crate::sink::database::is_postgres_url;
use anyhow::Context;
use std::fs::File;
use std::path::{Path, PathBuf};

/// The lock file `name` of the store: beside the SQLite file (`market.db.NAME.lock`), in a
/// local Parquet store's folder (`.NAME.lock`), or for PostgreSQL and a bucket beside the
/// log file (`NAME.lock`: one per working folder, as they have no local file to sit by).
/// `inside`: a local Parquet store's lock sits inside its folder (`sync`'s), else beside
/// it (`historical.NAME.lock`), out of the folder readers list.
pub fn store_lock(settings: &Settings, name: &str, inside: bool) -> anyhow::Result<PathBuf> {
    let beside = |p: &Path, file: &str| -> PathBuf {
        p.parent()
            .filter(|d| !d.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from(file), |d| d.join(file))
    };
    Ok(match settings.format {
        Format::Parquet if settings.historical_path.is_remote() => {
            beside(settings.log_path(), &format!("{name}.lock"))
        }
        Format::Parquet if inside => settings
            .historical_path
            .path()
            .join(format!(".{name}.lock")),
        Format::Parquet => {
            let root = settings.historical_path.path();
            let file = format!(
                "{}.{name}.lock",
                root.file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or("historical")
            );
            beside(root, &file)
        }
        Format::Database if is_postgres_url(&settings.database_url) => {
            beside(settings.log_path(), &format!("{name}.lock"))
        }
        Format::Database => {
            let opts = crate::sink::sqlite::connect_options(&settings.database_url)?;
            let db = opts.get_filename().to_path_buf();
            let file = format!(
                "{}.{name}.lock",
                db.file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or("market.db")
            );
            beside(&db, &file)
        }
    })
}

fn open_lock_file(path: &Path) -> anyhow::Result<File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // The folder a database or the store is created in: the same words as there.
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the database folder {}", dir.display()))?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .with_context(|| format!("cannot open the lock file {}", path.display()))
}

/// An exclusive advisory lock (`flock`) held while the value lives.
pub struct FileLock {
    _file: File,
}

impl FileLock {
    /// Takes the lock, or `None` when another process holds it.
    pub fn take(path: &Path) -> anyhow::Result<Option<FileLock>> {
        use std::os::fd::AsRawFd;
        let file = open_lock_file(path)?;
        // SAFETY: flock on a descriptor this function owns; no memory is passed.
        let held = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
        Ok(held.then_some(FileLock { _file: file }))
    }
}

/// The lock of one import job on its store, held while the value lives.
pub enum JobLock {
    /// A one-byte open-file-description lock (`fcntl`) in the store's lock file, at the
    /// job's offset.
    File(File),
    /// A session-level advisory lock on a connection of its own.
    Postgres(Box<sqlx::PgConnection>),
}

/// The job's identity on its store: the dataset's progress key (feed, timeframe, thinning
/// included), its sorted symbols and its range, hashed (FNV-1a, stable across builds and
/// machines). Imports of overlapping but different ranges still run side by side: their
/// rows are upserted, so the overlap ends exact; the same command twice is what fetches
/// everything twice for nothing.
fn job_hash(job: &Job) -> u64 {
    let mut symbols: Vec<&str> = job.symbols.iter().map(|s| s.as_str()).collect();
    symbols.sort_unstable();
    let text = format!(
        "{}|{}|{}|{}",
        job.progress_key(),
        symbols.join(","),
        job.range.start_ns,
        job.range.end_ns
    );
    text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Takes the lock of `job` on its store. When another process holds it, the error says so
/// in one line (exit 1): the other import is fetching the same rows.
pub async fn lock_job(job: &Job) -> anyhow::Result<JobLock> {
    let hash = job_hash(job);
    let what = format!(
        "{} of {}",
        job.dataset.noun(),
        match job.symbols.as_slice() {
            [one] => one.to_string(),
            many => format!("{} symbols", many.len()),
        }
    );
    let busy = |holder: String| {
        anyhow::anyhow!(
            "another import of {what} is running on this store{holder}: this one would fetch \
             the same rows again; wait for it to finish (or stop it), or share the work with \
             --coordinate on PostgreSQL or a bucket"
        )
    };
    let settings = &job.settings;
    if settings.format == Format::Database && is_postgres_url(&settings.database_url) {
        use sqlx::Connection;
        let shown = crate::config::redact_url(&settings.database_url);
        let mut conn = sqlx::PgConnection::connect(&settings.database_url)
            .await
            .map_err(|e| anyhow::anyhow!("cannot connect (PostgreSQL {shown}): {e}"))?;
        let held: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(hash as i64)
            .fetch_one(&mut conn)
            .await
            .map_err(|e| anyhow::anyhow!("cannot take the import lock in {shown}: {e}"))?;
        return match held {
            true => Ok(JobLock::Postgres(Box::new(conn))),
            false => Err(busy(" (a PostgreSQL advisory lock)".to_string())),
        };
    }
    let path = match settings.format {
        // The database's own lock file, whose migration byte the sink holds while it
        // migrates the schema.
        Format::Database => {
            let opts = crate::sink::sqlite::connect_options(&settings.database_url)?;
            crate::sink::sqlite::lock_file_of(opts.get_filename())
        }
        Format::Parquet => store_lock(settings, "import", false)?,
    };
    let file = open_lock_file(&path)?;
    // One byte per job, at an offset from its hash: jobs of other symbols or datasets
    // lock other bytes of the same file.
    let offset = (hash % (1 << 40)) as i64;
    let held = crate::sink::sqlite::lock_byte(&file, offset, std::time::Duration::ZERO)
        .with_context(|| format!("cannot lock {}", path.display()))?;
    match held {
        true => Ok(JobLock::File(file)),
        false => Err(busy(format!(" (lock {})", path.display()))),
    }
}
