//! What the stand-in serves, and how it answers one request with one page: the request's
//! bounds, feed, limit and page token checked as Alpaca checks them (refusals carry
//! Alpaca's error bodies), the symbols' days walked in order with one shared row budget,
//! and the opaque token that continues where the page ended. No HTTP here: `mod.rs` is the
//! server.

use super::crypto::{self, CryptoDay};
use super::generate::{
    day_bars_until, new_york_dates, timeframe_ns, write_bar, write_quote, write_trade, DayQuotes,
    DayTrades, GenBar,
};
use super::options::{self, OptionDay};
pub(super) use super::refusal::{bad_request, only_known, unprocessable, Refusal};
use axum::http::StatusCode;
use data_core::time::{days_from_civil, parse_rfc3339_nanos, NANOS_PER_SEC};
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const DEFAULT_QUOTES_PER_DAY: u32 = 37_000;
pub const MAX_LIMIT: usize = 10_000;
pub const DEFAULT_LIMIT: usize = 1_000;

/// What the stand-in serves and which faults it injects.
#[derive(Debug, Clone)]
pub struct StandinConfig {
    /// Quotes per symbol per weekday on the SIP feed (IEX gets a tenth).
    pub quotes_per_day: u32,
    /// When set, requests must carry exactly these keys (403 otherwise).
    pub credentials: Option<(String, String)>,
    /// Requests allowed per rate window before answering 429.
    pub rate_limit: Option<u32>,
    /// Length of a rate window (Alpaca's is one minute).
    pub rate_window: Duration,
    /// Send the X-RateLimit-* headers only with 429 answers (a server that gives no warning
    /// before refusing).
    pub rate_headers_on_429_only: bool,
    /// Every Nth data request fails with 500, 502, 503, 504 in turn.
    pub fail_every: Option<u64>,
    /// Every data request after the Nth fails with 503 (an outage mid-import).
    pub fail_after: Option<u64>,
    /// Every Nth data request sends half its body, then drops the connection.
    pub truncate_every: Option<u64>,
    /// Serve at most this many quotes per page even when `limit` allows more (Alpaca may).
    pub max_page: Option<usize>,
    /// Wait this long before answering each data request.
    pub delay: Duration,
    /// Answer 403 and 5xx errors with an nginx-style HTML page instead of JSON.
    pub html_errors: bool,
    /// Symbols with no data at all (as Alpaca answers for a ticker that does not exist).
    pub no_data_symbols: Vec<String>,
    /// Answer requests that accept gzip with gzip bodies, as Alpaca does.
    pub gzip: bool,
    /// Their compression level, 0-9 ([`DEFAULT_GZIP_LEVEL`]: zlib's default).
    pub gzip_level: u32,
    /// Keep every page body as sent and send it again, from memory, to the same request
    /// (as a caching proxy would): benchmarks that time the client alone, without the
    /// stand-in's JSON generation and compression on the same cores. Memory grows with the
    /// pages served (a year of one symbol's quotes: ~1.1 GB plain, ~0.3 GB gzip).
    pub replay: bool,
    /// The free plan's rule: a `feed=sip` request whose `end` is later than this long ago is
    /// refused with Alpaca's 403 (`subscription does not permit querying recent SIP data`).
    /// `None`: a paid plan, no delay.
    pub sip_delay: Option<Duration>,
    /// Send [`super::SYNTHETIC_HEADER`] with every answer, so an importer marks the rows it
    /// stores as synthetic however it reached the server. The `alpaca-standin` binary
    /// always does; the in-process stand-in the tests and benchmarks start plays Alpaca
    /// and does not, unless asked (`data import-api --standin` marks its rows itself).
    pub says_synthetic: bool,
    /// The stand-in's clock (ns UTC) when set: what "now" is for the data it serves (a
    /// session in progress, bars still open). Tests set it; `None` is the real clock.
    pub fixed_now: Option<i64>,
}

impl Default for StandinConfig {
    fn default() -> Self {
        StandinConfig {
            quotes_per_day: DEFAULT_QUOTES_PER_DAY,
            credentials: None,
            rate_limit: None,
            rate_window: Duration::from_secs(60),
            rate_headers_on_429_only: false,
            fail_every: None,
            fail_after: None,
            truncate_every: None,
            max_page: None,
            delay: Duration::ZERO,
            html_errors: false,
            gzip: true,
            gzip_level: DEFAULT_GZIP_LEVEL,
            replay: false,
            sip_delay: None,
            says_synthetic: false,
            fixed_now: None,
            no_data_symbols: Vec::new(),
        }
    }
}

/// The stand-in's gzip level. What level Alpaca compresses at is not documented; 6 is the
/// default of zlib (`gzip -6`), of Go's `compress/gzip` and of the gzip modules of most
/// servers. Level 1 of flate2's zlib-rs backend is no stand-in for a server's: it is
/// zlib-ng's "quick" strategy (static Huffman codes only), a third larger on the wire than
/// classic zlib's level 1 and about a quarter slower to inflate (benches/RESULTS.md,
/// session 14).
pub const DEFAULT_GZIP_LEVEL: u32 = 6;

/// Alpaca's answer to a free plan asking for SIP data of the last 15 minutes.
pub const RECENT_SIP_MESSAGE: &str = "subscription does not permit querying recent SIP data";

pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

pub(super) fn bound(text: Option<&String>, end: bool, what: &str) -> Result<Option<i64>, Refusal> {
    let Some(text) = text else { return Ok(None) };
    if text.len() == 10 {
        let p: Vec<&str> = text.split('-').collect();
        if let [y, m, d] = p.as_slice() {
            if let (Ok(y), Ok(m), Ok(d)) = (y.parse::<i64>(), m.parse::<u32>(), d.parse::<u32>()) {
                if chrono::NaiveDate::from_ymd_opt(y as i32, m, d).is_some() {
                    let day = days_from_civil(y, m, d) * 86_400 * NANOS_PER_SEC;
                    return Ok(Some(if end {
                        day + 86_400 * NANOS_PER_SEC - 1
                    } else {
                        day
                    }));
                }
            }
        }
    }
    parse_rfc3339_nanos(text)
        .map(Some)
        .map_err(|_| unprocessable(&format!("invalid {what}: {text}")))
}

fn param_hash(symbols: &[String], start: i64, end: i64, feed: &str) -> u64 {
    let text = format!("{}|{start}|{end}|{feed}", symbols.join(","));
    text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01B3)
    })
}

/// Position of the next quote to serve: symbol index, New York day number, index in day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Cursor {
    pub(super) sym: usize,
    pub(super) day: i64,
    pub(super) i: u32,
}

pub(super) fn encode_token(hash: u64, c: Cursor) -> String {
    let raw = format!("{hash:016x}|{}|{}|{}", c.sym, c.day, c.i);
    raw.bytes().map(|b| format!("{b:02x}")).collect()
}

pub(super) fn decode_token(token: &str, hash: u64) -> Option<Cursor> {
    if !token.len().is_multiple_of(2) || token.len() > 200 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..token.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(token.get(i..i + 2)?, 16).ok())
        .collect();
    let raw = String::from_utf8(bytes?).ok()?;
    let parts: Vec<&str> = raw.split('|').collect();
    let [h, sym, day, i] = parts.as_slice() else {
        return None;
    };
    if u64::from_str_radix(h, 16).ok()? != hash {
        return None;
    }
    Some(Cursor {
        sym: sym.parse().ok()?,
        day: day.parse().ok()?,
        i: i.parse().ok()?,
    })
}

/// Which API a data request came through: stocks (`/v2/stocks/...`) or crypto
/// (`/v1beta3/crypto/{loc}/...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Market {
    Stocks,
    Crypto(&'static str),
    Options,
}

/// One symbol-day of data of the requested kind, indexed in time order.
enum DaySeries {
    Quotes(DayQuotes),
    Trades(DayTrades),
    Bars(Vec<GenBar>),
    CryptoQuotes(CryptoDay),
    CryptoTrades(CryptoDay),
    CryptoBars(Vec<GenBar>),
    OptionTrades(OptionDay),
}

impl DaySeries {
    fn new(
        kind: &str,
        symbol: &str,
        market: Market,
        feed: &str,
        date: chrono::NaiveDate,
        per_day: u32,
        (width, now): (i64, i64),
    ) -> Option<Self> {
        if market == Market::Options {
            let day = OptionDay::new(symbol, date)?;
            return Some(match kind {
                "bars" => DaySeries::Bars(day.bars(date, width)),
                _ => DaySeries::OptionTrades(day),
            });
        }
        if let Market::Crypto(loc) = market {
            let day = CryptoDay::new(loc, symbol, date, per_day);
            return Some(match kind {
                "trades" => DaySeries::CryptoTrades(day),
                "bars" => DaySeries::CryptoBars(day.bars(width)),
                _ => DaySeries::CryptoQuotes(day),
            });
        }
        match kind {
            "trades" => DayTrades::new(symbol, feed, date, per_day).map(DaySeries::Trades),
            "bars" => {
                let trades = DayTrades::new(symbol, feed, date, per_day)?;
                Some(DaySeries::Bars(day_bars_until(&trades, date, width, now)))
            }
            _ => DayQuotes::new(symbol, feed, date, per_day).map(DaySeries::Quotes),
        }
    }

    /// Adjusts stock bars: prices times `price`, volumes divided by `volume` (the split
    /// factor; dividends leave volumes alone).
    fn adjust(&mut self, price: f64, volume: f64) {
        if let DaySeries::Bars(bars) = self {
            for b in bars.iter_mut().filter(|_| price != 1.0 || volume != 1.0) {
                b.open *= price;
                b.high *= price;
                b.low *= price;
                b.close *= price;
                b.vwap *= price;
                b.volume /= volume;
            }
        }
    }

    fn lower_bound(&self, t: i64) -> u32 {
        match self {
            DaySeries::Quotes(d) => d.lower_bound(t),
            DaySeries::Trades(d) => d.lower_bound(t),
            DaySeries::Bars(b) | DaySeries::CryptoBars(b) => b.partition_point(|b| b.t < t) as u32,
            DaySeries::CryptoQuotes(d) => d.lower_bound(t, false),
            DaySeries::CryptoTrades(d) => d.lower_bound(t, true),
            DaySeries::OptionTrades(d) => d.lower_bound(t),
        }
    }

    fn write(&self, i: u32, out: &mut Vec<u8>) {
        match self {
            DaySeries::Quotes(d) => write_quote(out, &d.quote(i)),
            DaySeries::Trades(d) => write_trade(out, &d.trade(i)),
            DaySeries::Bars(b) => {
                if let Some(bar) = b.get(i as usize) {
                    write_bar(out, bar)
                }
            }
            DaySeries::CryptoQuotes(d) => crypto::write_quote(out, &d.quote(i)),
            DaySeries::CryptoTrades(d) => crypto::write_trade(out, &d.trade(i)),
            DaySeries::OptionTrades(d) => options::write_trade(out, &d.trade(i)),
            DaySeries::CryptoBars(b) => {
                if let Some(bar) = b.get(i as usize) {
                    crypto::write_bar(out, bar)
                }
            }
        }
    }
}

/// Renamed tickers the stand-in knows: (former, current, first day under the current one).
pub(crate) const RENAMES: [(&str, &str, &str); 1] = [("FB", "META", "2022-06-09")];

/// Whose data `symbol` has on `date` under Alpaca's `asof` mapping (`None`: not sent, i.e.
/// as of today; `Some(None)`: `-`, no mapping): its own, a former ticker's (labelled with
/// `symbol`), or none (a former ticker after its rename, or a current one before it when the
/// mapping is off or dated before the rename).
fn traded_as(
    symbol: &str,
    date: chrono::NaiveDate,
    asof: Option<Option<chrono::NaiveDate>>,
) -> Option<&str> {
    for (former, current, since) in RENAMES {
        let since: chrono::NaiveDate = since.parse().ok()?;
        if symbol == former && date >= since {
            return None;
        }
        if symbol == current && date < since {
            let mapped = match asof {
                None => true,
                Some(None) => false,
                Some(Some(day)) => day >= since,
            };
            return mapped.then_some(former);
        }
    }
    Some(symbol)
}

/// Builds one page of `kind` (quotes, trades, bars) for the request, or the API's error
/// response.
pub(super) fn page_body(
    cfg: &StandinConfig,
    market: Market,
    kind: &str,
    params: &HashMap<String, String>,
    mut symbols: Vec<String>,
    single: bool,
) -> Result<Vec<u8>, Refusal> {
    if symbols.is_empty() {
        return Err(bad_request("symbols is required"));
    }
    symbols.sort();
    symbols.dedup();
    // Alpaca refuses a parameter its endpoint does not take. v1beta3 (crypto) and v1beta1
    // (options) historical bars and trades take no feed, asof, adjustment or currency.
    let known = match (market, kind) {
        (Market::Stocks, "bars") => "feed asof currency timeframe adjustment",
        (Market::Stocks, _) => "feed asof currency",
        (_, "bars") => "timeframe",
        _ => "",
    };
    only_known(params, &["symbols start end limit page_token sort", known])?;
    if let Market::Crypto(_) = market {
        if let Some(bad) = symbols.iter().find(|s| !crypto::is_pair(s)) {
            return Err(bad_request(&format!(
                "invalid symbol: {bad} does not match ^[A-Z]+/[A-Z]+$"
            )));
        }
    }
    if market == Market::Options {
        if symbols.len() > options::MAX_SYMBOLS {
            return Err(bad_request(&format!(
                "too many symbols: at most {} contract symbols per request",
                options::MAX_SYMBOLS
            )));
        }
        if let Some(bad) = symbols.iter().find(|s| !options::is_contract(s)) {
            return Err(bad_request(&format!("invalid symbol: {bad}")));
        }
    }
    let feed = match market {
        Market::Crypto(loc) => loc,
        Market::Options => "opra",
        Market::Stocks => params.get("feed").map(String::as_str).unwrap_or("sip"),
    };
    if market == Market::Stocks && !matches!(feed, "sip" | "iex" | "otc" | "boats") {
        return Err(unprocessable(&format!("invalid feed: {feed}")));
    }
    let asof = match params.get("asof").map(String::as_str) {
        None => None,
        Some("-") => Some(None),
        Some(d) => match d.parse::<chrono::NaiveDate>() {
            Ok(day) => Some(Some(day)),
            Err(_) => return Err(bad_request(&format!("invalid asof: {d}"))),
        },
    };
    if params.get("sort").is_some_and(|s| s != "asc") {
        return Err(unprocessable("the stand-in serves sort=asc only"));
    }
    let limit = match params.get("limit") {
        None => DEFAULT_LIMIT,
        Some(l) => match l.parse::<usize>() {
            Ok(v) if (1..=MAX_LIMIT).contains(&v) => v,
            _ => {
                return Err(unprocessable(&format!(
                    "invalid limit: must be between 1 and {MAX_LIMIT}, got {l}"
                )))
            }
        },
    };
    let budget = cfg.max_page.map_or(limit, |m| limit.min(m.max(1)));
    // Stock bars asked with adjustment=split, dividend or all come adjusted, as Alpaca's.
    let adjusts = |what: &str| {
        market == Market::Stocks
            && kind == "bars"
            && params
                .get("adjustment")
                .is_some_and(|a| a.split(',').any(|p| p == what || p == "all"))
    };
    let (split_adjusted, dividend_adjusted) = (adjusts("split"), adjusts("dividend"));
    let (width, series_key) = if kind == "bars" {
        let tf = params.get("timeframe").map(String::as_str).unwrap_or("");
        let width = timeframe_ns(tf).ok_or_else(|| unprocessable("invalid timeframe"))?;
        if let Some(a) = params.get("adjustment") {
            if !a
                .split(',')
                .all(|p| matches!(p, "raw" | "split" | "dividend" | "spin-off" | "all"))
            {
                return Err(unprocessable(&format!("invalid adjustment: {a}")));
            }
        }
        (width, format!("{feed}|bars|{tf}"))
    } else {
        (0, format!("{feed}|{kind}"))
    };
    let now = cfg.fixed_now.unwrap_or(now_ms() as i64 * 1_000_000);
    let start = bound(params.get("start"), false, "start")?
        .unwrap_or(now - now.rem_euclid(86_400 * NANOS_PER_SEC));
    let end = bound(params.get("end"), true, "end")?.unwrap_or(now);
    if end < start {
        return Err(unprocessable("end should not be before start"));
    }
    if let Some(delay) = cfg
        .sip_delay
        .filter(|_| market == Market::Stocks && feed == "sip")
    {
        if end > now - delay.as_nanos() as i64 {
            return Err(Refusal(
                StatusCode::FORBIDDEN,
                serde_json::json!({ "message": RECENT_SIP_MESSAGE }).to_string(),
            ));
        }
    }
    let series_key = match market {
        Market::Stocks | Market::Options => series_key,
        Market::Crypto(_) => format!("crypto|{series_key}"),
    };
    let hash = param_hash(&symbols, start, end, &series_key);
    let first_day = match market {
        Market::Stocks | Market::Options => data_core::time::new_york_date(start),
        Market::Crypto(_) => data_core::dataset::calendar::utc_date(start),
    };
    let first_day = days_from_civil(
        chrono::Datelike::year(&first_day) as i64,
        chrono::Datelike::month(&first_day),
        chrono::Datelike::day(&first_day),
    );
    let mut cursor = match params.get("page_token").filter(|t| !t.is_empty()) {
        None => Cursor {
            sym: 0,
            day: first_day,
            i: 0,
        },
        Some(t) => match decode_token(t, hash) {
            Some(c) if c.sym < symbols.len() => c,
            _ => return Err(bad_request("invalid page token")),
        },
    };

    let mut out = Vec::with_capacity(budget.min(MAX_LIMIT) * 140 + 64);
    out.extend_from_slice(b"{\"");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\":");
    out.push(if single { b'[' } else { b'{' });
    let mut emitted = 0usize;
    let mut open_symbol: Option<usize> = None;
    let mut next: Option<Cursor> = None;
    // Each symbol's dividends and their factors, worked out once per request.
    let mut dividends_of: HashMap<String, Vec<(chrono::NaiveDate, f64)>> = HashMap::new();
    let dates: Vec<chrono::NaiveDate> = match market {
        Market::Stocks | Market::Options => new_york_dates(start, end).collect(),
        Market::Crypto(_) => crypto::utc_days(start, end),
    };
    'symbols: while cursor.sym < symbols.len() {
        let sym = &symbols[cursor.sym];
        for date in dates.iter().copied() {
            let day = days_from_civil(
                chrono::Datelike::year(&date) as i64,
                chrono::Datelike::month(&date),
                chrono::Datelike::day(&date),
            );
            if day < cursor.day {
                continue;
            }
            if cfg.no_data_symbols.iter().any(|s| s == sym) {
                continue;
            }
            let source = match market {
                Market::Stocks => traded_as(sym, date, asof),
                Market::Crypto(_) | Market::Options => Some(sym.as_str()),
            };
            let Some(source) = source else {
                continue;
            };
            let per_day = cfg.quotes_per_day;
            let Some(mut dq) =
                DaySeries::new(kind, source, market, feed, date, per_day, (width, now))
            else {
                continue;
            };
            if split_adjusted || dividend_adjusted {
                let splits = match split_adjusted {
                    true => super::actions::split_factor(sym, date),
                    false => 1.0,
                };
                let dividends: f64 = match dividend_adjusted {
                    true => {
                        let today = chrono::DateTime::from_timestamp_nanos(now).date_naive();
                        let all = dividends_of.entry(sym.clone()).or_insert_with(|| {
                            super::actions::dividend_factors(sym, date, today, per_day)
                        });
                        all.iter()
                            .filter(|(ex, _)| *ex > date)
                            .map(|(_, f)| f)
                            .product()
                    }
                    false => 1.0,
                };
                dq.adjust(splits * dividends, splits);
            }
            let lo = dq
                .lower_bound(start)
                .max(if day == cursor.day { cursor.i } else { 0 });
            // Nothing from the future: a session still in progress is served up to now.
            let hi = dq.lower_bound(end.min(now).saturating_add(1));
            if lo >= hi {
                continue;
            }
            if emitted == budget {
                next = Some(Cursor {
                    sym: cursor.sym,
                    day,
                    i: lo,
                });
                break 'symbols;
            }
            for i in lo..hi {
                if emitted == budget {
                    next = Some(Cursor {
                        sym: cursor.sym,
                        day,
                        i,
                    });
                    break 'symbols;
                }
                if open_symbol != Some(cursor.sym) {
                    if !single {
                        if open_symbol.is_some() {
                            out.extend_from_slice(b"],");
                        }
                        out.push(b'"');
                        out.extend_from_slice(sym.as_bytes());
                        out.extend_from_slice(b"\":[");
                    }
                    open_symbol = Some(cursor.sym);
                } else {
                    out.push(b',');
                }
                dq.write(i, &mut out);
                emitted += 1;
            }
        }
        cursor = Cursor {
            sym: cursor.sym + 1,
            day: first_day,
            i: 0,
        };
    }
    if single {
        out.push(b']');
        out.extend_from_slice(br#","symbol":"#);
        out.extend_from_slice(
            serde_json::to_string(&symbols[0])
                .unwrap_or_default()
                .as_bytes(),
        );
    } else {
        if open_symbol.is_some() {
            out.push(b']');
        }
        out.push(b'}');
    }
    out.extend_from_slice(br#","next_page_token":"#);
    match next {
        Some(c) => {
            out.push(b'"');
            out.extend_from_slice(encode_token(hash, c).as_bytes());
            out.push(b'"');
        }
        None => out.extend_from_slice(b"null"),
    }
    out.push(b'}');
    Ok(out)
}
