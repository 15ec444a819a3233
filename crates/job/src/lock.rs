//! Advisory locks on a store: one `sync` at a time (`flock` on a lock file), and one import
//! of the same job at a time (a byte of one lock file per store, or a PostgreSQL advisory
//! lock; each store's face says which file or lock is its own), so two importers started with the same command do not fetch everything
//! twice blind: the second says so in one line. `--coordinate` importers share a job
//! instead and take no job lock.

use crate::job::Job;
use anyhow::Context;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `file` in the folder of `path` (or the working folder).
pub fn beside(path: &Path, file: &str) -> PathBuf {
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

/// The lock of one import job on its store, held while the value lives: a one-byte
/// open-file-description lock in the store's lock file ([`lock_in_file`]), or whatever a
/// store holds it with (PostgreSQL: a session-level advisory lock on a connection of its
/// own).
pub struct JobLock(#[allow(dead_code)] Box<dyn Send>);

impl JobLock {
    /// A lock held as long as `held` lives.
    pub fn new(held: impl Send + 'static) -> JobLock {
        JobLock(Box::new(held))
    }
}

/// The job's identity on its store: the dataset's progress key (feed, timeframe, thinning
/// included), its sorted symbols and its range, hashed (FNV-1a, stable across builds and
/// machines). Imports of overlapping but different ranges still run side by side: their
/// rows are upserted, so the overlap ends exact; the same command twice is what fetches
/// everything twice for nothing.
pub fn job_hash(job: &Job) -> u64 {
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
pub fn busy(job: &Job, holder: &str) -> anyhow::Error {
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
pub fn lock_in_file(job: &Job, path: &Path) -> anyhow::Result<JobLock> {
    let file = open_lock_file(path)?;
    let offset = (job_hash(job) % (1 << 40)) as i64;
    let held = lock_byte(&file, offset, std::time::Duration::ZERO)
        .with_context(|| format!("cannot lock {}", path.display()))?;
    match held {
        true => Ok(JobLock::new(file)),
        false => Err(busy(job, &format!(" (lock {})", path.display()))),
    }
}

/// A one-byte write lock on `file` at `offset`, an open-file-description lock (Linux's
/// `F_OFD_SETLK`): it belongs to this descriptor alone, so closing another descriptor of
/// the same file (as SQLite and other locks do) never drops it. Waits up to `wait` for a
/// holder to let go (20 ms steps). `Ok(false)`: still held by another.
pub fn lock_byte(file: &std::fs::File, offset: i64, wait: Duration) -> std::io::Result<bool> {
    use std::os::fd::AsRawFd;
    let lock = libc::flock {
        l_type: libc::F_WRLCK as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: offset as libc::off_t,
        l_len: 1,
        l_pid: 0,
    };
    let until = std::time::Instant::now() + wait;
    loop {
        // SAFETY: fcntl record locking on a descriptor the caller owns, with a valid flock.
        if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &lock) } == 0 {
            return Ok(true);
        }
        let e = std::io::Error::last_os_error();
        if !matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EACCES)) {
            return Err(e);
        }
        if std::time::Instant::now() >= until {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
