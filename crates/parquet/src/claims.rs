//! `--coordinate` on a Parquet store in a bucket (`--format parquet --historical-path
//! s3://|gs://|az://...`): a claim is a marker object, `_claims/<the unit's folder>` beside
//! the dataset folders (readers skip `_` folders), holding its owner and expiry, written
//! with a conditional PUT: `If-None-Match: *` to claim a free shard, `If-Match: <ETag>` to
//! renew it or to take an expired one over, so of two importers racing for a marker exactly
//! one wins. The unit's file published is the done mark; the sink then deletes the marker.
//! A claim won is checked against the file, so a shard done meanwhile is never fetched
//! again. Expiry compares the writer's clock with the reader's: the importers' clocks must
//! agree to well within a lease. What every place of claims shares (waiting, taking over,
//! renewing) is `data_job::claims`.

use crate::layout::{Layout, FILE_NAME};
use chrono::NaiveDate;
use data_core::dataset::DatasetId;
use data_core::pipeline::ClaimFuture;
use data_core::resume::Shard;
use data_job::claims::{ClaimPlan, ClaimStore, Claimed, Claims};
use data_storage::location::Location;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The folder of the claim markers, beside the datasets' folders in the store.
pub(crate) const CLAIMS_DIR: &str = "_claims";

/// The claim marker of `symbol`'s unit `key` of `layout` in the store under `root`.
pub(crate) fn claim_path(root: &Path, layout: &DatasetId, symbol: &str, key: NaiveDate) -> PathBuf {
    root.join(CLAIMS_DIR)
        .join(layout.unit_dir(Path::new(""), symbol, key))
}

/// Claims as marker objects in the Parquet store's bucket.
pub struct Markers {
    store: Location,
    layout: DatasetId,
    /// Each plan index's unit key.
    keys: Vec<NaiveDate>,
    /// Plan index -> the ETag of this importer's marker.
    held: std::sync::Mutex<HashMap<u32, String>>,
}

/// Claims kept as marker objects in the Parquet store's bucket `store`.
pub fn markers(
    store: &Location,
    layout: DatasetId,
    shards: &[Shard],
    lease: Duration,
) -> anyhow::Result<Arc<Claims<Markers>>> {
    anyhow::ensure!(
        store.is_remote(),
        "claims in the Parquet store need a bucket"
    );
    let markers = Markers {
        store: store.clone(),
        layout,
        keys: shards.iter().map(|s| s.day).collect(),
        held: Default::default(),
    };
    Ok(Claims::new(markers, shards, lease))
}

fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
}

impl Markers {
    /// Shard `id`'s marker and unit file.
    fn paths(&self, plan: &ClaimPlan, id: u32) -> Option<(PathBuf, PathBuf)> {
        let key = *self.keys.get(id as usize)?;
        let symbol = plan.symbols.get(id as usize)?;
        let root = self.store.path();
        Some((
            claim_path(root, &self.layout, symbol, key),
            self.layout.file(root, symbol, key),
        ))
    }

    /// The dataset's files in place (one listing).
    fn files(&self) -> anyhow::Result<HashSet<PathBuf>> {
        let dir = self.layout.dir(self.store.path());
        Ok(self
            .store
            .files_under(&dir)?
            .into_iter()
            .map(|(p, _)| p)
            .collect())
    }

    fn held(&self) -> Vec<(u32, String)> {
        self.held
            .lock()
            .map(|h| h.iter().map(|(k, v)| (*k, v.clone())).collect())
            .unwrap_or_default()
    }

    /// A marker's content: its owner and when it expires (ms since the epoch).
    fn marker(plan: &ClaimPlan) -> String {
        format!("{} {}\n", plan.owner, now_ms() + plan.lease.as_millis())
    }

    /// Claims shard `id` with its marker object: created if there is none, taken over if
    /// expired (`Some(Some(owner))`); then the unit's file is looked for (done: released
    /// at once).
    fn claim_marker(&self, plan: &ClaimPlan, id: u32) -> anyhow::Result<Option<Option<String>>> {
        let Some((path, file)) = self.paths(plan, id) else {
            return Ok(None);
        };
        let store = &self.store;
        let content = Self::marker(plan);
        let (tag, was) = match store.put_if(&path, content.as_bytes(), None)? {
            Some(tag) => (tag, None),
            None => {
                let Some((current, tag)) = store.get_tagged(&path)? else {
                    // Released between the two requests: its shard was just done.
                    return Ok(None);
                };
                let current = String::from_utf8_lossy(&current);
                let mut parts = current.split_whitespace();
                let (owner, until) = (parts.next().unwrap_or(""), parts.next());
                let until: u128 = until.and_then(|u| u.parse().ok()).unwrap_or(0);
                // Held by another importer, or already by one of this importer's fetchers
                // (never claimed twice).
                if owner == plan.owner || until >= now_ms() {
                    return Ok(None);
                }
                let Some(new) = store.put_if(&path, content.as_bytes(), Some(&tag))? else {
                    return Ok(None);
                };
                (new, Some(owner.to_string()))
            }
        };
        // Read back: on a server whose conditional PUT is not atomic (moto's checks, then
        // writes), two importers can both be told they won; the content says who did.
        match store.get_tagged(&path)? {
            Some((current, _)) if current.starts_with(format!("{} ", plan.owner).as_bytes()) => {}
            _ => return Ok(None),
        }
        if store.exists(&file)? {
            store.remove(&path)?;
            return Ok(None);
        }
        if let Ok(mut held) = self.held.lock() {
            held.insert(id, tag);
        }
        Ok(Some(was))
    }

    /// The plan's shards without their file and not this importer's (one listing).
    fn others_markers(&self, plan: &ClaimPlan) -> anyhow::Result<Vec<u32>> {
        let files = self.files()?;
        let mine: Vec<u32> = self.held().into_iter().map(|(id, _)| id).collect();
        Ok((0..plan.symbols.len() as u32)
            .filter(|id| !mine.contains(id))
            .filter(|&id| {
                self.paths(plan, id)
                    .is_some_and(|(_, file)| !files.contains(&file))
            })
            .collect())
    }

    /// Rewrites each held marker with a later expiry, on its ETag; a marker gone (its
    /// shard done, the sink released it) or rewritten by another importer is dropped.
    fn renew_markers(&self, plan: &ClaimPlan) -> anyhow::Result<()> {
        for (id, tag) in self.held() {
            let Some((path, _)) = self.paths(plan, id) else {
                continue;
            };
            let renewed = self
                .store
                .put_if(&path, Self::marker(plan).as_bytes(), Some(&tag))?;
            if let Ok(mut held) = self.held.lock() {
                match renewed {
                    Some(tag) => held.insert(id, tag),
                    None => held.remove(&id),
                };
            }
        }
        Ok(())
    }

    /// After the job: deletes the bucket's markers of units whose file is in place (an
    /// importer killed between publishing a file and deleting its marker leaves one; so
    /// can a renewal racing the deletion on a server whose If-Match is not atomic). A
    /// marker without its file is an unfinished shard's and stays.
    pub fn sweep(&self) -> anyhow::Result<usize> {
        let (store, layout) = (&self.store, &self.layout);
        let root = store.path();
        let files = self.files()?;
        let claims = root.join(CLAIMS_DIR);
        let mut swept = 0;
        for (marker, _) in store.files_under(&claims.join(layout.dir(Path::new(""))))? {
            let Ok(unit) = marker.strip_prefix(&claims) else {
                continue;
            };
            if files.contains(&root.join(unit).join(FILE_NAME)) {
                store.remove(&marker)?;
                swept += 1;
            }
        }
        Ok(swept)
    }
}

impl ClaimStore for Markers {
    fn claim<'a>(&'a self, plan: &'a ClaimPlan, ids: &'a [u32]) -> Claimed<'a> {
        Box::pin(async move {
            let mut held = Vec::new();
            for &id in ids {
                if let Some(was) = self.claim_marker(plan, id)? {
                    held.push((id, was));
                }
            }
            Ok(held)
        })
    }

    fn others<'a>(&'a self, plan: &'a ClaimPlan) -> ClaimFuture<'a, anyhow::Result<Vec<u32>>> {
        Box::pin(async move { self.others_markers(plan) })
    }

    fn renew<'a>(&'a self, plan: &'a ClaimPlan) -> ClaimFuture<'a, anyhow::Result<()>> {
        Box::pin(async move { self.renew_markers(plan) })
    }

    fn place(&self) -> String {
        format!(
            "as objects under {}",
            self.store.show(&self.store.path().join(CLAIMS_DIR))
        )
    }
}
