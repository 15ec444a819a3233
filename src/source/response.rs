//! One response of the Alpaca API: the page of records it carries, decoded (each record
//! stamped with its symbol, equal timestamps numbered in API order), or the error it is,
//! classified for the shared retry (fatal, worth another attempt, or rate limited).

use super::retry::{Retryable, Verdict};
use crate::batch::{Builder, Builders};
use crate::dataset::Column;
use crate::model::Symbol;
use anyhow::Context;
use arrow_array::builder::{ListBuilder, StringBuilder};
use arrow_array::{RecordBatch, UInt32Array};
use reqwest::StatusCode;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

/// A failed request, classified for the retry policy.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400/401/403/404/422 and other 4xx: retrying cannot help.
    #[error("Alpaca API refused the request with HTTP {status}: {message}")]
    Fatal { status: u16, message: String },
    #[error("HTTP {status} from Alpaca: {message}")]
    Server { status: u16, message: String },
    #[error("HTTP 429 rate limited by Alpaca: {message}")]
    RateLimited {
        message: String,
        reset_epoch: Option<u64>,
    },
    /// Connect failures, timeouts, resets, and bodies cut off by the connection closing.
    #[error("{0}")]
    Transport(String),
    /// A 200 whose JSON ended early.
    #[error("response body ended early: {0}")]
    Truncated(String),
    /// A 200 whose body is not the documented shape.
    #[error("unexpected response body from Alpaca: {0}")]
    Decode(String),
    #[error("gave up after {attempts} attempts over {:.1}s: {last}", elapsed.as_secs_f64())]
    Exhausted {
        attempts: u32,
        elapsed: Duration,
        last: Box<ApiError>,
    },
}

impl Retryable for ApiError {
    fn verdict(&self) -> Verdict {
        match self {
            ApiError::RateLimited { reset_epoch, .. } => Verdict::RateLimited {
                reset_epoch: *reset_epoch,
            },
            ApiError::Server { .. } | ApiError::Transport(_) | ApiError::Truncated(_) => {
                Verdict::Retry
            }
            ApiError::Fatal { .. } | ApiError::Decode(_) | ApiError::Exhausted { .. } => {
                Verdict::Fatal
            }
        }
    }

    fn exhausted(self, attempts: u32, elapsed: Duration) -> Self {
        ApiError::Exhausted {
            attempts,
            elapsed,
            last: Box::new(self),
        }
    }
}

impl ApiError {
    pub(crate) fn from_status(status: StatusCode, reset_epoch: Option<u64>, body: &[u8]) -> Self {
        let message = api_message(body);
        match status.as_u16() {
            429 => ApiError::RateLimited {
                message,
                reset_epoch,
            },
            408 | 500 | 502 | 503 | 504 => ApiError::Server {
                status: status.as_u16(),
                message,
            },
            s => ApiError::Fatal { status: s, message },
        }
    }

    pub(crate) fn transport(e: reqwest::Error, base: &str) -> Self {
        let root = root_cause(&e);
        if e.is_timeout() {
            ApiError::Transport(format!("request to {base} timed out"))
        } else if e.is_connect() {
            ApiError::Transport(format!("cannot connect to {base}: {root}"))
        } else if e.is_body() || e.is_decode() {
            ApiError::Transport(format!(
                "connection to {base} broke while reading the response body: {root}"
            ))
        } else {
            ApiError::Transport(format!("request to {base} failed: {root}"))
        }
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// The human message of an error body: `message` from JSON (with or without `code`), else
/// the visible text of an HTML page, else the raw text, trimmed to one short line.
pub fn api_message(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct ErrBody {
        code: Option<serde_json::Value>,
        message: Option<String>,
    }
    let text = String::from_utf8_lossy(body);
    if let Ok(ErrBody {
        code,
        message: Some(m),
    }) = serde_json::from_str::<ErrBody>(&text)
    {
        return match code {
            Some(c) => format!("{m} (code {c})"),
            None => m,
        };
    }
    // An HTML error page (a proxy's, say): its <title> is the message.
    let lower = text.to_ascii_lowercase();
    if let (Some(a), Some(b)) = (lower.find("<title>"), lower.find("</title>")) {
        let title = text.get(a + 7..b).unwrap_or("").trim();
        if !title.is_empty() && b > a {
            return title.split_whitespace().collect::<Vec<_>>().join(" ");
        }
    }
    let mut visible = String::new();
    let mut in_tag = false;
    for ch in text.chars() {
        match ch {
            '<' => {
                in_tag = true;
                visible.push(' ');
            }
            '>' => in_tag = false,
            c if !in_tag => visible.push(if c.is_whitespace() { ' ' } else { c }),
            _ => {}
        }
    }
    let collapsed: Vec<&str> = visible.split_whitespace().collect();
    let mut line = collapsed.join(" ");
    if line.is_empty() {
        return "(empty body)".to_string();
    }
    if line.len() > 200 {
        let cut = (0..=200)
            .rev()
            .find(|&i| line.is_char_boundary(i))
            .unwrap_or(0);
        line.truncate(cut);
        line.push('…');
    }
    line
}

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

/// Decodes one page of a request for `symbols` (`{"quotes"|"trades"|"bars":{SYM:[...]},
/// "next_page_token": ...}`) straight into column builders of `cols` rows, walking the row
/// list's JSON field names: no record is materialised, and strings are copied once, into
/// their column. An empty map, a missing symbol key or a null array all mean "no data on
/// this page"; records of symbols not asked for are skipped. `seq` is left 0 for
/// [`SeqAssigner`].
pub fn decode_page(
    body: &[u8],
    cols: &'static [Column],
    symbols: &[Symbol],
) -> Result<Page, ApiError> {
    let mut builders: Vec<Option<Builders>> = symbols.iter().map(|_| None).collect();
    // One UTF-8 check of the whole body, then a parser that trusts it (serde_json's slice
    // reader would validate every string again, one call per field).
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
    let mut de = serde_json::Deserializer::from_str(text);
    let token = (PageSeed {
        cols,
        symbols,
        builders: &mut builders,
    })
    .deserialize(&mut de)
    .and_then(|t| de.end().map(|()| t))
    .map_err(|e| {
        if e.is_eof() {
            ApiError::Truncated(e.to_string())
        } else {
            ApiError::Decode(e.to_string())
        }
    })?;
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
                    Builder::Utf8(s) if c.name == "symbol" => {
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

/// The page object: the data map under any key but `next_page_token`; returns the token.
struct PageSeed<'a> {
    cols: &'static [Column],
    symbols: &'a [Symbol],
    builders: &'a mut [Option<Builders>],
}

impl<'de> DeserializeSeed<'de> for PageSeed<'_> {
    type Value = Option<String>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for PageSeed<'_> {
    type Value = Option<String>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a page object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut token = None;
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match &*key {
                "next_page_token" => token = map.next_value::<Option<String>>()?,
                "quotes" | "trades" | "bars" => map.next_value_seed(OrNull(SymbolsSeed {
                    cols: self.cols,
                    symbols: self.symbols,
                    builders: &mut *self.builders,
                }))?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(token)
    }
}

/// A value that may be JSON null: [`OrNull`] runs `none` for null, `some` otherwise.
trait Nullable<'de>: Sized {
    fn none(self) {}
    fn some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error>;
}

/// Deserializes `T`, or null.
struct OrNull<T>(T);

impl<'de, T: Nullable<'de>> DeserializeSeed<'de> for OrNull<T> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de, T: Nullable<'de>> Visitor<'de> for OrNull<T> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a value or null")
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<(), E> {
        self.0.none();
        Ok(())
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        self.visit_none()
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.0.some(d)
    }
}

impl<'de> Nullable<'de> for SymbolsSeed<'_> {
    fn some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Nullable<'de> for RecordsSeed<'_> {
    fn some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Nullable<'de> for StrVisitor<'_> {
    fn none(self) {
        if self.nullable {
            self.b.append_null();
        } else {
            self.b.append_value("");
        }
    }
    fn some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Nullable<'de> for ListVisitor<'_> {
    fn none(self) {
        self.0.append(true);
    }
    fn some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

/// `{SYM: [records] | null, ...}` or null.
struct SymbolsSeed<'a> {
    cols: &'static [Column],
    symbols: &'a [Symbol],
    builders: &'a mut [Option<Builders>],
}

impl<'de> Visitor<'de> for SymbolsSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a map of symbols to records")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match self.symbols.iter().position(|s| s.as_str() == &*key) {
                Some(m) => {
                    let b = self.builders[m].get_or_insert_with(|| Builders::new(self.cols, 0));
                    map.next_value_seed(OrNull(RecordsSeed(b)))?;
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// `[record, ...]` or null, appended to the builders.
struct RecordsSeed<'a>(&'a mut Builders);

impl<'de> Visitor<'de> for RecordsSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of records")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut order = KeyOrder::default();
        while seq
            .next_element_seed(RecordSeed(&mut *self.0, &mut order))?
            .is_some()
        {}
        Ok(())
    }
}

/// The column each key of the previous record named, by the key's place in the record:
/// records of a page list their fields in one order, so a key is found with one comparison.
struct KeyOrder([u8; 32]);

impl Default for KeyOrder {
    fn default() -> Self {
        KeyOrder([u8::MAX; 32])
    }
}

impl KeyOrder {
    fn guess(&self, k: usize) -> Option<usize> {
        self.0.get(k).map(|&c| usize::from(c))
    }

    fn learn(&mut self, k: usize, column: usize) {
        if let (Some(slot), Ok(c)) = (self.0.get_mut(k), u8::try_from(column)) {
            *slot = c;
        }
    }
}

/// One record: each field into its column's builder; fields left out get their default,
/// or fail the page when the column is required. Unknown fields are skipped.
struct RecordSeed<'a>(&'a mut Builders, &'a mut KeyOrder);

impl<'de> DeserializeSeed<'de> for RecordSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RecordSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a record object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let (b, order) = (self.0, self.1);
        let mut seen: u64 = 0;
        let mut k = 0;
        while let Some(field) = map.next_key_seed(FieldSeed(b.cols, order.guess(k)))? {
            match field {
                Some(c) if seen & (1u64 << c) == 0 => {
                    seen |= 1u64 << c;
                    order.learn(k, c);
                    let col = &b.cols[c];
                    map.next_value_seed(CellSeed {
                        builder: &mut b.parts[c],
                        nullable: col.nullable,
                    })?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            k += 1;
        }
        for (c, col) in b.cols.iter().enumerate() {
            if let (Some(json), false) = (col.json, seen & (1u64 << c) != 0) {
                if col.required {
                    return Err(serde::de::Error::missing_field(json));
                }
                b.parts[c].push_default(col.nullable);
            }
        }
        Ok(())
    }
}

/// A record's key, as the index of the column with that JSON field (`None`: not ours),
/// trying the guessed column first.
struct FieldSeed(&'static [Column], Option<usize>);

impl<'de> DeserializeSeed<'de> for FieldSeed {
    type Value = Option<usize>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

/// Byte equality inlined for keys of a few bytes (a `memcmp` call costs more than them).
#[inline]
fn same_key(name: Option<&str>, key: &[u8]) -> bool {
    name.is_some_and(|n| n.len() == key.len() && n.bytes().zip(key).all(|(a, b)| a == *b))
}

impl<'de> Visitor<'de> for FieldSeed {
    type Value = Option<usize>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a field name")
    }
    fn visit_str<E>(self, key: &str) -> Result<Self::Value, E> {
        let key = key.as_bytes();
        if let Some(g) = self
            .1
            .filter(|&g| self.0.get(g).is_some_and(|c| same_key(c.json, key)))
        {
            return Ok(Some(g));
        }
        Ok(self.0.iter().position(|c| same_key(c.json, key)))
    }
}

/// One field's value, appended to its column.
struct CellSeed<'a> {
    builder: &'a mut Builder,
    nullable: bool,
}

impl<'de> DeserializeSeed<'de> for CellSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        use serde::de::Error;
        match self.builder {
            Builder::Ts(v) => d.deserialize_str(TimeVisitor(v)),
            Builder::Utf8(b) => OrNull(StrVisitor {
                b,
                nullable: self.nullable,
            })
            .deserialize(d),
            Builder::F64(v) => {
                v.push(f64::deserialize(d)?);
                Ok(())
            }
            Builder::U32(v) => {
                let n = u64::deserialize(d)?;
                v.push(
                    u32::try_from(n).map_err(|_| D::Error::custom(format!("{n} is too large")))?,
                );
                Ok(())
            }
            Builder::U64(v) => {
                v.push(u64::deserialize(d)?);
                Ok(())
            }
            Builder::List(b) => OrNull(ListVisitor(b)).deserialize(d),
        }
    }
}

struct TimeVisitor<'a>(&'a mut Vec<i64>);

impl<'de> Visitor<'de> for TimeVisitor<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an RFC 3339 time")
    }
    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<(), E> {
        self.0
            .push(crate::time::parse_rfc3339_nanos(s).map_err(E::custom)?);
        Ok(())
    }
}

struct StrVisitor<'a> {
    b: &'a mut StringBuilder,
    nullable: bool,
}

impl<'de> Visitor<'de> for StrVisitor<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E>(self, s: &str) -> Result<(), E> {
        self.b.append_value(s);
        Ok(())
    }
}

struct ListVisitor<'a>(&'a mut ListBuilder<StringBuilder>);

impl<'de> Visitor<'de> for ListVisitor<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of strings")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        loop {
            let b = self.0.values();
            if seq
                .next_element_seed(OrNull(StrVisitor { b, nullable: false }))?
                .is_none()
            {
                break;
            }
        }
        self.0.append(true);
        Ok(())
    }
}

/// Numbers records that share a nanosecond timestamp, in API order, across page boundaries.
/// Alpaca returns each symbol's records sorted by time, so equal timestamps are adjacent.
#[derive(Debug, Default, Clone)]
pub struct SeqAssigner {
    last_t: Option<i64>,
    next: u32,
}

impl SeqAssigner {
    /// `batch` (one symbol's records, in API order) with its `seq` column numbered.
    pub fn assign(&mut self, batch: RecordBatch) -> anyhow::Result<RecordBatch> {
        let Some(i) = batch.schema().index_of("seq").ok() else {
            return Ok(batch);
        };
        let t = crate::batch::times(&batch, "t").context("records have no time")?;
        let mut seq = Vec::with_capacity(t.len());
        for &t in t {
            if self.last_t == Some(t) {
                seq.push(self.next);
                self.next += 1;
            } else {
                seq.push(0);
                self.next = 1;
                self.last_t = Some(t);
            }
        }
        let mut columns = batch.columns().to_vec();
        columns[i] = Arc::new(UInt32Array::from(seq));
        RecordBatch::try_new(batch.schema(), columns).context("cannot number records")
    }
}
