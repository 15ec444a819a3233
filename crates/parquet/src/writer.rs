//! The Parquet store: zstd-compressed files in a hive-style layout that DuckDB, Polars,
//! pyarrow and Spark read as one partitioned dataset per data type:
//!
//! ```text
//! {HISTORICAL_DATA_PATH}/quotes/symbol=AAPL/date=2024-01-02/part-0.parquet
//! {HISTORICAL_DATA_PATH}/trades/symbol=AAPL/date=2024-01-02/part-0.parquet
//! {HISTORICAL_DATA_PATH}/bars/timeframe=1Min/adjustment=raw/symbol=AAPL/month=2024-01/part-0.parquet
//! ```
//!
//! Quotes and trades keep one file per symbol per New York day; bars one per symbol per New
//! York calendar month (a day of 1-minute bars is under a thousand rows). A file is the unit
//! of atomicity: its rows stream into a hidden temporary file (`.part-0.parquet.tmp-PID`,
//! ignored by dataset readers) that is renamed into place only when the unit is complete, so
//! a killed import never leaves a file a reader would take as whole, and re-importing a unit
//! replaces its file in one step. Memory holds, per open file, at most one row group's rows
//! waiting (compact copies), encoded only once the group is whole, whatever the range; and
//! over all open files at most [`PENDING_BUDGET`] of them (past it, the file holding the
//! most writes its rows as a shorter row group), whatever the requests in flight.
//!
//! Trades carry corrections (Alpaca's `u`): a record with the id and exchange of an earlier
//! trade of the same day replaces it, as the database's key does. A file is written as the
//! records arrive; when the day held corrections, committing it rewrites it once, streaming,
//! without the records they replaced (only the corrected identities are held in memory).
//!
//! Batches arrive as the pipeline carries them (with a `symbol` column); a file keeps the
//! columns its dataset's row list marks as kept in files ([`data_core::batch::to_file`]), and
//! reads add the symbol back ([`read_file`]). This module knows nothing about HTTP or SQL.

use crate::layout::Layout;
use crate::location::Location;
use anyhow::Context;
use arrow_array::RecordBatch;
use chrono::NaiveDate;
use data_core::batch::{self, Cells};
use data_core::dataset::{Column, ColumnType, DatasetId, Role};
use data_core::pipeline::{Mark, Sink};
use data_core::resume::Shard;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use crate::layout::FILE_NAME;
/// Rows per row group: a day of a liquid symbol splits into several groups, each with
/// min/max statistics on `t`, so a read of part of a day skips the groups outside it.
pub(crate) const ROW_GROUP_ROWS: usize = 16_384;
/// The most memory rows waiting for their row group may hold, summed over every open file.
/// With many days in flight (`--concurrency 64` holds 64 open) their waiting rows would add
/// up to ~1 MB a day; past this, the file holding the most is written out as a shorter row
/// group, so the sink's memory does not grow with the requests in flight.
pub(crate) const PENDING_BUDGET: usize = 24 << 20;

/// The columns a file of `cols` rows is sorted by: `t`, `t_ns`, then `seq` where files keep
/// it (indices in the file's schema).
fn sorted_by(cols: &'static [Column]) -> Vec<usize> {
    let schema = batch::file_schema(cols);
    let t = Role::Time.name();
    [
        t.to_string(),
        batch::exact_name(t),
        Role::Seq.name().to_string(),
    ]
    .iter()
    .filter_map(|name| schema.index_of(name).ok())
    .collect()
}

/// Columns of one-to-few-letter codes, in any dataset's files.
const CODE_COLUMNS: &[&str] = &[
    "bid_exchange",
    "ask_exchange",
    "exchange",
    "tape",
    "conditions",
    "condition",
    "update",
    "taker_side",
];

fn writer_properties(cols: &'static [Column]) -> anyhow::Result<WriterProperties> {
    let sorted = sorted_by(cols);
    let mut props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1)?))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_statistics_enabled(EnabledStatistics::Page);
    // Times (`t` in microseconds, `t_ns` exact) are near-distinct and ascending: a
    // dictionary of them only costs hashing every value before falling back; deltas store
    // them in a few bits each.
    let t = Role::Time.name();
    for name in [t.to_string(), batch::exact_name(t)] {
        let path = ColumnPath::from(name);
        props = props
            .set_column_dictionary_enabled(path.clone(), false)
            .set_column_encoding(path.clone(), Encoding::DELTA_BINARY_PACKED)
            .set_column_compression(path, Compression::UNCOMPRESSED);
    }
    // Code columns (exchanges, tape, conditions): min/max of one-letter codes prune nothing,
    // and computing them compared every value (a sixth of the writer's instructions).
    // Conditions also go without a dictionary: a list's few distinct codes compress as well
    // plain (same file size), and interning each one cost another twentieth.
    for c in cols
        .iter()
        .filter(|c| c.in_file && CODE_COLUMNS.contains(&c.name))
    {
        let list = c.ty == ColumnType::Utf8List;
        let path = match list {
            true => ColumnPath::from(vec![c.name.into(), "list".into(), "item".into()]),
            false => ColumnPath::from(c.name),
        };
        props = props.set_column_statistics_enabled(path.clone(), EnabledStatistics::None);
        // Single codes keep their dictionary, and their pages are then bit-packed indices
        // zstd hardly shrinks (a month of quotes: 0.03% larger without it, trades 0.4%),
        // while creating its contexts for every row group cost 2.3% of the writer's
        // instructions.
        props = match list {
            true => props.set_column_dictionary_enabled(path, false),
            false => props.set_column_compression(path, Compression::UNCOMPRESSED),
        };
    }
    Ok(props
        .set_sorting_columns(Some(
            sorted
                .iter()
                .map(|&i| SortingColumn {
                    column_idx: i as i32,
                    descending: false,
                    nulls_first: false,
                })
                .collect(),
        ))
        .build())
}

const TMP_MARK: &str = ".tmp-";

/// Creates a new temporary file, only ours: never through a symlink (`O_NOFOLLOW`), never
/// an existing file (`O_EXCL`), mode 0600. A leftover of ours under the same name (a killed
/// run whose PID came back) is unlinked first: unlinking removes a link, never its target.
pub(crate) fn create_exclusive(path: &Path) -> anyhow::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let open = || {
        std::fs::OpenOptions::new()
            .write(true)
            .read(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
    };
    let file = match open() {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => std::fs::remove_file(path)
            .and_then(|()| open())
            .with_context(|| format!("cannot create {}", path.display()))?,
        other => other.with_context(|| format!("cannot create {}", path.display()))?,
    };
    Ok(file)
}

/// Deletes temporary files left in a unit folder by killed imports (their process is gone).
fn remove_stale_temp_files(dir: &Path) {
    let prefix = format!(".{FILE_NAME}{TMP_MARK}");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name
            .strip_prefix(&prefix)
            .and_then(|p| p.split('-').next())
            .and_then(|p| p.parse::<i64>().ok())
        {
            if !data_job::store::process_alive(pid) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

fn start_writer(path: &Path, cols: &'static [Column]) -> anyhow::Result<ArrowWriter<File>> {
    let file = create_exclusive(path)?;
    let props = writer_properties(cols)?;
    ArrowWriter::try_new(file, batch::file_schema(cols), Some(props))
        .context("cannot start a Parquet file")
}

fn finish_writer(writer: ArrowWriter<File>, path: &Path) -> anyhow::Result<()> {
    let file = writer
        .into_inner()
        .with_context(|| format!("cannot finish {}", path.display()))?;
    file.sync_all()
        .with_context(|| format!("cannot flush {}", path.display()))
}

/// One file being written under its temporary name.
struct UnitWriter {
    cols: &'static [Column],
    symbol: Arc<str>,
    key: NaiveDate,
    /// The unit's bounds, UTC ns: New York midnight to midnight.
    from_ns: i64,
    until_ns: i64,
    tmp: PathBuf,
    path: PathBuf,
    /// Where `path` is: the file is published there when committed.
    store: Location,
    writer: Option<ArrowWriter<File>>,
    rows: u64,
    /// Rows not yet handed to the writer, compact copies (the parts arriving are slices of
    /// pipeline batches that interleave every day in flight: keeping the slices would keep
    /// those batches alive). The writer gets one whole row group at a time, so its column
    /// writers (zstd contexts, dictionary encoders, page buffers: about 2.5 MB a file) exist
    /// only while a group is encoded, not for every open day.
    pending: Vec<RecordBatch>,
    pending_rows: usize,
    /// The memory `pending` holds (a part partly written keeps all of its buffers).
    pending_bytes: usize,
    /// The identity columns of corrections (trades), if the dataset has them.
    corrections: Option<data_core::dataset::Corrections>,
    /// Identity -> index of the last record that updated it, for each identity a
    /// correction touched.
    updates: HashMap<Vec<batch::Value>, u64>,
}

impl UnitWriter {
    fn create(
        root: &Location,
        layout: &DatasetId,
        symbol: Arc<str>,
        key: NaiveDate,
    ) -> anyhow::Result<Self> {
        let dir = layout.unit_dir(root.path(), &symbol, key);
        let staging = root.staging(&dir)?;
        // A bucket's staging folder is shared by every unit: cleaned once, by the sink.
        if !root.is_remote() {
            remove_stale_temp_files(&staging);
        }
        // Unique in a shared staging folder (a bucket's files are written locally first).
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = staging.join(format!(".{FILE_NAME}{TMP_MARK}{}-{n}", std::process::id()));
        let cols = layout.columns();
        let writer = start_writer(&tmp, cols)?;
        let (from_ns, until_ns) = layout.unit_bounds(key);
        Ok(UnitWriter {
            cols,
            path: dir.join(FILE_NAME),
            store: root.clone(),
            symbol,
            key,
            from_ns,
            until_ns,
            tmp,
            writer: Some(writer),
            rows: 0,
            pending: Vec::new(),
            pending_rows: 0,
            pending_bytes: 0,
            corrections: layout.corrections(),
            updates: HashMap::new(),
        })
    }

    fn holds(&self, symbol: &str, t: i64) -> bool {
        t >= self.from_ns && t < self.until_ns && symbol == &*self.symbol
    }

    /// The row's identity, if it is a correction.
    fn update_of(
        cells: &[Cells],
        cols: &[Column],
        c: &data_core::dataset::Corrections,
        i: usize,
    ) -> Option<Vec<batch::Value>> {
        let update = batch::index_of(cols, c.update)?;
        matches!(&cells[update], Cells::Utf8(a) if arrow_array::Array::is_valid(*a, i))
            .then(|| batch::key_of(cells, cols, &c.identity, i))
    }

    /// Appends `rows` (pipeline rows of this unit, in order).
    fn write(&mut self, rows: &RecordBatch) -> anyhow::Result<()> {
        if let Some(c) = &self.corrections {
            let cells = batch::all_cells(rows, self.cols)?;
            for i in 0..rows.num_rows() {
                if let Some(identity) = Self::update_of(&cells, self.cols, c, i) {
                    self.updates.insert(identity, self.rows + i as u64);
                }
            }
        }
        let file_rows = batch::to_file(rows, self.cols)?;
        if file_rows.num_rows() > 0 {
            let part = compact(&file_rows)?;
            self.pending_bytes += part.get_array_memory_size();
            self.pending.push(part);
            self.pending_rows += file_rows.num_rows();
        }
        while self.pending_rows >= ROW_GROUP_ROWS {
            self.write_pending(ROW_GROUP_ROWS)?;
        }
        self.rows += rows.num_rows() as u64;
        Ok(())
    }

    /// Hands the first `n` pending rows (all of them at most) to the writer, part by part
    /// and at once, so its column writers live only during the call when `n` is a whole
    /// row group; the rest stays pending.
    fn write_pending(&mut self, n: usize) -> anyhow::Result<()> {
        let mut left = n;
        let mut rest = Vec::new();
        for part in std::mem::take(&mut self.pending) {
            let k = left.min(part.num_rows());
            if k > 0 {
                if let Some(w) = self.writer.as_mut() {
                    w.write(&part.slice(0, k))
                        .with_context(|| format!("cannot write {}", self.tmp.display()))?;
                }
                left -= k;
                self.pending_rows -= k;
            }
            if k < part.num_rows() {
                rest.push(part.slice(k, part.num_rows() - k));
            }
        }
        self.pending_bytes = rest.iter().map(RecordBatch::get_array_memory_size).sum();
        self.pending = rest;
        Ok(())
    }

    /// Writes every pending row out now, as a row group of its own (shorter than
    /// [`ROW_GROUP_ROWS`]), freeing their memory.
    fn write_short_group(&mut self) -> anyhow::Result<()> {
        self.write_pending(usize::MAX)?;
        if let Some(w) = self.writer.as_mut() {
            w.flush()
                .with_context(|| format!("cannot write {}", self.tmp.display()))?;
        }
        Ok(())
    }

    /// Rewrites the finished temporary file without the records a later update replaced,
    /// one batch at a time; returns the rows kept.
    fn apply_updates(&self, c: &data_core::dataset::Corrections) -> anyhow::Result<u64> {
        let file =
            File::open(&self.tmp).with_context(|| format!("cannot open {}", self.tmp.display()))?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .with_context(|| format!("cannot read back {}", self.tmp.display()))?
            .with_batch_size(ROW_GROUP_ROWS)
            .build()
            .with_context(|| format!("cannot read back {}", self.tmp.display()))?;
        let out_path = PathBuf::from(format!("{}-u", self.tmp.display()));
        let mut out = start_writer(&out_path, self.cols)?;
        let (mut index, mut kept) = (0u64, 0u64);
        for b in reader {
            let b = b.with_context(|| format!("cannot decode {}", self.tmp.display()))?;
            let rows = batch::from_file(&b, self.cols, &self.symbol)?;
            let cells = batch::all_cells(&rows, self.cols)?;
            let keep: Vec<bool> = (0..b.num_rows())
                .map(|i| {
                    let at = index + i as u64;
                    let identity = batch::key_of(&cells, self.cols, &c.identity, i);
                    self.updates.get(&identity).is_none_or(|&last| last == at)
                })
                .collect();
            index += b.num_rows() as u64;
            let b = batch::filter(&b, keep)?;
            if b.num_rows() > 0 {
                out.write(&b)
                    .with_context(|| format!("cannot write {}", out_path.display()))?;
                kept += b.num_rows() as u64;
            }
        }
        let done = finish_writer(out, &out_path).and_then(|()| {
            std::fs::rename(&out_path, &self.tmp)
                .with_context(|| format!("cannot replace {}", self.tmp.display()))
        });
        if done.is_err() {
            let _ = std::fs::remove_file(&out_path);
        }
        done.map(|()| kept)
    }

    /// Finishes the file, flushes it to disk, and renames it into place; returns its path
    /// and row count.
    fn commit(mut self) -> anyhow::Result<(PathBuf, u64)> {
        // On an error the file is removed as any uncommitted one is (`Drop`).
        self.write_pending(usize::MAX)?;
        let writer = self.writer.take().context("file already closed")?;
        let finished = finish_writer(writer, &self.tmp).and_then(|()| match &self.corrections {
            Some(c) if !self.updates.is_empty() => self.apply_updates(c),
            _ => Ok(self.rows),
        });
        let rows = match finished {
            Ok(rows) => rows,
            Err(e) => {
                let _ = std::fs::remove_file(&self.tmp);
                return Err(e);
            }
        };
        if let Err(e) = self.store.publish(&self.tmp, &self.path) {
            let _ = std::fs::remove_file(&self.tmp);
            return Err(e);
        }
        Ok((self.path.clone(), rows))
    }
}

impl Drop for UnitWriter {
    fn drop(&mut self) {
        // Not committed: the partial unit must not survive under any name.
        if self.writer.is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// `rows` in buffers of their own (a slice of a larger batch keeps all of it alive).
fn compact(rows: &RecordBatch) -> anyhow::Result<RecordBatch> {
    // Joined with an empty batch, every column is copied (a lone batch would come back as
    // the same slice).
    let empty = RecordBatch::new_empty(rows.schema());
    arrow_select::concat::concat_batches(&rows.schema(), [rows, &empty]).context("cannot copy rows")
}

/// A file written by the sink.
#[derive(Debug, Clone)]
pub struct DayWritten {
    /// The unit's key: the day, or a month's first day.
    pub date: NaiveDate,
    pub rows: u64,
    pub path: PathBuf,
}

/// The `--format parquet` sink. Rows arrive shard by shard (one symbol's New York day, or
/// month of bars; several shards interleaved when fetched concurrently, each in time order);
/// each unit's file stays open under a temporary name until the batch that completes its
/// shard, then is committed (renamed into place) — so a file in place is a complete unit,
/// and the file is the unit's resume record. [`Sink::finish`] commits any file still open; a
/// failed or interrupted import ([`Sink::abort`]) deletes the files in progress; committed
/// files stay.
pub struct ParquetSink {
    root: Location,
    layout: DatasetId,
    shards: Arc<Vec<Shard>>,
    open: Vec<UnitWriter>,
    pub written: Vec<DayWritten>,
    /// `--coordinate`: a unit's claim marker is deleted once its file is published.
    pub release_claims: bool,
}

impl ParquetSink {
    pub fn new(
        root: &Location,
        layout: DatasetId,
        shards: Arc<Vec<Shard>>,
    ) -> anyhow::Result<Self> {
        if !root.is_remote() {
            let dir = layout.dir(root.path());
            std::fs::create_dir_all(&dir).with_context(|| {
                format!("cannot create the Parquet store folder {}", dir.display())
            })?;
        }
        if root.is_remote() {
            remove_stale_temp_files(&root.staging(root.path())?);
        }
        Ok(ParquetSink {
            root: root.clone(),
            layout,
            shards,
            open: Vec::new(),
            written: Vec::new(),
            release_claims: false,
        })
    }

    fn commit(&mut self, index: usize) -> anyhow::Result<()> {
        let unit = self.open.swap_remove(index);
        let (date, symbol) = (unit.key, unit.symbol.clone());
        let (path, rows) = unit.commit()?;
        if self.release_claims {
            let claim = crate::claims::claim_path(self.root.path(), &self.layout, &symbol, date);
            self.root.remove(&claim)?;
        }
        tracing::info!("[FILE] {date}: {rows} rows in {}", self.root.show(&path));
        self.written.push(DayWritten { date, rows, path });
        Ok(())
    }

    fn write_sync(&mut self, rows: &RecordBatch, marks: &[Mark]) -> anyhow::Result<()> {
        let n = rows.num_rows();
        let (symbols, times) = match n {
            0 => (None, &[][..]),
            _ => (
                Some(batch::symbols(rows)?),
                batch::times(rows, Role::Time.name()).context("rows have no time")?,
            ),
        };
        let mut start = 0;
        while let Some(symbols) = symbols.filter(|_| start < n) {
            let (symbol, t) = (symbols.value(start), times[start]);
            let index = match self.open.iter().position(|d| d.holds(symbol, t)) {
                Some(i) => i,
                None => {
                    let key = self.layout.unit_key(t);
                    let unit = UnitWriter::create(&self.root, &self.layout, symbol.into(), key)?;
                    self.open.push(unit);
                    self.open.len() - 1
                }
            };
            let unit = &mut self.open[index];
            let len = (start..n)
                .take_while(|&i| unit.holds(symbols.value(i), times[i]))
                .count();
            unit.write(&rows.slice(start, len))?;
            start += len;
        }
        for mark in marks.iter().filter(|m| m.done) {
            let Some(shard) = self.shards.get(mark.shard as usize) else {
                continue;
            };
            if let Some(i) = self
                .open
                .iter()
                .position(|d| d.key == shard.day && *d.symbol == *shard.symbol.as_str())
            {
                self.commit(i)?;
            }
        }
        self.keep_pending_within(PENDING_BUDGET)
    }

    /// While the open files' waiting rows hold more than `budget` bytes, writes out those
    /// of the file holding the most as a shorter row group.
    fn keep_pending_within(&mut self, budget: usize) -> anyhow::Result<()> {
        let mut held: usize = self.open.iter().map(|u| u.pending_bytes).sum();
        let files = self.open.len();
        while held > budget {
            let Some(unit) = self.open.iter_mut().max_by_key(|u| u.pending_bytes) else {
                break;
            };
            let (before, rows) = (unit.pending_bytes, unit.pending_rows);
            if before == 0 {
                break;
            }
            unit.write_short_group()?;
            tracing::debug!(
                "[FILE] {} {}: {rows} rows written as a short row group ({} files hold {held} \
                 bytes of waiting rows, over {budget})",
                unit.symbol,
                unit.key,
                files
            );
            held -= before;
        }
        Ok(())
    }
}

impl Sink for ParquetSink {
    fn keeps_batches(&self) -> bool {
        false
    }

    fn label(&self) -> &'static str {
        "FILE"
    }

    fn destination(&self) -> String {
        self.root.show(&self.layout.dir(self.root.path()))
    }

    async fn write_batch(&mut self, rows: &RecordBatch, marks: &[Mark]) -> anyhow::Result<()> {
        // Encoding a batch takes a few milliseconds of CPU; the sources run meanwhile on the
        // runtime's other worker.
        self.write_sync(rows, marks)
    }

    async fn finish(&mut self) -> anyhow::Result<()> {
        self.open.sort_by_key(|d| d.key);
        while !self.open.is_empty() {
            self.commit(0)?;
        }
        Ok(())
    }

    fn abort(&mut self) {
        self.open.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reader::{open_stored, read_file};
    use data_core::batch::{Builder, Builders, Value};
    use data_core::dataset::Kind;
    use data_core::time::{new_york_time_nanos, DateRange};

    /// A symlink planted under a temporary file's name is replaced, never written through:
    /// the file it points to stays as it was.
    #[test]
    fn a_symlink_planted_as_a_temporary_file_is_never_followed() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim.txt");
        std::fs::write(&victim, b"precious").unwrap();
        let tmp = dir.path().join(".part-0.parquet.tmp-1-0");
        std::os::unix::fs::symlink(&victim, &tmp).unwrap();
        let mut f = create_exclusive(&tmp).unwrap();
        f.write_all(b"ours").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert!(!std::fs::symlink_metadata(&tmp)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read(&tmp).unwrap(), b"ours");
    }

    #[test]
    fn layout_is_hive_style() {
        let d = NaiveDate::from_ymd_opt(2024, 1, 2).unwrap();
        assert_eq!(
            DatasetId::Quotes.file(Path::new("data/historical"), "AAPL", d),
            Path::new("data/historical/quotes/symbol=AAPL/date=2024-01-02/part-0.parquet")
        );
    }

    /// Trades of AAPL: (t, id, price, update).
    fn trades(rows: &[(i64, u64, f64, Option<&str>)]) -> RecordBatch {
        let cols = Kind::Trades.columns();
        let mut b = Builders::new(cols, rows.len());
        for &(t, id, price, update) in rows {
            for (c, part) in cols.iter().zip(&mut b.parts) {
                match (c.name, part) {
                    ("symbol", Builder::Utf8(s)) => s.append_value("AAPL"),
                    ("exchange", Builder::Utf8(s)) => s.append_value("V"),
                    ("t", Builder::Ts(v)) => v.push(t),
                    ("id", Builder::U64(v)) => v.push(id),
                    ("price", Builder::F64(v)) => v.push(price),
                    ("size", Builder::U64(v)) => v.push(100),
                    ("conditions", part) => part.push_json_list(r#"["@","T"]"#).unwrap(),
                    ("update", Builder::Utf8(s)) => s.append_option(update),
                    (_, part) => part.push_default(c.nullable),
                }
            }
        }
        b.finish().unwrap()
    }

    #[test]
    fn a_correction_replaces_the_trade_it_corrects_in_the_day_file() {
        let dir = tempfile::tempdir().unwrap();
        let day = NaiveDate::from_ymd_opt(2024, 1, 2).unwrap();
        let t0 = new_york_time_nanos(day, 9, 30);
        let rows = trades(&[
            (t0, 1, 10.0, None),
            (t0 + 1, 2, 11.0, None),
            (t0 + 2, 3, 12.0, None),
            (t0 + 3, 2, 11.01, Some("corrected")),
            (t0 + 4, 4, 13.0, None),
            (t0 + 5, 1, 10.0, Some("canceled")),
        ]);
        let store = Location::local(dir.path());
        let mut w = UnitWriter::create(&store, &DatasetId::Trades, "AAPL".into(), day).unwrap();
        w.write(&rows.slice(0, 2)).unwrap();
        w.write(&rows.slice(2, 4)).unwrap();
        let (path, kept) = w.commit().unwrap();
        assert_eq!(kept, 4);
        assert_eq!(
            path,
            dir.path()
                .join("trades/symbol=AAPL/date=2024-01-02/part-0.parquet")
        );
        let back = read_file(&store, &path, &DatasetId::Trades, "AAPL").unwrap();
        let back = batch::concat(&back[0].schema(), &back).unwrap();
        assert_eq!(back, rows.slice(2, 4));
        let cells = batch::all_cells(&back, Kind::Trades.columns()).unwrap();
        assert_eq!(cells[9].value(1), Value::Str("corrected".into()));
        assert_eq!(cells[9].value(2), Value::Null);
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(leftovers, vec![std::ffi::OsString::from(FILE_NAME)]);
    }

    #[test]
    fn code_columns_carry_no_statistics_conditions_no_dictionary_single_codes_no_zstd() {
        let dir = tempfile::tempdir().unwrap();
        let day = NaiveDate::from_ymd_opt(2024, 1, 2).unwrap();
        let t0 = new_york_time_nanos(day, 9, 30);
        let rows = trades(&[(t0, 1, 10.0, None), (t0 + 1, 2, 11.0, None)]);
        let store = Location::local(dir.path());
        let mut w = UnitWriter::create(&store, &DatasetId::Trades, "AAPL".into(), day).unwrap();
        w.write(&rows).unwrap();
        let (path, _) = w.commit().unwrap();
        let meta = open_stored(&store, &path).unwrap().metadata().clone();
        let group = meta.row_group(0);
        let column = |name: &str| {
            (group.columns().iter())
                .find(|c| c.column_path().string() == name)
                .unwrap_or_else(|| panic!("no column {name}"))
        };
        let dictionary = |name: &str| column(name).dictionary_page_offset().is_some();
        for code in ["exchange", "conditions.list.item", "update"] {
            assert!(column(code).statistics().is_none(), "{code} has statistics");
        }
        assert!(dictionary("exchange"));
        assert!(!dictionary("conditions.list.item"));
        // Dictionary indices go uncompressed; plain values are zstd-compressed.
        assert_eq!(column("exchange").compression(), Compression::UNCOMPRESSED);
        assert!(matches!(
            column("price").compression(),
            Compression::ZSTD(_)
        ));
        assert!(matches!(
            column("conditions.list.item").compression(),
            Compression::ZSTD(_)
        ));
        assert!(!dictionary("t"));
        // Times and prices keep theirs: readers skip row groups by them.
        for kept in ["t", "price"] {
            let stats = column(kept).statistics().unwrap();
            assert!(stats.min_bytes_opt().is_some(), "{kept} has no minimum");
        }
        // And the codes still read back exactly.
        let back = read_file(&store, &path, &DatasetId::Trades, "AAPL").unwrap();
        assert_eq!(batch::concat(&back[0].schema(), &back).unwrap(), rows);
    }

    /// Rows arrive in small slices of larger batches (days interleave in the pipeline's
    /// batches); the file's writer is handed only whole row groups, so between them it holds
    /// no column writers, and the file has the same row groups and rows as written at once.
    #[test]
    fn a_day_reaches_its_writer_a_whole_row_group_at_a_time() {
        use data_standin::generate::{quotes_batch, quotes_between};
        let dir = tempfile::tempdir().unwrap();
        let day = NaiveDate::from_ymd_opt(2024, 1, 2).unwrap();
        let range = data_core::time::DateRange::parse("2024-01-02", "2024-01-02").unwrap();
        let quotes: Vec<_> = quotes_between("AAPL", "sip", range.start_ns, range.end_ns, 40_000)
            .take(40_000)
            .collect();
        let rows = quotes_batch("AAPL", &quotes).unwrap();
        assert_eq!(rows.num_rows(), 40_000);
        let store = Location::local(dir.path());
        let mut w = UnitWriter::create(&store, &DatasetId::Quotes, "AAPL".into(), day).unwrap();
        for start in (0..40_000).step_by(97) {
            w.write(&rows.slice(start, 97.min(40_000 - start))).unwrap();
            assert_eq!(w.writer.as_ref().unwrap().in_progress_rows(), 0);
            assert!(w.pending_rows < ROW_GROUP_ROWS);
            // Pending rows are copies, not views of the batch they came in.
            for part in &w.pending {
                for column in part.columns() {
                    assert!(column.get_array_memory_size() < rows.get_array_memory_size() / 2);
                }
            }
        }
        let (path, n) = w.commit().unwrap();
        assert_eq!(n, 40_000);
        let meta = open_stored(&store, &path).unwrap().metadata().clone();
        let groups: Vec<i64> = meta.row_groups().iter().map(|g| g.num_rows()).collect();
        assert_eq!(groups, vec![16_384, 16_384, 7_232]);
        let back = read_file(&store, &path, &DatasetId::Quotes, "AAPL").unwrap();
        assert_eq!(batch::concat(&back[0].schema(), &back).unwrap(), rows);
    }

    /// Many days in flight each hold up to a row group of waiting rows; past the budget, the
    /// day holding the most is written out as a shorter row group, and its file still holds
    /// every row exactly, in order.
    #[tokio::test]
    async fn waiting_rows_past_the_budget_are_written_as_a_shorter_row_group() {
        use data_standin::generate::{quotes_batch, quotes_between};
        let dir = tempfile::tempdir().unwrap();
        let store = Location::local(dir.path());
        let mut sink = ParquetSink::new(&store, DatasetId::Quotes, Arc::new(Vec::new())).unwrap();
        let day = |d: &str, n: usize| {
            let range = data_core::time::DateRange::parse(d, d).unwrap();
            let quotes: Vec<_> =
                quotes_between("AAPL", "sip", range.start_ns, range.end_ns, n as u32)
                    .take(n)
                    .collect();
            quotes_batch("AAPL", &quotes).unwrap()
        };
        let (first, second, third) = (
            day("2024-01-02", 32_000),
            day("2024-01-03", 6_000),
            day("2024-01-04", 3_000),
        );
        // The days interleave, a thousand rows at a time, as pipeline batches do.
        for start in (0..12_000).step_by(1_000) {
            for rows in [&first, &second, &third] {
                if start < rows.num_rows() {
                    sink.write_sync(&rows.slice(start, 1_000), &[]).unwrap();
                }
            }
        }
        let waiting = |sink: &ParquetSink| -> Vec<usize> {
            sink.open.iter().map(|u| u.pending_rows).collect()
        };
        assert_eq!(waiting(&sink), vec![12_000, 6_000, 3_000]);
        // Under a budget the other two days fit in, only the first day's rows are written.
        let others: usize = sink.open[1..].iter().map(|u| u.pending_bytes).sum();
        sink.keep_pending_within(others + 1).unwrap();
        assert_eq!(waiting(&sink), vec![0, 6_000, 3_000]);
        assert_eq!(sink.open[0].pending_bytes, 0);
        let held: usize = sink.open.iter().map(|u| u.pending_bytes).sum();
        assert!(held <= others + 1, "{held} bytes still waiting");
        sink.write_sync(&first.slice(12_000, 20_000), &[]).unwrap();
        sink.finish().await.unwrap();
        let groups = |d: &str| -> Vec<i64> {
            let path = dir
                .path()
                .join(format!("quotes/symbol=AAPL/date={d}/{FILE_NAME}"));
            let meta = open_stored(&store, &path).unwrap().metadata().clone();
            meta.row_groups().iter().map(|g| g.num_rows()).collect()
        };
        assert_eq!(groups("2024-01-02"), vec![12_000, 16_384, 3_616]);
        assert_eq!(groups("2024-01-03"), vec![6_000]);
        assert_eq!(groups("2024-01-04"), vec![3_000]);
        for (d, rows) in [
            ("2024-01-02", &first),
            ("2024-01-03", &second),
            ("2024-01-04", &third),
        ] {
            let path = dir
                .path()
                .join(format!("quotes/symbol=AAPL/date={d}/{FILE_NAME}"));
            let back = read_file(&store, &path, &DatasetId::Quotes, "AAPL").unwrap();
            assert_eq!(&batch::concat(&back[0].schema(), &back).unwrap(), rows);
        }
    }

    #[test]
    fn bars_are_kept_per_month_under_their_timeframe_and_adjustment() {
        let l = DatasetId::bars(
            data_core::dataset::Timeframe::Min1,
            data_core::dataset::Adjustment::Split,
        );
        let jan = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
        assert_eq!(
            l.file(Path::new("h"), "MSFT", jan),
            Path::new(
                "h/bars/timeframe=1Min/adjustment=split/symbol=MSFT/month=2024-01/part-0.parquet"
            )
        );
        let mid_jan = new_york_time_nanos(NaiveDate::from_ymd_opt(2024, 1, 17).unwrap(), 12, 0);
        assert_eq!(l.unit_key(mid_jan), jan);
        let (from, until) = l.unit_bounds(jan);
        assert_eq!(from, new_york_time_nanos(jan, 0, 0));
        assert_eq!(
            until,
            new_york_time_nanos(NaiveDate::from_ymd_opt(2024, 2, 1).unwrap(), 0, 0)
        );
        assert_eq!(l.parse_unit("month=2024-01"), Some(jan));
        assert_eq!(l.parse_unit("date=2024-01-01"), None);
        let whole = l.whole_units(DateRange {
            start_ns: mid_jan,
            end_ns: mid_jan + 1,
        });
        assert_eq!((whole.start_ns, whole.end_ns), (from, until - 1));
        assert_eq!(sorted_by(Kind::Bars.columns()), [0, 1]);
        assert_eq!(sorted_by(Kind::Quotes.columns()), [0, 1, 2]);
    }
}
