//! The Parquet store's schemas: for each row type it keeps (quotes, trades, bars), the Arrow
//! schema of its files and the conversions between rows and Arrow batches, both ways.
//! Column 0 of every schema is `t`, the files' sort key and row-group statistics column.

use crate::dataset::{ColumnType, DatasetId, Kind};
use crate::model::{Bar, Quote, Record, Trade};
use anyhow::Context;
use arrow_array::builder::{ListBuilder, StringBuilder};
use arrow_array::{
    Array, ArrayRef, Float64Array, ListArray, RecordBatch, StringArray, TimestampNanosecondArray,
    UInt32Array, UInt64Array,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use std::sync::Arc;

/// A row type the store keeps: its schema and its conversions to and from Arrow.
/// Column 0 of every schema is `t` (the files' sort key and row-group statistics).
pub trait StoreRecord: Record + Clone + PartialEq + Send + Sync + Sized + 'static {
    fn schema() -> SchemaRef;
    fn to_batch(rows: &[Self]) -> anyhow::Result<RecordBatch>;
    /// The rows of `batch`, as rows of `symbol` in `layout`, with `start_ns <= t <= end_ns`.
    fn from_batch(
        batch: &RecordBatch,
        symbol: &Arc<str>,
        layout: &DatasetId,
        start_ns: i64,
        end_ns: i64,
    ) -> anyhow::Result<Vec<Self>>;
    fn symbol(&self) -> &str;
    fn time(&self) -> i64;
    /// The columns a file is sorted by (indices into the schema).
    fn sorted_by() -> &'static [usize] {
        &[0]
    }
    /// Trades: the identity that a later correction of the same day replaces.
    fn identity(&self) -> Option<(&str, u64)> {
        None
    }
    /// Whether this record corrects or cancels an earlier one with its identity.
    fn is_update(&self) -> bool {
        false
    }
}

/// The Arrow schema of a kind's files, from the dataset's column list.
fn schema_of(kind: Kind) -> SchemaRef {
    let fields: Vec<Field> = kind
        .columns()
        .iter()
        .map(|c| {
            let ty = match c.ty {
                ColumnType::TimestampNs => {
                    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
                }
                ColumnType::Utf8 => DataType::Utf8,
                ColumnType::Float64 => DataType::Float64,
                ColumnType::UInt32 => DataType::UInt32,
                ColumnType::UInt64 => DataType::UInt64,
                ColumnType::Utf8List => {
                    DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
                }
            };
            Field::new(c.name, ty, c.nullable)
        })
        .collect();
    Arc::new(Schema::new(fields))
}

fn t_array(times: impl Iterator<Item = i64>) -> ArrayRef {
    Arc::new(TimestampNanosecondArray::from_iter_values(times).with_timezone("UTC"))
}

fn strings<'a>(values: impl Iterator<Item = &'a str>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(values))
}

fn f64s(values: impl Iterator<Item = f64>) -> ArrayRef {
    Arc::new(Float64Array::from_iter_values(values))
}

fn u32s(values: impl Iterator<Item = u32>) -> ArrayRef {
    Arc::new(UInt32Array::from_iter_values(values))
}

fn u64s(values: impl Iterator<Item = u64>) -> ArrayRef {
    Arc::new(UInt64Array::from_iter_values(values))
}

fn string_lists<'a>(lists: impl Iterator<Item = &'a Vec<String>>, len: usize) -> ArrayRef {
    let mut b = ListBuilder::with_capacity(StringBuilder::new(), len)
        .with_field(Arc::new(Field::new("item", DataType::Utf8, true)));
    for list in lists {
        for c in list {
            b.values().append_value(c);
        }
        b.append(true);
    }
    Arc::new(b.finish())
}

pub(crate) fn column<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> anyhow::Result<&'a T> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .with_context(|| format!("column {name} is missing or has an unexpected type"))
}

fn list_at(list: &ListArray, i: usize) -> anyhow::Result<Vec<String>> {
    let items = list.value(i);
    let items = items
        .as_any()
        .downcast_ref::<StringArray>()
        .context("list items are not strings")?;
    Ok((0..items.len())
        .map(|j| items.value(j).to_string())
        .collect())
}

/// The indices of `t` within `start..=end`.
fn in_span(
    t: &TimestampNanosecondArray,
    start_ns: i64,
    end_ns: i64,
) -> impl Iterator<Item = usize> + '_ {
    (0..t.len()).filter(move |&i| (start_ns..=end_ns).contains(&t.value(i)))
}

impl StoreRecord for Quote {
    /// `symbol` and `date` are not columns: they are the hive partition keys in the path,
    /// which readers add as columns.
    fn schema() -> SchemaRef {
        schema_of(Kind::Quotes)
    }

    fn to_batch(rows: &[Quote]) -> anyhow::Result<RecordBatch> {
        let columns: Vec<ArrayRef> = vec![
            t_array(rows.iter().map(|r| r.t)),
            u32s(rows.iter().map(|r| r.seq)),
            strings(rows.iter().map(|r| r.bid_exchange.as_str())),
            f64s(rows.iter().map(|r| r.bid_price)),
            u32s(rows.iter().map(|r| r.bid_size)),
            strings(rows.iter().map(|r| r.ask_exchange.as_str())),
            f64s(rows.iter().map(|r| r.ask_price)),
            u32s(rows.iter().map(|r| r.ask_size)),
            string_lists(rows.iter().map(|r| &r.conditions), rows.len()),
            strings(rows.iter().map(|r| r.tape.as_str())),
        ];
        RecordBatch::try_new(Self::schema(), columns).context("cannot build an Arrow batch")
    }

    fn from_batch(
        batch: &RecordBatch,
        symbol: &Arc<str>,
        _layout: &DatasetId,
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
        in_span(t, start_ns, end_ns)
            .map(|i| {
                Ok(Quote {
                    symbol: symbol.clone(),
                    t: t.value(i),
                    seq: seq.value(i),
                    bid_exchange: bx.value(i).to_string(),
                    bid_price: bp.value(i),
                    bid_size: bs.value(i),
                    ask_exchange: ax.value(i).to_string(),
                    ask_price: ap.value(i),
                    ask_size: asz.value(i),
                    conditions: list_at(cond, i)?,
                    tape: tape.value(i).to_string(),
                })
            })
            .collect()
    }

    fn symbol(&self) -> &str {
        &self.symbol
    }

    fn time(&self) -> i64 {
        self.t
    }

    fn sorted_by() -> &'static [usize] {
        &[0, 1]
    }
}

impl StoreRecord for Trade {
    /// `update` is Alpaca's `u` (`corrected`, `canceled`, `incorrect`), null for a plain
    /// trade.
    fn schema() -> SchemaRef {
        schema_of(Kind::Trades)
    }

    fn to_batch(rows: &[Trade]) -> anyhow::Result<RecordBatch> {
        let columns: Vec<ArrayRef> = vec![
            t_array(rows.iter().map(|r| r.t)),
            strings(rows.iter().map(|r| r.exchange.as_str())),
            u64s(rows.iter().map(|r| r.id)),
            f64s(rows.iter().map(|r| r.price)),
            u64s(rows.iter().map(|r| r.size)),
            string_lists(rows.iter().map(|r| &r.conditions), rows.len()),
            strings(rows.iter().map(|r| r.tape.as_str())),
            Arc::new(StringArray::from_iter(
                rows.iter().map(|r| r.update.as_deref()),
            )),
        ];
        RecordBatch::try_new(Self::schema(), columns).context("cannot build an Arrow batch")
    }

    fn from_batch(
        batch: &RecordBatch,
        symbol: &Arc<str>,
        _layout: &DatasetId,
        start_ns: i64,
        end_ns: i64,
    ) -> anyhow::Result<Vec<Trade>> {
        let t = column::<TimestampNanosecondArray>(batch, "t")?;
        let x = column::<StringArray>(batch, "exchange")?;
        let id = column::<UInt64Array>(batch, "id")?;
        let p = column::<Float64Array>(batch, "price")?;
        let s = column::<UInt64Array>(batch, "size")?;
        let cond = column::<ListArray>(batch, "conditions")?;
        let tape = column::<StringArray>(batch, "tape")?;
        let u = column::<StringArray>(batch, "update")?;
        in_span(t, start_ns, end_ns)
            .map(|i| {
                Ok(Trade {
                    symbol: symbol.clone(),
                    t: t.value(i),
                    seq: 0,
                    exchange: x.value(i).to_string(),
                    price: p.value(i),
                    size: s.value(i),
                    id: id.value(i),
                    conditions: list_at(cond, i)?,
                    tape: tape.value(i).to_string(),
                    update: u.is_valid(i).then(|| u.value(i).to_string()),
                })
            })
            .collect()
    }

    fn symbol(&self) -> &str {
        &self.symbol
    }

    fn time(&self) -> i64 {
        self.t
    }

    fn identity(&self) -> Option<(&str, u64)> {
        Some((&self.exchange, self.id))
    }

    fn is_update(&self) -> bool {
        self.update.is_some()
    }
}

impl StoreRecord for Bar {
    /// The timeframe and adjustment are partition keys in the path.
    fn schema() -> SchemaRef {
        schema_of(Kind::Bars)
    }

    fn to_batch(rows: &[Bar]) -> anyhow::Result<RecordBatch> {
        let columns: Vec<ArrayRef> = vec![
            t_array(rows.iter().map(|r| r.t)),
            f64s(rows.iter().map(|r| r.open)),
            f64s(rows.iter().map(|r| r.high)),
            f64s(rows.iter().map(|r| r.low)),
            f64s(rows.iter().map(|r| r.close)),
            u64s(rows.iter().map(|r| r.volume)),
            u64s(rows.iter().map(|r| r.trade_count)),
            f64s(rows.iter().map(|r| r.vwap)),
        ];
        RecordBatch::try_new(Self::schema(), columns).context("cannot build an Arrow batch")
    }

    fn from_batch(
        batch: &RecordBatch,
        symbol: &Arc<str>,
        layout: &DatasetId,
        start_ns: i64,
        end_ns: i64,
    ) -> anyhow::Result<Vec<Bar>> {
        let Some((timeframe, adjustment)) = layout.bar_spec() else {
            anyhow::bail!("bars read from a {} dataset", layout.key());
        };
        let t = column::<TimestampNanosecondArray>(batch, "t")?;
        let o = column::<Float64Array>(batch, "open")?;
        let h = column::<Float64Array>(batch, "high")?;
        let l = column::<Float64Array>(batch, "low")?;
        let c = column::<Float64Array>(batch, "close")?;
        let v = column::<UInt64Array>(batch, "volume")?;
        let n = column::<UInt64Array>(batch, "trade_count")?;
        let vw = column::<Float64Array>(batch, "vwap")?;
        Ok(in_span(t, start_ns, end_ns)
            .map(|i| Bar {
                symbol: symbol.clone(),
                timeframe: timeframe.as_str().into(),
                adjustment: adjustment.as_str().into(),
                t: t.value(i),
                seq: 0,
                open: o.value(i),
                high: h.value(i),
                low: l.value(i),
                close: c.value(i),
                volume: v.value(i),
                trade_count: n.value(i),
                vwap: vw.value(i),
            })
            .collect())
    }

    fn symbol(&self) -> &str {
        &self.symbol
    }

    fn time(&self) -> i64 {
        self.t
    }
}

/// The schema of every quotes file.
pub fn quotes_schema() -> SchemaRef {
    <Quote as StoreRecord>::schema()
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let t = "t Timestamp(ns, \"UTC\") false";
        let list = "List(Utf8)";
        assert_eq!(
            show(Quote::schema()),
            [
                t.to_string(),
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
            show(Trade::schema()),
            [
                t.to_string(),
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
            show(Bar::schema()),
            [
                t.to_string(),
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
}
