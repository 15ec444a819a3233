//! Where the Parquet store lives: a local folder, or a prefix of an S3 bucket (AWS, or any
//! S3-compatible server) through the `object_store` crate. Everything above this module
//! names the store's files by the same relative paths (`quotes/symbol=AAPL/date=.../
//! part-0.parquet`); a [`Location`] lists, reads and publishes them.
//!
//! Files are always written locally first, under a temporary name; [`Location::publish`]
//! then moves a finished file into place: a rename in a folder, one PUT (or, above
//! [`SINGLE_PUT_BYTES`], a multipart upload completed only at the end) in a bucket. Either
//! way no reader ever sees a partial file under its final name. Credentials and endpoint
//! come from the standard AWS variables and never appear in messages: a location shows as
//! `s3://bucket/prefix`.
//!
//! The calls are synchronous (the Parquet reader and writer are): against a bucket they
//! block the calling thread on the runtime (`block_in_place`), which the multi-threaded
//! runtime allows on its workers and on blocking threads.

use crate::cloud::*;
use anyhow::Context;
use bytes::Bytes;
use futures_util::TryStreamExt;
use object_store::path::Path as Key;
use object_store::{ObjectStore, PutPayload, WriteMultipart};
use parquet::file::reader::{ChunkReader, Length};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Files up to this size are uploaded with one PUT; larger ones in parts of this size
/// (`BULK_IMPORT_S3_PART_MB` sets it, 5 to 5000 MiB: S3's smallest part is 5 MiB).
pub(crate) const SINGLE_PUT_BYTES: usize = 16 << 20;

/// The part size in use: [`SINGLE_PUT_BYTES`] unless `BULK_IMPORT_S3_PART_MB` says.
fn part_bytes() -> usize {
    std::env::var("BULK_IMPORT_S3_PART_MB")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .map_or(SINGLE_PUT_BYTES, |mb| mb.clamp(5, 5000) << 20)
}

/// The URL schemes `--historical-path` takes besides a plain path.
pub(crate) const SCHEMES: &str =
    "s3://BUCKET/PREFIX, gs://BUCKET/PREFIX, az://CONTAINER/PREFIX or file:///PATH";

/// A Parquet store's root: a local folder or a bucket's prefix.
#[derive(Clone)]
pub struct Location {
    /// The folder, or the prefix inside the bucket (relative, `/`-separated).
    path: PathBuf,
    remote: Option<Arc<Remote>>,
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.show(&self.path))
    }
}

impl PartialEq for Location {
    fn eq(&self, other: &Self) -> bool {
        self.path == other.path
            && self.remote.as_ref().map(|r| &r.base) == other.remote.as_ref().map(|r| &r.base)
    }
}

impl Location {
    pub fn local(path: impl Into<PathBuf>) -> Self {
        Location {
            path: path.into(),
            remote: None,
        }
    }

    /// `--historical-path`: a path, `file:///PATH`, `s3://BUCKET[/PREFIX]`,
    /// `gs://BUCKET[/PREFIX]` or `az://CONTAINER[/PREFIX]`. Credentials, region and endpoint
    /// come from each cloud's standard variables ([`Cloud::variables`]). Any other scheme is
    /// an error, never a folder.
    pub fn parse(value: &str, retry: &data_core::retry::RetryPolicy) -> Result<Self, String> {
        let Some((scheme, rest)) = value.split_once("://") else {
            return Ok(Location::local(value));
        };
        let cloud = match scheme {
            "file" if !rest.is_empty() => return Ok(Location::local(rest)),
            "s3" | "s3a" => Cloud::S3,
            "gs" => Cloud::Gcs,
            "az" | "azure" => Cloud::Azure,
            _ => {
                return Err(format!(
                    "{scheme}:// is not supported: the Parquet store is a folder (a path, or \
                     file:///PATH) or a bucket ({SCHEMES})"
                ))
            }
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(format!("{scheme}:// needs a bucket: {SCHEMES}"));
        }
        let prefix = prefix.trim_matches('/');
        if prefix.split('/').any(|p| p == "." || p == "..") {
            return Err("the prefix must not contain . or .. segments".into());
        }
        let backoff = object_store::BackoffConfig {
            init_backoff: retry.base_delay,
            max_backoff: retry.max_delay,
            base: 2.0,
        };
        let retry = object_store::RetryConfig {
            backoff,
            max_retries: retry.max_attempts.saturating_sub(1) as usize,
            retry_timeout: Duration::from_secs(120),
        };
        let base = format!("{}://{bucket}", cloud.scheme());
        let built: object_store::Result<Arc<dyn ObjectStore>> = match cloud {
            Cloud::S3 => object_store::aws::AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .with_retry(retry)
                .build()
                .map(|s| Arc::new(s) as _),
            Cloud::Gcs => object_store::gcp::GoogleCloudStorageBuilder::from_env()
                .with_bucket_name(bucket)
                .with_retry(retry)
                .build()
                .map(|s| Arc::new(s) as _),
            Cloud::Azure => object_store::azure::MicrosoftAzureBuilder::from_env()
                .with_container_name(bucket)
                .with_retry(retry)
                .build()
                .map(|s| Arc::new(s) as _),
        };
        let store = built.map_err(|e| {
            format!(
                "cannot use {base}: {} (check {})",
                one_line(&e),
                cloud.variables()
            )
        })?;
        Ok(Location {
            path: PathBuf::from(prefix),
            remote: Some(Arc::new(Remote { store, base, cloud })),
        })
    }

    pub fn is_remote(&self) -> bool {
        self.remote.is_some()
    }

    /// The root folder (or prefix): the paths under it name the store's files.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The location of a folder inside this one.
    pub fn join(&self, dir: impl AsRef<Path>) -> Location {
        Location {
            path: self.path.join(dir),
            remote: self.remote.clone(),
        }
    }

    /// How to name `path` (under this location) to a user: the path, or `s3://bucket/key`.
    pub fn show(&self, path: &Path) -> String {
        match &self.remote {
            None => path.display().to_string(),
            Some(r) => r.show(path),
        }
    }

    /// This location itself, as [`Location::show`] names it.
    pub fn display(&self) -> String {
        self.show(&self.path)
    }

    /// Checks the bucket can be listed (exists, credentials accepted, endpoint reachable),
    /// so that an import fails in one line before fetching anything. Folders: nothing.
    pub fn check(&self) -> anyhow::Result<()> {
        let Some(r) = &self.remote else {
            return Ok(());
        };
        let key = key_of(&self.path);
        block(r.store.list_with_delimiter(Some(&key)))
            .map(|_| ())
            .map_err(|e| r.error("list", &self.path, e))
    }

    /// The names of the folders directly inside `dir` (none if it does not exist).
    pub fn subfolders(&self, dir: &Path) -> Vec<String> {
        match &self.remote {
            None => std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect(),
            Some(r) => {
                let key = key_of(dir);
                block(r.store.list_with_delimiter(Some(&key)))
                    .map(|l| {
                        l.common_prefixes
                            .iter()
                            .filter_map(|p| p.filename().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default()
            }
        }
    }

    /// Every file under `dir`, at any depth, with its size (none if `dir` does not exist).
    /// One listing of a bucket (paged by the store), a walk of a folder.
    pub fn files_under(&self, dir: &Path) -> anyhow::Result<Vec<(PathBuf, u64)>> {
        match &self.remote {
            None => {
                let mut out = Vec::new();
                let mut todo = vec![dir.to_path_buf()];
                while let Some(d) = todo.pop() {
                    for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                        match e.file_type() {
                            Ok(t) if t.is_dir() => todo.push(e.path()),
                            Ok(_) => out.push((e.path(), e.metadata().map_or(0, |m| m.len()))),
                            Err(_) => {}
                        }
                    }
                }
                Ok(out)
            }
            Some(r) => {
                let key = key_of(dir);
                let listed: Vec<_> = block(r.store.list(Some(&key)).try_collect())
                    .map_err(|e| r.error("list", dir, e))?;
                Ok(listed
                    .into_iter()
                    .map(|m| (PathBuf::from(m.location.as_ref()), m.size))
                    .collect())
            }
        }
    }

    /// Whether the file exists.
    pub fn exists(&self, file: &Path) -> anyhow::Result<bool> {
        match &self.remote {
            None => Ok(file.exists()),
            Some(r) => match block(r.store.head(&key_of(file))) {
                Ok(_) => Ok(true),
                Err(object_store::Error::NotFound { .. }) => Ok(false),
                Err(e) => Err(r.error("look up", file, e)),
            },
        }
    }

    /// The file's bytes for the Parquet reader, or None if it does not exist. A bucket's
    /// object is read whole into memory (a day or month file: a few MB).
    pub fn open(&self, file: &Path) -> anyhow::Result<Option<Stored>> {
        match &self.remote {
            None => match File::open(file) {
                Ok(f) => Ok(Some(Stored::File(f))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e).with_context(|| format!("cannot open {}", file.display())),
            },
            Some(r) => {
                let key = key_of(file);
                match block(async { r.store.get(&key).await?.bytes().await }) {
                    Ok(b) => Ok(Some(Stored::Bytes(b))),
                    Err(object_store::Error::NotFound { .. }) => Ok(None),
                    Err(e) => Err(r.error("read", file, e)),
                }
            }
        }
    }

    /// The rows of the Parquet file `file` (`size` bytes), from its footer: a bucket's
    /// object is not downloaded, only its last bytes (one ranged GET, two for a footer over
    /// 64 KiB).
    pub fn rows_in(&self, file: &Path, size: u64) -> anyhow::Result<i64> {
        let unreadable = || format!("{} is not a readable Parquet file", self.show(file));
        let Some(r) = &self.remote else {
            let f = File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
            use parquet::file::reader::FileReader;
            let reader = parquet::file::serialized_reader::SerializedFileReader::new(f)
                .with_context(unreadable)?;
            return Ok(reader.metadata().file_metadata().num_rows());
        };
        let key = key_of(file);
        let get = |range: std::ops::Range<u64>| {
            block(r.store.get_range(&key, range)).map_err(|e| r.error("read", file, e))
        };
        let tail_len = size.min(64 << 10);
        let tail = get(size - tail_len..size)?;
        let n = tail.len();
        if n < 8 || &tail[n - 4..] != b"PAR1" {
            anyhow::bail!(unreadable());
        }
        let meta_len =
            u32::from_le_bytes([tail[n - 8], tail[n - 7], tail[n - 6], tail[n - 5]]) as u64;
        if meta_len + 8 > size {
            anyhow::bail!(unreadable());
        }
        let meta = match meta_len + 8 <= n as u64 {
            true => tail.slice(n - 8 - meta_len as usize..n - 8),
            false => get(size - 8 - meta_len..size - 8)?,
        };
        let meta = parquet::file::metadata::ParquetMetaDataReader::decode_metadata(&meta)
            .with_context(unreadable)?;
        Ok(meta.file_metadata().num_rows())
    }

    /// Writes a small file (a marker) in place.
    pub fn write_small(&self, file: &Path, content: &[u8]) -> anyhow::Result<()> {
        match &self.remote {
            None => {
                if let Some(dir) = file.parent() {
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("cannot create {}", dir.display()))?;
                }
                std::fs::write(file, content)
                    .with_context(|| format!("cannot write {}", file.display()))
            }
            Some(r) => {
                let payload = PutPayload::from(Bytes::copy_from_slice(content));
                block(r.store.put(&key_of(file), payload))
                    .map(|_| ())
                    .map_err(|e| r.error("write", file, e))
            }
        }
    }

    /// The local folder where a file bound for `dir` is written before it is published:
    /// `dir` itself for a folder (created), a staging folder of the system's temporary
    /// directory for a bucket (`data-store-staging-UID`).
    pub fn staging(&self, dir: &Path) -> anyhow::Result<PathBuf> {
        let dir = match &self.remote {
            None => dir.to_path_buf(),
            // One per user: another user's folder of the same name would not be writable.
            // SAFETY: getuid has no preconditions and cannot fail.
            Some(_) => {
                let dir = std::env::temp_dir()
                    .join(format!("data-store-staging-{}", unsafe { libc::getuid() }));
                private_folder(&dir)?;
                return Ok(dir);
            }
        };
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create the Parquet folder {}", dir.display()))?;
        Ok(dir)
    }

    /// Moves the finished local file `tmp` into place as `file`: a rename in a folder; an
    /// upload to a bucket (one PUT, or parts completed at the end), then `tmp` is removed.
    pub fn publish(&self, tmp: &Path, file: &Path) -> anyhow::Result<()> {
        let Some(r) = &self.remote else {
            return std::fs::rename(tmp, file)
                .with_context(|| format!("cannot move {} into place", file.display()));
        };
        let key = key_of(file);
        let size = std::fs::metadata(tmp)
            .with_context(|| format!("cannot read {}", tmp.display()))?
            .len() as usize;
        let part = part_bytes();
        let uploaded = match size <= part {
            true => {
                let bytes =
                    std::fs::read(tmp).with_context(|| format!("cannot read {}", tmp.display()))?;
                block(r.store.put(&key, PutPayload::from(bytes)))
                    .map(|_| ())
                    .map_err(|e| r.error("upload", file, e))
            }
            false => self.upload_parts(r, tmp, &key, file, part),
        };
        let _ = std::fs::remove_file(tmp);
        uploaded
    }

    fn upload_parts(
        &self,
        r: &Remote,
        tmp: &Path,
        key: &Key,
        file: &Path,
        part: usize,
    ) -> anyhow::Result<()> {
        let mut f = File::open(tmp).with_context(|| format!("cannot read {}", tmp.display()))?;
        block(async {
            let upload = r.store.put_multipart(key).await?;
            let mut w = WriteMultipart::new_with_chunk_size(upload, part);
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = match f.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) => {
                        w.abort().await?;
                        return Err(object_store::Error::Generic {
                            store: "local",
                            source: Box::new(e),
                        });
                    }
                };
                // At most two parts in flight: memory stays bounded whatever the size.
                w.wait_for_capacity(2).await?;
                w.write(&buf[..n]);
            }
            w.finish().await.map(|_| ())
        })
        .map_err(|e| r.error("upload", file, e))
    }

    /// A bucket's object and its ETag (None: no such object), for claims.
    pub fn get_tagged(&self, file: &Path) -> anyhow::Result<Option<(Bytes, String)>> {
        let r = self.bucket()?;
        let got = block(async {
            let got = r.store.get(&key_of(file)).await?;
            let tag = got.meta.e_tag.clone().unwrap_or_default();
            Ok::<_, object_store::Error>((got.bytes().await?, tag))
        });
        match got {
            Ok(got) => Ok(Some(got)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(r.error("read", file, e)),
        }
    }

    /// Writes a small object with a conditional PUT: only if there is none (`tag` None,
    /// `If-None-Match: *`), or only if it still has ETag `tag` (`If-Match`). Returns the new
    /// ETag, or None when the condition failed (another writer was first).
    pub fn put_if(
        &self,
        file: &Path,
        content: &[u8],
        tag: Option<&str>,
    ) -> anyhow::Result<Option<String>> {
        let r = self.bucket()?;
        let mode = match tag {
            None => object_store::PutMode::Create,
            Some(t) => object_store::PutMode::Update(object_store::UpdateVersion {
                e_tag: Some(t.to_string()),
                version: None,
            }),
        };
        let payload = PutPayload::from(Bytes::copy_from_slice(content));
        let opts = object_store::PutOptions {
            mode,
            ..Default::default()
        };
        match block(r.store.put_opts(&key_of(file), payload, opts)) {
            Ok(put) => Ok(Some(put.e_tag.unwrap_or_default())),
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. }
                | object_store::Error::NotFound { .. },
            ) => Ok(None),
            Err(e) => Err(r.error("write", file, e)),
        }
    }

    fn bucket(&self) -> anyhow::Result<&Remote> {
        self.remote
            .as_deref()
            .context("conditional writes need a bucket (s3://, gs:// or az://)")
    }

    /// Removes a file (none: nothing to do).
    pub fn remove(&self, file: &Path) -> anyhow::Result<()> {
        match &self.remote {
            None => match std::fs::remove_file(file) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(e).with_context(|| format!("cannot remove {}", file.display()))
                }
                _ => Ok(()),
            },
            Some(r) => match block(r.store.delete(&key_of(file))) {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(r.error("remove", file, e)),
            },
        }
    }
}

/// symlink, owned by this user, with no access for group or others. Files bound for a
/// bucket are written there first; a folder someone else made (or could write to) would
/// let them swap our files or plant links that make us overwrite theirs.
fn private_folder(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(e)
                .with_context(|| format!("cannot create the staging folder {}", dir.display()))
        }
    }
    let meta = std::fs::symlink_metadata(dir)
        .with_context(|| format!("cannot read the staging folder {}", dir.display()))?;
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    let mode = meta.permissions().mode() & 0o777;
    let problem = if meta.file_type().is_symlink() {
        Some("it is a symlink".to_string())
    } else if !meta.is_dir() {
        Some("it is not a folder".to_string())
    } else if meta.uid() != uid {
        Some(format!(
            "it belongs to user id {}, not to you ({uid})",
            meta.uid()
        ))
    } else if mode & 0o077 != 0 {
        Some(format!(
            "its mode is {mode:o}: others can reach it (expected 700)"
        ))
    } else {
        None
    };
    match problem {
        Some(why) => anyhow::bail!(
            "the staging folder {} is not private: {why}; remove it (a new one is made with \
             mode 700), or set TMPDIR to a folder only you can write",
            dir.display()
        ),
        None => Ok(()),
    }
}

/// A stored file as the Parquet reader reads it: a local file, or an object's bytes.
pub enum Stored {
    File(File),
    Bytes(Bytes),
}

impl Length for Stored {
    fn len(&self) -> u64 {
        match self {
            Stored::File(f) => f.len(),
            Stored::Bytes(b) => b.len() as u64,
        }
    }
}

/// Whether a local file ends as every whole Parquet file does (`PAR1` after the footer).
pub fn ends_with_footer(path: &Path) -> bool {
    use std::os::unix::fs::FileExt;
    let Ok(f) = File::open(path) else {
        return false;
    };
    let Ok(len) = f.metadata().map(|m| m.len()) else {
        return false;
    };
    let mut tail = [0u8; 4];
    len >= 12 && f.read_exact_at(&mut tail, len - 4).is_ok() && &tail == b"PAR1"
}

impl Stored {
    /// A second handle on the same file (or bytes), for a second pass over it.
    pub fn try_clone(&self) -> std::io::Result<Stored> {
        Ok(match self {
            Stored::File(f) => Stored::File(f.try_clone()?),
            Stored::Bytes(b) => Stored::Bytes(b.clone()),
        })
    }
}

impl ChunkReader for Stored {
    type T = Box<dyn Read>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        Ok(match self {
            Stored::File(f) => Box::new(f.get_read(start)?),
            Stored::Bytes(b) => Box::new(b.get_read(start)?),
        })
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        match self {
            Stored::File(f) => f.get_bytes(start, length),
            Stored::Bytes(b) => b.get_bytes(start, length),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A staging folder someone else made, or that others can reach, or a symlink planted
    /// in its place, is refused (an s3:// import once overwrote a file outside the store
    /// through one); a new one is made private.
    #[test]
    fn a_staging_folder_that_is_not_ours_alone_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let base = tempfile::tempdir().unwrap();
        let fresh = base.path().join("fresh");
        private_folder(&fresh).unwrap();
        let mode = std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        private_folder(&fresh).unwrap();

        let open = base.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = private_folder(&open).unwrap_err().to_string();
        assert!(e.contains("is not private: its mode is 777"), "{e}");

        let link = base.path().join("link");
        std::os::unix::fs::symlink(&fresh, &link).unwrap();
        let e = private_folder(&link).unwrap_err().to_string();
        assert!(e.contains("is not private: it is a symlink"), "{e}");
    }

    fn parse(v: &str) -> Result<Location, String> {
        Location::parse(v, &Default::default())
    }

    /// The hint comes from the error's kind and the server's codes, never from digits that
    /// happen to be in the text: object_store's message holds the URL and the elapsed time,
    /// and "in 1.403ms" once turned a refused connection into "access denied" in CI.
    #[test]
    fn store_errors_are_told_apart_by_kind_not_by_digits_in_the_text() {
        use object_store::client::{HttpError, HttpErrorKind};
        let remote = Remote {
            store: Arc::new(object_store::memory::InMemory::new()),
            base: "az://it-24403-1".into(),
            cloud: Cloud::Azure,
        };
        let generic =
            |source: Box<dyn std::error::Error + Send + Sync>| object_store::Error::Generic {
                store: "MicrosoftAzure",
                source,
            };
        let refused = std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "Error performing GET http://127.0.0.1:9/devstoreaccount1/it-24403-1 in 1.403ms, \
             after 2 retries - 401 tries",
        );
        let e = generic(Box::new(HttpError::new(HttpErrorKind::Connect, refused)));
        let text = remote.error("list", Path::new("h"), e).to_string();
        assert_eq!(
            text,
            "cannot list az://it-24403-1/h: the object store's endpoint cannot be reached: \
             check AZURE_STORAGE_ACCOUNT_NAME, AZURE_STORAGE_ENDPOINT or AZURITE_BLOB_STORAGE_URL"
        );
        let denied = generic(
            "Error performing GET http://x/it-24403-1 in 2.1ms - Server returned non-2xx status \
             code: 403 Forbidden: <Code>AuthorizationFailure</Code>"
                .into(),
        );
        let text = remote.error("list", Path::new("h"), denied).to_string();
        assert!(
            text.contains(": access denied: check AZURE_STORAGE_ACCOUNT_NAME"),
            "{text}"
        );
        // Neither: the store's own words, whatever digits they hold.
        let other = generic("Error performing GET in 4.03ms - 500 tries: body 403".into());
        let text = remote.error("list", Path::new("h"), other).to_string();
        assert_eq!(
            text,
            "cannot list az://it-24403-1/h: Generic MicrosoftAzure error: Error performing GET in \
             4.03ms - 500 tries: body 403"
        );
    }

    #[test]
    fn urls_name_folders_or_buckets_and_other_schemes_are_refused() {
        assert_eq!(parse("data/h").unwrap(), Location::local("data/h"));
        assert_eq!(parse("file:///tmp/h").unwrap(), Location::local("/tmp/h"));
        let s3 = parse("s3://lake/h/x/").unwrap();
        assert!(s3.is_remote());
        assert_eq!(s3.display(), "s3://lake/h/x");
        assert_eq!(
            s3.join("quotes")
                .show(&s3.path().join("quotes/symbol=AAPL")),
            "s3://lake/h/x/quotes/symbol=AAPL"
        );
        assert_eq!(parse("s3://lake").unwrap().display(), "s3://lake");
        assert_eq!(parse("gs://lake/h/").unwrap().display(), "gs://lake/h");
        let http = parse("http://lake/h").unwrap_err();
        assert!(http.starts_with("http:// is not supported"), "{http}");
        assert!(parse("gs://").unwrap_err().contains("needs a bucket"));
        assert!(parse("s3:///h").unwrap_err().contains("needs a bucket"));
        assert!(parse("s3://lake/../h").is_err());
    }
}
