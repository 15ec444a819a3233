//! Columnar rows: the Arrow batches that carry rows through the pipeline, built from and
//! read through a row list of [`crate::dataset`] (whose order is the batch's column order).
//!
//! Everything a stage needs to build or read a batch generically lives here: the schemas,
//! one builder per column type, typed views of a batch's columns ([`Cells`]), the
//! conversions between a pipeline batch and a Parquet file's batch, and row values for the
//! rare paths that compare rows one by one (archive's merge and verification).

use crate::dataset::{Column, ColumnType, Role};
use anyhow::Context;
use arrow_array::builder::{ArrayBuilder, ListBuilder, StringBuilder};
use arrow_array::{
    Array, ArrayRef, BooleanArray, Float64Array, ListArray, RecordBatch, StringArray,
    TimestampNanosecondArray, UInt32Array, UInt64Array,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use std::sync::{Arc, Mutex, OnceLock};

fn data_type(ty: ColumnType) -> DataType {
    match ty {
        ColumnType::TimestampNs => DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
        ColumnType::Utf8 => DataType::Utf8,
        ColumnType::Float64 => DataType::Float64,
        ColumnType::UInt32 => DataType::UInt32,
        ColumnType::UInt64 => DataType::UInt64,
        ColumnType::Utf8List => DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
    }
}

type SchemaCache = Mutex<Vec<(usize, bool, SchemaRef)>>;

fn cached(cols: &'static [Column], file: bool) -> SchemaRef {
    static CACHE: OnceLock<SchemaCache> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(Vec::new()));
    let key = cols.as_ptr() as usize;
    let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, _, s)) = cache.iter().find(|(k, f, _)| *k == key && *f == file) {
        return s.clone();
    }
    let mut fields: Vec<Field> = Vec::with_capacity(cols.len() + 1);
    for c in cols.iter().filter(|c| !file || c.in_file) {
        match (file, c.ty) {
            // Files keep a time twice: as a microsecond timestamp every engine reads (Spark,
            // Trino, Athena and the Delta protocol have no nanoseconds), and exact.
            (true, ColumnType::TimestampNs) => {
                fields.push(Field::new(c.name, file_time(), c.nullable));
                fields.push(Field::new(exact_name(c.name), DataType::Int64, c.nullable));
            }
            _ => fields.push(Field::new(c.name, data_type(c.ty), c.nullable)),
        }
    }
    let schema = Arc::new(Schema::new(fields));
    cache.push((key, file, schema.clone()));
    schema
}

/// How the Parquet files keep a time column: a microsecond UTC timestamp, which Spark, Trino,
/// Athena, DuckDB, Polars and the Delta protocol all read. The exact nanoseconds are beside
/// it, in [`exact_name`].
pub fn file_time() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// The files' column holding a time column's exact nanoseconds since the epoch (`t_ns`
/// beside `t`), an int64: with `seq`, the rows' key.
pub fn exact_name(name: &str) -> String {
    format!("{name}_ns")
}

/// The schema of pipeline batches of a row list: every column, in order.
pub fn schema(cols: &'static [Column]) -> SchemaRef {
    cached(cols, false)
}

/// The schema of the Parquet files of a row list: the columns kept in files.
pub fn file_schema(cols: &'static [Column]) -> SchemaRef {
    cached(cols, true)
}

/// The index of the column named `name`, if the row list has it.
pub fn index_of(cols: &[Column], name: &str) -> Option<usize> {
    cols.iter().position(|c| c.name == name)
}

/// A timestamp array (UTC), as every schema here declares them.
pub(crate) fn ts_array(values: Vec<i64>) -> ArrayRef {
    Arc::new(TimestampNanosecondArray::from(values).with_timezone("UTC"))
}

/// One column being built.
pub enum Builder {
    Ts(Vec<i64>),
    Utf8(StringBuilder),
    F64(Vec<f64>),
    U32(Vec<u32>),
    U64(Vec<u64>),
    List(ListBuilder<StringBuilder>),
}

impl Builder {
    pub fn new(ty: ColumnType, rows: usize) -> Self {
        match ty {
            ColumnType::TimestampNs => Builder::Ts(Vec::with_capacity(rows)),
            ColumnType::Utf8 => Builder::Utf8(StringBuilder::with_capacity(rows, rows * 2)),
            ColumnType::Float64 => Builder::F64(Vec::with_capacity(rows)),
            ColumnType::UInt32 => Builder::U32(Vec::with_capacity(rows)),
            ColumnType::UInt64 => Builder::U64(Vec::with_capacity(rows)),
            ColumnType::Utf8List => Builder::List(
                ListBuilder::with_capacity(StringBuilder::with_capacity(rows, rows * 2), rows)
                    .with_field(Arc::new(Field::new("item", DataType::Utf8, true))),
            ),
        }
    }

    /// Appends the value of a field the record left out: null, or `""`, 0, `[]`.
    #[inline]
    pub fn push_default(&mut self, nullable: bool) {
        match self {
            Builder::Ts(v) => v.push(0),
            Builder::Utf8(b) if nullable => b.append_null(),
            Builder::Utf8(b) => b.append_value(""),
            Builder::F64(v) => v.push(0.0),
            Builder::U32(v) => v.push(0),
            Builder::U64(v) => v.push(0),
            Builder::List(b) => b.append(true),
        }
    }

    /// Appends a list from its stored JSON text (e.g. `[" ","T"]`).
    pub fn push_json_list(&mut self, text: &str) -> anyhow::Result<()> {
        let Builder::List(b) = self else {
            anyhow::bail!("not a list column");
        };
        let items: Vec<String> = serde_json::from_str(text)
            .with_context(|| format!("conditions {text:?} are not a JSON array of strings"))?;
        for item in &items {
            b.values().append_value(item);
        }
        b.append(true);
        Ok(())
    }

    #[inline]
    pub fn len(&self) -> usize {
        match self {
            Builder::Ts(v) => v.len(),
            Builder::Utf8(b) => b.len(),
            Builder::F64(v) => v.len(),
            Builder::U32(v) => v.len(),
            Builder::U64(v) => v.len(),
            Builder::List(b) => b.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn finish(self) -> ArrayRef {
        match self {
            Builder::Ts(v) => ts_array(v),
            Builder::Utf8(mut b) => Arc::new(b.finish()),
            Builder::F64(v) => Arc::new(Float64Array::from(v)),
            Builder::U32(v) => Arc::new(UInt32Array::from(v)),
            Builder::U64(v) => Arc::new(UInt64Array::from(v)),
            Builder::List(mut b) => Arc::new(b.finish()),
        }
    }
}

/// Builders for every column of a row list.
pub struct Builders {
    pub cols: &'static [Column],
    pub parts: Vec<Builder>,
}

impl Builders {
    pub fn new(cols: &'static [Column], rows: usize) -> Self {
        Builders {
            cols,
            parts: cols.iter().map(|c| Builder::new(c.ty, rows)).collect(),
        }
    }

    pub fn finish(self) -> anyhow::Result<RecordBatch> {
        let arrays = self.parts.into_iter().map(Builder::finish).collect();
        RecordBatch::try_new(schema(self.cols), arrays).context("inconsistent row columns")
    }
}

/// A typed view of one column of a batch.
pub enum Cells<'a> {
    Ts(&'a [i64]),
    Utf8(&'a StringArray),
    F64(&'a [f64]),
    U32(&'a [u32]),
    U64(&'a [u64]),
    List(&'a ListArray, &'a StringArray),
}

fn downcast<'a, T: 'static>(array: &'a ArrayRef, what: &str) -> anyhow::Result<&'a T> {
    array
        .as_any()
        .downcast_ref::<T>()
        .with_context(|| format!("column {what} has an unexpected type {}", array.data_type()))
}

impl<'a> Cells<'a> {
    pub fn of(array: &'a ArrayRef, ty: ColumnType, name: &str) -> anyhow::Result<Self> {
        Ok(match ty {
            ColumnType::TimestampNs => {
                Cells::Ts(downcast::<TimestampNanosecondArray>(array, name)?.values())
            }
            ColumnType::Utf8 => Cells::Utf8(downcast::<StringArray>(array, name)?),
            ColumnType::Float64 => Cells::F64(downcast::<Float64Array>(array, name)?.values()),
            ColumnType::UInt32 => Cells::U32(downcast::<UInt32Array>(array, name)?.values()),
            ColumnType::UInt64 => Cells::U64(downcast::<UInt64Array>(array, name)?.values()),
            ColumnType::Utf8List => {
                let list = downcast::<ListArray>(array, name)?;
                let items = list
                    .values()
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .with_context(|| format!("the items of {name} are not strings"))?;
                Cells::List(list, items)
            }
        })
    }

    /// Row `i`'s value as a database integer (timestamps and unsigned integers).
    #[inline]
    pub fn int(&self, i: usize) -> i64 {
        match self {
            Cells::Ts(v) => v[i],
            Cells::U32(v) => i64::from(v[i]),
            Cells::U64(v) => v[i] as i64,
            Cells::F64(v) => v[i] as i64,
            _ => 0,
        }
    }

    /// Row `i`'s text (`""` for null).
    #[inline]
    pub fn str(&self, i: usize) -> &'a str {
        match self {
            Cells::Utf8(a) if a.is_valid(i) => a.value(i),
            _ => "",
        }
    }

    /// Row `i`'s list as stored in databases: a compact JSON array, e.g. `["R"]` or
    /// `[" ","T"]` (a single-space code is a real value, so a delimiter-joined string would
    /// be lossy), appended to `out`.
    pub fn list_json(&self, i: usize, out: &mut String) {
        out.push('[');
        if let Cells::List(list, items) = self {
            let offsets = list.value_offsets();
            let (a, b) = (offsets[i] as usize, offsets[i + 1] as usize);
            for (n, j) in (a..b).enumerate() {
                if n > 0 {
                    out.push(',');
                }
                let code = items.value(j);
                if code.bytes().all(|c| c >= 0x20 && c != b'"' && c != b'\\') {
                    out.push('"');
                    out.push_str(code);
                    out.push('"');
                } else {
                    out.push_str(&serde_json::Value::from(code).to_string());
                }
            }
        }
        out.push(']');
    }

    /// Row `i`'s value, for comparisons and keys.
    pub fn value(&self, i: usize) -> Value {
        match self {
            Cells::Ts(v) => Value::Int(v[i]),
            Cells::U32(v) => Value::UInt(u64::from(v[i])),
            Cells::U64(v) => Value::UInt(v[i]),
            Cells::F64(v) => Value::Float(v[i].to_bits()),
            Cells::Utf8(a) if a.is_null(i) => Value::Null,
            Cells::Utf8(a) => Value::Str(a.value(i).to_string()),
            Cells::List(list, items) => {
                let offsets = list.value_offsets();
                let (a, b) = (offsets[i] as usize, offsets[i + 1] as usize);
                Value::List((a..b).map(|j| items.value(j).to_string()).collect())
            }
        }
    }
}

/// One cell's value (floats by their bits: equal means identical).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Value {
    Null,
    Int(i64),
    UInt(u64),
    Float(u64),
    Str(String),
    List(Vec<String>),
}

/// The typed view of the column `name` of a batch of `cols` rows.
pub fn cells<'a>(batch: &'a RecordBatch, cols: &[Column], name: &str) -> anyhow::Result<Cells<'a>> {
    let i = index_of(cols, name).with_context(|| format!("rows have no column {name}"))?;
    let array = batch
        .columns()
        .get(i)
        .with_context(|| format!("the batch has no column {name}"))?;
    Cells::of(array, cols[i].ty, name)
}

/// Typed views of every column of a batch of `cols` rows.
pub fn all_cells<'a>(batch: &'a RecordBatch, cols: &[Column]) -> anyhow::Result<Vec<Cells<'a>>> {
    cols.iter()
        .zip(batch.columns())
        .map(|(c, a)| Cells::of(a, c.ty, c.name))
        .collect()
}

/// The values of a timestamp column.
#[inline]
pub fn times<'a>(batch: &'a RecordBatch, name: &str) -> Option<&'a [i64]> {
    batch
        .column_by_name(name)?
        .as_any()
        .downcast_ref::<TimestampNanosecondArray>()
        .map(|a| a.values().as_ref())
}

/// The symbol column of a pipeline batch.
pub fn symbols(batch: &RecordBatch) -> anyhow::Result<&StringArray> {
    batch
        .column_by_name(Role::Symbol.name())
        .and_then(|a| a.as_any().downcast_ref::<StringArray>())
        .context("rows have no symbol column")
}

/// Row `i`'s stream position `(t, seq)`, when the rows carry one (raw rows do; aggregates
/// do not).
#[inline]
pub fn position(batch: &RecordBatch, i: usize) -> Option<(i64, u32)> {
    let t = times(batch, Role::Time.name())?;
    let seq = batch
        .column_by_name(Role::Seq.name())?
        .as_any()
        .downcast_ref::<UInt32Array>()?;
    Some((*t.get(i)?, seq.values().get(i).copied()?))
}

/// Row `i`'s event time: `last_t` for aggregates, else `t`.
#[inline]
pub(crate) fn event_time(batch: &RecordBatch, i: usize) -> Option<i64> {
    times(batch, Role::LastTime.name())
        .or_else(|| times(batch, Role::Time.name()))
        .and_then(|t| t.get(i).copied())
}

/// The rows of `batch` where `keep` is true.
pub fn filter(batch: &RecordBatch, keep: Vec<bool>) -> anyhow::Result<RecordBatch> {
    if keep.iter().all(|k| *k) {
        return Ok(batch.clone());
    }
    arrow_select::filter::filter_record_batch(batch, &BooleanArray::from(keep))
        .context("cannot filter rows")
}

/// `batches` (all of `schema`) as one batch.
pub fn concat(schema: &SchemaRef, batches: &[RecordBatch]) -> anyhow::Result<RecordBatch> {
    match batches {
        [one] => Ok(one.clone()),
        _ => arrow_select::concat::concat_batches(schema, batches).context("cannot join rows"),
    }
}

/// `batch`'s rows ordered by `t`, then by the text column `tie` (rows whose order the API
/// does not give, such as corporate actions grouped by type).
pub fn sort_by_time(batch: &RecordBatch, tie: &str) -> anyhow::Result<RecordBatch> {
    let t = times(batch, Role::Time.name()).context("rows have no time column")?;
    let ties = batch
        .column_by_name(tie)
        .and_then(|a| a.as_any().downcast_ref::<StringArray>())
        .with_context(|| format!("rows have no {tie} column"))?;
    let mut order: Vec<u32> = (0..batch.num_rows() as u32).collect();
    order.sort_by(|&a, &b| {
        (t[a as usize], ties.value(a as usize)).cmp(&(t[b as usize], ties.value(b as usize)))
    });
    arrow_select::take::take_record_batch(batch, &arrow_array::UInt32Array::from(order))
        .context("cannot order rows")
}

/// The rows picked by `(batch, row)` pairs from `batches`, in that order.
pub fn pick(
    schema: &SchemaRef,
    batches: &[&RecordBatch],
    picks: &[(usize, usize)],
) -> anyhow::Result<RecordBatch> {
    let columns = (0..schema.fields().len())
        .map(|c| {
            let arrays: Vec<&dyn Array> = batches.iter().map(|b| b.column(c).as_ref()).collect();
            arrow_select::interleave::interleave(&arrays, picks)
        })
        .collect::<Result<Vec<_>, _>>()
        .context("cannot pick rows")?;
    RecordBatch::try_new(schema.clone(), columns).context("cannot pick rows")
}

/// A pipeline batch as its Parquet file keeps it: the columns kept in files, each time as
/// microseconds (rounded down) and, beside it, its exact nanoseconds.
pub fn to_file(batch: &RecordBatch, cols: &'static [Column]) -> anyhow::Result<RecordBatch> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::TimestampNanosecondType;
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(cols.len() + 1);
    for (c, a) in cols.iter().zip(batch.columns()).filter(|(c, _)| c.in_file) {
        if c.ty != ColumnType::TimestampNs {
            arrays.push(a.clone());
            continue;
        }
        let ns = a
            .as_primitive_opt::<TimestampNanosecondType>()
            .with_context(|| format!("column {} is not a timestamp", c.name))?;
        let micros = ns
            .unary::<_, arrow_array::types::TimestampMicrosecondType>(|v| v.div_euclid(1_000))
            .with_timezone("UTC");
        let exact = ns.unary::<_, arrow_array::types::Int64Type>(|v| v);
        arrays.push(Arc::new(micros));
        arrays.push(Arc::new(exact));
    }
    RecordBatch::try_new(file_schema(cols), arrays).context("cannot shape rows for a file")
}

/// A batch read from a Parquet file of `symbol`, as a pipeline batch of `cols` rows: the
/// symbol added, columns not kept in files (trades' and bars' `seq`) zero.
pub fn from_file(
    file: &RecordBatch,
    cols: &'static [Column],
    symbol: &str,
) -> anyhow::Result<RecordBatch> {
    let n = file.num_rows();
    let arrays = cols
        .iter()
        .map(|c| -> anyhow::Result<ArrayRef> {
            if c.in_file {
                if c.ty == ColumnType::TimestampNs {
                    if let Some(exact) = file.column_by_name(&exact_name(c.name)) {
                        return from_exact(exact, c);
                    }
                }
                // Files written before `t_ns`, or rewritten by another tool: `t` alone.
                let a = file
                    .column_by_name(c.name)
                    .with_context(|| format!("the file has no column {}", c.name))?;
                conform(a, c)
            } else if c.is(Role::Symbol) {
                Ok(Arc::new(StringArray::from_iter_values(
                    std::iter::repeat_n(symbol, n),
                )))
            } else {
                let mut b = Builder::new(c.ty, n);
                for _ in 0..n {
                    b.push_default(c.nullable);
                }
                Ok(b.finish())
            }
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    RecordBatch::try_new(schema(cols), arrays).context("unexpected columns in the file")
}

/// A time column from its exact nanoseconds (`t_ns`): an int64 (or, from a tool that kept
/// the type of the other, a nanosecond timestamp).
pub fn from_exact(a: &ArrayRef, c: &Column) -> anyhow::Result<ArrayRef> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Int64Type, TimestampNanosecondType};
    let values: TimestampNanosecondArray = match a.data_type() {
        DataType::Int64 => a.as_primitive::<Int64Type>().unary(|v| v),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            a.as_primitive::<TimestampNanosecondType>().unary(|v| v)
        }
        other => anyhow::bail!("column {} is {other}, not Int64", exact_name(c.name)),
    };
    Ok(Arc::new(values.with_timezone("UTC")))
}

/// Column `c` as read from a file, in the type the store writes it. Files another tool
/// rewrote may carry the same values in a near type: timestamps in other units or time
/// zones (Spark and DuckDB write microseconds), signed integers for unsigned ones (Spark
/// has no unsigned types), large or view strings (Polars). Those are converted exactly
/// (a value that does not fit is an error); any other type is an error naming both.
pub fn conform(a: &ArrayRef, c: &Column) -> anyhow::Result<ArrayRef> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{
        Int32Type, Int64Type, TimestampMicrosecondType, TimestampMillisecondType,
        TimestampSecondType,
    };
    let want = data_type(c.ty);
    if a.data_type() == &want {
        return Ok(a.clone());
    }
    let mismatch = || anyhow::anyhow!("column {} is {}, not {want}", c.name, a.data_type());
    let scale = |v: Option<i64>, by: i64| -> anyhow::Result<Option<i64>> {
        v.map(|v| {
            v.checked_mul(by)
                .ok_or_else(|| anyhow::anyhow!("column {}: a time past 2262", c.name))
        })
        .transpose()
    };
    let out: ArrayRef = match (c.ty, a.data_type()) {
        (ColumnType::TimestampNs, DataType::Timestamp(unit, _)) => {
            let values: Vec<Option<i64>> = match unit {
                TimeUnit::Nanosecond => a
                    .as_primitive::<arrow_array::types::TimestampNanosecondType>()
                    .iter()
                    .collect(),
                TimeUnit::Microsecond => a
                    .as_primitive::<TimestampMicrosecondType>()
                    .iter()
                    .map(|v| scale(v, 1_000))
                    .collect::<anyhow::Result<_>>()?,
                TimeUnit::Millisecond => a
                    .as_primitive::<TimestampMillisecondType>()
                    .iter()
                    .map(|v| scale(v, 1_000_000))
                    .collect::<anyhow::Result<_>>()?,
                TimeUnit::Second => a
                    .as_primitive::<TimestampSecondType>()
                    .iter()
                    .map(|v| scale(v, 1_000_000_000))
                    .collect::<anyhow::Result<_>>()?,
            };
            Arc::new(TimestampNanosecondArray::from(values).with_timezone("UTC"))
        }
        (ColumnType::UInt32 | ColumnType::UInt64, DataType::Int32 | DataType::Int64) => {
            let values: Vec<Option<i64>> = match a.data_type() {
                DataType::Int32 => a
                    .as_primitive::<Int32Type>()
                    .iter()
                    .map(|v| v.map(i64::from))
                    .collect(),
                _ => a.as_primitive::<Int64Type>().iter().collect(),
            };
            let fits = |v: i64| match c.ty {
                ColumnType::UInt32 => u32::try_from(v).is_ok(),
                _ => v >= 0,
            };
            if values.iter().flatten().any(|&v| !fits(v)) {
                anyhow::bail!("column {}: a value out of the range of {want}", c.name);
            }
            match c.ty {
                ColumnType::UInt32 => Arc::new(UInt32Array::from_iter(
                    values.into_iter().map(|v| v.map(|v| v as u32)),
                )),
                _ => Arc::new(UInt64Array::from_iter(
                    values.into_iter().map(|v| v.map(|v| v as u64)),
                )),
            }
        }
        (ColumnType::Utf8, DataType::LargeUtf8) => {
            Arc::new(StringArray::from_iter(a.as_string::<i64>().iter()))
        }
        (ColumnType::Utf8, DataType::Utf8View) => {
            Arc::new(StringArray::from_iter(a.as_string_view().iter()))
        }
        _ => return Err(mismatch()),
    };
    Ok(out)
}

/// Whether row `i` of `a` and row `j` of `b` (both of `cols` rows) hold the same values.
pub fn same_row(a: &[Cells], i: usize, b: &[Cells], j: usize) -> bool {
    a.iter().zip(b).all(|(x, y)| x.value(i) == y.value(j))
}

/// The values of the columns `names` in row `i`: a row's identity or key.
pub fn key_of(cells: &[Cells], cols: &[Column], names: &[&str], i: usize) -> Vec<Value> {
    names
        .iter()
        .filter_map(|n| index_of(cols, n))
        .map(|c| cells[c].value(i))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::Kind;

    #[test]
    fn a_pipeline_batch_round_trips_through_its_file_form() {
        let cols = Kind::Trades.columns();
        let mut b = Builders::new(cols, 2);
        for (i, c) in cols.iter().enumerate() {
            for _ in 0..2 {
                b.parts[i].push_default(c.nullable);
            }
        }
        let batch = b.finish().unwrap();
        let file = to_file(&batch, cols).unwrap();
        assert_eq!(file.schema(), file_schema(cols));
        assert!(file.column_by_name("seq").is_none());
        let back = from_file(&file, cols, "").unwrap();
        assert_eq!(back, batch);
    }

    #[test]
    fn conditions_json_is_exact() {
        let cols = Kind::Quotes.columns();
        let mut b = Builders::new(cols, 3);
        let at = index_of(cols, "conditions").unwrap();
        for text in [r#"[" ","T"]"#, "[]", r#"["\"","\\"]"#] {
            b.parts[at].push_json_list(text).unwrap();
        }
        let list = b.parts.swap_remove(at).finish();
        let cells = Cells::of(&list, ColumnType::Utf8List, "conditions").unwrap();
        let mut out = String::new();
        cells.list_json(0, &mut out);
        assert_eq!(out, r#"[" ","T"]"#);
        out.clear();
        cells.list_json(1, &mut out);
        assert_eq!(out, "[]");
        out.clear();
        cells.list_json(2, &mut out);
        assert_eq!(out, r#"["\"","\\"]"#);
    }

    /// What outside readers (pyarrow, DuckDB, Polars) see: names, types and nullability of
    /// every column, spelled out so a change to the dataset's column list cannot change the
    /// files unnoticed.
    #[test]
    fn files_keep_the_schemas_readers_know() {
        let show = |schema: SchemaRef| -> Vec<String> {
            schema
                .fields()
                .iter()
                .map(|f| format!("{} {} {}", f.name(), f.data_type(), f.is_nullable()))
                .collect()
        };
        // `t` in microseconds, which every engine reads, and exact in `t_ns`.
        let t = "t Timestamp(µs, \"UTC\") false";
        let t_ns = "t_ns Int64 false";
        let list = "List(Utf8)";
        assert_eq!(
            show(file_schema(Kind::Quotes.columns())),
            [
                t.to_string(),
                t_ns.into(),
                "seq UInt32 false".into(),
                "bid_exchange Utf8 false".into(),
                "bid_price Float64 false".into(),
                "bid_size UInt32 false".into(),
                "ask_exchange Utf8 false".into(),
                "ask_price Float64 false".into(),
                "ask_size UInt32 false".into(),
                format!("conditions {list} false"),
                "tape Utf8 false".into(),
            ]
        );
        assert_eq!(
            show(file_schema(Kind::Trades.columns())),
            [
                t.to_string(),
                t_ns.into(),
                "exchange Utf8 false".into(),
                "id UInt64 false".into(),
                "price Float64 false".into(),
                "size UInt64 false".into(),
                format!("conditions {list} false"),
                "tape Utf8 false".into(),
                "update Utf8 true".into(),
            ]
        );
        assert_eq!(
            show(file_schema(Kind::Bars.columns())),
            [
                t.to_string(),
                t_ns.into(),
                "open Float64 false".into(),
                "high Float64 false".into(),
                "low Float64 false".into(),
                "close Float64 false".into(),
                "volume UInt64 false".into(),
                "trade_count UInt64 false".into(),
                "vwap Float64 false".into(),
            ]
        );
    }

    /// A file keeps each time twice, in microseconds (rounded down, before 1970 too) and
    /// exact, and reads back exact; a file written before `t_ns` (nanoseconds in `t`) reads
    /// the same rows.
    #[test]
    fn files_keep_times_in_microseconds_and_exact_and_older_files_read_alike() {
        use arrow_array::cast::AsArray;
        use arrow_array::types::{Int64Type, TimestampMicrosecondType, TimestampNanosecondType};
        let cols = Kind::Bars.columns();
        let times = vec![1_704_186_000_123_456_789i64, -1_999, 7];
        let old_fields: Vec<Field> = cols
            .iter()
            .filter(|c| c.in_file)
            .map(|c| Field::new(c.name, data_type(c.ty), c.nullable))
            .collect();
        let old_arrays: Vec<ArrayRef> = cols
            .iter()
            .filter(|c| c.in_file)
            .map(|c| -> ArrayRef {
                match c.ty {
                    ColumnType::TimestampNs => {
                        Arc::new(TimestampNanosecondArray::from(times.clone()).with_timezone("UTC"))
                    }
                    ColumnType::Float64 => Arc::new(Float64Array::from(vec![1.5, 2.5, 3.5])),
                    _ => Arc::new(UInt64Array::from(vec![1u64, 2, 3])),
                }
            })
            .collect();
        let old = RecordBatch::try_new(Arc::new(Schema::new(old_fields)), old_arrays).unwrap();
        let rows = from_file(&old, cols, "AAPL").unwrap();
        let file = to_file(&rows, cols).unwrap();
        let micros: Vec<i64> = file
            .column_by_name("t")
            .unwrap()
            .as_primitive::<TimestampMicrosecondType>()
            .values()
            .to_vec();
        assert_eq!(micros, [1_704_186_000_123_456, -2, 0]);
        let exact: Vec<i64> = file
            .column_by_name("t_ns")
            .unwrap()
            .as_primitive::<Int64Type>()
            .values()
            .to_vec();
        assert_eq!(exact, times);
        let back = from_file(&file, cols, "AAPL").unwrap();
        assert_eq!(back, rows);
        let t: Vec<i64> = back
            .column_by_name("t")
            .unwrap()
            .as_primitive::<TimestampNanosecondType>()
            .values()
            .to_vec();
        assert_eq!(t, times);
    }
}
