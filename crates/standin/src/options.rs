//! The stand-in's options: deterministic trades and bars of any OCC contract
//! (`/v1beta1/options/trades|bars`, up to 100 contracts a request) on NYSE sessions from
//! February 2024 (where Alpaca's history starts) to the contract's expiry, and the trading
//! API's contract list (`/v2/options/contracts`) of any underlying: weekly Friday expiries,
//! eleven strikes around the underlying's level, calls and puts, active until expiry and
//! inactive after, paged with an opaque token.

use super::generate::{fnv, mix, GenBar};
use super::refusal::{bad_request, page_limit, page_of, Listing, Refusal};
use crate::record::Record;
use chrono::{Datelike, NaiveDate};
use data_core::model::Symbol;
use data_core::time::new_york_time_nanos;
use std::collections::HashMap;

/// The first day of Alpaca's historical option data.
pub(crate) const FIRST_DAY: &str = "2024-02-01";
/// The most contracts one data request may name.
pub(crate) const MAX_SYMBOLS: usize = 100;
const EXCHANGES: &[u8] = b"ABCHIMNPQWXZ";
const CONDITIONS: [&str; 5] = ["I", "a", "f", "n", "g"];

/// Whether `symbol` is an OCC contract symbol as the API accepts it (upper case).
pub(crate) fn is_contract(symbol: &str) -> bool {
    Symbol::parse_option(symbol).is_ok_and(|s| s.as_str() == symbol)
}

/// The underlying's level: the strikes are centred on it.
pub(crate) fn underlying_price(root: &str) -> f64 {
    (50 + (fnv(root) % 60) * 5) as f64
}

/// One contract's trades on one New York day.
#[derive(Debug, Clone)]
pub struct OptionDay {
    seed: u64,
    open: i64,
    close: i64,
    count: u32,
    level: f64,
}

/// One generated option trade.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OptionTrade {
    pub t: i64,
    pub exchange: u8,
    pub price: f64,
    pub size: u64,
    pub condition: &'static str,
}

impl OptionDay {
    /// `None` on days it has no data: before February 2024, after its expiry, off NYSE
    /// sessions, or for a symbol that is no contract.
    pub fn new(symbol: &str, date: NaiveDate) -> Option<Self> {
        let s = Symbol::parse_option(symbol).ok()?;
        let (expiry, kind, strike) = s.option_parts()?;
        let first: NaiveDate = FIRST_DAY.parse().ok()?;
        if date < first || date > expiry || !data_core::nyse::is_trading_day(date) {
            return None;
        }
        let root = &symbol[..symbol.len() - 15];
        let under = underlying_price(root);
        let intrinsic = match kind {
            'C' => (under - strike).max(0.0),
            _ => (strike - under).max(0.0),
        };
        let days_left = (expiry - date).num_days() as f64;
        let seed = fnv(&format!("{symbol}|{date}"));
        Some(OptionDay {
            seed,
            open: new_york_time_nanos(date, 9, 30),
            close: new_york_time_nanos(date, 16, 0),
            count: 20 + (seed % 180) as u32,
            level: intrinsic + 0.5 + days_left * 0.05,
        })
    }

    pub fn len(&self) -> u32 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn time(&self, i: u32) -> i64 {
        let step = (self.close - self.open) / i64::from(self.count);
        // Every 13th trade shares its predecessor's nanosecond (a sweep across exchanges).
        let i = if i > 0 && i.is_multiple_of(13) {
            i - 1
        } else {
            i
        };
        let jitter = (mix(self.seed ^ u64::from(i)) % (step as u64 / 2).max(1)) as i64;
        self.open + i64::from(i) * step + jitter
    }

    pub fn trade(&self, i: u32) -> OptionTrade {
        let r = mix(self.seed ^ (u64::from(i) << 3) ^ 5);
        OptionTrade {
            t: self.time(i),
            exchange: EXCHANGES[(r % EXCHANGES.len() as u64) as usize],
            price: ((self.level + ((r >> 8) % 41) as f64 / 100.0 - 0.2).max(0.01) * 100.0).round()
                / 100.0,
            size: 1 + (r >> 16) % 50,
            condition: CONDITIONS[((r >> 24) % CONDITIONS.len() as u64) as usize],
        }
    }

    pub fn lower_bound(&self, t: i64) -> u32 {
        crate::generate::first_at(self.count, t, |i| self.time(i))
    }

    /// The day's bars of `width_ns` (0: one daily bar at New York midnight), for the
    /// intervals that had trades.
    pub fn bars(&self, date: NaiveDate, width_ns: i64) -> Vec<GenBar> {
        let traded = (0..self.count)
            .map(|i| self.trade(i))
            .map(|tr| (tr.t, tr.price, tr.size as f64));
        crate::generate::bars_of(date, width_ns, traded)
    }
}

/// Appends one option trade as Alpaca's JSON object (`c` is one code, not a list).
pub(crate) fn write_trade(out: &mut Vec<u8>, tr: &OptionTrade) {
    Record::at(out, tr.t)
        .char("x", tr.exchange)
        .float("p", tr.price)
        .int("s", tr.size)
        .text("c", tr.condition.as_bytes())
        .end();
}

/// One listed contract of the stand-in's universe.
#[derive(Debug, Clone, PartialEq)]
pub struct ListedContract {
    pub symbol: String,
    pub underlying: String,
    pub expiry: NaiveDate,
    pub call: bool,
    pub strike: f64,
}

/// Every contract of `underlying`: Friday expiries (Thursday when Friday is a holiday) from
/// 2024-01-05 to a year after `today`, eleven strikes 5 apart around its level, call and put.
pub fn universe(underlying: &str, today: NaiveDate) -> Vec<ListedContract> {
    let Ok(under) = Symbol::parse(underlying) else {
        return Vec::new();
    };
    let root: String = under
        .as_str()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(6)
        .collect();
    let level = underlying_price(&root);
    let mut out = Vec::new();
    let mut friday = NaiveDate::from_ymd_opt(2024, 1, 5).unwrap_or(today);
    let last = today + chrono::Duration::days(366);
    while friday <= last {
        let expiry = if data_core::nyse::is_trading_day(friday) {
            friday
        } else {
            friday.pred_opt().unwrap_or(friday)
        };
        for k in -5i32..=5 {
            let strike = level + f64::from(k) * 5.0;
            for call in [true, false] {
                out.push(ListedContract {
                    symbol: format!(
                        "{root}{:02}{:02}{:02}{}{:08}",
                        expiry.year() % 100,
                        expiry.month(),
                        expiry.day(),
                        if call { 'C' } else { 'P' },
                        (strike * 1000.0).round() as u64
                    ),
                    underlying: under.as_str().to_string(),
                    expiry,
                    call,
                    strike,
                });
            }
        }
        friday += chrono::Duration::days(7);
    }
    out.sort_by(|a, b| a.symbol.cmp(&b.symbol));
    out
}

fn contract_json(c: &ListedContract, today: NaiveDate) -> serde_json::Value {
    let active = c.expiry >= today;
    let strike = format!("{}", c.strike);
    let uuid = |salt: &str| {
        let h = mix(fnv(&format!("{salt}{}", c.symbol)));
        let l = mix(h);
        format!(
            "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
            h >> 32,
            (h >> 16) & 0xffff,
            h & 0xfff,
            l & 0xfff,
            l >> 16
        )
    };
    let root = &c.symbol[..c.symbol.len() - 15];
    serde_json::json!({
        "id": uuid("contract"),
        "symbol": c.symbol,
        "name": format!(
            "{} {} {strike} {}",
            c.underlying,
            c.expiry.format("%b %d %Y"),
            if c.call { "Call" } else { "Put" }
        ),
        "status": if active { "active" } else { "inactive" },
        "tradable": active,
        "expiration_date": c.expiry.to_string(),
        "root_symbol": root,
        "underlying_symbol": c.underlying,
        "underlying_asset_id": uuid(&c.underlying),
        "type": if c.call { "call" } else { "put" },
        "style": "american",
        "strike_price": strike,
        "multiplier": "100",
        "size": "100",
        "open_interest": (fnv(&c.symbol) % 5000).to_string(),
        "open_interest_date": c.expiry.min(today).to_string(),
        "close_price": format!("{:.2}", 0.5 + (fnv(&c.symbol) % 900) as f64 / 100.0),
        "close_price_date": c.expiry.min(today).to_string(),
    })
}

/// Parameter `name` as a `T`, if given; a 400 naming it when it does not parse.
fn parsed<T: std::str::FromStr>(
    params: &HashMap<String, String>,
    name: &str,
) -> Result<Option<T>, Refusal> {
    params
        .get(name)
        .map(|v| {
            v.parse()
                .map_err(|_| bad_request(&format!("invalid {name}: {v}")))
        })
        .transpose()
}

/// The trading API's `GET /v2/options/contracts`, paged: Alpaca's parameters and defaults
/// (status active; expiring up to the coming weekend unless said), unknown ones refused.
pub(super) fn contracts_body(listing: &Listing) -> Result<String, Refusal> {
    listing.only_known(&[
        "underlying_symbols status root_symbol type style",
        "expiration_date expiration_date_gte expiration_date_lte",
        "strike_price_gte strike_price_lte limit page_token show_deliverables ppind",
    ])?;
    let Listing {
        params,
        today,
        max_page,
    } = *listing;
    let date = |name: &str| parsed::<NaiveDate>(params, name);
    let number = |name: &str| parsed::<f64>(params, name);
    let active = match params.get("status").map(String::as_str) {
        None | Some("active") => true,
        Some("inactive") => false,
        Some(other) => return Err(bad_request(&format!("invalid status: {other}"))),
    };
    let call = match params.get("type").map(String::as_str) {
        None => None,
        Some("call") => Some(true),
        Some("put") => Some(false),
        Some(other) => return Err(bad_request(&format!("invalid type: {other}"))),
    };
    let exact = date("expiration_date")?;
    let gte = date("expiration_date_gte")?;
    // "By default only contracts that expire before the upcoming weekend are returned."
    let weekend =
        today + chrono::Duration::days(i64::from(6 - today.weekday().num_days_from_sunday()) % 7);
    let lte = date("expiration_date_lte")?.or(if gte.is_none() && exact.is_none() {
        Some(weekend)
    } else {
        None
    });
    let (smin, smax) = (number("strike_price_gte")?, number("strike_price_lte")?);
    let limit = page_limit(params, 10_000, max_page)?;
    let mut all: Vec<ListedContract> = Vec::new();
    for u in params
        .get("underlying_symbols")
        .map(|s| {
            s.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
    {
        all.extend(universe(u, today).into_iter().filter(|c| {
            (c.expiry >= today) == active
                && exact.is_none_or(|d| c.expiry == d)
                && gte.is_none_or(|d| c.expiry >= d)
                && lte.is_none_or(|d| c.expiry <= d)
                && call.is_none_or(|k| c.call == k)
                && smin.is_none_or(|m| c.strike >= m)
                && smax.is_none_or(|m| c.strike <= m)
                && params
                    .get("root_symbol")
                    .is_none_or(|r| c.symbol.starts_with(r.as_str()))
        }));
    }
    let (page, token) = page_of(params, "o", all.len(), limit)?;
    let page: Vec<serde_json::Value> = all[page].iter().map(|c| contract_json(c, today)).collect();
    Ok(serde_json::json!({ "option_contracts": page, "next_page_token": token }).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contracts_trade_from_february_2024_to_their_expiry() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        let c = "AAPL240419P00140000";
        assert!(is_contract(c) && !is_contract("AAPL") && !is_contract("aapl240419p00140000"));
        assert!(OptionDay::new(c, d("2024-01-31")).is_none());
        assert!(OptionDay::new(c, d("2024-02-03")).is_none()); // a Saturday
        assert!(OptionDay::new(c, d("2024-04-22")).is_none()); // after expiry
        let day = OptionDay::new(c, d("2024-04-19")).unwrap();
        let mut last = 0;
        for i in 0..day.len() {
            let tr = day.trade(i);
            assert!(tr.t >= last && tr.price > 0.0 && tr.size > 0);
            last = tr.t;
        }
        assert_eq!(day.lower_bound(i64::MAX), day.len());
        let bars = day.bars(d("2024-04-19"), 0);
        assert_eq!(bars.len(), 1);
        assert_eq!(bars[0].trades, u64::from(day.len()));
        let all = universe("AAPL", d("2024-06-01"));
        assert!(all.iter().all(|c| is_contract(&c.symbol)));
        assert!(all.iter().any(|c| c.expiry == d("2024-03-28"))); // Good Friday: Thursday
    }
}
