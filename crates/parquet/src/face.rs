//! The Parquet store as a [`Store`]: its planning rules (whole New York days, or months for
//! bars; a file in place is its unit's done record), its import (the stand-in's marker, bucket
//! claims for `--coordinate`), what it holds, and its locks.

use super::writer::ParquetSink;
use crate::claims::markers;
use crate::layout::Layout;
use crate::reader::parquet_holdings;
use crate::source::StoreRows;
use anyhow::Context;
use data_core::dataset::DatasetId;
use data_core::model::Symbol;
use data_core::pipeline::Sink;
use data_core::resume::{Saved, Shard};
use data_core::time::format_nanos;
use data_core::transform::Passthrough;
use data_job::config::Settings;
use data_job::job::{usage, Job};
use data_job::lock::{beside, lock_in_file, JobLock};
use data_job::run::{
    pipe, plan, report_symbols, shards_to_fetch, Outcome, ProgressStore, Report, Saves, Source,
    Units,
};
use data_job::store::Holding;
use data_job::store::{Plan, SharedClaims, Store};
use data_storage::location::Location;
use std::path::PathBuf;
use std::sync::Arc;

/// The Parquet store `--historical-path` names: a local folder, or s3://, gs://, az://.
pub struct ParquetStore {
    settings: Settings,
}

impl ParquetStore {
    pub fn new(settings: &Settings) -> Self {
        ParquetStore {
            settings: settings.clone(),
        }
    }

    fn root(&self) -> &Location {
        &self.settings.historical_path
    }
}

impl Store for ParquetStore {
    fn describe(&self) -> String {
        format!("the Parquet store {}", self.root().display())
    }

    fn check(&self, job: &Job) -> anyhow::Result<()> {
        if !job.thinning.is_raw() {
            return Err(usage(
                "thinning (--nbbo-changes, --sample, --aggregate) writes database tables; it cannot be combined with format parquet",
            ));
        }
        if job.coordinate.is_some() && !self.root().is_remote() {
            return Err(usage(data_job::claims::NOT_SHARED));
        }
        Ok(())
    }

    /// Whole units only; a unit the data does not reach the end of yet is no file yet.
    async fn pending(&self, job: &Job, available: i64, _read_only: bool) -> Plan {
        let mut store = StoreProgress {
            root: crate::layout::store_root(&job.settings),
            dataset: job.dataset,
        };
        let range = job.dataset.whole_units(job.range);
        let (todo, counts) = shards_to_fetch(job, &mut store, range, available, false).await?;
        Ok((todo.into_iter().filter(|s| s.can_finish).collect(), counts))
    }

    /// Whole New York days (bars: whole months). A file in place is its unit's resume
    /// record: a rerun fetches only days (months) without one.
    async fn import<S, F>(&self, job: &Job, available: i64, source: F) -> anyhow::Result<Outcome>
    where
        S: Source,
        F: FnOnce(Arc<Vec<Shard>>, SharedClaims) -> S,
    {
        let settings = &job.settings;
        let layout = job.dataset;
        let unit = layout.unit();
        let range = layout.whole_units(job.range);
        if range != job.range {
            tracing::info!(
                target: data_job::progress::SUMMARY,
                "[FILE] the Parquet store keeps whole New York {}: importing {range} (asked for {})",
                unit.noun(),
                job.range
            );
        }
        if settings.skip_duplicates || settings.drop_indexes {
            tracing::warn!("[FILE] skip_duplicates and drop_indexes apply to databases; ignored for format parquet");
        }
        let root = &crate::layout::store_root(settings);
        root.check()?;
        claim_files(job, root)?;
        let report = Report::new(job, "parquet", settings.api_url.clone());
        let mut store = StoreProgress {
            root: root.clone(),
            dataset: layout,
        };
        let Some(shards) = plan(job, &report, &mut store, range, available, false).await? else {
            return Ok(Outcome::Completed);
        };
        // A file is a whole day (month): one the data does not reach the end of yet waits.
        let (whole, waiting): (Vec<Shard>, Vec<Shard>) =
            shards.iter().cloned().partition(|s| s.can_finish);
        if let Some(first) = waiting.first() {
            tracing::info!(
                target: data_job::progress::SUMMARY,
                "[FILE] the Parquet store keeps whole {}: {} {} not over yet (data up to {}), so a \
                 later run imports it",
                unit.noun(),
                first.day,
                if waiting.len() == 1 { "is" } else { "and later are" },
                format_nanos(available)
            );
        }
        if whole.is_empty() {
            return Ok(Outcome::Completed);
        }
        let shards = Arc::new(whole);
        let mut sink = ParquetSink::new(root, layout, shards.clone())?;
        let claims = match job.coordinate {
            Some(lease) => {
                let claims = markers(root, layout, &shards, lease)?;
                claims.announce(shards.len());
                sink.release_claims = true;
                Some(claims)
            }
            None => None,
        };
        tracing::info!(
            "[IMPORT] {} {range} (feed {}) into the Parquet store {}, batches of {}",
            report.label(),
            settings.feed.as_str(),
            root.show(&layout.dir(root.path())),
            settings.batch_size
        );
        let shared = claims
            .clone()
            .map(|c| c as Arc<dyn data_core::pipeline::ShardClaims>);
        let source = source(shards.clone(), shared);
        let make = || Passthrough;
        let result = pipe(&report, range, settings.batch_size, &mut sink, make, source).await;
        if let Ok((Outcome::Completed, fetched)) = &result {
            match &claims {
                None => report_symbols(&report, &shards, fetched, range),
                Some(c) => {
                    c.report_share(shards.len());
                    let swept = c.store().sweep()?;
                    if swept > 0 {
                        tracing::info!(
                            "[COORD] deleted {swept} claim marker(s) of days already in place"
                        );
                    }
                }
            }
        }
        let files = &mut sink.written;
        files.sort_by_key(|d| d.date);
        let kept = match (files.first(), files.last()) {
            (Some(a), Some(b)) => format!(
                "{} {} files, {} to {}, {} rows",
                files.len(),
                unit.file_noun(),
                a.date,
                b.date,
                files.iter().map(|d| d.rows).sum::<u64>()
            ),
            _ => "no files".to_string(),
        };
        match &result {
            Ok((Outcome::Completed, _)) => tracing::info!(
                target: data_job::progress::SUMMARY,
                "[FILE] wrote {kept} under {}",
                root.show(&layout.dir(root.path()))
            ),
            _ => tracing::warn!(
                "[FILE] kept {kept}; the {} in progress were discarded (rerun to complete them)",
                unit.noun()
            ),
        }
        result.map(|(outcome, _)| outcome)
    }

    async fn holdings(&self) -> anyhow::Result<Option<Vec<Holding>>> {
        let held = parquet_holdings(self.root())?;
        Ok((!held.is_empty()).then_some(held))
    }

    async fn status(&self) -> anyhow::Result<(Vec<Holding>, Vec<String>)> {
        let held = parquet_holdings(self.root())?;
        let notes = match held.is_empty() {
            true => vec![format!("Parquet store {}: no files", self.root().display())],
            false => Vec::new(),
        };
        Ok((held, notes))
    }

    /// A bucket's lock sits beside the log file (`NAME.lock`); a local store's inside its
    /// folder (`.NAME.lock`, `inside`) or beside it (`historical.NAME.lock`), out of the
    /// folder readers list.
    fn lock_path(&self, name: &str, inside: bool) -> anyhow::Result<PathBuf> {
        let root = self.root();
        Ok(match (root.is_remote(), inside) {
            (true, _) => beside(self.settings.log_path(), &format!("{name}.lock")),
            (false, true) => root.path().join(format!(".{name}.lock")),
            (false, false) => {
                let path = root.path();
                let file = format!(
                    "{}.{name}.lock",
                    path.file_name()
                        .and_then(|n| n.to_str())
                        .unwrap_or("historical")
                );
                beside(path, &file)
            }
        })
    }

    async fn lock_job(&self, job: &Job) -> anyhow::Result<JobLock> {
        lock_in_file(job, &self.lock_path("import", false)?)
    }

    async fn holds(&self, job: &Job) -> anyhow::Result<bool> {
        let root = crate::layout::store_root(&self.settings);
        let layout = job.dataset;
        for symbol in &job.symbols {
            for unit in layout.units_in(job.range.start_ns, job.range.end_ns) {
                if root.exists(&layout.file(root.path(), symbol.as_str(), unit))? {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    async fn export<K: Sink>(&self, job: &Job, sink: &mut K) -> anyhow::Result<Outcome> {
        let root = crate::layout::store_root(&self.settings);
        root.check()?;
        let from = format!("the Parquet store {}", root.display());
        let report = Report::new(job, "export", from);
        let source = StoreRows {
            root,
            layout: job.dataset,
            symbols: job.symbols.clone(),
            range: job.range,
        };
        let batch = job.settings.batch_size;
        let (outcome, _) = pipe(&report, job.range, batch, sink, || Passthrough, source).await?;
        Ok(outcome)
    }
}

/// The Parquet store's progress: a file in place is its unit's record, done and whole (a
/// unit in progress is never renamed into place, so it has none).
struct StoreProgress {
    root: Location,
    dataset: DatasetId,
}

impl ProgressStore for StoreProgress {
    async fn saved(&mut self, _dataset: &str, symbol: &Symbol, units: Units) -> Saves {
        let (first, last) = units.into_inner();
        let d = self.dataset;
        let (from, until) = (d.unit_bounds(first).0, d.unit_bounds(last).1);
        // One listing of the symbol's folder, not a lookup per unit.
        let dir = d.symbol_dir(self.root.path(), symbol.as_str());
        let files: std::collections::HashSet<PathBuf> = self
            .root
            .files_under(&dir)?
            .into_iter()
            .map(|(p, _)| p)
            .filter(|p| {
                // A local file cut short (a full disk, a copy interrupted) is no record of a
                // finished day: it is fetched and written again. Objects in a bucket are
                // published whole by one PUT.
                let day_file = p
                    .file_name()
                    .is_some_and(|n| n == crate::layout::FILE_NAME);
                let whole =
                    !day_file || self.root.is_remote() || data_storage::location::ends_with_footer(p);
                if !whole {
                    tracing::warn!(
                        "[RESUME] {} has no Parquet footer (damaged or cut short): its {} is fetched again",
                        p.display(),
                        d.unit().noun().trim_end_matches('s')
                    );
                }
                whole
            })
            .collect();
        Ok(d.units_in(from, until - 1)
            .into_iter()
            .filter(|&key| files.contains(&d.file(self.root.path(), symbol.as_str(), key)))
            .map(|day| {
                let (start_ns, end) = d.unit_bounds(day);
                Saved {
                    day,
                    start_ns,
                    end_ns: end - 1,
                    last: None,
                    done: true,
                }
            })
            .collect())
    }

    fn done_phrase(&self) -> &'static str {
        "are in the Parquet store already"
    }
}

/// The Parquet store's side of "stand-in rows never mix with market data": a symbol whose
/// files are the stand-in's carries a marker file; an import of the other kind is refused,
/// and a stand-in import marks the symbols it writes.
fn claim_files(job: &Job, root: &Location) -> anyhow::Result<()> {
    for symbol in &job.symbols {
        let marker = job.dataset.synthetic_marker(root.path(), symbol.as_str());
        let dir = marker
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_default();
        let files = root.files_under(&dir)?;
        let marked = files.iter().any(|(p, _)| *p == marker);
        let has_files = files.iter().any(|(p, _)| *p != marker);
        if has_files && marked != job.synthetic {
            anyhow::bail!(
                "{symbol} in {} holds {}; {} would mix the two: use another --historical-path",
                root.show(&dir),
                if marked {
                    "the stand-in's synthetic rows"
                } else {
                    "market data from the API"
                },
                if job.synthetic {
                    "--standin"
                } else {
                    "importing from the API"
                }
            );
        }
        if job.synthetic && !marked {
            root.write_small(&marker, b"synthetic rows from the offline stand-in\n")
                .with_context(|| format!("cannot mark {}", root.show(&dir)))?;
        }
    }
    Ok(())
}
