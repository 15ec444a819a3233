//! Quote thinning: stages between the source and the batcher. Each stage is one small
//! piece of state; they compose in a fixed order — `--nbbo-changes`, then `--sample`, then
//! `--aggregate` — and together describe themselves as a spec string (e.g.
//! `nbbo-changes,sample=10,aggregate=1s`) that keys the rows they produce, so thinned rows
//! never mix with raw quotes or with rows thinned another way.
//!
//! Stages see quotes in stream order across page boundaries; they know nothing about
//! pages, batches or storage.

use crate::model::{Quote, Record};
use std::sync::Arc;

/// A stage from pages of `In` to rows of `Out`, holding whatever state spans pages.
pub trait Transform: Send {
    type In: Send + 'static;
    type Out: Record;
    /// Consumes one page, appending what it keeps to `out`.
    fn apply(&mut self, page: Vec<Self::In>, out: &mut Vec<Self::Out>);
    /// The stream ended: append anything still held (e.g. the last interval).
    fn finish(&mut self, out: &mut Vec<Self::Out>);
}

/// No thinning: pages pass through unchanged.
pub struct Passthrough<R>(std::marker::PhantomData<fn() -> R>);

impl<R> Default for Passthrough<R> {
    fn default() -> Self {
        Passthrough(std::marker::PhantomData)
    }
}

impl<R: Record> Transform for Passthrough<R> {
    type In = R;
    type Out = R;
    fn apply(&mut self, mut page: Vec<R>, out: &mut Vec<R>) {
        if out.is_empty() {
            *out = page;
        } else {
            out.append(&mut page);
        }
    }
    fn finish(&mut self, _out: &mut Vec<R>) {}
}

/// Keeps a quote only when bid or ask price or size differs from the last kept quote.
#[derive(Debug, Default, Clone)]
pub struct NbboChanges {
    last: Option<(f64, u32, f64, u32)>,
}

impl NbboChanges {
    pub fn keep(&mut self, q: &Quote) -> bool {
        let key = (q.bid_price, q.bid_size, q.ask_price, q.ask_size);
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

impl QuoteFilters {
    pub fn is_empty(&self) -> bool {
        self.nbbo.is_none() && self.sample.is_none()
    }

    fn filter(&mut self, page: &mut Vec<Quote>) {
        if self.is_empty() {
            return;
        }
        page.retain(|q| {
            if let Some(n) = &mut self.nbbo {
                if !n.keep(q) {
                    return false;
                }
            }
            self.sample.as_mut().is_none_or(Sample::keep)
        });
    }
}

impl Transform for QuoteFilters {
    type In = Quote;
    type Out = Quote;
    fn apply(&mut self, mut page: Vec<Quote>, out: &mut Vec<Quote>) {
        self.filter(&mut page);
        if out.is_empty() {
            *out = page;
        } else {
            out.append(&mut page);
        }
    }
    fn finish(&mut self, _out: &mut Vec<Quote>) {}
}

/// One interval of one symbol: the last quote's bid and ask, and how many quotes it stands for.
#[derive(Debug, Clone, PartialEq)]
pub struct AggQuote {
    pub symbol: Arc<str>,
    /// Start of the interval, nanoseconds UTC (a multiple of the width since the epoch).
    pub bucket_t: i64,
    /// Time of the interval's last quote.
    pub last_t: i64,
    pub bid_exchange: String,
    pub bid_price: f64,
    pub bid_size: u32,
    pub ask_exchange: String,
    pub ask_price: f64,
    pub ask_size: u32,
    pub conditions: Vec<String>,
    pub tape: String,
    pub quote_count: u64,
}

impl Record for AggQuote {
    fn time_ns(&self) -> i64 {
        self.last_t
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
pub fn format_width(ns: i64) -> String {
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

/// Filters, then one row per interval per symbol.
#[derive(Debug, Clone)]
pub struct Aggregate {
    pub filters: QuoteFilters,
    width_ns: i64,
    current: Option<AggQuote>,
}

impl Aggregate {
    pub fn new(filters: QuoteFilters, width_ns: i64) -> Self {
        Aggregate {
            filters,
            width_ns,
            current: None,
        }
    }
}

impl Transform for Aggregate {
    type In = Quote;
    type Out = AggQuote;
    fn apply(&mut self, mut page: Vec<Quote>, out: &mut Vec<AggQuote>) {
        self.filters.filter(&mut page);
        for q in page {
            let bucket_t = q.t - q.t.rem_euclid(self.width_ns);
            match &mut self.current {
                Some(cur) if cur.bucket_t == bucket_t && cur.symbol == q.symbol => {
                    cur.last_t = q.t;
                    cur.bid_exchange = q.bid_exchange;
                    cur.bid_price = q.bid_price;
                    cur.bid_size = q.bid_size;
                    cur.ask_exchange = q.ask_exchange;
                    cur.ask_price = q.ask_price;
                    cur.ask_size = q.ask_size;
                    cur.conditions = q.conditions;
                    cur.tape = q.tape;
                    cur.quote_count += 1;
                }
                slot => {
                    if let Some(done) = slot.take() {
                        out.push(done);
                    }
                    *slot = Some(AggQuote {
                        symbol: q.symbol,
                        bucket_t,
                        last_t: q.t,
                        bid_exchange: q.bid_exchange,
                        bid_price: q.bid_price,
                        bid_size: q.bid_size,
                        ask_exchange: q.ask_exchange,
                        ask_price: q.ask_price,
                        ask_size: q.ask_size,
                        conditions: q.conditions,
                        tape: q.tape,
                        quote_count: 1,
                    });
                }
            }
        }
    }

    fn finish(&mut self, out: &mut Vec<AggQuote>) {
        if let Some(done) = self.current.take() {
            out.push(done);
        }
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

    /// A quote at `ms` milliseconds with bid/ask prices in cents and sizes.
    fn q(ms: i64, bid: i64, bs: u32, ask: i64, asz: u32) -> Quote {
        Quote {
            symbol: "AAPL".into(),
            t: ms * 1_000_000,
            seq: 0,
            bid_exchange: "Q".into(),
            bid_price: bid as f64 / 100.0,
            bid_size: bs,
            ask_exchange: "P".into(),
            ask_price: ask as f64 / 100.0,
            ask_size: asz,
            conditions: vec!["R".into()],
            tape: "C".into(),
        }
    }

    fn fixture() -> Vec<Vec<Quote>> {
        vec![
            vec![
                q(0, 100, 1, 101, 1),
                q(200, 100, 1, 101, 1),
                q(400, 100, 2, 101, 1),
            ],
            vec![q(900, 100, 2, 101, 1), q(1_000, 100, 2, 102, 1)],
            vec![],
            vec![
                q(1_500, 100, 2, 102, 1),
                q(2_999, 99, 2, 102, 1),
                q(5_000, 99, 2, 102, 1),
            ],
        ]
    }

    fn run<T: Transform<In = Quote>>(mut t: T, pages: Vec<Vec<Quote>>) -> Vec<T::Out> {
        let mut out = Vec::new();
        for p in pages {
            t.apply(p, &mut out);
        }
        t.finish(&mut out);
        out
    }

    fn times(qs: &[Quote]) -> Vec<i64> {
        qs.iter().map(|q| q.t / 1_000_000).collect()
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
        assert_eq!(run(f, fixture()).len(), 8);
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
        let got: Vec<(i64, i64, u64, f64, u32, f64)> = rows
            .iter()
            .map(|r| {
                (
                    r.bucket_t / 1_000_000,
                    r.last_t / 1_000_000,
                    r.quote_count,
                    r.bid_price,
                    r.bid_size,
                    r.ask_price,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (0, 900, 4, 1.0, 2, 1.01),
                (1_000, 1_500, 2, 1.0, 2, 1.02),
                (2_000, 2_999, 1, 0.99, 2, 1.02),
                (5_000, 5_000, 1, 0.99, 2, 1.02),
            ]
        );
        assert_eq!(rows.iter().map(|r| r.quote_count).sum::<u64>(), 8);
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
        let got: Vec<(i64, i64, u64)> = rows
            .iter()
            .map(|r| (r.bucket_t / 1_000_000, r.last_t / 1_000_000, r.quote_count))
            .collect();
        assert_eq!(got, vec![(0, 1_000, 3), (2_000, 2_999, 1)]);
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
