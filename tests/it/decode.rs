//! The page decoder against the bytes a network can deliver: random quotes, trades and bars
//! written as the API writes them (0-9 fraction digits, escaped strings, empty, null and
//! missing arrays, unknown fields, any field order) decode back exactly; arbitrary and
//! mutated bytes decode or fail with a decode error, never panic.

use data::batch::{self, Value};
use data::dataset::Kind;
use data::model::Symbol;
use data::source::{page::decode_page, response::ApiError};
use proptest::prelude::*;
use serde_json::{json, Map, Value as Json};

/// A time as Alpaca writes it: seconds in 2000..2030, `digits` fraction digits (trailing
/// zeros kept as drawn), `Z`.
fn time_text(secs: i64, frac: u32, digits: usize) -> (String, i64) {
    let scaled = u64::from(frac) / 10u64.pow(9 - digits as u32);
    let ns = scaled * 10u64.pow(9 - digits as u32);
    let base = chrono::DateTime::from_timestamp(secs, 0)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string();
    let text = if digits == 0 {
        format!("{base}Z")
    } else {
        format!("{base}.{scaled:0digits$}Z")
    };
    (text, secs * 1_000_000_000 + ns as i64)
}

/// Short strings with the characters that need care: quotes, backslashes, control and
/// non-ASCII characters, spaces.
fn code() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec!['A', 'Q', ' ', '"', '\\', '\n', '\u{1}', 'é', '€', '/']),
        0..3,
    )
    .prop_map(|c| c.into_iter().collect())
}

/// The conditions field: left out, null, or a list.
fn conditions() -> impl Strategy<Value = Option<Option<Vec<String>>>> {
    prop::option::of(prop::option::of(prop::collection::vec(code(), 0..4)))
}

fn finite() -> impl Strategy<Value = f64> {
    prop_oneof![
        (-1e6f64..1e6).prop_map(|f| f),
        (0u32..100_000).prop_map(|c| f64::from(c) / 100.0),
        Just(0.0)
    ]
}

/// One record: its JSON object and the values the decoder must produce, by column name.
type Record = (Map<String, Json>, Vec<(&'static str, Value)>);

fn time() -> impl Strategy<Value = (String, i64)> {
    (
        946_684_800i64..1_893_456_000,
        0u32..1_000_000_000,
        0usize..=9,
    )
        .prop_map(|(s, f, d)| time_text(s, f, d))
}

fn with_conditions(
    mut m: Map<String, Json>,
    mut want: Vec<(&'static str, Value)>,
    c: Option<Option<Vec<String>>>,
    extra: bool,
) -> Record {
    match &c {
        None => {}
        Some(None) => {
            m.insert("c".into(), Json::Null);
        }
        Some(Some(list)) => {
            m.insert("c".into(), json!(list));
        }
    }
    want.push(("conditions", Value::List(c.flatten().unwrap_or_default())));
    if extra {
        m.insert("zz_unknown".into(), json!({"nested": [1, "x", null]}));
    }
    (m, want)
}

fn quote() -> impl Strategy<Value = Record> {
    (
        time(),
        (code(), finite(), any::<u32>()),
        (code(), finite(), any::<u32>()),
        conditions(),
        prop::option::of(code()),
        any::<bool>(),
    )
        .prop_map(|((tt, t), (bx, bp, bs), (ax, ap, asz), c, z, extra)| {
            let mut m = Map::new();
            m.insert("t".into(), json!(tt));
            m.insert("bx".into(), json!(bx));
            m.insert("bp".into(), json!(bp));
            m.insert("bs".into(), json!(bs));
            m.insert("ax".into(), json!(ax));
            m.insert("ap".into(), json!(ap));
            m.insert("as".into(), json!(asz));
            if let Some(z) = &z {
                m.insert("z".into(), json!(z));
            }
            let want = vec![
                ("t", Value::Int(t)),
                ("bid_exchange", Value::Str(bx)),
                ("bid_price", Value::Float(bp.to_bits())),
                ("bid_size", Value::UInt(u64::from(bs))),
                ("ask_exchange", Value::Str(ax)),
                ("ask_price", Value::Float(ap.to_bits())),
                ("ask_size", Value::UInt(u64::from(asz))),
                ("tape", Value::Str(z.unwrap_or_default())),
            ];
            with_conditions(m, want, c, extra)
        })
}

fn trade() -> impl Strategy<Value = Record> {
    (
        time(),
        (code(), finite(), any::<u64>(), any::<u64>()),
        conditions(),
        prop::option::of(prop::option::of(code())),
        any::<bool>(),
    )
        .prop_map(|((tt, t), (x, p, s, i), c, u, extra)| {
            let mut m = Map::new();
            m.insert("t".into(), json!(tt));
            m.insert("x".into(), json!(x));
            m.insert("p".into(), json!(p));
            m.insert("s".into(), json!(s));
            m.insert("i".into(), json!(i));
            m.insert("z".into(), json!("C"));
            match &u {
                None => {}
                Some(None) => {
                    m.insert("u".into(), Json::Null);
                }
                Some(Some(u)) => {
                    m.insert("u".into(), json!(u));
                }
            }
            let want = vec![
                ("t", Value::Int(t)),
                ("exchange", Value::Str(x)),
                ("price", Value::Float(p.to_bits())),
                ("size", Value::UInt(s)),
                ("id", Value::UInt(i)),
                ("tape", Value::Str("C".into())),
                ("update", u.flatten().map_or(Value::Null, Value::Str)),
            ];
            with_conditions(m, want, c, extra)
        })
}

fn bar() -> impl Strategy<Value = Record> {
    (
        time(),
        (finite(), finite(), finite(), finite()),
        (
            any::<u64>(),
            prop::option::of(any::<u64>()),
            prop::option::of(finite()),
        ),
    )
        .prop_map(|((tt, t), (o, h, l, c), (v, n, vw))| {
            let mut m = Map::new();
            m.insert("t".into(), json!(tt));
            for (k, x) in [("o", o), ("h", h), ("l", l), ("c", c)] {
                m.insert(k.into(), json!(x));
            }
            m.insert("v".into(), json!(v));
            if let Some(n) = n {
                m.insert("n".into(), json!(n));
            }
            if let Some(vw) = vw {
                m.insert("vw".into(), json!(vw));
            }
            let want = vec![
                ("t", Value::Int(t)),
                ("open", Value::Float(o.to_bits())),
                ("high", Value::Float(h.to_bits())),
                ("low", Value::Float(l.to_bits())),
                ("close", Value::Float(c.to_bits())),
                ("volume", Value::UInt(v)),
                ("trade_count", Value::UInt(n.unwrap_or(0))),
                ("vwap", Value::Float(vw.unwrap_or(0.0).to_bits())),
            ];
            (m, want)
        })
}

/// A page of `records` for AAPL (an empty list written as `[]`, `null`, or no key at all),
/// the other symbols' records around it ignored.
fn page(kind: Kind, records: &[Record], shape: u8, token: Option<&str>) -> Vec<u8> {
    let key = match kind {
        Kind::Quotes => "quotes",
        Kind::Trades => "trades",
        Kind::Bars => "bars",
        Kind::CorporateActions => "corporate_actions",
    };
    let list: Vec<Json> = records
        .iter()
        .map(|(m, _)| Json::Object(m.clone()))
        .collect();
    let mut data = Map::new();
    match (records.is_empty(), shape % 3) {
        (true, 1) => {
            data.insert("AAPL".into(), Json::Null);
        }
        (true, 2) => {}
        _ => {
            data.insert("AAPL".into(), Json::Array(list));
        }
    }
    data.insert("ZZZZ".into(), json!([{"t": "bad"}]));
    serde_json::to_vec(&json!({ key: data, "next_page_token": token })).unwrap()
}

fn check(kind: Kind, records: &[Record], shape: u8, token: Option<String>) {
    let body = page(kind, records, shape, token.as_deref());
    let aapl = Symbol::parse("AAPL").unwrap();
    let p = decode_page(&body, kind.columns(), &[aapl]).unwrap();
    assert_eq!(p.next_page_token, token.filter(|t| !t.is_empty()));
    if records.is_empty() {
        assert!(p.runs.is_empty());
        return;
    }
    assert_eq!(p.runs.len(), 1);
    let rows = &p.runs[0].1;
    assert_eq!(rows.num_rows(), records.len());
    let cols = kind.columns();
    for (i, (_, want)) in records.iter().enumerate() {
        for (name, value) in want {
            let got = batch::cells(rows, cols, name).unwrap().value(i);
            assert_eq!(&got, value, "row {i} column {name}");
        }
        let symbol = batch::cells(rows, cols, "symbol").unwrap().value(i);
        assert_eq!(symbol, Value::Str("AAPL".into()));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn quotes_decode_exactly(records in prop::collection::vec(quote(), 0..20), shape in any::<u8>(), token in prop::option::of("[A-Za-z0-9]{0,12}")) {
        check(Kind::Quotes, &records, shape, token);
    }

    #[test]
    fn trades_decode_exactly(records in prop::collection::vec(trade(), 0..20), shape in any::<u8>()) {
        check(Kind::Trades, &records, shape, Some("next".into()));
    }

    #[test]
    fn bars_decode_exactly(records in prop::collection::vec(bar(), 0..20), shape in any::<u8>()) {
        check(Kind::Bars, &records, shape, None);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let aapl = Symbol::parse("AAPL").unwrap();
        for kind in [Kind::Quotes, Kind::Trades, Kind::Bars] {
            match decode_page(&bytes, kind.columns(), std::slice::from_ref(&aapl)) {
                Ok(_) | Err(ApiError::Decode(_)) | Err(ApiError::Truncated(_)) => {}
                Err(e) => panic!("unexpected error kind: {e}"),
            }
        }
    }

    #[test]
    fn mutated_pages_never_panic(records in prop::collection::vec(quote(), 1..5), edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6)) {
        let mut body = page(Kind::Quotes, &records, 0, Some("t"));
        for (at, byte, op) in edits {
            let i = at.index(body.len().max(1));
            match op {
                0 if i < body.len() => body[i] = byte,
                1 => body.insert(i.min(body.len()), byte),
                _ if i < body.len() => { body.remove(i); }
                _ => {}
            }
        }
        let aapl = Symbol::parse("AAPL").unwrap();
        match decode_page(&body, Kind::Quotes.columns(), &[aapl]) {
            Ok(p) => prop_assert!(p.runs.len() <= 1),
            Err(ApiError::Decode(_)) | Err(ApiError::Truncated(_)) => {}
            Err(e) => panic!("unexpected error kind: {e}"),
        }
    }
}
