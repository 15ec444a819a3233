//! Deterministic synthetic quotes for the stand-in, computed by index so that any page of any
//! day can be produced without generating the ones before it.
//!
//! A (symbol, feed, New York date) has `per_day` quotes on NYSE trading days and none at
//! weekends and exchange holidays (`data_core::nyse`), between 04:00 and 20:00 New York time:
//! 10% pre-market, 80% in regular hours (09:30–16:00), 10% after hours, so regular hours are
//! denser. On an early close the session is cut short: regular hours end at 13:00 and
//! extended hours at 17:00. Quote `i` lies in its own time slot, which
//! keeps times non-decreasing; about one quote in 40 repeats the previous quote's exact
//! nanosecond, as real feeds do. Prices are whole cents with bid < ask; sizes are round lots
//! before 2025-11-03 and shares from then on, as Alpaca documents.

pub use crate::record::write_time;
use crate::record::Record;
use chrono::{Datelike, NaiveDate};
use data_core::time::{days_from_civil, new_york_time_nanos, NANOS_PER_SEC};

const EXCHANGES: &[u8] = b"QPZKVJYXNHAUMB";
/// 2025-11-03: Alpaca's quote sizes switch from round lots to shares.
const SHARES_FROM_DAY: i64 = 20_395;

pub(super) fn mix(mut z: u64) -> u64 {
    // splitmix64 finaliser: a fast, well-distributed hash of an index.
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

pub(super) fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01B3)
    })
}

/// How many quotes a (feed, day) has per weekday: the IEX feed carries a tenth of SIP's.
pub(crate) fn per_day_for_feed(per_day: u32, feed: &str) -> u32 {
    if feed == "iex" {
        per_day / 10
    } else {
        per_day
    }
}

/// One generated quote, in the units the API sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenQuote {
    pub t: i64,
    pub bid_exchange: u8,
    pub bid_cents: i64,
    pub bid_size: u32,
    pub ask_exchange: u8,
    pub ask_cents: i64,
    pub ask_size: u32,
    /// The condition array as compact JSON text, e.g. `["R"]`.
    pub conditions: &'static str,
    pub tape: u8,
}

impl GenQuote {
    pub fn bid_price(&self) -> f64 {
        self.bid_cents as f64 / 100.0
    }
    pub fn ask_price(&self) -> f64 {
        self.ask_cents as f64 / 100.0
    }
}

/// `quotes` of `symbol` as the importer holds them after decoding (for benchmarks and
/// checks): one pipeline batch, `seq` numbering equal timestamps.
pub fn quotes_batch(symbol: &str, quotes: &[GenQuote]) -> anyhow::Result<arrow_array::RecordBatch> {
    use data_core::batch::{Builder, Builders};
    let cols = data_core::dataset::Kind::Quotes.columns();
    let mut b = Builders::new(cols, quotes.len());
    let mut last_t = None;
    let mut seq = 0u32;
    let char_of = |c: u8| char::from(c).to_string();
    for q in quotes {
        seq = if last_t == Some(q.t) { seq + 1 } else { 0 };
        last_t = Some(q.t);
        for (c, part) in cols.iter().zip(&mut b.parts) {
            match (c.name, part) {
                ("symbol", Builder::Utf8(s)) => s.append_value(symbol),
                ("t", Builder::Ts(v)) => v.push(q.t),
                ("seq", Builder::U32(v)) => v.push(seq),
                ("bid_exchange", Builder::Utf8(s)) => s.append_value(char_of(q.bid_exchange)),
                ("bid_price", Builder::F64(v)) => v.push(q.bid_price()),
                ("bid_size", Builder::U32(v)) => v.push(q.bid_size),
                ("ask_exchange", Builder::Utf8(s)) => s.append_value(char_of(q.ask_exchange)),
                ("ask_price", Builder::F64(v)) => v.push(q.ask_price()),
                ("ask_size", Builder::U32(v)) => v.push(q.ask_size),
                ("conditions", list) => list.push_json_list(q.conditions)?,
                ("tape", Builder::Utf8(s)) => s.append_value(char_of(q.tape)),
                (name, _) => anyhow::bail!("quotes have no column {name}"),
            }
        }
    }
    b.finish()
}

#[derive(Debug, Clone, Copy)]
struct Segment {
    start_ns: i64,
    dur_ns: i64,
    first: u32,
    count: u32,
}

/// The quotes of one symbol on one NYSE trading day.
#[derive(Debug, Clone)]
pub struct DayQuotes {
    seed: u64,
    n: u32,
    day: i64,
    segments: [Segment; 3],
    base_cents: f64,
    tape: u8,
    shares: bool,
}

impl DayQuotes {
    /// `None` at weekends and on exchange holidays (no trading, no quotes).
    pub fn new(symbol: &str, feed: &str, date: NaiveDate, per_day: u32) -> Option<Self> {
        let session = data_core::nyse::session(date);
        let (Some(close), Some(end)) = (session.regular_close(), session.extended_close()) else {
            return None;
        };
        if per_day == 0 {
            return None;
        }
        let n = per_day_for_feed(per_day, feed);
        if n == 0 {
            return None;
        }
        let day = days_from_civil(date.year() as i64, date.month(), date.day());
        let sym_seed = fnv(symbol);
        let seed = mix(sym_seed ^ fnv(feed) ^ (day as u64).wrapping_mul(0x2545_F491_4F6C_DD1D));
        let open = new_york_time_nanos(date, 4, 0);
        let regular = new_york_time_nanos(date, 9, 30);
        let close = new_york_time_nanos(date, close.0, close.1);
        let end = new_york_time_nanos(date, end.0, end.1);
        let pre = n / 10;
        let post = n / 10;
        let reg = n - pre - post;
        let seg = |start_ns: i64, end_ns: i64, first: u32, count: u32| Segment {
            start_ns,
            dur_ns: end_ns - start_ns,
            first,
            count,
        };
        Some(DayQuotes {
            seed,
            n,
            day,
            segments: [
                seg(open, regular, 0, pre),
                seg(regular, close, pre, reg),
                seg(close, end, pre + reg, post),
            ],
            base_cents: 2_000.0 + (mix(sym_seed) % 48_000) as f64,
            tape: b"ABC"[(mix(sym_seed ^ 7) % 3) as usize],
            shares: day >= SHARES_FROM_DAY,
        })
    }

    pub fn len(&self) -> u32 {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    fn hash(&self, i: u32, salt: u64) -> u64 {
        mix(self.seed ^ ((i as u64) << 8) ^ salt)
    }

    fn segment(&self, i: u32) -> &Segment {
        self.segments
            .iter()
            .find(|s| i < s.first + s.count)
            .unwrap_or(&self.segments[2])
    }

    fn shares_previous_time(&self, i: u32) -> bool {
        let s = self.segment(i);
        i > s.first && self.hash(i, 1).is_multiple_of(40)
    }

    /// Time of quote `i` (non-decreasing in `i`).
    pub fn time(&self, mut i: u32) -> i64 {
        while self.shares_previous_time(i) {
            i -= 1;
        }
        let s = self.segment(i);
        let w = (s.dur_ns / s.count.max(1) as i64).max(1);
        let slot = s.start_ns + (i - s.first) as i64 * w;
        let h = self.hash(i, 2);
        let t = slot + (h % w as u64) as i64;
        // Alpaca trims trailing zeros, so fraction lengths vary: round some times to whole
        // milliseconds or seconds when that stays inside the slot.
        let t = match (h >> 40) % 50 {
            0 => t - t.rem_euclid(NANOS_PER_SEC),
            1..=5 => t - t.rem_euclid(1_000_000),
            _ => t,
        };
        t.max(slot)
    }

    /// The first index whose time is at or after `t_ns` (`len()` if none).
    pub fn lower_bound(&self, t_ns: i64) -> u32 {
        first_at(self.n, t_ns, |i| self.time(i))
    }

    pub fn quote(&self, i: u32) -> GenQuote {
        let t = self.time(i);
        let h = self.hash(i, 3);
        let s = self.segment(i);
        let extended = s.first != self.segments[1].first;
        // A slow daily drift plus an intraday wave plus a few cents of noise.
        let frac = (t - self.segments[0].start_ns) as f64 / 57_600e9;
        let drift =
            1.0 + 0.05 * ((self.day as f64) * 0.037 + (self.seed % 628) as f64 / 100.0).sin();
        let wave = 1.0 + 0.01 * (frac * 18.85 + (self.seed % 314) as f64 / 50.0).sin();
        let noise = (h % 7) as f64 - 3.0;
        let mid = (self.base_cents * drift * wave + noise).round() as i64;
        let spread = 1 + ((h >> 8) % 3) as i64;
        let bid_cents = (mid - spread / 2).max(1);
        let ask_cents = bid_cents + spread;
        let size = |salt: u64| -> u32 {
            let h = self.hash(i, salt);
            let lots = if h.is_multiple_of(20) {
                10 + (h >> 8) % 90
            } else {
                1 + (h >> 8) % 9
            } as u32;
            if self.shares {
                lots * 100
                    + if h.is_multiple_of(3) {
                        ((h >> 20) % 100) as u32
                    } else {
                        0
                    }
            } else {
                lots
            }
        };
        let bx = EXCHANGES[((h >> 16) % EXCHANGES.len() as u64) as usize];
        let ax = EXCHANGES[((h >> 24) % EXCHANGES.len() as u64) as usize];
        let pick = (h >> 32) % 1000;
        if extended && pick < 2 {
            // No active bid: Alpaca sends a space for the exchange and zero price and size.
            return GenQuote {
                t,
                bid_exchange: b' ',
                bid_cents: 0,
                bid_size: 0,
                ask_exchange: ax,
                ask_cents,
                ask_size: size(4),
                conditions: r#"["Y"]"#,
                tape: self.tape,
            };
        }
        let conditions = match pick {
            0..=9 => r#"[" ","R"]"#,
            10..=29 => r#"["L"]"#,
            _ => r#"["R"]"#,
        };
        GenQuote {
            t,
            bid_exchange: bx,
            bid_cents,
            bid_size: size(5),
            ask_exchange: ax,
            ask_cents,
            ask_size: size(6),
            conditions,
            tape: self.tape,
        }
    }
}

pub use data_core::time::new_york_dates;

/// Every quote of `symbol` with `start_ns <= t <= end_ns`, in order: what the stand-in serves
/// for that range, for tests and checks to compare an import against.
pub fn quotes_between<'a>(
    symbol: &'a str,
    feed: &str,
    start_ns: i64,
    end_ns: i64,
    per_day: u32,
) -> impl Iterator<Item = GenQuote> + 'a {
    let feed = feed.to_string();
    new_york_dates(start_ns, end_ns)
        .filter_map(move |d| DayQuotes::new(symbol, &feed, d, per_day))
        .flat_map(move |day| {
            let lo = day.lower_bound(start_ns);
            let hi = day.lower_bound(end_ns.saturating_add(1));
            (lo..hi).map(move |i| day.quote(i))
        })
}

/// Appends one quote as Alpaca's JSON object.
pub fn write_quote(out: &mut Vec<u8>, q: &GenQuote) {
    Record::at(out, q.t)
        .char("bx", q.bid_exchange)
        .float("bp", q.bid_price())
        .int("bs", u64::from(q.bid_size))
        .char("ax", q.ask_exchange)
        .float("ap", q.ask_price())
        .int("as", u64::from(q.ask_size))
        .json("c", q.conditions)
        .char("z", q.tape)
        .end();
}

/// One generated trade, in the units the API sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenTrade {
    pub t: i64,
    pub exchange: u8,
    pub price_cents: i64,
    pub size: u32,
    pub id: u64,
    pub conditions: &'static str,
    pub tape: u8,
    /// `Some("corrected")` for a record that corrects an earlier trade (same id and exchange).
    pub update: Option<&'static str>,
}

impl GenTrade {
    pub fn price(&self) -> f64 {
        self.price_cents as f64 / 100.0
    }
}

/// The trades of one symbol on one New York weekday: a quarter as many as its quotes, each
/// at a quote's price level. Every 97th record corrects the trade three records earlier
/// (same id and exchange, price one cent higher, `u: "corrected"`), as Alpaca's historical
/// trades carry corrections.
#[derive(Debug, Clone)]
pub struct DayTrades {
    /// The trades' own times (a series of a quarter as many slots as the quotes).
    q: DayQuotes,
    /// The symbol's quotes of the day: each trade prints at the bid, the ask or between
    /// them, of the latest quote at or before it, so trades and quotes (and the bars built
    /// from the trades) are one price path.
    quotes: DayQuotes,
    day: i64,
}

const TRADE_CONDITIONS: [&str; 4] = [
    r#"["@"]"#,
    r#"["@","T"]"#,
    r#"["@","F","I"]"#,
    r#"[" ","T","I"]"#,
];

impl DayTrades {
    pub fn new(symbol: &str, feed: &str, date: NaiveDate, quotes_per_day: u32) -> Option<Self> {
        let q = DayQuotes::new(&format!("{symbol}#trades"), feed, date, quotes_per_day / 4)?;
        let quotes = DayQuotes::new(symbol, feed, date, quotes_per_day)?;
        let day = q.day;
        Some(DayTrades { q, quotes, day })
    }

    pub fn len(&self) -> u32 {
        self.q.len()
    }

    pub fn is_empty(&self) -> bool {
        self.q.is_empty()
    }

    pub fn lower_bound(&self, t_ns: i64) -> u32 {
        self.q.lower_bound(t_ns)
    }

    pub(crate) fn is_correction(i: u32) -> bool {
        i % 97 == 96
    }

    /// The quote in force at `t`: the latest at or before it (the day's first, before any).
    pub(crate) fn quote_at(&self, t: i64) -> Option<GenQuote> {
        if self.quotes.is_empty() {
            return None;
        }
        let j = self
            .quotes
            .lower_bound(t.saturating_add(1))
            .saturating_sub(1);
        Some(self.quotes.quote(j))
    }

    fn original(&self, i: u32) -> GenTrade {
        let t = self.q.time(i);
        let h = self.q.hash(i, 11);
        // At the bid, at the ask, or between them (a whole cent), of the quote in force.
        let q = self.quote_at(t).unwrap_or_else(|| self.q.quote(i));
        let price_cents = match (q.bid_cents, h >> 20 & 3) {
            (0, _) => q.ask_cents,
            (bid, 0) => bid,
            (_, 1) => q.ask_cents,
            (bid, _) => (bid + q.ask_cents) / 2,
        };
        GenTrade {
            t,
            exchange: if q.bid_exchange == b' ' || h >> 24 & 1 == 0 {
                q.ask_exchange
            } else {
                q.bid_exchange
            },
            price_cents,
            size: 1 + (h % 400) as u32,
            id: (self.day.rem_euclid(1000) as u64) * 10_000_000 + u64::from(i) + 1,
            conditions: TRADE_CONDITIONS[((h >> 12) % 4) as usize],
            tape: q.tape,
            update: None,
        }
    }

    pub fn trade(&self, i: u32) -> GenTrade {
        if Self::is_correction(i) {
            // Printed at its own time, one cent above where the trade would print then:
            // within a tick of the quote in force, as a real correction is.
            let orig = self.original(i - 3);
            let now = self.original(i);
            GenTrade {
                t: now.t,
                price_cents: now.price_cents + 1,
                update: Some("corrected"),
                ..orig
            }
        } else {
            self.original(i)
        }
    }
}

/// Appends one trade as Alpaca's JSON object.
pub(crate) fn write_trade(out: &mut Vec<u8>, tr: &GenTrade) {
    let mut r = Record::at(out, tr.t);
    r.char("x", tr.exchange)
        .float("p", tr.price())
        .int("s", u64::from(tr.size))
        .json("c", tr.conditions)
        .int("i", tr.id)
        .char("z", tr.tape);
    if let Some(u) = tr.update {
        r.text("u", u.as_bytes());
    }
    r.end();
}

/// One generated bar.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GenBar {
    pub t: i64,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    /// Shares for stocks (whole), units for crypto (fractional).
    pub volume: f64,
    pub trades: u64,
    pub vwap: f64,
}

/// The bar widths the stand-in serves: `1Min` (or `1T`), `5Min`, `15Min`, `1Hour` (`1H`),
/// `1Day` (`1D`); `None` for anything else. `Some(0)` means a New York day.
pub fn timeframe_ns(tf: &str) -> Option<i64> {
    const MIN: i64 = 60 * NANOS_PER_SEC;
    match tf {
        "1Min" | "1T" => Some(MIN),
        "5Min" | "5T" => Some(5 * MIN),
        "15Min" | "15T" => Some(15 * MIN),
        "1Hour" | "1H" => Some(60 * MIN),
        "1Day" | "1D" => Some(0),
        _ => None,
    }
}

/// The bars of a day, made from the day's trades (corrections excluded): open, high, low,
/// close, volume, trade count and VWAP per interval that had a trade. Intraday intervals
/// start at multiples of the width from New York midnight; a daily bar is stamped at New
/// York midnight, as Alpaca stamps it.
pub fn day_bars(trades: &DayTrades, date: NaiveDate, width_ns: i64) -> Vec<GenBar> {
    day_bars_until(trades, date, width_ns, i64::MAX)
}

/// The bars of the day's trades up to `until` (ns, inclusive): a bar whose period is still
/// open then holds only the trades so far, as Alpaca's bars of a session in progress do.
pub(crate) fn day_bars_until(
    trades: &DayTrades,
    date: NaiveDate,
    width_ns: i64,
    until: i64,
) -> Vec<GenBar> {
    let traded = (0..trades.len())
        .filter(|&i| !DayTrades::is_correction(i))
        .map(|i| trades.trade(i))
        .take_while(|tr| tr.t <= until)
        .map(|tr| (tr.t, tr.price(), f64::from(tr.size)));
    bars_of(date, width_ns, traded)
}

/// The first of `n` records in time order (record `i` at `time(i)`) at or after `t_ns`
/// (`n` if none): a binary search, the records never materialised.
pub(crate) fn first_at(n: u32, t_ns: i64, time: impl Fn(u32) -> i64) -> u32 {
    let (mut lo, mut hi) = (0u32, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if time(mid) < t_ns {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// The bars of `width_ns` (0: one daily bar at New York midnight of `date`) of `trades`
/// (time, price, size, in time order), for the intervals that had trades: open, high, low,
/// close, volume, count and the VWAP to 4 decimals, as Alpaca computes them.
pub(crate) fn bars_of(
    date: NaiveDate,
    width_ns: i64,
    trades: impl Iterator<Item = (i64, f64, f64)>,
) -> Vec<GenBar> {
    let midnight = new_york_time_nanos(date, 0, 0);
    let mut bars: Vec<GenBar> = Vec::new();
    let mut notional = 0.0f64;
    for (at, p, v) in trades {
        let t = match width_ns {
            0 => midnight,
            w => midnight + (at - midnight).div_euclid(w) * w,
        };
        match bars.last_mut() {
            Some(b) if b.t == t => {
                b.high = b.high.max(p);
                b.low = b.low.min(p);
                b.close = p;
                b.volume += v;
                b.trades += 1;
                notional += p * v;
            }
            _ => {
                if let Some(b) = bars.last_mut() {
                    b.vwap = (notional / b.volume * 10_000.0).round() / 10_000.0;
                }
                notional = p * v;
                bars.push(GenBar {
                    t,
                    open: p,
                    high: p,
                    low: p,
                    close: p,
                    volume: v,
                    trades: 1,
                    vwap: 0.0,
                });
            }
        }
    }
    if let Some(b) = bars.last_mut() {
        b.vwap = (notional / b.volume * 10_000.0).round() / 10_000.0;
    }
    bars
}

/// Appends one bar as Alpaca's JSON object (whole-share `v`).
pub(crate) fn write_bar(out: &mut Vec<u8>, b: &GenBar) {
    write_bar_of(out, b, true);
}

/// Appends one bar as Alpaca's JSON object: `v` whole (stocks, options) or fractional
/// (crypto).
pub(crate) fn write_bar_of(out: &mut Vec<u8>, b: &GenBar, whole_volume: bool) {
    let mut r = Record::at(out, b.t);
    r.float("o", b.open)
        .float("h", b.high)
        .float("l", b.low)
        .float("c", b.close);
    match whole_volume {
        true => r.int("v", b.volume as u64),
        false => r.float("v", b.volume),
    };
    r.int("n", b.trades).float("vw", b.vwap).end();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn a_weekday_has_per_day_sorted_quotes_in_the_session_and_weekends_none() {
        let d = DayQuotes::new("AAPL", "sip", day("2024-01-02"), 5_000).unwrap();
        assert_eq!(d.len(), 5_000);
        let open = new_york_time_nanos(day("2024-01-02"), 4, 0);
        let end = new_york_time_nanos(day("2024-01-02"), 20, 0);
        let mut prev = i64::MIN;
        let mut shared = 0;
        for i in 0..d.len() {
            let q = d.quote(i);
            assert!(q.t >= prev, "time went back at {i}");
            assert!(q.t >= open && q.t < end);
            assert!(q.bid_cents < q.ask_cents, "bid >= ask at {i}");
            if q.t == prev {
                shared += 1;
            }
            prev = q.t;
        }
        assert!((50..250).contains(&shared), "{shared} shared timestamps");
        assert!(DayQuotes::new("AAPL", "sip", day("2024-01-06"), 5_000).is_none());
        assert!(
            DayQuotes::new("AAPL", "sip", day("2024-07-04"), 5_000).is_none(),
            "a holiday"
        );
        // The day after Thanksgiving closes early: nothing after 17:00 New York.
        let early = DayQuotes::new("AAPL", "sip", day("2024-11-29"), 5_000).unwrap();
        let until = new_york_time_nanos(day("2024-11-29"), 17, 0);
        assert!((0..early.len()).all(|i| early.time(i) < until));
        assert!(early.time(early.len() - 1) > new_york_time_nanos(day("2024-11-29"), 13, 0));
        assert_eq!(
            DayQuotes::new("AAPL", "iex", day("2024-01-02"), 5_000)
                .unwrap()
                .len(),
            500
        );
    }

    #[test]
    fn deterministic_and_regular_hours_denser() {
        let a = DayQuotes::new("MSFT", "sip", day("2024-03-05"), 10_000).unwrap();
        let b = DayQuotes::new("MSFT", "sip", day("2024-03-05"), 10_000).unwrap();
        assert_eq!(a.quote(1234), b.quote(1234));
        let regular = new_york_time_nanos(day("2024-03-05"), 9, 30);
        let close = new_york_time_nanos(day("2024-03-05"), 16, 0);
        let inside = (0..a.len())
            .filter(|&i| (regular..close).contains(&a.time(i)))
            .count();
        assert_eq!(inside, 8_000);
    }

    #[test]
    fn lower_bound_finds_the_first_at_or_after() {
        let d = DayQuotes::new("AAPL", "sip", day("2024-01-02"), 3_000).unwrap();
        for i in [0u32, 1, 17, 1500, 2999] {
            let t = d.time(i);
            let lb = d.lower_bound(t);
            assert_eq!(d.time(lb), t);
            assert!(lb == 0 || d.time(lb - 1) < t);
        }
        assert_eq!(d.lower_bound(i64::MAX), 3_000);
        assert_eq!(d.lower_bound(i64::MIN), 0);
    }

    #[test]
    fn sizes_switch_to_shares_in_november_2025() {
        let before = DayQuotes::new("AAPL", "sip", day("2025-10-31"), 1_000).unwrap();
        let after = DayQuotes::new("AAPL", "sip", day("2025-11-03"), 1_000).unwrap();
        assert!((0..1000).all(|i| before.quote(i).ask_size < 100));
        assert!((0..1000).all(|i| after.quote(i).ask_size >= 100));
    }
}
