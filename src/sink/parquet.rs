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
//! replaces its file in one step. Memory holds at most one row group being encoded per open
//! file, whatever the range.
//!
//! Trades carry corrections (Alpaca's `u`): a record with the id and exchange of an earlier
//! trade of the same day replaces it, as the database's key does. A file is written as the
//! records arrive; when the day held corrections, committing it rewrites it once, streaming,
//! without the records they replaced (only the corrected identities are held in memory).
//!
//! This module owns the layout, the schemas and the conversions between rows and Arrow
//! batches, in both directions; it knows nothing about HTTP or SQL.

use super::parquet_schema::column;
pub use super::parquet_schema::{quotes_schema, StoreRecord};
use crate::dataset::DatasetId;
use crate::model::Quote;
use crate::pipeline::{Mark, Sink};
use crate::resume::Shard;
use crate::time::new_york_date;
use anyhow::Context;
use arrow_array::TimestampNanosecondArray;
use chrono::NaiveDate;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use crate::dataset::FILE_NAME;
/// Rows per row group: a day of a liquid symbol splits into several groups, each with
/// min/max statistics on `t`, so a read of part of a day skips the groups outside it.
pub const ROW_GROUP_ROWS: usize = 16_384;

/// Backwards-compatible helper: the quotes file of `symbol` on `date`.
pub fn day_file(root: &Path, symbol: &str, date: NaiveDate) -> PathBuf {
    DatasetId::Quotes.file(root, symbol, date)
}

/// One file of the store, as listed: symbol, unit key (day, or a month's first day), rows
/// from the footer, path.
pub type Listed = (String, NaiveDate, i64, PathBuf);

/// Every file of `layout` in the store.
pub fn list_units(root: &Path, layout: &DatasetId) -> anyhow::Result<Vec<Listed>> {
    let mut out = Vec::new();
    let Ok(symbols) = std::fs::read_dir(layout.dir(root)) else {
        return Ok(out);
    };
    for sym_dir in symbols.flatten() {
        let name = sym_dir.file_name().to_string_lossy().into_owned();
        let Some(symbol) = name.strip_prefix("symbol=") else {
            continue;
        };
        for unit_dir in std::fs::read_dir(sym_dir.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let Some(key) = layout.parse_unit(&unit_dir.file_name().to_string_lossy()) else {
                continue;
            };
            let path = unit_dir.path().join(FILE_NAME);
            let Ok(file) = File::open(&path) else {
                continue;
            };
            let reader = parquet::file::serialized_reader::SerializedFileReader::new(file)
                .with_context(|| format!("{} is not a readable Parquet file", path.display()))?;
            use parquet::file::reader::FileReader;
            let rows = reader.metadata().file_metadata().num_rows();
            out.push((symbol.to_string(), key, rows, path));
        }
    }
    out.sort();
    Ok(out)
}

/// Every quotes day file in the store.
pub fn list_days(root: &Path) -> anyhow::Result<Vec<Listed>> {
    list_units(root, &DatasetId::Quotes)
}

/// Rows per New York day of one file (status of a monthly bars file): reads `t` only.
pub fn rows_per_day(path: &Path) -> anyhow::Result<Vec<(NaiveDate, i64)>> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .with_context(|| format!("{} is not a readable Parquet file", path.display()))?;
    let mask = parquet::arrow::ProjectionMask::roots(builder.parquet_schema(), [0]);
    let reader = builder
        .with_projection(mask)
        .build()
        .with_context(|| format!("cannot read {}", path.display()))?;
    let mut days: Vec<(NaiveDate, i64)> = Vec::new();
    for batch in reader {
        let batch = batch.with_context(|| format!("cannot decode {}", path.display()))?;
        let t = column::<TimestampNanosecondArray>(&batch, "t")?;
        for i in 0..t.len() {
            let d = new_york_date(t.value(i));
            match days.last_mut() {
                Some((last, n)) if *last == d => *n += 1,
                _ => days.push((d, 1)),
            }
        }
    }
    Ok(days)
}

/// All rows of one file.
pub fn read_file<R: StoreRecord>(
    path: &Path,
    symbol: &Arc<str>,
    layout: &DatasetId,
) -> anyhow::Result<Vec<R>> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .with_context(|| format!("{} is not a readable Parquet file", path.display()))?
        .build()
        .with_context(|| format!("cannot read {}", path.display()))?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.with_context(|| format!("cannot decode {}", path.display()))?;
        out.extend(R::from_batch(&batch, symbol, layout, i64::MIN, i64::MAX)?);
    }
    Ok(out)
}

/// All quotes of one day file.
pub fn read_day_file(path: &Path, symbol: &Arc<str>) -> anyhow::Result<Vec<Quote>> {
    read_file(path, symbol, &DatasetId::Quotes)
}

fn writer_properties(sorted_by: &[usize]) -> anyhow::Result<WriterProperties> {
    Ok(WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_sorting_columns(Some(
            sorted_by
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

/// Writes `rows` (one symbol, one file's unit, sorted) as that unit's file, atomically.
pub fn write_file<R: StoreRecord>(
    root: &Path,
    layout: &DatasetId,
    symbol: &str,
    key: NaiveDate,
    rows: &[R],
) -> anyhow::Result<PathBuf> {
    let mut w = UnitWriter::<R>::create(root, layout, symbol.into(), key)?;
    for chunk in rows.chunks(ROW_GROUP_ROWS) {
        w.write(chunk)?;
    }
    Ok(w.commit()?.0)
}

/// Writes `rows` (one symbol, one day, sorted) as that day's quotes file, atomically.
pub fn write_day_file(
    root: &Path,
    symbol: &str,
    date: NaiveDate,
    rows: &[Quote],
) -> anyhow::Result<PathBuf> {
    write_file(root, &DatasetId::Quotes, symbol, date, rows)
}

const TMP_MARK: &str = ".tmp-";

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
            if !crate::sink::process_alive(pid) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

fn start_writer<R: StoreRecord>(path: &Path) -> anyhow::Result<ArrowWriter<File>> {
    let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    ArrowWriter::try_new(file, R::schema(), Some(writer_properties(R::sorted_by())?))
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
struct UnitWriter<R: StoreRecord> {
    layout: DatasetId,
    symbol: Arc<str>,
    key: NaiveDate,
    /// The unit's bounds, UTC ns: New York midnight to midnight.
    from_ns: i64,
    until_ns: i64,
    tmp: PathBuf,
    path: PathBuf,
    writer: Option<ArrowWriter<File>>,
    rows: u64,
    /// Trade id -> (exchange, index of the last record that updated it) for each identity a
    /// correction touched; keyed by id so the rewrite looks rows up without allocating.
    updates: HashMap<u64, Vec<(String, u64)>>,
    _rows: std::marker::PhantomData<R>,
}

impl<R: StoreRecord> UnitWriter<R> {
    fn create(
        root: &Path,
        layout: &DatasetId,
        symbol: Arc<str>,
        key: NaiveDate,
    ) -> anyhow::Result<Self> {
        let dir = layout.unit_dir(root, &symbol, key);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create the Parquet folder {}", dir.display()))?;
        remove_stale_temp_files(&dir);
        let tmp = dir.join(format!(".{FILE_NAME}{TMP_MARK}{}", std::process::id()));
        let writer = start_writer::<R>(&tmp)?;
        let (from_ns, until_ns) = layout.unit_bounds(key);
        Ok(UnitWriter {
            layout: *layout,
            path: dir.join(FILE_NAME),
            symbol,
            key,
            from_ns,
            until_ns,
            tmp,
            writer: Some(writer),
            rows: 0,
            updates: HashMap::new(),
            _rows: std::marker::PhantomData,
        })
    }

    fn holds(&self, r: &R) -> bool {
        let t = r.time();
        t >= self.from_ns && t < self.until_ns && r.symbol() == &*self.symbol
    }

    fn write(&mut self, rows: &[R]) -> anyhow::Result<()> {
        for (i, r) in rows.iter().enumerate() {
            if r.is_update() {
                if let Some((x, id)) = r.identity() {
                    let index = self.rows + i as u64;
                    let slot = self.updates.entry(id).or_default();
                    match slot.iter_mut().find(|(e, _)| e == x) {
                        Some((_, last)) => *last = index,
                        None => slot.push((x.to_string(), index)),
                    }
                }
            }
        }
        let batch = R::to_batch(rows)?;
        if let Some(w) = self.writer.as_mut() {
            w.write(&batch)
                .with_context(|| format!("cannot write {}", self.tmp.display()))?;
        }
        self.rows += rows.len() as u64;
        Ok(())
    }

    /// Rewrites the finished temporary file without the records a later update replaced,
    /// one batch at a time; returns the rows kept.
    fn apply_updates(&self) -> anyhow::Result<u64> {
        let file =
            File::open(&self.tmp).with_context(|| format!("cannot open {}", self.tmp.display()))?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .with_context(|| format!("cannot read back {}", self.tmp.display()))?
            .with_batch_size(ROW_GROUP_ROWS)
            .build()
            .with_context(|| format!("cannot read back {}", self.tmp.display()))?;
        let out_path = PathBuf::from(format!("{}-u", self.tmp.display()));
        let mut out = start_writer::<R>(&out_path)?;
        let (mut index, mut kept) = (0u64, 0u64);
        for batch in reader {
            let batch = batch.with_context(|| format!("cannot decode {}", self.tmp.display()))?;
            let rows = R::from_batch(&batch, &self.symbol, &self.layout, i64::MIN, i64::MAX)?;
            let keep: Vec<R> = rows
                .into_iter()
                .filter(|r| {
                    let i = index;
                    index += 1;
                    let replaced = r.identity().and_then(|(x, id)| {
                        self.updates
                            .get(&id)?
                            .iter()
                            .find(|(e, _)| e == x)
                            .map(|&(_, last)| last != i)
                    });
                    !replaced.unwrap_or(false)
                })
                .collect();
            if !keep.is_empty() {
                out.write(&R::to_batch(&keep)?)
                    .with_context(|| format!("cannot write {}", out_path.display()))?;
                kept += keep.len() as u64;
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
        let writer = self.writer.take().context("file already closed")?;
        let finished = finish_writer(writer, &self.tmp).and_then(|()| {
            if self.updates.is_empty() {
                Ok(self.rows)
            } else {
                self.apply_updates()
            }
        });
        let rows = match finished {
            Ok(rows) => rows,
            Err(e) => {
                let _ = std::fs::remove_file(&self.tmp);
                return Err(e);
            }
        };
        std::fs::rename(&self.tmp, &self.path)
            .with_context(|| format!("cannot move {} into place", self.path.display()))?;
        Ok((self.path.clone(), rows))
    }
}

impl<R: StoreRecord> Drop for UnitWriter<R> {
    fn drop(&mut self) {
        // Not committed: the partial unit must not survive under any name.
        if self.writer.is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
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
pub struct ParquetSink<R: StoreRecord> {
    root: PathBuf,
    layout: DatasetId,
    shards: Arc<Vec<Shard>>,
    open: Vec<UnitWriter<R>>,
    pub written: Vec<DayWritten>,
}

impl<R: StoreRecord> ParquetSink<R> {
    pub fn new(root: &Path, layout: DatasetId, shards: Arc<Vec<Shard>>) -> anyhow::Result<Self> {
        let dir = layout.dir(root);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create the Parquet store folder {}", dir.display()))?;
        Ok(ParquetSink {
            root: root.to_path_buf(),
            layout,
            shards,
            open: Vec::new(),
            written: Vec::new(),
        })
    }

    fn commit(&mut self, index: usize) -> anyhow::Result<()> {
        let unit = self.open.swap_remove(index);
        let date = unit.key;
        let (path, rows) = unit.commit()?;
        tracing::info!("[FILE] {date}: {rows} rows in {}", path.display());
        self.written.push(DayWritten { date, rows, path });
        Ok(())
    }

    fn write_sync(&mut self, rows: &[R], marks: &[Mark]) -> anyhow::Result<()> {
        let mut start = 0;
        while start < rows.len() {
            let first = &rows[start];
            let index = match self.open.iter().position(|d| d.holds(first)) {
                Some(i) => i,
                None => {
                    let key = self.layout.unit_key(first.time());
                    let unit =
                        UnitWriter::create(&self.root, &self.layout, first.symbol().into(), key)?;
                    self.open.push(unit);
                    self.open.len() - 1
                }
            };
            let unit = &mut self.open[index];
            let len = rows[start..].iter().take_while(|r| unit.holds(r)).count();
            unit.write(&rows[start..start + len])?;
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
        Ok(())
    }
}

impl<R: StoreRecord> Sink<R> for ParquetSink<R> {
    fn label(&self) -> &'static str {
        "FILE"
    }

    async fn write_batch(&mut self, rows: &[R], marks: &[Mark]) -> anyhow::Result<()> {
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
    use crate::model::{Bar, Trade};
    use crate::time::{new_york_time_nanos, DateRange};

    fn quote(t: i64, seq: u32, conditions: &[&str]) -> Quote {
        Quote {
            symbol: "AAPL".into(),
            t,
            seq,
            bid_exchange: " ".into(),
            bid_price: 0.0,
            bid_size: 0,
            ask_exchange: "Q".into(),
            ask_price: 187.25,
            ask_size: 300,
            conditions: conditions.iter().map(|c| c.to_string()).collect(),
            tape: "C".into(),
        }
    }

    #[test]
    fn arrow_round_trip_keeps_every_field() {
        let rows = vec![
            quote(1_704_186_000_000_000_001, 0, &["R"]),
            quote(1_704_186_000_000_000_001, 1, &[" ", "T"]),
            quote(1_704_186_000_500_000_000, 0, &[]),
        ];
        let batch = Quote::to_batch(&rows).unwrap();
        assert_eq!(batch.schema(), quotes_schema());
        let sym: Arc<str> = "AAPL".into();
        assert_eq!(
            Quote::from_batch(&batch, &sym, &DatasetId::Quotes, i64::MIN, i64::MAX).unwrap(),
            rows
        );
        let later = Quote::from_batch(
            &batch,
            &sym,
            &DatasetId::Quotes,
            1_704_186_000_000_000_002,
            i64::MAX,
        )
        .unwrap();
        assert_eq!(later, rows[2..]);
    }

    #[test]
    fn layout_is_hive_style() {
        let d = NaiveDate::from_ymd_opt(2024, 1, 2).unwrap();
        assert_eq!(
            day_file(Path::new("data/historical"), "AAPL", d),
            Path::new("data/historical/quotes/symbol=AAPL/date=2024-01-02/part-0.parquet")
        );
    }

    fn trade(t: i64, id: u64, price: f64, update: Option<&str>) -> Trade {
        Trade {
            symbol: "AAPL".into(),
            t,
            seq: 0,
            exchange: "V".into(),
            price,
            size: 100,
            id,
            conditions: vec!["@".into(), "T".into()],
            tape: "C".into(),
            update: update.map(str::to_string),
        }
    }

    #[test]
    fn a_correction_replaces_the_trade_it_corrects_in_the_day_file() {
        let dir = tempfile::tempdir().unwrap();
        let day = NaiveDate::from_ymd_opt(2024, 1, 2).unwrap();
        let t0 = new_york_time_nanos(day, 9, 30);
        let rows = [
            trade(t0, 1, 10.0, None),
            trade(t0 + 1, 2, 11.0, None),
            trade(t0 + 2, 3, 12.0, None),
            trade(t0 + 3, 2, 11.01, Some("corrected")),
            trade(t0 + 4, 4, 13.0, None),
            trade(t0 + 5, 1, 10.0, Some("canceled")),
        ];
        let mut w = UnitWriter::<Trade>::create(dir.path(), &DatasetId::Trades, "AAPL".into(), day)
            .unwrap();
        w.write(&rows[..2]).unwrap();
        w.write(&rows[2..]).unwrap();
        let (path, kept) = w.commit().unwrap();
        assert_eq!(kept, 4);
        assert_eq!(
            path,
            dir.path()
                .join("trades/symbol=AAPL/date=2024-01-02/part-0.parquet")
        );
        let back: Vec<Trade> = read_file(&path, &"AAPL".into(), &DatasetId::Trades).unwrap();
        assert_eq!(
            back,
            vec![
                rows[2].clone(),
                rows[3].clone(),
                rows[4].clone(),
                rows[5].clone()
            ]
        );
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(leftovers, vec![std::ffi::OsString::from(FILE_NAME)]);
    }

    #[test]
    fn bars_are_kept_per_month_under_their_timeframe_and_adjustment() {
        let l = DatasetId::bars(
            crate::dataset::Timeframe::Min1,
            crate::dataset::Adjustment::Split,
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
        let bar = Bar {
            symbol: "MSFT".into(),
            timeframe: "1Min".into(),
            adjustment: "split".into(),
            t: mid_jan,
            seq: 0,
            open: 1.0,
            high: 2.0,
            low: 0.5,
            close: 1.5,
            volume: 1234,
            trade_count: 17,
            vwap: 1.25,
        };
        let batch = Bar::to_batch(std::slice::from_ref(&bar)).unwrap();
        assert_eq!(
            Bar::from_batch(&batch, &"MSFT".into(), &l, i64::MIN, i64::MAX).unwrap(),
            vec![bar]
        );
    }
}
