//! Reading the Parquet store back: the files of a symbol that overlap a range, only the
//! row groups whose `t` statistics overlap it, streamed page by page into the pipeline's
//! bounded channel like the API source. Weekdays without a file are reported, not skipped
//! silently. Runs on a blocking thread (file IO and decompression).

use crate::batch;
use crate::dataset::DatasetId;
use crate::model::Symbol;
use crate::pipeline::Chunk;
use crate::storage::Location;
use crate::time::DateRange;
use anyhow::Context;
use chrono::NaiveDate;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::statistics::Statistics;
use tokio::sync::{mpsc, watch};

/// Rows per page sent into the channel.
const PAGE_ROWS: usize = 10_000;

#[derive(Debug, Default, Clone)]
pub struct ParquetStats {
    pub files: u64,
    pub row_groups_read: u64,
    pub row_groups_skipped: u64,
    pub rows: u64,
    /// Weekdays (bars: months) in the range with no file in the store.
    pub missing: Vec<NaiveDate>,
}

/// Indices of the row groups whose `t` range overlaps `start..=end` (all, if a group has
/// no statistics).
fn overlapping_groups(
    meta: &parquet::file::metadata::ParquetMetaData,
    start_ns: i64,
    end_ns: i64,
) -> Vec<usize> {
    (0..meta.num_row_groups())
        .filter(|&i| match meta.row_group(i).column(0).statistics() {
            Some(Statistics::Int64(s)) => match (s.min_opt(), s.max_opt()) {
                (Some(min), Some(max)) => *max >= start_ns && *min <= end_ns,
                _ => true,
            },
            _ => true,
        })
        .collect()
}

/// Streams `symbol`'s stored rows of `layout` in `range` into `tx`, in time order, as
/// chunks of one shard (0): a local read is fast and simply rerun, so it keeps no resume
/// points.
pub fn stream_parquet(
    root: &Location,
    layout: &DatasetId,
    symbol: &Symbol,
    range: DateRange,
    tx: mpsc::Sender<Chunk>,
    cancel: watch::Receiver<bool>,
) -> anyhow::Result<ParquetStats> {
    let mut stats = ParquetStats::default();
    let cols = layout.columns();
    for date in layout.units_in(range.start_ns, range.end_ns) {
        if *cancel.borrow() {
            break;
        }
        let path = layout.file(root.path(), symbol.as_str(), date);
        let shown = root.show(&path);
        let Some(file) = root.open(&path)? else {
            if layout.unit().trades_on(date) {
                stats.missing.push(date);
            }
            continue;
        };
        let builder = ParquetRecordBatchReaderBuilder::try_new(file)
            .with_context(|| format!("{shown} is not a readable Parquet file"))?;
        let groups = overlapping_groups(builder.metadata(), range.start_ns, range.end_ns);
        let total = builder.metadata().num_row_groups() as u64;
        stats.files += 1;
        stats.row_groups_read += groups.len() as u64;
        stats.row_groups_skipped += total - groups.len() as u64;
        if groups.is_empty() {
            continue;
        }
        let reader = builder
            .with_row_groups(groups)
            .with_batch_size(PAGE_ROWS)
            .build()
            .with_context(|| format!("cannot read {shown}"))?;
        for batch in reader {
            let batch = batch.with_context(|| format!("cannot decode {shown}"))?;
            let rows = batch::from_file(&batch, cols, symbol.as_str())
                .with_context(|| format!("unexpected schema in {shown}"))?;
            let t = batch::times(&rows, "t").unwrap_or_default();
            let keep = t
                .iter()
                .map(|t| (range.start_ns..=range.end_ns).contains(t))
                .collect();
            let rows = batch::filter(&rows, keep)?;
            stats.rows += rows.num_rows() as u64;
            let chunk = Chunk {
                shard: 0,
                rows,
                last: false,
            };
            if chunk.rows.num_rows() > 0 && tx.blocking_send(chunk).is_err() {
                return Ok(stats);
            }
        }
    }
    Ok(stats)
}
