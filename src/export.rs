//! The writers of `data export` ([`ExportSink`]): a pipeline sink that turns each batch of
//! stored rows into CSV (arrow-csv), JSON lines (arrow-json) or one Parquet file, in the
//! Parquet store's columns (each time with its exact nanoseconds beside it, `t_ns`; in
//! Parquet `t` in microseconds, as every engine reads it), with the New York date and time
//! of each row added (`ny_date`, `ny_time`). It holds one batch at a
//! time, so memory stays flat however long the range. A file is written under a temporary
//! name beside it and renamed when the export completed; standard output is streamed.

use crate::args::ExportFormat;
use crate::dataset::DatasetId;
use crate::pipeline::{Mark, Sink};
use crate::time::{new_york_offset_secs, NANOS_PER_SEC};
use anyhow::Context;
use arrow_array::builder::StringBuilder;
use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, TimestampMicrosecondType, TimestampNanosecondType};
use arrow_array::{
    Array, ArrayRef, Date32Array, ListArray, RecordBatch, Time64NanosecondArray,
    TimestampNanosecondArray,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

/// How timestamps read in CSV and JSON lines: RFC 3339, UTC, to the nanosecond.
const TIMESTAMP_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.9fZ";
/// How `ny_time` reads: New York wall-clock time to the nanosecond.
const TIME_FORMAT: &str = "%H:%M:%S%.9f";
/// The offset arrow's writers are given for UTC (they parse offsets only, not zone names).
const UTC_OFFSET: &str = "+00:00";
const NANOS_PER_DAY: i64 = 86_400 * NANOS_PER_SEC;
/// Rows per row group of a Parquet export.
const EXPORT_ROW_GROUP_ROWS: usize = 65_536;
const NANOS_PER_HOUR: i64 = 3_600 * NANOS_PER_SEC;

type Output = Box<dyn Write + Send>;

enum Writer {
    Csv(arrow_csv::Writer<Output>),
    Json(arrow_json::LineDelimitedWriter<Output>),
    Parquet(parquet::arrow::ArrowWriter<Output>),
}

/// Where an export goes: standard output, or a file written under a temporary name first.
pub enum Destination {
    Stdout,
    File(PathBuf),
}

impl Destination {
    /// `-` is standard output; anything else a file path.
    pub fn parse(text: &str) -> Self {
        match text {
            "-" => Destination::Stdout,
            path => Destination::File(PathBuf::from(path)),
        }
    }

    pub fn show(&self) -> String {
        match self {
            Destination::Stdout => "standard output".to_string(),
            Destination::File(p) => p.display().to_string(),
        }
    }
}

/// The export's sink: converts and writes each batch, in the order the source sends them.
pub struct ExportSink {
    writer: Option<Writer>,
    format: ExportFormat,
    schema: SchemaRef,
    destination: Destination,
    /// The temporary file the rows go to until the export completed.
    partial: Option<PathBuf>,
}

impl ExportSink {
    /// Opens the output for `dataset`'s rows as `format`: the CSV header (or the Parquet
    /// schema) is known before any row, so an empty range still gives a well-formed file.
    pub fn create(
        dataset: DatasetId,
        format: ExportFormat,
        destination: Destination,
    ) -> anyhow::Result<Self> {
        let schema = output_schema(&crate::batch::schema(dataset.columns()), format);
        let (out, partial): (Output, Option<PathBuf>) = match &destination {
            Destination::Stdout => (Box::new(std::io::BufWriter::new(std::io::stdout())), None),
            Destination::File(path) => {
                let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
                let Some(name) = name else {
                    return Err(crate::job::usage(format!(
                        "--output {} names no file",
                        path.display()
                    )));
                };
                let partial = path.with_file_name(format!(".{name}.partial"));
                let file = std::fs::File::create(&partial)
                    .with_context(|| format!("cannot create {}", partial.display()))?;
                (Box::new(std::io::BufWriter::new(file)), Some(partial))
            }
        };
        let writer = match format {
            ExportFormat::Csv => Writer::Csv(
                arrow_csv::WriterBuilder::new()
                    .with_header(true)
                    .with_timestamp_tz_format(TIMESTAMP_FORMAT.to_string())
                    .with_time_format(TIME_FORMAT.to_string())
                    .build(out),
            ),
            ExportFormat::Jsonl => Writer::Json(
                arrow_json::WriterBuilder::new()
                    .with_explicit_nulls(true)
                    .with_timestamp_tz_format(TIMESTAMP_FORMAT.to_string())
                    .with_time_format(TIME_FORMAT.to_string())
                    .build(out),
            ),
            ExportFormat::Parquet => {
                // Row groups of 64Ki rows: the writer holds one in memory (its default of
                // 1Mi rows held about 100 MB of a year's quotes).
                let props = parquet::file::properties::WriterProperties::builder()
                    .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
                    .set_max_row_group_row_count(Some(EXPORT_ROW_GROUP_ROWS))
                    .build();
                Writer::Parquet(
                    parquet::arrow::ArrowWriter::try_new(out, schema.clone(), Some(props))
                        .context("cannot start the Parquet file")?,
                )
            }
        };
        let mut sink = ExportSink {
            writer: Some(writer),
            format,
            schema,
            destination,
            partial,
        };
        if format == ExportFormat::Csv {
            // The header, even when no row follows.
            let empty = RecordBatch::new_empty(sink.schema.clone());
            sink.write(&empty)?;
        }
        Ok(sink)
    }

    fn write(&mut self, batch: &RecordBatch) -> anyhow::Result<()> {
        let what = self.destination.show();
        let result = match self.writer.as_mut() {
            Some(Writer::Csv(w)) => w.write(batch).map_err(anyhow::Error::from),
            Some(Writer::Json(w)) => w.write(batch).map_err(anyhow::Error::from),
            Some(Writer::Parquet(w)) => w.write(batch).map_err(anyhow::Error::from),
            None => Ok(()),
        };
        result.with_context(|| format!("cannot write the export to {what}"))
    }
}

impl Sink for ExportSink {
    fn label(&self) -> &'static str {
        "EXPORT"
    }

    fn keeps_batches(&self) -> bool {
        false
    }

    fn destination(&self) -> String {
        self.destination.show()
    }

    async fn write_batch(&mut self, rows: &RecordBatch, _marks: &[Mark]) -> anyhow::Result<()> {
        if rows.num_rows() == 0 {
            return Ok(());
        }
        let out = convert(rows, &self.schema, self.format)?;
        self.write(&out)
    }

    async fn finish(&mut self) -> anyhow::Result<()> {
        let what = self.destination.show();
        let out: Option<Output> = match self.writer.take() {
            Some(Writer::Csv(w)) => Some(w.into_inner()),
            Some(Writer::Json(mut w)) => {
                w.finish()
                    .with_context(|| format!("cannot write the export to {what}"))?;
                Some(w.into_inner())
            }
            Some(Writer::Parquet(w)) => Some(
                w.into_inner()
                    .with_context(|| format!("cannot finish the Parquet file {what}"))?,
            ),
            None => None,
        };
        if let Some(mut out) = out {
            out.flush()
                .with_context(|| format!("cannot write the export to {what}"))?;
        }
        if let (Some(partial), Destination::File(path)) = (self.partial.take(), &self.destination) {
            std::fs::rename(&partial, path).with_context(|| {
                format!("cannot rename {} to {}", partial.display(), path.display())
            })?;
        }
        Ok(())
    }

    fn abort(&mut self) {
        self.writer = None;
        if let Some(partial) = self.partial.take() {
            let _ = std::fs::remove_file(partial);
        }
    }
}

impl Drop for ExportSink {
    fn drop(&mut self) {
        // An export that did not finish leaves no file behind.
        self.abort();
    }
}

/// The export's columns: the rows' own (the Parquet store's, with `symbol`), lists as JSON
/// text in CSV (which has no lists), UTC given as an offset for arrow's text writers; then
/// `ny_date` and `ny_time`.
fn output_schema(rows: &Schema, format: ExportFormat) -> SchemaRef {
    let mut fields: Vec<Field> = Vec::with_capacity(rows.fields().len() + 3);
    for f in rows.fields() {
        let ty = match (f.data_type(), format) {
            (DataType::List(_), ExportFormat::Csv) => DataType::Utf8,
            (DataType::Timestamp(unit, Some(_)), ExportFormat::Csv | ExportFormat::Jsonl) => {
                DataType::Timestamp(*unit, Some(UTC_OFFSET.into()))
            }
            // As the Parquet store keeps it: microseconds, which every engine reads.
            (DataType::Timestamp(_, Some(_)), ExportFormat::Parquet) => crate::batch::file_time(),
            (other, _) => other.clone(),
        };
        fields.push(Field::new(f.name(), ty, f.is_nullable()));
        if matches!(f.data_type(), DataType::Timestamp(..)) {
            // The exact nanoseconds beside every time, as in the Parquet store.
            let exact = crate::batch::exact_name(f.name());
            fields.push(Field::new(exact, DataType::Int64, f.is_nullable()));
        }
    }
    fields.push(Field::new("ny_date", DataType::Date32, false));
    fields.push(Field::new(
        "ny_time",
        DataType::Time64(TimeUnit::Nanosecond),
        false,
    ));
    Arc::new(Schema::new(fields))
}

/// One batch of rows as the export's columns.
fn convert(
    rows: &RecordBatch,
    schema: &SchemaRef,
    format: ExportFormat,
) -> anyhow::Result<RecordBatch> {
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    let mut times: Option<&TimestampNanosecondArray> = None;
    for (field, array) in rows.schema().fields().iter().zip(rows.columns()) {
        let out: ArrayRef = match (array.data_type(), format) {
            (DataType::List(_), ExportFormat::Csv) => {
                Arc::new(lists_as_json(array.as_list::<i32>())?)
            }
            (DataType::Timestamp(TimeUnit::Nanosecond, Some(_)), _) => {
                let t = array.as_primitive::<TimestampNanosecondType>();
                let shown: ArrayRef = match format {
                    ExportFormat::Parquet => Arc::new(
                        t.unary::<_, TimestampMicrosecondType>(|v| v.div_euclid(1_000))
                            .with_timezone("UTC"),
                    ),
                    _ => Arc::new(t.clone().with_timezone(UTC_OFFSET)),
                };
                columns.push(shown);
                Arc::new(t.unary::<_, Int64Type>(|v| v))
            }
            _ => array.clone(),
        };
        if field.name() == crate::dataset::Role::Time.name() {
            times = array.as_primitive_opt::<TimestampNanosecondType>();
        }
        columns.push(out);
    }
    let Some(t) = times else {
        anyhow::bail!("the rows have no time column `t` of nanoseconds");
    };
    let (dates, clock) = new_york_date_and_time(t);
    columns.push(Arc::new(dates));
    columns.push(Arc::new(clock));
    RecordBatch::try_new(schema.clone(), columns).context("cannot shape the export's rows")
}

/// Each row's New York date and wall-clock time. The offset changes only on whole UTC
/// hours, so it is looked up once per hour the rows span.
fn new_york_date_and_time(t: &TimestampNanosecondArray) -> (Date32Array, Time64NanosecondArray) {
    let mut hour = i64::MIN;
    let mut offset_ns = 0;
    let mut dates = Vec::with_capacity(t.len());
    let mut clock = Vec::with_capacity(t.len());
    for &ns in t.values().iter() {
        let h = ns.div_euclid(NANOS_PER_HOUR);
        if h != hour {
            hour = h;
            offset_ns = new_york_offset_secs(ns) * NANOS_PER_SEC;
        }
        let local = ns + offset_ns;
        dates.push(local.div_euclid(NANOS_PER_DAY) as i32);
        clock.push(local.rem_euclid(NANOS_PER_DAY));
    }
    (Date32Array::from(dates), Time64NanosecondArray::from(clock))
}

/// A list column as compact JSON arrays (`["R","T"]`), as the databases store conditions.
fn lists_as_json(lists: &ListArray) -> anyhow::Result<arrow_array::StringArray> {
    let mut out = StringBuilder::with_capacity(lists.len(), lists.len() * 8);
    for i in 0..lists.len() {
        if lists.is_null(i) {
            out.append_null();
            continue;
        }
        let items = lists.value(i);
        let items = items
            .as_string_opt::<i32>()
            .context("a list of non-strings")?;
        let values: Vec<Option<&str>> = items.iter().collect();
        out.append_value(serde_json::to_string(&values)?);
    }
    Ok(out.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_york_date_and_time_across_both_offsets() {
        // 2024-01-02 14:30:00.000000001 UTC is 09:30 in New York (winter, -5);
        // 2024-07-01 00:30 UTC is 20:30 of June 30th (summer, -4).
        let winter = 1_704_205_800_000_000_001;
        let summer = 1_719_793_800_000_000_000;
        let t = TimestampNanosecondArray::from(vec![winter, summer]);
        let (dates, clock) = new_york_date_and_time(&t);
        let d = |days: i32| chrono::NaiveDate::from_num_days_from_ce_opt(days + 719_163);
        assert_eq!(
            d(dates.value(0)),
            chrono::NaiveDate::from_ymd_opt(2024, 1, 2)
        );
        assert_eq!(clock.value(0), (9 * 3600 + 30 * 60) * NANOS_PER_SEC + 1);
        assert_eq!(
            d(dates.value(1)),
            chrono::NaiveDate::from_ymd_opt(2024, 6, 30)
        );
        assert_eq!(clock.value(1), (20 * 3600 + 30 * 60) * NANOS_PER_SEC);
    }

    #[test]
    fn lists_become_compact_json() {
        let mut b = arrow_array::builder::ListBuilder::new(StringBuilder::new());
        b.values().append_value("R");
        b.values().append_value("T\"x");
        b.append(true);
        b.append(true);
        b.append_null();
        let json = lists_as_json(&b.finish()).unwrap();
        assert_eq!(json.value(0), r#"["R","T\"x"]"#);
        assert_eq!(json.value(1), "[]");
        assert!(json.is_null(2));
    }
}
