//! Reading the Parquet store back: the files of a symbol that overlap a range, only the
//! row groups whose `t` statistics overlap it, streamed page by page into the pipeline's
//! bounded channel like the API source. Weekdays without a file are reported, not skipped
//! silently. Runs on a blocking thread (file IO and decompression).

use crate::layout::Layout;
use crate::layout::FILE_NAME;
use crate::location::{Location, Stored};
use anyhow::Context;
use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use chrono::NaiveDate;
use data_core::batch::{self};
use data_core::dataset::{DatasetId, Role, ShardUnit};
use data_core::model::Symbol;
use data_core::pipeline::Chunk;
use data_core::time::DateRange;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::statistics::Statistics;
use std::path::{Path, PathBuf};
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

/// The leaf column a file's rows are timed by, found by name (a file another tool rewrote
/// may order its columns otherwise): `t_ns`, the exact nanoseconds, where the file has it;
/// else `t` (files written before `t_ns`, in nanoseconds, or rewritten by a tool, perhaps
/// in microseconds).
#[derive(Debug, Clone, Copy)]
struct TimeLeaf {
    index: usize,
    /// Nanoseconds per unit of the leaf's values (and so of its statistics).
    scale: i64,
}

/// Indices of the row groups whose time range overlaps `start..=end` (all, if a group has
/// no statistics).
fn overlapping_groups(
    meta: &parquet::file::metadata::ParquetMetaData,
    t: TimeLeaf,
    start_ns: i64,
    end_ns: i64,
) -> Vec<usize> {
    let ns = |v: &i64| v.saturating_mul(t.scale);
    (0..meta.num_row_groups())
        .filter(|&i| match meta.row_group(i).column(t.index).statistics() {
            Some(Statistics::Int64(s)) => match (s.min_opt(), s.max_opt()) {
                // A maximum in coarser units may stand for any instant of its last unit.
                (Some(min), Some(max)) => ns(max) + (t.scale - 1) >= start_ns && ns(min) <= end_ns,
                _ => true,
            },
            _ => true,
        })
        .collect()
}

/// The times of a batch holding one time leaf (`t_ns`, or an older file's `t`), in
/// nanoseconds.
fn nanoseconds(
    b: &RecordBatch,
    t_col: &data_core::dataset::Column,
) -> anyhow::Result<arrow_array::TimestampNanosecondArray> {
    let t = match b.schema().field(0).name() == Role::Time.name() {
        true => batch::conform(b.column(0), t_col)?,
        false => batch::from_exact(b.column(0), t_col)?,
    };
    t.as_any()
        .downcast_ref::<arrow_array::TimestampNanosecondArray>()
        .cloned()
        .context("column t is not a timestamp")
}

/// The definition of `t`, every dataset's nanosecond time column.
fn time_column() -> anyhow::Result<&'static data_core::dataset::Column> {
    (data_core::dataset::Kind::Bars.columns().iter())
        .find(|c| c.is(Role::Time))
        .context("bars have no column t")
}

/// The file's [`TimeLeaf`].
fn time_leaf(
    builder: &ParquetRecordBatchReaderBuilder<crate::location::Stored>,
    shown: &str,
) -> anyhow::Result<TimeLeaf> {
    let parquet_schema = builder.metadata().file_metadata().schema_descr_ptr();
    let leaf = |name: &str| {
        (0..parquet_schema.num_columns())
            .find(|&i| parquet_schema.column(i).path().string() == name)
    };
    let t = Role::Time.name();
    if let Some(index) = leaf(&batch::exact_name(t)) {
        return Ok(TimeLeaf { index, scale: 1 });
    }
    let index = leaf(t).with_context(|| format!("{shown} has no top-level column t"))?;
    let scale = match builder
        .schema()
        .field_with_name(t)
        .map(|f| f.data_type().clone())
    {
        Ok(arrow_schema::DataType::Timestamp(unit, _)) => match unit {
            arrow_schema::TimeUnit::Second => 1_000_000_000,
            arrow_schema::TimeUnit::Millisecond => 1_000_000,
            arrow_schema::TimeUnit::Microsecond => 1_000,
            arrow_schema::TimeUnit::Nanosecond => 1,
        },
        _ => anyhow::bail!("{shown}: column t is not a timestamp"),
    };
    Ok(TimeLeaf { index, scale })
}

/// Checks a day (month) file before any of its rows is sent, so a file that is not what
/// its name says commits nothing: every column the dataset keeps in files is there (in
/// its type or one [`batch::conform`] converts exactly), and every row's `t` lies in the
/// unit the file is named for, read in a first pass over the time column alone (`t_ns`, or
/// `t` in older files), whose count must equal the row count the footer declares. Returns
/// the time's leaf.
fn check_file(
    builder: &ParquetRecordBatchReaderBuilder<crate::location::Stored>,
    second: crate::location::Stored,
    layout: &DatasetId,
    date: NaiveDate,
    shown: &str,
) -> anyhow::Result<TimeLeaf> {
    let schema = builder.schema().clone();
    for c in layout.columns().iter().filter(|c| c.in_file) {
        if schema.field_with_name(c.name).is_err() {
            anyhow::bail!(
                "{shown} is not a file of {}: it has no column {} (its columns: {})",
                layout.noun(),
                c.name,
                schema
                    .fields()
                    .iter()
                    .map(|f| f.name().as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    let parquet_schema = builder.metadata().file_metadata().schema_descr_ptr();
    let t_leaf = time_leaf(builder, shown)?;
    let declared = builder.metadata().file_metadata().num_rows();
    let (from_ns, until_ns) = layout.unit_bounds(date);
    let mask = parquet::arrow::ProjectionMask::leaves(&parquet_schema, [t_leaf.index]);
    let t_col = layout
        .columns()
        .iter()
        .find(|c| c.is(Role::Time))
        .with_context(|| format!("{} has no column t", layout.noun()))?;
    let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(
        second,
        parquet::arrow::arrow_reader::ArrowReaderMetadata::try_new(
            builder.metadata().clone(),
            Default::default(),
        )
        .with_context(|| format!("{shown} is not a readable Parquet file"))?,
    )
    .with_projection(mask)
    .with_batch_size(PAGE_ROWS)
    .build()
    .with_context(|| format!("cannot read {shown}"))?;
    let mut read = 0i64;
    for b in reader {
        let b =
            b.with_context(|| format!("cannot decode {shown}: the file is damaged or cut short"))?;
        let t = nanoseconds(&b, t_col).with_context(|| shown.to_string())?;
        if let Some(&bad) = t.values().iter().find(|&&t| t < from_ns || t >= until_ns) {
            anyhow::bail!(
                "{shown} holds a row of {} ({}), outside the {} it is named for ({date}); \
                 nothing of it was loaded",
                data_core::time::format_nanos(bad),
                layout.unit().key_of(bad),
                layout.unit().noun().trim_end_matches('s')
            );
        }
        read += b.num_rows() as i64;
    }
    if read != declared {
        anyhow::bail!(
            "{shown} declares {declared} rows but holds {read}: the file is damaged or cut short; \
             nothing of it was loaded"
        );
    }
    Ok(t_leaf)
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
        let second = file
            .try_clone()
            .with_context(|| format!("cannot open {shown} again"))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file)
            .with_context(|| format!("{shown} is not a readable Parquet file"))?;
        let t_leaf = check_file(&builder, second, layout, date, &shown)?;
        let groups = overlapping_groups(builder.metadata(), t_leaf, range.start_ns, range.end_ns);
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
            let t = batch::times(&rows, Role::Time.name()).unwrap_or_default();
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

/// One file of the store, as listed: symbol, unit key (day, or a month's first day), rows
/// from the footer, path.
pub(crate) type Listed = (String, NaiveDate, i64, PathBuf);

/// Every file of `layout` in the store (one listing: resume and status work by listing).
pub(crate) fn list_units(root: &Location, layout: &DatasetId) -> anyhow::Result<Vec<Listed>> {
    let mut out = Vec::new();
    let dir = layout.dir(root.path());
    for (path, size) in root.files_under(&dir)? {
        // DIR/symbol=X/UNIT/part-0.parquet, nothing else.
        let Ok(rel) = path.strip_prefix(&dir) else {
            continue;
        };
        let parts: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let [sym, unit, file] = &parts[..] else {
            continue;
        };
        let (Some(symbol), Some(key)) = (sym.strip_prefix("symbol="), layout.parse_unit(unit))
        else {
            continue;
        };
        if file != FILE_NAME {
            continue;
        }
        let rows = root.rows_in(&path, size)?;
        out.push((layout.symbol_of_dir(symbol), key, rows, path));
    }
    out.sort();
    Ok(out)
}

/// Opens a stored file for reading, naming it in the error.
pub(crate) fn open_stored(
    store: &Location,
    path: &Path,
) -> anyhow::Result<ParquetRecordBatchReaderBuilder<Stored>> {
    let file = store
        .open(path)?
        .with_context(|| format!("{} does not exist", store.show(path)))?;
    ParquetRecordBatchReaderBuilder::try_new(file)
        .with_context(|| format!("{} is not a readable Parquet file", store.show(path)))
}

/// Rows per day of one file (status of a monthly bars file; days as `unit` counts them:
/// New York, or UTC for crypto): reads `t` only.
pub(crate) fn rows_per_day(
    store: &Location,
    path: &Path,
    unit: ShardUnit,
) -> anyhow::Result<Vec<(NaiveDate, i64)>> {
    let builder = open_stored(store, path)?;
    let shown = store.show(path);
    let leaf = time_leaf(&builder, &shown)?;
    let mask = parquet::arrow::ProjectionMask::leaves(builder.parquet_schema(), [leaf.index]);
    let reader = builder
        .with_projection(mask)
        .build()
        .with_context(|| format!("cannot read {shown}"))?;
    let mut days: Vec<(NaiveDate, i64)> = Vec::new();
    for batch in reader {
        let batch = batch.with_context(|| format!("cannot decode {shown}"))?;
        let t = nanoseconds(&batch, time_column()?).with_context(|| shown.clone())?;
        for &t in t.values().iter() {
            let d = unit.day_of(t);
            match days.last_mut() {
                Some((last, n)) if *last == d => *n += 1,
                _ => days.push((d, 1)),
            }
        }
    }
    Ok(days)
}

/// The schema of the store's quotes files.
pub fn quotes_schema() -> SchemaRef {
    batch::file_schema(DatasetId::Quotes.kind().columns())
}

/// All rows of one file of `layout`'s, as pipeline batches of `symbol`'s rows.
pub fn read_file(
    store: &Location,
    path: &Path,
    layout: &DatasetId,
    symbol: &str,
) -> anyhow::Result<Vec<RecordBatch>> {
    let shown = store.show(path);
    let reader = open_stored(store, path)?
        .build()
        .with_context(|| format!("cannot read {shown}"))?;
    let cols = layout.columns();
    reader
        .map(|b| {
            let b = b.with_context(|| format!("cannot decode {shown}"))?;
            batch::from_file(&b, cols, symbol)
                .with_context(|| format!("unexpected schema in {shown}"))
        })
        .collect()
}

/// What the Parquet store under `root` holds (every feed's folder), per dataset, symbol and
/// feed.
pub(crate) fn parquet_holdings(root: &Location) -> anyhow::Result<Vec<data_job::store::Holding>> {
    // A bucket that cannot be listed is an error, not an empty store.
    root.check()?;
    let mut per_day = Vec::new();
    for feed in data_core::model::Feed::STOCKS
        .into_iter()
        .chain(data_core::model::Feed::CRYPTO)
        .chain([data_core::model::Feed::Opra])
    {
        let root = crate::layout::feed_root(feed, root);
        for layout in crate::layout::present(&root) {
            if layout.asset() != feed.asset() {
                continue;
            }
            let name = feed.key(&layout.key());
            let mut marked: std::collections::BTreeMap<String, bool> =
                std::collections::BTreeMap::new();
            for (sym, key, n, path) in list_units(&root, &layout)? {
                let synthetic = match marked.get(&sym) {
                    Some(&m) => m,
                    None => {
                        let m = root.exists(&layout.synthetic_marker(root.path(), &sym))?;
                        *marked.entry(sym.clone()).or_insert(m)
                    }
                };
                let name = match synthetic {
                    true => format!("{name}{}", data_job::store::SYNTHETIC),
                    false => name.clone(),
                };
                match layout.unit().is_month() {
                    false => per_day.push((name.clone(), sym, key, n)),
                    // A month spans several days.
                    true => {
                        for (d, n) in rows_per_day(&root, &path, layout.unit())? {
                            per_day.push((name.clone(), sym.clone(), d, n));
                        }
                    }
                }
            }
        }
    }
    Ok(data_job::store::holdings("parquet", per_day))
}
