//! Advisory locks on a store: one `sync` at a time (`flock` on a lock file), and one import
//! of the same job at a time (a byte of one lock file per store, or a PostgreSQL advisory
//! lock; each store's face says which file or lock is its own), so two importers started with the same command do not fetch everything
//! twice blind: the second says so in one line. `--coordinate` importers share a job
//! instead and take no job lock.

use crate::job::Job;
use anyhow::Context;
use std::fs::File;
use std::path::{Path, PathBuf};

/// `file` in the folder of `path` (or the working folder).
pub(crate) fn beside(path: &Path, file: &str) -> PathBuf {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from(file), |d| d.join(file))
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

/// The one-line error of a job whose lock another process holds (`holder`: which lock).
pub(crate) fn busy(job: &Job, holder: &str) -> anyhow::Error {
    let what = format!(
        "{} of {}",
        job.dataset.noun(),
        match job.symbols.as_slice() {
            [one] => one.to_string(),
            many => format!("{} symbols", many.len()),
        }
    );
    anyhow::anyhow!(
        "another import of {what} is running on this store{holder}: this one would fetch \
         the same rows again; wait for it to finish (or stop it), or share the work with \
         --coordinate on PostgreSQL or a bucket"
    )
}

/// Takes the lock of `job` in the lock file `path`: one byte per job, at an offset from
/// its hash, so jobs of other symbols or datasets lock other bytes of the same file.
pub(crate) fn lock_in_file(job: &Job, path: &Path) -> anyhow::Result<JobLock> {
    let file = open_lock_file(path)?;
    let offset = (job_hash(job) % (1 << 40)) as i64;
    let held = crate::store::sql::sqlite::lock_byte(&file, offset, std::time::Duration::ZERO)
        .with_context(|| format!("cannot lock {}", path.display()))?;
    match held {
        true => Ok(JobLock::File(file)),
        false => Err(busy(job, &format!(" (lock {})", path.display()))),
    }
}

/// Takes the lock of `job` as a PostgreSQL advisory lock on a connection of its own.
pub(crate) async fn lock_in_postgres(job: &Job, url: &str) -> anyhow::Result<JobLock> {
    use sqlx::Connection;
    let shown = crate::config::redact_url(url);
    let mut conn = sqlx::PgConnection::connect(url)
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect (PostgreSQL {shown}): {e}"))?;
    let held: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(job_hash(job) as i64)
        .fetch_one(&mut conn)
        .await
        .map_err(|e| anyhow::anyhow!("cannot take the import lock in {shown}: {e}"))?;
    match held {
        true => Ok(JobLock::Postgres(Box::new(conn))),
        false => Err(busy(job, " (a PostgreSQL advisory lock)")),
    }
}
