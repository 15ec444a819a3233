//! The stand-in's corporate actions (`/v1/corporate-actions`): a deterministic ledger per
//! ticker — quarterly cash dividends for every ticker, the real splits of AAPL, NVDA and
//! TSLA, a 2:1 split in 2024 for a third of the other tickers, FB's rename to META — in
//! Alpaca's groups and fields, filtered by symbols, types and process date, paged. The same
//! splits adjust the stand-in's bars asked with `adjustment=split` (or `all`), as Alpaca's.

use super::generate::fnv;
use super::refusal::{bad_request, page_limit, page_of, Listing, Refusal};
use chrono::{Datelike, NaiveDate};
use serde_json::{json, Value};

/// A split: (ex-date, old_rate, new_rate).
type Split = (NaiveDate, f64, f64);

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or(NaiveDate::MIN)
}

/// The next NYSE session on or after `d`.
fn session_from(d: NaiveDate) -> NaiveDate {
    d.iter_days()
        .find(|x| data_core::nyse::is_trading_day(*x))
        .unwrap_or(d)
}

/// `symbol`'s forward splits.
pub fn splits(symbol: &str) -> Vec<Split> {
    match symbol {
        "AAPL" => vec![(day(2014, 6, 9), 1.0, 7.0), (day(2020, 8, 31), 1.0, 4.0)],
        "NVDA" => vec![(day(2021, 7, 20), 1.0, 4.0), (day(2024, 6, 10), 1.0, 10.0)],
        "TSLA" => vec![(day(2020, 8, 31), 1.0, 5.0), (day(2022, 8, 25), 1.0, 3.0)],
        s if fnv(s).is_multiple_of(3) => {
            let ex = session_from(day(2024, 1, 2) + chrono::Duration::days((fnv(s) % 300) as i64));
            vec![(ex, 1.0, 2.0)]
        }
        _ => Vec::new(),
    }
}

/// The factor Alpaca's `adjustment=split` applies to `symbol`'s prices on `date`: the
/// product of old/new of every split after it (volumes are divided by it).
pub(crate) fn split_factor(symbol: &str, date: NaiveDate) -> f64 {
    splits(symbol)
        .iter()
        .filter(|(ex, _, _)| *ex > date)
        .map(|(_, old, new)| old / new)
        .product()
}

/// `symbol`'s cash dividends with ex-dates after `from` up to `today`, each with the factor
/// Alpaca's `adjustment=dividend` applies before it: 1 - rate / the close of the session
/// before the ex-date (the stand-in's raw daily bar of that session).
pub fn dividend_factors(
    symbol: &str,
    from: NaiveDate,
    today: NaiveDate,
    per_day: u32,
) -> Vec<(NaiveDate, f64)> {
    ledger(symbol, from, today)
        .into_iter()
        .filter(|(group, ex, _)| *group == "cash_dividends" && *ex > from)
        .filter_map(|(_, ex, record)| {
            let rate = record["rate"].as_f64()?;
            let prev = ex
                .pred_opt()?
                .iter_days()
                .rev()
                .take(10)
                .find(|d| data_core::nyse::is_trading_day(*d))?;
            let trades = super::generate::DayTrades::new(symbol, "sip", prev, per_day)?;
            let close = super::generate::day_bars(&trades, prev, 0).last()?.close;
            Some((ex, 1.0 - rate / close))
        })
        .collect()
}

/// The groups, in the order pages list them, with the `types` value of each.
const GROUPS: [(&str, &str); 15] = [
    ("forward_splits", "forward_split"),
    ("reverse_splits", "reverse_split"),
    ("unit_splits", "unit_split"),
    ("cash_dividends", "cash_dividend"),
    ("stock_dividends", "stock_dividend"),
    ("spin_offs", "spin_off"),
    ("cash_mergers", "cash_merger"),
    ("stock_mergers", "stock_merger"),
    ("stock_and_cash_mergers", "stock_and_cash_merger"),
    ("redemptions", "redemption"),
    ("name_changes", "name_change"),
    ("worthless_removals", "worthless_removal"),
    ("rights_distributions", "rights_distribution"),
    ("partial_calls", "partial_call"),
    ("reorganizations", "reorganization"),
];

fn uuid(text: &str) -> String {
    let h = super::generate::mix(fnv(text));
    let l = super::generate::mix(h);
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        h >> 32,
        (h >> 16) & 0xffff,
        h & 0xfff,
        l & 0xfff,
        l >> 16
    )
}

fn cusip(symbol: &str) -> String {
    format!("{:09}", fnv(symbol) % 1_000_000_000)
}

/// Every action of `symbol` processed from `from` to `to`: (group, process date, record).
pub fn ledger(
    symbol: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Vec<(&'static str, NaiveDate, Value)> {
    let mut out = Vec::new();
    for (ex, old, new) in splits(symbol) {
        out.push((
            "forward_splits",
            ex,
            json!({
                "id": uuid(&format!("split{symbol}{ex}")),
                "symbol": symbol,
                "cusip": cusip(symbol),
                "new_rate": new,
                "old_rate": old,
                "process_date": ex.to_string(),
                "ex_date": ex.to_string(),
                "record_date": (ex - chrono::Duration::days(7)).to_string(),
                "payable_date": (ex - chrono::Duration::days(3)).to_string(),
            }),
        ));
    }
    for year in from.year()..=to.year() {
        for month in [2, 5, 8, 11] {
            let ex = session_from(day(year, month, 10));
            let rate = 0.2 + (fnv(&format!("{symbol}{year}{month}")) % 30) as f64 / 100.0;
            out.push((
                "cash_dividends",
                ex,
                json!({
                    "id": uuid(&format!("div{symbol}{ex}")),
                    "symbol": symbol,
                    "cusip": cusip(symbol),
                    "rate": (rate * 100.0).round() / 100.0,
                    "special": false,
                    "foreign": false,
                    "process_date": ex.to_string(),
                    "ex_date": ex.to_string(),
                    "record_date": (ex + chrono::Duration::days(1)).to_string(),
                    "payable_date": (ex + chrono::Duration::days(14)).to_string(),
                }),
            ));
        }
    }
    if symbol == "META" || symbol == "FB" {
        let d = day(2022, 6, 9);
        out.push((
            "name_changes",
            d,
            json!({
                "id": uuid("FBMETA"),
                "old_symbol": "FB",
                "new_symbol": "META",
                "old_cusip": cusip("FB"),
                "new_cusip": cusip("META"),
                "process_date": d.to_string(),
            }),
        ));
    }
    out.retain(|(_, d, _)| *d >= from && *d <= to);
    out
}

/// `GET /v1/corporate-actions`, paged: Alpaca's parameters, a limit of 1,000, unknown
/// parameters refused.
pub(super) fn actions_body(listing: &Listing) -> Result<String, Refusal> {
    listing.only_known(&["symbols cusips types region start end ids limit page_token sort"])?;
    let Listing {
        params,
        today,
        max_page,
    } = *listing;
    let date = |name: &str| -> Result<NaiveDate, Refusal> {
        match params.get(name) {
            None => Ok(today),
            Some(v) => v
                .parse()
                .map_err(|_| bad_request(&format!("invalid {name}: {v}"))),
        }
    };
    let (start, end) = (date("start")?, date("end")?);
    let types: Option<Vec<&str>> = params.get("types").map(|t| t.split(',').collect());
    if let Some(bad) = types
        .iter()
        .flatten()
        .find(|t| !GROUPS.iter().any(|(_, ty)| ty == *t))
    {
        return Err(bad_request(&format!("invalid types: {bad}")));
    }
    if params.get("sort").is_some_and(|s| s != "asc") {
        return Err(bad_request("the stand-in serves sort=asc only"));
    }
    let limit = page_limit(params, 1000, max_page)?;
    let mut symbols: Vec<&str> = params
        .get("symbols")
        .map(|s| s.split(',').filter(|s| !s.is_empty()).collect())
        .unwrap_or_default();
    symbols.sort_unstable();
    symbols.dedup();
    let mut all: Vec<(usize, &str, NaiveDate, Value)> = Vec::new();
    for s in symbols {
        for (group, d, record) in ledger(s, start, end) {
            let g = GROUPS
                .iter()
                .position(|(name, _)| *name == group)
                .unwrap_or(0);
            if types.as_ref().is_none_or(|t| t.contains(&GROUPS[g].1)) {
                all.push((g, s, d, record));
            }
        }
    }
    all.sort_by(|a, b| (a.0, a.1, a.2).cmp(&(b.0, b.1, b.2)));
    let (page, token) = page_of(params, "ca", all.len(), limit)?;
    let mut groups = serde_json::Map::new();
    for (g, _, _, record) in &all[page] {
        if let Value::Array(list) = groups
            .entry(GROUPS[*g].0.to_string())
            .or_insert_with(|| Value::Array(Vec::new()))
        {
            list.push(record.clone());
        }
    }
    Ok(json!({ "corporate_actions": groups, "next_page_token": token }).to_string())
}
