//! Quote thinning: stages between the source and the batcher. Each stage is one small
//! piece of state; they compose in a fixed order — `--nbbo-changes`, then `--sample`, then
//! `--aggregate` — and together describe themselves as a spec string (e.g.
//! `nbbo-changes,sample=10,aggregate=1s`) that keys the rows they produce, so thinned rows
//! never mix with raw quotes or with rows thinned another way.
//!
//! Stages see quotes in stream order across page boundaries; they know nothing about
//! pages, batches or storage.

use crate::batch::{self, Cells};
use crate::dataset::{Kind, Role, AGG_ROW};
use anyhow::Context;
use arrow_array::{ArrayRef, RecordBatch, UInt64Array};
use std::sync::Arc;

/// A stage from pages of rows to rows, holding whatever state spans pages. Pages and output
/// are columnar batches.
pub trait Transform: Send {
    /// Consumes one page, appending what it keeps to `out`.
    fn apply(&mut self, page: RecordBatch, out: &mut Vec<RecordBatch>) -> anyhow::Result<()>;
    /// The stream ended: append anything still held (e.g. the last interval).
    fn finish(&mut self, out: &mut Vec<RecordBatch>) -> anyhow::Result<()>;
}

/// No thinning: pages pass through unchanged.
#[derive(Debug, Default, Clone, Copy)]
pub struct Passthrough;

impl Transform for Passthrough {
    fn apply(&mut self, page: RecordBatch, out: &mut Vec<RecordBatch>) -> anyhow::Result<()> {
        out.push(page);
        Ok(())
    }
    fn finish(&mut self, _out: &mut Vec<RecordBatch>) -> anyhow::Result<()> {
        Ok(())
    }
}

/// Keeps a quote only when bid or ask price or size differs from the last kept quote.
#[derive(Debug, Default, Clone)]
pub struct NbboChanges {
    last: Option<(u64, u32, u64, u32)>,
}

impl NbboChanges {
    pub fn keep(&mut self, bid_price: f64, bid_size: u32, ask_price: f64, ask_size: u32) -> bool {
        let key = (bid_price.to_bits(), bid_size, ask_price.to_bits(), ask_size);
        if self.last == Some(key) {
            return false;
        }
        self.last = Some(key);
        true
    }
}

/// Keeps every Nth quote: the 1st, the N+1th, and so on.
#[derive(Debug, Clone)]
pub struct Sample {
    every: u64,
    seen: u64,
}

impl Sample {
    pub fn new(every: u64) -> Self {
        Sample {
            every: every.max(1),
            seen: 0,
        }
    }

    pub fn keep(&mut self) -> bool {
        let keep = self.seen.is_multiple_of(self.every);
        self.seen += 1;
        keep
    }
}

/// The quote filters (each optional), applied in order: NBBO changes, then sampling.
#[derive(Debug, Clone, Default)]
pub struct QuoteFilters {
    pub nbbo: Option<NbboChanges>,
    pub sample: Option<Sample>,
}

fn f64s<'a>(page: &'a RecordBatch, name: &str) -> anyhow::Result<&'a [f64]> {
    match batch::cells(page, Kind::Quotes.columns(), name)? {
        Cells::F64(v) => Ok(v),
        _ => anyhow::bail!("{name} is not a price"),
    }
}

fn u32s<'a>(page: &'a RecordBatch, name: &str) -> anyhow::Result<&'a [u32]> {
    match batch::cells(page, Kind::Quotes.columns(), name)? {
        Cells::U32(v) => Ok(v),
        _ => anyhow::bail!("{name} is not a size"),
    }
}

impl QuoteFilters {
    pub fn is_empty(&self) -> bool {
        self.nbbo.is_none() && self.sample.is_none()
    }

    /// The quotes of `page` the filters keep.
    fn filter(&mut self, page: RecordBatch) -> anyhow::Result<RecordBatch> {
        if self.is_empty() || page.num_rows() == 0 {
            return Ok(page);
        }
        let (bp, bs) = (f64s(&page, "bid_price")?, u32s(&page, "bid_size")?);
        let (ap, asz) = (f64s(&page, "ask_price")?, u32s(&page, "ask_size")?);
        let keep = (0..page.num_rows())
            .map(|i| {
                if let Some(n) = &mut self.nbbo {
                    if !n.keep(bp[i], bs[i], ap[i], asz[i]) {
                        return false;
                    }
                }
                self.sample.as_mut().is_none_or(Sample::keep)
            })
            .collect();
        batch::filter(&page, keep)
    }
}

impl Transform for QuoteFilters {
    fn apply(&mut self, page: RecordBatch, out: &mut Vec<RecordBatch>) -> anyhow::Result<()> {
        out.push(self.filter(page)?);
        Ok(())
    }
    fn finish(&mut self, _out: &mut Vec<RecordBatch>) -> anyhow::Result<()> {
        Ok(())
    }
}

/// Parses an interval width: a positive whole number and a unit (ns, us, ms, s, m, h), at
/// most one day, e.g. `100ms`, `1s`, `5m`.
pub fn parse_width(text: &str) -> Result<i64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: i64 = num.parse().map_err(|_| {
        format!("aggregate width {text:?} must be a number and a unit, e.g. 100ms, 1s, 1m")
    })?;
    let unit_ns = match unit {
        "ns" => 1,
        "us" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => {
            return Err(format!(
                "aggregate width {text:?} has unknown unit {unit:?} (use ns, us, ms, s, m or h)"
            ))
        }
    };
    let width = n.saturating_mul(unit_ns);
    if n == 0 || width > 86_400_000_000_000 {
        return Err(format!(
            "aggregate width {text:?} must be more than zero and at most one day"
        ));
    }
    Ok(width)
}

/// The canonical text of a width: the largest unit that divides it (`1000ms` -> `1s`).
pub(crate) fn format_width(ns: i64) -> String {
    for (unit, size) in [
        ("h", 3_600_000_000_000),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("us", 1_000),
    ] {
        if ns % size == 0 {
            return format!("{}{unit}", ns / size);
        }
    }
    format!("{ns}ns")
}

/// The interval being aggregated: its last quote (a one-row slice of its page), its
/// start, and how many quotes it stands for.
#[derive(Debug, Clone)]
struct Interval {
    last: RecordBatch,
    symbol: String,
    bucket_t: i64,
    count: u64,
}

/// Filters, then one row per interval per symbol ([`AGG_ROW`]).
#[derive(Debug, Clone)]
pub struct Aggregate {
    pub filters: QuoteFilters,
    width_ns: i64,
    current: Option<Interval>,
}

impl Aggregate {
    pub fn new(filters: QuoteFilters, width_ns: i64) -> Self {
        Aggregate {
            filters,
            width_ns,
            current: None,
        }
    }

    /// The rows of closed intervals: each one's last quote (picked from `sources`), its
    /// start and its count.
    fn rows(
        sources: &[&RecordBatch],
        picks: &[(usize, usize)],
        buckets: Vec<i64>,
        counts: Vec<u64>,
    ) -> anyhow::Result<RecordBatch> {
        let quotes = batch::pick(&batch::schema(Kind::Quotes.columns()), sources, picks)?;
        let arrays = AGG_ROW
            .iter()
            .map(|c| -> anyhow::Result<ArrayRef> {
                Ok(match c.name {
                    n if n == Role::BucketTime.name() => batch::ts_array(buckets.clone()),
                    n if n == Role::LastTime.name() => quotes
                        .column_by_name(Role::Time.name())
                        .context("quotes without t")?
                        .clone(),
                    "quote_count" => Arc::new(UInt64Array::from(counts.clone())),
                    name => quotes
                        .column_by_name(name)
                        .with_context(|| format!("quotes without {name}"))?
                        .clone(),
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        RecordBatch::try_new(batch::schema(AGG_ROW), arrays).context("cannot build intervals")
    }
}

impl Transform for Aggregate {
    fn apply(&mut self, page: RecordBatch, out: &mut Vec<RecordBatch>) -> anyhow::Result<()> {
        let page = self.filters.filter(page)?;
        let n = page.num_rows();
        if n == 0 {
            return Ok(());
        }
        let t = batch::times(&page, Role::Time.name()).context("quotes without t")?;
        let symbols = batch::symbols(&page)?;
        // Source 0: the interval held from the previous page; source 1: this page.
        let held = self.current.as_ref().map(|c| c.last.clone());
        let (mut picks, mut buckets, mut counts) = (Vec::new(), Vec::new(), Vec::new());
        let mut cur = self
            .current
            .take()
            .map(|c| ((0usize, 0usize), c.symbol, c.bucket_t, c.count));
        for (i, &t) in t.iter().enumerate() {
            let bucket = t - t.rem_euclid(self.width_ns);
            let symbol = symbols.value(i);
            match &mut cur {
                Some((at, s, b, count)) if *b == bucket && s == symbol => {
                    *at = (1, i);
                    *count += 1;
                }
                slot => {
                    if let Some((at, _, b, count)) = slot.take() {
                        picks.push(at);
                        buckets.push(b);
                        counts.push(count);
                    }
                    *slot = Some(((1, i), symbol.to_string(), bucket, 1));
                }
            }
        }
        if !picks.is_empty() {
            let empty = RecordBatch::new_empty(page.schema());
            let sources = [held.as_ref().unwrap_or(&empty), &page];
            out.push(Self::rows(&sources, &picks, buckets, counts)?);
        }
        if let Some(((src, i), symbol, bucket_t, count)) = cur {
            let last = if src == 1 {
                page.slice(i, 1)
            } else {
                held.context("no interval held")?
            };
            self.current = Some(Interval {
                last,
                symbol,
                bucket_t,
                count,
            });
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<RecordBatch>) -> anyhow::Result<()> {
        if let Some(c) = self.current.take() {
            out.push(Self::rows(
                &[&c.last],
                &[(0, 0)],
                vec![c.bucket_t],
                vec![c.count],
            )?);
        }
        Ok(())
    }
}

/// What the user asked for, validated: the stages and their spec string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Thinning {
    pub nbbo_changes: bool,
    pub sample: Option<u64>,
    pub aggregate_ns: Option<i64>,
}

impl Thinning {
    pub fn is_raw(&self) -> bool {
        !self.nbbo_changes && self.sample.is_none() && self.aggregate_ns.is_none()
    }

    /// e.g. `nbbo-changes,sample=10,aggregate=1s`; empty for raw quotes.
    pub fn spec(&self) -> String {
        let mut parts = Vec::new();
        if self.nbbo_changes {
            parts.push("nbbo-changes".to_string());
        }
        if let Some(n) = self.sample {
            parts.push(format!("sample={n}"));
        }
        if let Some(w) = self.aggregate_ns {
            parts.push(format!("aggregate={}", format_width(w)));
        }
        parts.join(",")
    }

    pub fn filters(&self) -> QuoteFilters {
        QuoteFilters {
            nbbo: self.nbbo_changes.then(NbboChanges::default),
            sample: self.sample.map(Sample::new),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Quotes at `ms` milliseconds with bid/ask prices in cents and sizes.
    fn page(quotes: &[(i64, i64, u32, i64, u32)]) -> RecordBatch {
        let cols = Kind::Quotes.columns();
        let mut b = crate::batch::Builders::new(cols, quotes.len());
        for &(ms, bid, bs, ask, asz) in quotes {
            for (c, part) in cols.iter().zip(&mut b.parts) {
                use crate::batch::Builder;
                match (c.name, part) {
                    ("symbol", Builder::Utf8(s)) => s.append_value("AAPL"),
                    ("t", Builder::Ts(v)) => v.push(ms * 1_000_000),
                    ("bid_price", Builder::F64(v)) => v.push(bid as f64 / 100.0),
                    ("ask_price", Builder::F64(v)) => v.push(ask as f64 / 100.0),
                    ("bid_size", Builder::U32(v)) => v.push(bs),
                    ("ask_size", Builder::U32(v)) => v.push(asz),
                    ("conditions", part) => part.push_json_list(r#"["R"]"#).unwrap(),
                    (_, part) => part.push_default(false),
                }
            }
        }
        b.finish().unwrap()
    }

    fn fixture() -> Vec<RecordBatch> {
        vec![
            page(&[
                (0, 100, 1, 101, 1),
                (200, 100, 1, 101, 1),
                (400, 100, 2, 101, 1),
            ]),
            page(&[(900, 100, 2, 101, 1), (1_000, 100, 2, 102, 1)]),
            page(&[]),
            page(&[
                (1_500, 100, 2, 102, 1),
                (2_999, 99, 2, 102, 1),
                (5_000, 99, 2, 102, 1),
            ]),
        ]
    }

    fn run<T: Transform>(mut t: T, pages: Vec<RecordBatch>) -> RecordBatch {
        let mut out = Vec::new();
        for p in pages {
            t.apply(p, &mut out).unwrap();
        }
        t.finish(&mut out).unwrap();
        let schema = out.first().map(|b| b.schema()).unwrap();
        crate::batch::concat(&schema, &out).unwrap()
    }

    fn ms(rows: &RecordBatch, name: &str) -> Vec<i64> {
        crate::batch::times(rows, name)
            .unwrap()
            .iter()
            .map(|t| t / 1_000_000)
            .collect()
    }

    fn times(rows: &RecordBatch) -> Vec<i64> {
        ms(rows, "t")
    }

    #[test]
    fn nbbo_changes_keeps_only_changes_across_pages() {
        let f = Thinning {
            nbbo_changes: true,
            sample: None,
            aggregate_ns: None,
        }
        .filters();
        assert_eq!(times(&run(f, fixture())), vec![0, 400, 1_000, 2_999]);
    }

    #[test]
    fn sample_keeps_every_nth_across_pages() {
        let f = Thinning {
            nbbo_changes: false,
            sample: Some(3),
            aggregate_ns: None,
        }
        .filters();
        assert_eq!(times(&run(f, fixture())), vec![0, 900, 2_999]);
        let f = Thinning {
            nbbo_changes: false,
            sample: Some(1),
            aggregate_ns: None,
        }
        .filters();
        assert_eq!(run(f, fixture()).num_rows(), 8);
    }

    #[test]
    fn filters_compose_nbbo_then_sample() {
        let t = Thinning {
            nbbo_changes: true,
            sample: Some(2),
            aggregate_ns: None,
        };
        assert_eq!(t.spec(), "nbbo-changes,sample=2");
        // Changes at 0, 400, 1000, 2999; every 2nd of those: 0, 1000.
        assert_eq!(times(&run(t.filters(), fixture())), vec![0, 1_000]);
    }

    #[test]
    fn aggregate_one_second_keeps_the_last_quote_and_counts() {
        let t = Thinning {
            nbbo_changes: false,
            sample: None,
            aggregate_ns: Some(parse_width("1s").unwrap()),
        };
        assert_eq!(t.spec(), "aggregate=1s");
        let rows = run(Aggregate::new(t.filters(), 1_000_000_000), fixture());
        let cells = crate::batch::all_cells(&rows, AGG_ROW).unwrap();
        let at = |name: &str| &cells[crate::batch::index_of(AGG_ROW, name).unwrap()];
        let value = |name: &str, i: usize| at(name).value(i);
        let price = |name: &str, i: usize| match value(name, i) {
            Value::Float(bits) => f64::from_bits(bits),
            _ => f64::NAN,
        };
        use crate::batch::Value;
        type Row = (i64, i64, i64, f64, i64, f64);
        let got: Vec<Row> = (0..rows.num_rows())
            .map(|i| {
                let (b, l) = (ms(&rows, "bucket_t")[i], ms(&rows, "last_t")[i]);
                let (n, bs) = (at("quote_count").int(i), at("bid_size").int(i));
                (b, l, n, price("bid_price", i), bs, price("ask_price", i))
            })
            .collect();
        let want: [Row; 4] = [
            (0, 900, 4, 1.0, 2, 1.01),
            (1_000, 1_500, 2, 1.0, 2, 1.02),
            (2_000, 2_999, 1, 0.99, 2, 1.02),
            (5_000, 5_000, 1, 0.99, 2, 1.02),
        ];
        assert_eq!(got, want);
        assert_eq!(value("conditions", 0), Value::List(vec!["R".into()]));
    }

    #[test]
    fn aggregate_after_filters() {
        let t = Thinning {
            nbbo_changes: true,
            sample: None,
            aggregate_ns: Some(2_000_000_000),
        };
        assert_eq!(t.spec(), "nbbo-changes,aggregate=2s");
        let rows = run(Aggregate::new(t.filters(), 2_000_000_000), fixture());
        assert_eq!(ms(&rows, "bucket_t"), vec![0, 2_000]);
        assert_eq!(ms(&rows, "last_t"), vec![1_000, 2_999]);
        let counts = crate::batch::cells(&rows, AGG_ROW, "quote_count").unwrap();
        assert_eq!((counts.int(0), counts.int(1)), (3, 1));
    }

    #[test]
    fn widths() {
        assert_eq!(parse_width("100ms"), Ok(100_000_000));
        assert_eq!(parse_width("1m"), Ok(60_000_000_000));
        assert_eq!(format_width(parse_width("1000ms").unwrap()), "1s");
        assert_eq!(format_width(parse_width("90s").unwrap()), "90s");
        assert_eq!(format_width(1_500), "1500ns");
        assert!(parse_width("0s").unwrap_err().contains("more than zero"));
        assert!(parse_width("2d")
            .unwrap_err()
            .contains("unknown unit \"d\""));
        assert!(parse_width("fast")
            .unwrap_err()
            .contains("must be a number and a unit"));
        assert!(parse_width("25h").is_err());
    }
}
