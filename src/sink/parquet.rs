//! The Parquet store: one zstd-compressed file per symbol per New York trading day, in a
//! hive-style layout that DuckDB, Polars, pyarrow and Spark read as one partitioned dataset:
//!
//! ```text
//! {HISTORICAL_DATA_PATH}/quotes/symbol=AAPL/date=2024-01-02/part-0.parquet
//! ```
//!
//! A day is the unit of atomicity: its rows stream into a hidden temporary file
//! (`.part-0.parquet.tmp-PID`, ignored by dataset readers) that is renamed into place only
//! when the day is complete, so a killed import never leaves a file a reader would take as
//! whole, and re-importing a day replaces its file in one step. Memory holds at most one row
//! group being encoded, whatever the range.
//!
//! This module owns the file layout, the schema and the conversions between `Quote` rows and
//! Arrow batches, in both directions; it knows nothing about HTTP or SQL.

use crate::model::Quote;
use crate::pipeline::{Mark, Sink};
use crate::resume::Shard;
use crate::time::{new_york_date, new_york_time_nanos};
use anyhow::Context;
use arrow_array::builder::{ListBuilder, StringBuilder};
use arrow_array::{
    Array, ArrayRef, Float64Array, ListArray, RecordBatch, StringArray, TimestampNanosecondArray,
    UInt32Array,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use chrono::NaiveDate;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const DATASET: &str = "quotes";
pub const FILE_NAME: &str = "part-0.parquet";
/// Rows per row group: a day of a liquid symbol splits into several groups, each with
/// min/max statistics on `t`, so a read of part of a day skips the groups outside it.
pub const ROW_GROUP_ROWS: usize = 16_384;

/// The schema of every quotes file. `symbol` and `date` are not columns: they are the
/// hive partition keys in the path, which readers add as columns.
pub fn quotes_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(
            "t",
            DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
            false,
        ),
        Field::new("seq", DataType::UInt32, false),
        Field::new("bid_exchange", DataType::Utf8, false),
        Field::new("bid_price", DataType::Float64, false),
        Field::new("bid_size", DataType::UInt32, false),
        Field::new("ask_exchange", DataType::Utf8, false),
        Field::new("ask_price", DataType::Float64, false),
        Field::new("ask_size", DataType::UInt32, false),
        Field::new(
            "conditions",
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            false,
        ),
        Field::new("tape", DataType::Utf8, false),
    ]))
}

/// `{root}/quotes/symbol=SYM/date=YYYY-MM-DD`.
pub fn day_dir(root: &Path, symbol: &str, date: NaiveDate) -> PathBuf {
    root.join(DATASET)
        .join(format!("symbol={symbol}"))
        .join(format!("date={date}"))
}

pub fn day_file(root: &Path, symbol: &str, date: NaiveDate) -> PathBuf {
    day_dir(root, symbol, date).join(FILE_NAME)
}

/// Converts quotes to one Arrow batch in the store's schema.
pub fn to_record_batch(rows: &[Quote]) -> anyhow::Result<RecordBatch> {
    let t =
        TimestampNanosecondArray::from_iter_values(rows.iter().map(|r| r.t)).with_timezone("UTC");
    let strs = |f: fn(&Quote) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(rows.iter().map(f)))
    };
    let mut cond = ListBuilder::with_capacity(StringBuilder::new(), rows.len())
        .with_field(Arc::new(Field::new("item", DataType::Utf8, true)));
    for r in rows {
        for c in &r.conditions {
            cond.values().append_value(c);
        }
        cond.append(true);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(t),
        Arc::new(UInt32Array::from_iter_values(rows.iter().map(|r| r.seq))),
        strs(|r| &r.bid_exchange),
        Arc::new(Float64Array::from_iter_values(
            rows.iter().map(|r| r.bid_price),
        )),
        Arc::new(UInt32Array::from_iter_values(
            rows.iter().map(|r| r.bid_size),
        )),
        strs(|r| &r.ask_exchange),
        Arc::new(Float64Array::from_iter_values(
            rows.iter().map(|r| r.ask_price),
        )),
        Arc::new(UInt32Array::from_iter_values(
            rows.iter().map(|r| r.ask_size),
        )),
        Arc::new(cond.finish()),
        strs(|r| &r.tape),
    ];
    RecordBatch::try_new(quotes_schema(), columns).context("cannot build an Arrow batch")
}

fn column<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> anyhow::Result<&'a T> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .with_context(|| format!("column {name} is missing or has an unexpected type"))
}

/// Converts a batch read from the store back to quotes of `symbol`, keeping only rows with
/// `start_ns <= t <= end_ns`.
pub fn from_record_batch(
    batch: &RecordBatch,
    symbol: &Arc<str>,
    start_ns: i64,
    end_ns: i64,
) -> anyhow::Result<Vec<Quote>> {
    let t = column::<TimestampNanosecondArray>(batch, "t")?;
    let seq = column::<UInt32Array>(batch, "seq")?;
    let bx = column::<StringArray>(batch, "bid_exchange")?;
    let bp = column::<Float64Array>(batch, "bid_price")?;
    let bs = column::<UInt32Array>(batch, "bid_size")?;
    let ax = column::<StringArray>(batch, "ask_exchange")?;
    let ap = column::<Float64Array>(batch, "ask_price")?;
    let asz = column::<UInt32Array>(batch, "ask_size")?;
    let cond = column::<ListArray>(batch, "conditions")?;
    let tape = column::<StringArray>(batch, "tape")?;
    let mut out = Vec::with_capacity(batch.num_rows());
    for i in 0..batch.num_rows() {
        let ti = t.value(i);
        if ti < start_ns || ti > end_ns {
            continue;
        }
        let list = cond.value(i);
        let items = list
            .as_any()
            .downcast_ref::<StringArray>()
            .context("conditions items are not strings")?;
        out.push(Quote {
            symbol: symbol.clone(),
            t: ti,
            seq: seq.value(i),
            bid_exchange: bx.value(i).to_string(),
            bid_price: bp.value(i),
            bid_size: bs.value(i),
            ask_exchange: ax.value(i).to_string(),
            ask_price: ap.value(i),
            ask_size: asz.value(i),
            conditions: (0..items.len())
                .map(|j| items.value(j).to_string())
                .collect(),
            tape: tape.value(i).to_string(),
        });
    }
    Ok(out)
}

/// Every day file in the store: (symbol, date, rows from the footer, path).
pub fn list_days(root: &Path) -> anyhow::Result<Vec<(String, NaiveDate, i64, PathBuf)>> {
    let mut out = Vec::new();
    let base = root.join(DATASET);
    let Ok(symbols) = std::fs::read_dir(&base) else {
        return Ok(out);
    };
    for sym_dir in symbols.flatten() {
        let name = sym_dir.file_name().to_string_lossy().into_owned();
        let Some(symbol) = name.strip_prefix("symbol=") else {
            continue;
        };
        for day_dir in std::fs::read_dir(sym_dir.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let dname = day_dir.file_name().to_string_lossy().into_owned();
            let Some(date) = dname
                .strip_prefix("date=")
                .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
            else {
                continue;
            };
            let path = day_dir.path().join(FILE_NAME);
            let Ok(file) = File::open(&path) else {
                continue;
            };
            let reader = parquet::file::serialized_reader::SerializedFileReader::new(file)
                .with_context(|| format!("{} is not a readable Parquet file", path.display()))?;
            use parquet::file::reader::FileReader;
            let rows = reader.metadata().file_metadata().num_rows();
            out.push((symbol.to_string(), date, rows, path));
        }
    }
    out.sort();
    Ok(out)
}

/// All quotes of one day file.
pub fn read_day_file(path: &Path, symbol: &Arc<str>) -> anyhow::Result<Vec<Quote>> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .with_context(|| format!("{} is not a readable Parquet file", path.display()))?
        .build()
        .with_context(|| format!("cannot read {}", path.display()))?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.with_context(|| format!("cannot decode {}", path.display()))?;
        out.extend(from_record_batch(&batch, symbol, i64::MIN, i64::MAX)?);
    }
    Ok(out)
}

fn writer_properties() -> anyhow::Result<WriterProperties> {
    Ok(WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_sorting_columns(Some(vec![
            SortingColumn {
                column_idx: 0,
                descending: false,
                nulls_first: false,
            },
            SortingColumn {
                column_idx: 1,
                descending: false,
                nulls_first: false,
            },
        ]))
        .build())
}

/// Writes `rows` (one symbol, one day, sorted) as that day's file, atomically.
pub fn write_day_file(
    root: &Path,
    symbol: &str,
    date: NaiveDate,
    rows: &[Quote],
) -> anyhow::Result<PathBuf> {
    let mut w = DayWriter::create(root, symbol.into(), date)?;
    for chunk in rows.chunks(ROW_GROUP_ROWS) {
        w.write(chunk)?;
    }
    w.commit()
}

/// Deletes temporary files left in a day folder by killed imports (their process is gone).
fn remove_stale_temp_files(dir: &Path) {
    let prefix = format!(".{FILE_NAME}.tmp-");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name
            .strip_prefix(&prefix)
            .and_then(|p| p.parse::<i64>().ok())
        {
            if !crate::sink::process_alive(pid) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// One day's file being written under its temporary name.
struct DayWriter {
    symbol: Arc<str>,
    date: NaiveDate,
    /// The day's bounds, UTC ns: New York midnight to midnight.
    from_ns: i64,
    until_ns: i64,
    tmp: PathBuf,
    path: PathBuf,
    writer: Option<ArrowWriter<File>>,
    rows: u64,
}

impl DayWriter {
    fn create(root: &Path, symbol: Arc<str>, date: NaiveDate) -> anyhow::Result<Self> {
        let dir = day_dir(root, &symbol, date);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create the Parquet folder {}", dir.display()))?;
        remove_stale_temp_files(&dir);
        let tmp = dir.join(format!(".{FILE_NAME}.tmp-{}", std::process::id()));
        let file =
            File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        let writer = ArrowWriter::try_new(file, quotes_schema(), Some(writer_properties()?))
            .context("cannot start a Parquet file")?;
        let next = date.succ_opt().unwrap_or(date);
        Ok(DayWriter {
            path: dir.join(FILE_NAME),
            symbol,
            date,
            from_ns: new_york_time_nanos(date, 0, 0),
            until_ns: new_york_time_nanos(next, 0, 0),
            tmp,
            writer: Some(writer),
            rows: 0,
        })
    }

    fn holds(&self, q: &Quote) -> bool {
        q.t >= self.from_ns && q.t < self.until_ns && *q.symbol == *self.symbol
    }

    fn write(&mut self, rows: &[Quote]) -> anyhow::Result<()> {
        let batch = to_record_batch(rows)?;
        if let Some(w) = self.writer.as_mut() {
            w.write(&batch)
                .with_context(|| format!("cannot write {}", self.tmp.display()))?;
        }
        self.rows += rows.len() as u64;
        Ok(())
    }

    /// Finishes the file, flushes it to disk, and renames it into place.
    fn commit(mut self) -> anyhow::Result<PathBuf> {
        let writer = self.writer.take().context("day file already closed")?;
        let file = writer
            .into_inner()
            .with_context(|| format!("cannot finish {}", self.tmp.display()))?;
        file.sync_all()
            .with_context(|| format!("cannot flush {}", self.tmp.display()))?;
        std::fs::rename(&self.tmp, &self.path)
            .with_context(|| format!("cannot move {} into place", self.path.display()))?;
        Ok(self.path.clone())
    }
}

impl Drop for DayWriter {
    fn drop(&mut self) {
        // Not committed: the partial day must not survive under any name.
        if self.writer.is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// A day written by the sink.
#[derive(Debug, Clone)]
pub struct DayWritten {
    pub date: NaiveDate,
    pub rows: u64,
    pub path: PathBuf,
}

/// The `--format parquet` sink. Rows arrive shard by shard (one symbol's New York day each,
/// several shards interleaved when fetched concurrently, each in time order); each day's
/// file stays open under a temporary name until the batch that completes its shard, then is
/// committed (renamed into place) — so a file in place is a complete day, and the file is
/// the day's resume record. [`Sink::finish`] commits any day still open; a failed or
/// interrupted import ([`Sink::abort`]) deletes the days in progress; committed days stay.
pub struct ParquetSink {
    root: PathBuf,
    shards: Arc<Vec<Shard>>,
    open: Vec<DayWriter>,
    pub written: Vec<DayWritten>,
}

impl ParquetSink {
    pub fn new(root: &Path, shards: Arc<Vec<Shard>>) -> anyhow::Result<Self> {
        std::fs::create_dir_all(root.join(DATASET)).with_context(|| {
            format!("cannot create the Parquet store folder {}", root.display())
        })?;
        Ok(ParquetSink {
            root: root.to_path_buf(),
            shards,
            open: Vec::new(),
            written: Vec::new(),
        })
    }

    fn commit(&mut self, index: usize) -> anyhow::Result<()> {
        let day = self.open.swap_remove(index);
        let (date, rows) = (day.date, day.rows);
        let path = day.commit()?;
        tracing::info!("[FILE] {date}: {rows} rows in {}", path.display());
        self.written.push(DayWritten { date, rows, path });
        Ok(())
    }

    fn write_sync(&mut self, rows: &[Quote], marks: &[Mark]) -> anyhow::Result<()> {
        let mut start = 0;
        while start < rows.len() {
            let first = &rows[start];
            let index = match self.open.iter().position(|d| d.holds(first)) {
                Some(i) => i,
                None => {
                    let date = new_york_date(first.t);
                    let day = DayWriter::create(&self.root, first.symbol.clone(), date)?;
                    self.open.push(day);
                    self.open.len() - 1
                }
            };
            let day = &mut self.open[index];
            let len = rows[start..].iter().take_while(|q| day.holds(q)).count();
            day.write(&rows[start..start + len])?;
            start += len;
        }
        for mark in marks.iter().filter(|m| m.done) {
            let Some(shard) = self.shards.get(mark.shard as usize) else {
                continue;
            };
            if let Some(i) = self
                .open
                .iter()
                .position(|d| d.date == shard.day && *d.symbol == *shard.symbol.as_str())
            {
                self.commit(i)?;
            }
        }
        Ok(())
    }
}

impl Sink<Quote> for ParquetSink {
    fn label(&self) -> &'static str {
        "FILE"
    }

    async fn write_batch(&mut self, rows: &[Quote], marks: &[Mark]) -> anyhow::Result<()> {
        // Encoding a batch takes a few milliseconds of CPU; the sources run meanwhile on the
        // runtime's other worker.
        self.write_sync(rows, marks)
    }

    async fn finish(&mut self) -> anyhow::Result<()> {
        self.open.sort_by_key(|d| d.date);
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
        let batch = to_record_batch(&rows).unwrap();
        assert_eq!(batch.schema(), quotes_schema());
        let sym: Arc<str> = "AAPL".into();
        assert_eq!(
            from_record_batch(&batch, &sym, i64::MIN, i64::MAX).unwrap(),
            rows
        );
        let later = from_record_batch(&batch, &sym, 1_704_186_000_000_000_002, i64::MAX).unwrap();
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
}
