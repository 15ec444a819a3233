//! The page decoder: one pass over a page's bytes with [`super::json`]'s reader, each
//! record's fields appended straight into the column builders of the dataset's row list.
//! Written for this one shape (`{"quotes"|"trades"|"bars": {SYM: [records] | null},
//! "next_page_token": …}`) rather than through a general deserializer: a record's key is
//! found with one comparison (records repeat their key order), strings go from the body
//! into their column, and unknown keys and values of any shape are skipped. Whatever the
//! bytes, it either decodes or returns an error: [`ApiError::Truncated`] when the body ends
//! early, [`ApiError::Decode`] otherwise (tests/it/decode.rs feeds it random and mutated
//! pages).

use super::json::{bad, Read, Reader};
use super::response::ApiError;
use arrow_array::RecordBatch;
use data_core::batch::{Builder, Builders};
use data_core::dataset::Column;
use data_core::dataset::Role;
use data_core::model::Symbol;

/// One decoded page: each asked symbol's records on it (in the order the symbols were
/// asked, only those with records), and the continuation token.
#[derive(Debug)]
pub struct Page {
    pub runs: Vec<(usize, RecordBatch)>,
    pub next_page_token: Option<String>,
}

impl Page {
    pub fn rows(&self) -> usize {
        self.runs.iter().map(|(_, b)| b.num_rows()).sum()
    }
}

/// Decodes one page of a request for `symbols` straight into column builders of `cols`
/// rows. An empty map, a missing symbol key or a null array all mean "no data on this
/// page"; records of symbols not asked for are skipped. `seq` is left 0 for
/// [`super::response::SeqAssigner`].
pub fn decode_page(
    body: &[u8],
    cols: &'static [Column],
    symbols: &[Symbol],
) -> Result<Page, ApiError> {
    let text = match std::str::from_utf8(body) {
        Ok(text) => text,
        Err(e) if e.error_len().is_none() => {
            return Err(ApiError::Truncated(format!(
                "the body ends inside a UTF-8 character at byte {}",
                e.valid_up_to()
            )))
        }
        Err(e) => {
            return Err(ApiError::Decode(format!(
                "the body is not UTF-8 text (byte {})",
                e.valid_up_to()
            )))
        }
    };
    let mut builders: Vec<Option<Builders>> = symbols.iter().map(|_| None).collect();
    let mut r = Reader::new(text);
    let token = r
        .page(cols, symbols, &mut builders)
        .and_then(|t| r.end().map(|()| t))
        .map_err(|e| e.into_api(r.at))?;
    let mut runs = Vec::new();
    for (m, b) in builders.into_iter().enumerate() {
        let Some(mut b) = b else { continue };
        let n = b.parts.iter().map(Builder::len).max().unwrap_or(0);
        if n == 0 {
            continue;
        }
        for (c, part) in b.cols.iter().zip(&mut b.parts) {
            if c.json.is_none() {
                match part {
                    Builder::Utf8(s) if c.is(Role::Symbol) => {
                        for _ in 0..n {
                            s.append_value(symbols[m].as_str());
                        }
                    }
                    other => {
                        for _ in 0..n {
                            other.push_default(c.nullable);
                        }
                    }
                }
            }
        }
        let batch = b.finish().map_err(|e| ApiError::Decode(format!("{e:#}")))?;
        runs.push((m, batch));
    }
    Ok(Page {
        runs,
        next_page_token: token.filter(|t| !t.is_empty()),
    })
}

/// The column each key of the previous record named, by the key's place in the record:
/// records of a page list their fields in one order, so a key is found with one comparison.
struct KeyOrder([u8; 32]);

impl KeyOrder {
    fn new() -> Self {
        KeyOrder([u8::MAX; 32])
    }

    /// The column (and its key) that the previous record's `k`th key named.
    #[inline]
    fn guess(&self, cols: &'static [Column], k: usize) -> Option<(usize, &'static str)> {
        let c = usize::from(*self.0.get(k)?);
        Some((c, cols.get(c)?.json?))
    }

    /// The column named `key`, the `k`th key of its record, if the row list has it.
    fn find(&mut self, cols: &[Column], k: usize, key: &str) -> Option<usize> {
        let guess = self.0.get(k).map(|&c| usize::from(c));
        if let Some(g) = guess.filter(|&g| cols.get(g).is_some_and(|c| same(c.json, key))) {
            return Some(g);
        }
        let found = cols.iter().position(|c| same(c.json, key));
        if let (Some(slot), Some(c)) = (self.0.get_mut(k), found) {
            *slot = u8::try_from(c).unwrap_or(u8::MAX);
        }
        found
    }
}

/// Byte equality inlined for keys of a few bytes (a `memcmp` call costs more than them).
#[inline]
fn same(name: Option<&str>, key: &str) -> bool {
    name.is_some_and(|n| n.len() == key.len() && n.bytes().zip(key.bytes()).all(|(a, b)| a == b))
}

impl Reader<'_> {
    /// The page object; returns the token.
    fn page(
        &mut self,
        cols: &'static [Column],
        symbols: &[Symbol],
        builders: &mut [Option<Builders>],
    ) -> Read<Option<String>> {
        let mut token = None;
        self.open_object()?;
        let mut first = true;
        while let Some(key) = self.key(&mut first)? {
            match &*key {
                "next_page_token" => {
                    token = if self.null()? {
                        None
                    } else {
                        Some(self.string()?.into_owned())
                    }
                }
                "quotes" | "trades" | "bars" => {
                    if !self.null()? {
                        self.symbols(cols, symbols, builders)?;
                    }
                }
                _ => self.skip(0)?,
            }
        }
        Ok(token)
    }

    /// `{SYM: [records] | null, ...}`.
    fn symbols(
        &mut self,
        cols: &'static [Column],
        symbols: &[Symbol],
        builders: &mut [Option<Builders>],
    ) -> Read<()> {
        self.open_object()?;
        let mut first = true;
        while let Some(key) = self.key(&mut first)? {
            match symbols.iter().position(|s| s.as_str() == &*key) {
                Some(m) if !self.null()? => {
                    // One symbol asked: its records fill the page (about 100 bytes each).
                    let rows = match symbols.len() {
                        1 => (self.remaining() / 100).min(10_000),
                        _ => 0,
                    };
                    let b = builders[m].get_or_insert_with(|| Builders::new(cols, rows));
                    self.records(b)?;
                }
                Some(_) => {}
                None => self.skip(0)?,
            }
        }
        Ok(())
    }

    /// `[record, ...]`, appended to the builders.
    fn records(&mut self, b: &mut Builders) -> Read<()> {
        self.eat(b'[', "an array of records")?;
        let mut order = KeyOrder::new();
        let mut first = true;
        while self.more(&mut first)? {
            self.record(b, &mut order)?;
        }
        Ok(())
    }

    /// One record: each field into its column's builder; fields left out get their
    /// default, or fail the page when the column is required. Unknown fields (and repeats
    /// of a field) are skipped.
    fn record(&mut self, b: &mut Builders, order: &mut KeyOrder) -> Read<()> {
        self.open_object()?;
        let mut seen: u64 = 0;
        let (mut first, mut k) = (true, 0);
        loop {
            // The key the previous record had here, matched in place; else read and looked up.
            let guess = order.guess(b.cols, k);
            let column = match guess {
                Some((c, name)) if self.key_is(first, name.as_bytes()) => {
                    first = false;
                    Some(c)
                }
                _ => match self.key(&mut first)? {
                    Some(key) => order.find(b.cols, k, &key),
                    None => break,
                },
            };
            match column {
                Some(c) if c < 64 && seen & (1u64 << c) == 0 => {
                    seen |= 1u64 << c;
                    self.cell(&mut b.parts[c], b.cols[c].nullable)?;
                }
                _ => self.skip(0)?,
            }
            k += 1;
        }
        for (c, col) in b.cols.iter().enumerate() {
            if let (Some(json), false) = (col.json, seen & (1u64 << c) != 0) {
                if col.required {
                    return bad(format!("missing field `{json}`"));
                }
                b.parts[c].push_default(col.nullable);
            }
        }
        Ok(())
    }

    /// One field's value, appended to its column.
    #[inline]
    fn cell(&mut self, builder: &mut Builder, nullable: bool) -> Read<()> {
        match builder {
            Builder::Ts(v) => {
                let s = self.string()?;
                match data_core::time::parse_rfc3339_nanos(&s) {
                    Ok(t) => v.push(t),
                    Err(e) => return bad(e.to_string()),
                }
            }
            Builder::Utf8(s) => {
                if self.null()? {
                    if nullable {
                        s.append_null();
                    } else {
                        s.append_value("");
                    }
                } else {
                    s.append_value(self.string()?);
                }
            }
            Builder::F64(v) => v.push(self.f64()?),
            Builder::U32(v) => {
                let n = self.u64()?;
                match u32::try_from(n) {
                    Ok(n) => v.push(n),
                    Err(_) => return bad(format!("{n} is too large")),
                }
            }
            Builder::U64(v) => v.push(self.u64()?),
            Builder::List(l) => {
                if !self.null()? {
                    self.eat(b'[', "an array of strings")?;
                    let mut first = true;
                    while self.more(&mut first)? {
                        if self.null()? {
                            l.values().append_value("");
                        } else {
                            l.values().append_value(self.string()?);
                        }
                    }
                }
                l.append(true);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use data_core::batch::{self, Value};
    use data_core::dataset::Kind;

    fn aapl() -> [Symbol; 1] {
        [Symbol::parse("AAPL").unwrap()]
    }

    fn quotes(body: &str) -> Result<Page, ApiError> {
        decode_page(body.as_bytes(), Kind::Quotes.columns(), &aapl())
    }

    fn column(page: &Page, name: &str) -> Vec<Value> {
        let rows = &page.runs[0].1;
        let cells = batch::cells(rows, Kind::Quotes.columns(), name).unwrap();
        (0..rows.num_rows()).map(|i| cells.value(i)).collect()
    }

    const PAGE: &str = r#"{"quotes":{"AAPL":[{"t":"2024-03-01T14:30:00.5Z","bx":"Q","bp":411.2,"bs":3,"ax":"P","ap":4.1125e2,"as":1,"c":["R"],"z":"C"},
        {"z":"C","c":[],"as":2,"ap":411.25,"ax":"Z","bs":0,"bp":0.1,"bx":"V","t":"2024-03-01T14:30:00.500000001Z"}]},"next_page_token":"abc"}"#;

    #[test]
    fn every_prefix_of_a_page_is_truncated() {
        assert_eq!(quotes(PAGE).unwrap().rows(), 2);
        for n in 0..PAGE.len() {
            match quotes(&PAGE[..n]) {
                Err(ApiError::Truncated(_)) => {}
                other => panic!("prefix of {n} bytes: {other:?}"),
            }
        }
    }

    #[test]
    fn values_come_out_exactly_in_any_key_order() {
        let page = quotes(PAGE).unwrap();
        assert_eq!(page.next_page_token.as_deref(), Some("abc"));
        assert_eq!(
            column(&page, "ask_price"),
            [
                Value::Float(411.25f64.to_bits()),
                Value::Float(411.25f64.to_bits())
            ]
        );
        assert_eq!(
            column(&page, "bid_price")[1],
            Value::Float(0.1f64.to_bits())
        );
        assert_eq!(
            column(&page, "t"),
            [
                Value::Int(1_709_303_400_500_000_000),
                Value::Int(1_709_303_400_500_000_001)
            ]
        );
        assert_eq!(column(&page, "bid_exchange")[1], Value::Str("V".into()));
        assert_eq!(column(&page, "conditions")[1], Value::List(vec![]));
    }

    #[test]
    fn escapes_whitespace_and_unknown_values() {
        let body = " {\"other\" : [false, 1.5e3, {\"a\": [null, true, \"x\\\"\"]}], \"quotes\" :\n{ \"AAPL\" : [ {\"t\":\"2024-03-01T14:30:00Z\", \"bx\":\"\\u0051\",\"bp\":1,\"bs\":1,\"ax\":\"\\ud83d\\ude00\",\"ap\":-0.5,\"as\":1,\"c\":[\"\\\\\",\"\\/\",\" \",null],\"z\":\"C\",\"new\":{\"x\":[[]]}} ] } }\n";
        let page = quotes(body).unwrap();
        assert_eq!(column(&page, "bid_exchange"), [Value::Str("Q".into())]);
        assert_eq!(column(&page, "ask_exchange"), [Value::Str("😀".into())]);
        assert_eq!(
            column(&page, "ask_price"),
            [Value::Float((-0.5f64).to_bits())]
        );
        assert_eq!(
            column(&page, "conditions"),
            [Value::List(vec![
                "\\".into(),
                "/".into(),
                " ".into(),
                "".into()
            ])]
        );
        assert!(page.next_page_token.is_none());
    }

    #[test]
    fn malformed_bodies_are_decode_errors_naming_the_problem() {
        let rec = |field: &str| {
            format!(
                r#"{{"quotes":{{"AAPL":[{{"t":"2024-03-01T14:30:00Z","bx":"Q","bp":1,"ax":"P","ap":1,"as":1,"c":[],"z":"C",{field}}}]}}}}"#
            )
        };
        for (body, why) in [
            (rec(r#""bs":01"#), "invalid number"),
            (rec(r#""bs":1.5"#), "not a non-negative integer"),
            (rec(r#""bs":-1"#), "not a non-negative integer"),
            (rec(r#""bs":1e2"#), "not a non-negative integer"),
            (rec(r#""bs":4294967296"#), "too large"),
            (rec(r#""bs":+1"#), "invalid number"),
            (rec(r#""bs":1.e5"#), "invalid number"),
            (rec(r#""bs":1,"x":"\x""#), "invalid escape"),
            (rec(r#""bs":1,"x":"\ud800x""#), "lone high surrogate"),
            (rec(r#""bs":1,"x":"\udc00""#), "lone low surrogate"),
            (rec(r#""bs":1,"x":"\u12G4""#), "invalid \\u escape"),
            (rec("\"bs\":1,\"x\":\"a\u{1}\""), "control character"),
            (rec(r#""bs":1,"x":tru"#), "expected value"),
            (
                rec(r#""bs":1"#).replace(r#""bp":1,"#, r#""bp":-1e999,"#),
                "number -1e999 out of range",
            ),
            (rec(r#""bs":1,"#), "expected a key"),
            (rec(r#""bs":1 "x":1"#), "expected `,` or `}`"),
            (rec(r#""bs":null"#), "invalid number"),
            (rec(r#""bs":1,"x":[1 2]"#), "expected `,` or `]`"),
            (
                format!(r#"{{"x":{}1{}}}"#, "[".repeat(500), "]".repeat(500)),
                "nesting too deep",
            ),
            (r#"{"quotes":{}}}"#.to_string(), "trailing characters"),
            (r#"["quotes"]"#.to_string(), "expected an object"),
            (
                r#"{"quotes":{"AAPL":{}}}"#.to_string(),
                "expected an array of records",
            ),
            (
                r#"{"quotes":{"AAPL":[{"t":null}]}}"#.to_string(),
                "expected a string",
            ),
        ] {
            match quotes(&body) {
                Err(ApiError::Decode(e)) => assert!(e.contains(why), "{body}: {e}"),
                other => panic!("{body}: {other:?}"),
            }
        }
        // A repeated field keeps its first value, as for any unknown key.
        let page = quotes(&rec(r#""bs":7,"bs":8"#)).unwrap();
        assert_eq!(column(&page, "bid_size"), [Value::UInt(7)]);
    }

    #[test]
    /// The stand-in's JSON, as it writes it, decodes back to exactly the quotes it generated.
    fn the_standins_json_round_trips_through_the_decoder() {
        use crate::response::SeqAssigner;
        use data_core::time::{format_nanos, parse_rfc3339_nanos};
        use data_standin::generate::{quotes_batch, write_quote, write_time, DayQuotes, GenQuote};
        let day = |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let d = DayQuotes::new("AAPL", "sip", day("2024-07-01"), 2_000).unwrap();
        let quotes: Vec<GenQuote> = (0..d.len()).map(|i| d.quote(i)).collect();
        let mut body = br#"{"quotes":{"AAPL":["#.to_vec();
        for (i, g) in quotes.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            write_quote(&mut body, g);
        }
        body.extend_from_slice(br#"]},"next_page_token":null}"#);
        let symbol = data_core::model::Symbol::parse("AAPL").unwrap();
        let cols = data_core::dataset::Kind::Quotes.columns();
        let mut page = decode_page(&body, cols, &[symbol]).unwrap();
        assert_eq!(page.runs.len(), 1);
        let (_, rows) = page.runs.remove(0);
        let rows = SeqAssigner::default().assign(rows).unwrap();
        assert_eq!(rows, quotes_batch("AAPL", &quotes).unwrap());
        for g in quotes {
            let mut tb = Vec::new();
            write_time(&mut tb, g.t);
            let text = String::from_utf8(tb).unwrap();
            assert_eq!(
                parse_rfc3339_nanos(&text).unwrap(),
                g.t,
                "{text} vs {}",
                format_nanos(g.t)
            );
        }
    }
}
