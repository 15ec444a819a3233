//! `data archive`: a symbol's rows before a cutoff, from the database to the Parquet store,
//! through the same pipeline as an import (the database as the source, one shard per unit;
//! the Parquet sink writing each unit's file atomically), then each file verified and only
//! then its rows deleted from the database.
//!
//! Each unit's database rows (a New York day; bars: a calendar month), merged with any file
//! already stored for it, go to the Parquet sink, which writes the unit's file atomically;
//! then each file is read back and verified (it holds exactly the merged rows' count and
//! every database row with its exact values), and only then are the unit's rows deleted
//! from the database. A crash at any point leaves the rows in the database, in the file, or
//! both — and a rerun merges by key, so it neither loses nor duplicates anything.

use crate::args::ArchiveArgs;
use crate::batch::{self, Value};
use crate::dataset::DatasetId;
use crate::dataset::Role;
use crate::job::ArchiveJob;
use crate::model::Symbol;
use crate::pipeline::send_rows;
use crate::progress::init_logging;
use crate::resume::Shard;
use crate::run::{pipe, Cancel, Feed, Fetched, Outcome, Report, Source, SourceTask};
use crate::source::alpaca::PAGE_LIMIT;
use crate::store::parquet::layout::Layout;
use crate::store::parquet::location::Location;
use crate::store::parquet::reader::read_file;
use crate::store::parquet::writer::ParquetSink;
use crate::store::sql::database::Database;
use crate::store::sql::face::open_quietly;
use crate::time::{new_york_date, DateRange};
use crate::transform::Passthrough;
use arrow_array::RecordBatch;
use chrono::NaiveDate;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub async fn run(args: ArchiveArgs) -> anyhow::Result<Outcome> {
    let today = new_york_date(chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX));
    let job = ArchiveJob::new(&args, today)?;
    init_logging(job.settings.log_path())?;
    let started = Instant::now();
    let dataset = job.dataset;
    let (outcome, report) = archive(&job).await?;
    if outcome == Outcome::Completed {
        tracing::info!(
            target: crate::progress::SUMMARY,
            "[DONE] archived {} {} before {}: {} {}, {} rows moved to {} in {:.1}s",
            job.symbol,
            dataset.noun(),
            job.cutoff,
            report.units,
            dataset.unit().noun(),
            report.rows,
            crate::store::parquet::layout::store_root(&job.settings).display(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(outcome)
}

/// Plans the units, runs them through the pipeline, then verifies and deletes each.
async fn archive(job: &ArchiveJob) -> anyhow::Result<(Outcome, ArchiveReport)> {
    let (dataset, symbol) = (job.dataset, &job.symbol);
    let root = &crate::store::parquet::layout::store_root(&job.settings);
    root.check()?;
    let mut db = open_quietly(&job.settings).await?;
    let name = job.settings.feed.key(&dataset.key());
    let units = archivable_units(&mut db, &dataset, &name, symbol, job.cutoff).await?;
    let (Some(first), Some(last)) = (units.first(), units.last()) else {
        return Ok((Outcome::Completed, ArchiveReport::default()));
    };
    let range = DateRange {
        start_ns: dataset.unit_bounds(*first).0,
        end_ns: dataset.unit_bounds(*last).1 - 1,
    };
    let shards: Arc<Vec<Shard>> = Arc::new(
        units
            .iter()
            .map(|&key| {
                let (from, until) = dataset.unit_bounds(key);
                Shard {
                    symbol: symbol.clone(),
                    day: key,
                    start_ns: from,
                    end_ns: until - 1,
                    record_start_ns: from,
                    resume_after: None,
                    can_finish: true,
                }
            })
            .collect(),
    );
    let report = Report {
        symbols: vec![symbol.clone()],
        unit: dataset.unit().noun(),
        noun: dataset.noun(),
        item: dataset.item(),
        table: "parquet",
        spec: String::new(),
        from: format!("the database {}", db.describe()),
        resumed: Default::default(),
    };
    let source = DatabaseSource {
        db,
        root: root.clone(),
        dataset,
        shards: shards.clone(),
        counts: Arc::default(),
    };
    let counts = source.counts.clone();
    let mut sink = ParquetSink::new(root, dataset, shards)?;
    let batch = job.settings.batch_size;
    let (outcome, _) = pipe(&report, range, batch, &mut sink, || Passthrough, source)
        .await
        .map_err(|e| e.context("nothing was deleted from the database"))?;
    if outcome != Outcome::Completed {
        return Ok((outcome, ArchiveReport::default()));
    }
    // Every unit's file is in place: verify each, then delete its database rows.
    let mut db = open_quietly(&job.settings).await?;
    let counts = counts.lock().map(|c| c.clone()).unwrap_or_default();
    let mut done = ArchiveReport::default();
    for (i, file) in sink.written.iter().enumerate() {
        if crate::run::interrupted() {
            tracing::warn!(
                "[ARCHIVE] interrupted: {} of {} {} verified and deleted from the database; \
                 the others are in the Parquet store and still in the database (rerun to \
                 finish: they are verified and deleted then)",
                i,
                sink.written.len(),
                dataset.unit().noun()
            );
            return Ok((Outcome::Interrupted, done));
        }
        let Some(&(in_db, merged)) = counts.get(&file.date) else {
            anyhow::bail!(
                "{} was written for a unit that was not read",
                root.show(&file.path)
            );
        };
        verify_and_delete(
            &mut db, &dataset, symbol, file.date, root, &file.path, merged,
        )
        .await?;
        done.units += 1;
        done.rows += in_db as u64;
    }
    Ok((Outcome::Completed, done))
}

/// The database as a pipeline source: each unit's rows, merged with the unit's file already
/// in the store, as the unit's shard. Records per unit how many rows came from the database
/// and how many the merged unit holds, for the verification.
struct DatabaseSource {
    db: Database,
    root: Location,
    dataset: DatasetId,
    shards: Arc<Vec<Shard>>,
    counts: Arc<Mutex<BTreeMap<NaiveDate, (usize, usize)>>>,
}

impl Source for DatabaseSource {
    fn shard_count(&self) -> Option<u64> {
        Some(self.shards.len() as u64)
    }

    fn page_word(&self) -> &'static str {
        self.dataset.unit().noun()
    }

    fn spawn(self, tx: Feed, cancel: Cancel) -> SourceTask {
        let DatabaseSource {
            mut db,
            root,
            dataset,
            shards,
            counts,
        } = self;
        tokio::spawn(async move {
            let mut fetched = Fetched::default();
            for (index, shard) in shards.iter().enumerate() {
                if *cancel.borrow() {
                    break;
                }
                let symbol: &Symbol = &shard.symbol;
                let (from, until) = (shard.start_ns, shard.end_ns + 1);
                let in_db = db.read_rows(&dataset, symbol.as_str(), from, until).await?;
                let n_db = in_db.num_rows();
                let merged = merge_with_file(&root, &dataset, symbol, shard.day, in_db)?;
                let n = merged.num_rows();
                if let Ok(mut c) = counts.lock() {
                    c.insert(shard.day, (n_db, n));
                }
                fetched.pages += 1;
                fetched.rows += n as u64;
                // Page-sized chunks, the last completing the unit's shard.
                if !send_rows(&tx, index as u32, &merged, PAGE_LIMIT as usize, true).await {
                    return Ok(fetched);
                }
            }
            Ok(fetched)
        })
    }
}

#[derive(Debug, Default)]
pub struct ArchiveReport {
    /// Files' units archived: days, or months of bars.
    pub units: usize,
    pub rows: u64,
}

/// The units (days; bars: months) of `symbol`'s rows of `dataset` (keyed `name`, with its
/// feed) in the database that lie wholly before `cutoff`, in order: what `archive` moves.
pub async fn archivable_units(
    db: &mut Database,
    dataset: &DatasetId,
    name: &str,
    symbol: &Symbol,
    cutoff: NaiveDate,
) -> anyhow::Result<Vec<NaiveDate>> {
    let cutoff_ns = crate::time::new_york_time_nanos(cutoff, 0, 0);
    let mut units: Vec<NaiveDate> = db
        .day_counts(Some(symbol.as_str()))
        .await?
        .into_iter()
        .filter(|(ds, _, d, _)| *ds == name && *d < cutoff)
        .map(|(_, _, d, _)| dataset.unit_key(crate::time::new_york_time_nanos(d, 12, 0)))
        .filter(|key| dataset.unit_bounds(*key).1 <= cutoff_ns)
        .collect();
    units.dedup();
    Ok(units)
}

/// A unit's database rows merged with the file already stored for it, if any (an earlier
/// archive or import, or a run that crashed after writing): keyed by identity, the
/// database's row wins; in time order.
pub fn merge_with_file(
    root: &Location,
    dataset: &DatasetId,
    symbol: &Symbol,
    key: NaiveDate,
    in_db: RecordBatch,
) -> anyhow::Result<RecordBatch> {
    let path = dataset.file(root.path(), symbol.as_str(), key);
    if !root.exists(&path)? {
        return Ok(in_db);
    }
    let cols = dataset.columns();
    let identity = dataset.identity();
    let mut sources = read_file(root, &path, dataset, symbol.as_str())?;
    sources.push(in_db);
    // Identity -> (time, source, row): later sources (the database last) win.
    let mut merged: BTreeMap<Vec<Value>, (i64, usize, usize)> = BTreeMap::new();
    for (s, b) in sources.iter().enumerate() {
        let cells = batch::all_cells(b, cols)?;
        let t = batch::times(b, Role::Time.name()).unwrap_or_default();
        for (i, &t) in t.iter().enumerate() {
            merged.insert(batch::key_of(&cells, cols, identity, i), (t, s, i));
        }
    }
    let mut picks: Vec<(i64, usize, usize)> = merged.into_values().collect();
    picks.sort_by_key(|p| p.0);
    let picks: Vec<(usize, usize)> = picks.into_iter().map(|(_, s, i)| (s, i)).collect();
    let refs: Vec<&RecordBatch> = sources.iter().collect();
    batch::pick(&batch::schema(cols), &refs, &picks)
}

/// After a unit's file was written: reads it back and checks it holds `expected` rows, among
/// them every database row of the unit with exactly its values; only then deletes the
/// unit's rows (and progress records) from the database. Returns the rows deleted.
pub async fn verify_and_delete(
    db: &mut Database,
    dataset: &DatasetId,
    symbol: &Symbol,
    key: NaiveDate,
    store: &Location,
    path: &std::path::Path,
    expected: usize,
) -> anyhow::Result<u64> {
    let (from, until) = dataset.unit_bounds(key);
    let cols = dataset.columns();
    let identity = dataset.identity();
    let in_db = db.read_rows(dataset, symbol.as_str(), from, until).await?;
    let back = read_file(store, path, dataset, symbol.as_str())?;
    let back = match back.first() {
        Some(first) => batch::concat(&first.schema(), &back)?,
        None => RecordBatch::new_empty(batch::schema(cols)),
    };
    let (db_cells, file_cells) = (
        batch::all_cells(&in_db, cols)?,
        batch::all_cells(&back, cols)?,
    );
    let stored: BTreeMap<Vec<Value>, usize> = (0..back.num_rows())
        .map(|i| (batch::key_of(&file_cells, cols, identity, i), i))
        .collect();
    let missing = (0..in_db.num_rows())
        .filter(|&i| {
            let key = batch::key_of(&db_cells, cols, identity, i);
            !stored
                .get(&key)
                .is_some_and(|&j| batch::same_row(&db_cells, i, &file_cells, j))
        })
        .count();
    if back.num_rows() != expected || stored.len() != back.num_rows() || missing > 0 {
        anyhow::bail!(
            "verification of {} failed ({} rows read back, {expected} written, {missing} of the database's {} rows missing or different); nothing was deleted from the database",
            store.show(path),
            back.num_rows(),
            in_db.num_rows()
        );
    }
    let deleted = db
        .delete_rows(dataset, symbol.as_str(), from, until)
        .await?;
    tracing::info!(
        "[ARCHIVE] {symbol} {} {key}: {} database rows -> {} ({} rows, verified), {deleted} deleted from the database",
        dataset.key(),
        in_db.num_rows(),
        store.show(path),
        back.num_rows()
    );
    Ok(deleted)
}
