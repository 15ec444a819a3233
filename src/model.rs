//! The validated values every stage shares: a ticker `Symbol`, the data `Feed`, and one
//! NBBO `Quote` as the importer keeps it (every field at full precision).
//!
//! Parsing happens here, at the edge; nothing downstream re-validates.

use serde::Deserialize;
use std::fmt;
use std::sync::Arc;

/// A ticker as Alpaca spells it: 1–21 characters of A–Z, 0–9, `.`, `-` or `/`
/// (e.g. `AAPL`, `BRK.B`). Lower-case input is upper-cased.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Symbol(Arc<str>);

impl Symbol {
    pub fn parse(text: &str) -> Result<Self, String> {
        let upper = text.to_ascii_uppercase();
        if upper.is_empty() || upper.len() > 21 {
            return Err(format!(
                "symbol {text:?} must be 1 to 21 characters long (e.g. AAPL, BRK.B)"
            ));
        }
        if let Some(c) = upper.chars().find(|c| {
            !(c.is_ascii_uppercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '/'))
        }) {
            return Err(format!(
                "symbol {text:?} contains {c:?}, which no ticker has \
                 (use letters, digits, '.', '-' or '/', e.g. AAPL, BRK.B)"
            ));
        }
        if !upper.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err(format!("symbol {text:?} must start with a letter or digit"));
        }
        Ok(Symbol(upper.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn shared(&self) -> Arc<str> {
        self.0.clone()
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which consolidated feed to ask Alpaca for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Feed {
    /// All US exchanges (the consolidated SIP feed; paid plans, or older than 15 minutes).
    Sip,
    /// The IEX exchange only (free plan).
    Iex,
}

impl Feed {
    pub fn as_str(self) -> &'static str {
        match self {
            Feed::Sip => "sip",
            Feed::Iex => "iex",
        }
    }
}

/// One NBBO quote. `t` is nanoseconds since the Unix epoch, UTC; `seq` is the quote's ordinal
/// among quotes of the same symbol sharing that exact nanosecond, in the order the API
/// returned them (Alpaca has no sequence field, and equal timestamps are normal).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Quote {
    #[serde(skip, default = "empty_symbol")]
    pub symbol: Arc<str>,
    #[serde(rename = "t", deserialize_with = "de_nanos")]
    pub t: i64,
    #[serde(skip)]
    pub seq: u32,
    #[serde(rename = "bx")]
    pub bid_exchange: String,
    #[serde(rename = "bp")]
    pub bid_price: f64,
    #[serde(rename = "bs")]
    pub bid_size: u32,
    #[serde(rename = "ax")]
    pub ask_exchange: String,
    #[serde(rename = "ap")]
    pub ask_price: f64,
    #[serde(rename = "as")]
    pub ask_size: u32,
    #[serde(rename = "c", default, deserialize_with = "de_conditions")]
    pub conditions: Vec<String>,
    #[serde(rename = "z", default)]
    pub tape: String,
}

fn empty_symbol() -> Arc<str> {
    Arc::from("")
}

fn de_nanos<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
    crate::time::parse_rfc3339_nanos(&s).map_err(serde::de::Error::custom)
}

fn de_conditions<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

impl Quote {
    /// The conditions as stored: a compact JSON array (see [`conditions_json`]).
    pub fn conditions_json(&self) -> String {
        conditions_json(&self.conditions)
    }
}

/// Conditions as stored: a compact JSON array, e.g. `["R"]` or `[" ","T"]` (a single-space
/// code is a real value, so a delimiter-joined string would be lossy).
pub fn conditions_json(conditions: &[String]) -> String {
    let mut s = String::with_capacity(2 + conditions.len() * 4);
    s.push('[');
    for (i, c) in conditions.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        // serde_json escapes exactly what JSON requires; codes are almost always one char.
        s.push_str(&serde_json::to_string(c).unwrap_or_else(|_| "\"\"".into()));
    }
    s.push(']');
    s
}

/// One trade. `id` is the exchange's trade id (unique per symbol, exchange and day);
/// `update` is Alpaca's `u` (`corrected`, `canceled`, `incorrect`), absent for a plain trade.
/// `seq` is the record's ordinal among the symbol's records sharing its nanosecond, in API
/// order (used to resume after a committed record, not stored).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Trade {
    #[serde(skip, default = "empty_symbol")]
    pub symbol: Arc<str>,
    #[serde(rename = "t", deserialize_with = "de_nanos")]
    pub t: i64,
    #[serde(skip)]
    pub seq: u32,
    #[serde(rename = "x")]
    pub exchange: String,
    #[serde(rename = "p")]
    pub price: f64,
    #[serde(rename = "s")]
    pub size: u64,
    #[serde(rename = "i")]
    pub id: u64,
    #[serde(rename = "c", default, deserialize_with = "de_conditions")]
    pub conditions: Vec<String>,
    #[serde(rename = "z", default)]
    pub tape: String,
    #[serde(rename = "u", default)]
    pub update: Option<String>,
}

/// One bar of `timeframe` (`1Min`, ..., `1Day`) with `adjustment` (`raw`, ...), stamped at its
/// opening time.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Bar {
    #[serde(skip, default = "empty_symbol")]
    pub symbol: Arc<str>,
    #[serde(skip, default = "empty_symbol")]
    pub timeframe: Arc<str>,
    #[serde(skip, default = "empty_symbol")]
    pub adjustment: Arc<str>,
    #[serde(rename = "t", deserialize_with = "de_nanos")]
    pub t: i64,
    #[serde(skip)]
    pub seq: u32,
    #[serde(rename = "o")]
    pub open: f64,
    #[serde(rename = "h")]
    pub high: f64,
    #[serde(rename = "l")]
    pub low: f64,
    #[serde(rename = "c")]
    pub close: f64,
    #[serde(rename = "v")]
    pub volume: u64,
    #[serde(rename = "n", default)]
    pub trade_count: u64,
    #[serde(rename = "vw", default)]
    pub vwap: f64,
}

/// A record the API client pages through: decoded from JSON, then stamped with its symbol
/// and its ordinal among equal timestamps.
pub trait ApiRecord: Record + serde::de::DeserializeOwned {
    fn set_symbol(&mut self, symbol: &Arc<str>);
    fn symbol_name(&self) -> &str;
    fn set_seq(&mut self, seq: u32);
    fn t(&self) -> i64;
    fn seq(&self) -> u32;
    /// Bars: the timeframe and adjustment they were asked with.
    fn set_bar_spec(&mut self, _timeframe: &Arc<str>, _adjustment: &Arc<str>) {}
}

macro_rules! api_record {
    ($t:ty $(, $spec:item)?) => {
        impl Record for $t {
            fn time_ns(&self) -> i64 {
                self.t
            }
            fn position(&self) -> Option<(i64, u32)> {
                Some((self.t, self.seq))
            }
        }
        impl ApiRecord for $t {
            fn set_symbol(&mut self, symbol: &Arc<str>) {
                self.symbol = symbol.clone();
            }
            fn symbol_name(&self) -> &str {
                &self.symbol
            }
            fn set_seq(&mut self, seq: u32) {
                self.seq = seq;
            }
            fn t(&self) -> i64 {
                self.t
            }
            fn seq(&self) -> u32 {
                self.seq
            }
            $($spec)?
        }
    };
}

api_record!(Quote);
api_record!(Trade);
api_record!(
    Bar,
    fn set_bar_spec(&mut self, timeframe: &Arc<str>, adjustment: &Arc<str>) {
        self.timeframe = timeframe.clone();
        self.adjustment = adjustment.clone();
    }
);

/// What the pipeline needs to know about any record it carries.
pub trait Record: Send + Sync + 'static {
    /// Event time, nanoseconds UTC: drives progress and the batch log line.
    fn time_ns(&self) -> i64;
    /// Where this row sits in its source's stream, `(t, seq)`, when the source can resume
    /// right after it (raw quotes); `None` for derived rows (aggregates).
    fn position(&self) -> Option<(i64, u32)> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols() {
        assert_eq!(Symbol::parse("aapl").unwrap().as_str(), "AAPL");
        assert_eq!(Symbol::parse("BRK.B").unwrap().as_str(), "BRK.B");
        for bad in [
            "",
            "AA PL",
            "AAPL;DROP",
            "$AAPL",
            "ÄPPL",
            ".A",
            "ABCDEFGHIJKLMNOPQRSTUV",
        ] {
            assert!(Symbol::parse(bad).is_err(), "{bad:?} accepted");
        }
        let e = Symbol::parse("AA$PL").unwrap_err();
        assert!(e.contains("contains '$', which no ticker has"), "{e}");
    }

    #[test]
    fn conditions_json_is_exact() {
        let mut q: Quote = serde_json::from_str(
            r#"{"t":"2024-01-02T09:00:00Z","bx":" ","bp":0,"bs":0,"ax":"Q","ap":1.5,"as":2,"c":[" ","T"],"z":"C"}"#,
        )
        .unwrap();
        assert_eq!(q.conditions_json(), r#"[" ","T"]"#);
        q.conditions.clear();
        assert_eq!(q.conditions_json(), "[]");
    }
}
