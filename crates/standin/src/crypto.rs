//! The stand-in's crypto data (`/v1beta3/crypto/{loc}/...`): deterministic quotes, trades and
//! bars for any `BASE/QUOTE` pair, around the clock (UTC days, weekends included), with
//! fractional sizes and volumes and the trades' taker side, in Alpaca's field names. The same
//! (loc, pair, day) always gives the same rows.

use super::generate::{fnv, mix, GenBar};
use crate::record::Record;
use chrono::NaiveDate;
use data_core::dataset::ShardUnit;

const DAY_NS: i64 = 86_400_000_000_000;

/// The crypto locations Alpaca serves ([MD]'s enum).
pub(crate) const LOCATIONS: [&str; 5] = ["us", "us-1", "us-2", "eu-1", "bs-1"];

/// Whether `symbol` is a pair as Alpaca's v1beta3 accepts it: `^[A-Z]+/[A-Z]+$`.
pub(crate) fn is_pair(symbol: &str) -> bool {
    let letters = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_uppercase());
    symbol
        .split_once('/')
        .is_some_and(|(b, q)| letters(b) && letters(q))
}

/// A fractional size as exchanges report them: 1 to 9 decimals, under 5 units.
fn fractional(r: u64) -> f64 {
    let decimals = 1 + (r % 9) as i32;
    let scale = 10f64.powi(decimals);
    let units = ((r >> 8) % (5 * scale as u64)).max(1);
    units as f64 / scale
}

/// One pair's data on one UTC day at one location.
#[derive(Debug, Clone, Copy)]
pub struct CryptoDay {
    seed: u64,
    midnight: i64,
    base: f64,
    quotes: u32,
}

/// One generated crypto quote.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CryptoQuote {
    pub t: i64,
    pub bid_price: f64,
    pub bid_size: f64,
    pub ask_price: f64,
    pub ask_size: f64,
}

/// One generated crypto trade.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CryptoTrade {
    pub t: i64,
    pub price: f64,
    pub size: f64,
    pub id: u64,
    pub taker_side: u8,
}

impl CryptoDay {
    /// `per_day` quotes (and a quarter as many trades) on UTC day `date`.
    pub fn new(loc: &str, symbol: &str, date: NaiveDate, per_day: u32) -> Self {
        let seed = fnv(&format!("{loc}|{symbol}|{date}"));
        let base = match symbol.split_once('/').map_or(symbol, |(b, _)| b) {
            "BTC" => 42_000.0,
            "ETH" => 2_300.0,
            other => 1.0 + (fnv(other) % 500) as f64,
        };
        CryptoDay {
            seed,
            midnight: data_core::dataset::calendar::utc_midnight(date),
            base,
            quotes: per_day.max(1),
        }
    }

    /// The mid price at `t`: a slow daily swing around the pair's level, in cents.
    fn mid(&self, t: i64) -> f64 {
        let phase = (self.seed % 1000) as f64 / 1000.0;
        let x = (t - self.midnight) as f64 / DAY_NS as f64 + phase;
        (self.base * (1.0 + 0.02 * (x * std::f64::consts::TAU).sin()) * 100.0).round() / 100.0
    }

    /// The time of record `i` of `n` spread over the day, strictly increasing except that
    /// every 97th repeats the one before (equal nanoseconds happen in real data).
    fn time(&self, i: u32, n: u32, salt: u64) -> i64 {
        let i = if i > 0 && i.is_multiple_of(97) {
            i - 1
        } else {
            i
        };
        let step = DAY_NS / i64::from(n);
        let jitter = (mix(self.seed ^ salt ^ u64::from(i)) % (step.max(2) as u64 - 1)) as i64;
        self.midnight + i64::from(i) * step + jitter
    }

    pub fn quote_count(&self) -> u32 {
        self.quotes
    }

    pub fn trade_count(&self) -> u32 {
        (self.quotes / 4).max(1)
    }

    pub fn quote(&self, i: u32) -> CryptoQuote {
        let t = self.time(i, self.quotes, 1);
        let r = mix(self.seed ^ (u64::from(i) << 1));
        let mid = self.mid(t);
        let half = ((1 + r % 20) as f64 / 100.0).max(0.01);
        CryptoQuote {
            t,
            bid_price: ((mid - half) * 100.0).round() / 100.0,
            bid_size: fractional(r >> 5),
            ask_price: ((mid + half) * 100.0).round() / 100.0,
            ask_size: fractional(mix(r)),
        }
    }

    pub fn trade(&self, i: u32) -> CryptoTrade {
        let n = self.trade_count();
        let t = self.time(i, n, 2);
        let r = mix(self.seed ^ (u64::from(i) << 2) ^ 7);
        let day = (self.midnight / DAY_NS) as u64;
        CryptoTrade {
            t,
            price: self.mid(t) + ((r % 11) as f64 - 5.0) / 100.0,
            size: fractional(r >> 7),
            id: day * 1_000_000 + u64::from(i) + 1,
            taker_side: match r % 20 {
                0 => b'-',
                x if x % 2 == 0 => b'B',
                _ => b'S',
            },
        }
    }

    /// The first quote (trade) at or after `t`.
    pub fn lower_bound(&self, t: i64, trades: bool) -> u32 {
        let (n, salt) = match trades {
            true => (self.trade_count(), 2),
            false => (self.quotes, 1),
        };
        let (mut lo, mut hi) = (0u32, n);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.time(mid, n, salt) < t {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// The day's bars of `width_ns` (0: one daily bar stamped at UTC midnight), every
    /// interval of the day: from its trades, or when it had none, volume 0 and the quotes'
    /// mid price, as Alpaca's crypto bars are.
    pub fn bars(&self, width_ns: i64) -> Vec<GenBar> {
        let width = if width_ns == 0 { DAY_NS } else { width_ns };
        let intervals = (DAY_NS / width) as usize;
        let mut bars: Vec<GenBar> = (0..intervals)
            .map(|k| {
                let t = self.midnight + k as i64 * width;
                let p = self.mid(t);
                GenBar {
                    t,
                    open: p,
                    high: p,
                    low: p,
                    close: p,
                    volume: 0.0,
                    trades: 0,
                    vwap: p,
                }
            })
            .collect();
        let mut notional = vec![0.0f64; intervals];
        for i in 0..self.trade_count() {
            let tr = self.trade(i);
            let k = (((tr.t - self.midnight) / width) as usize).min(intervals - 1);
            let b = &mut bars[k];
            if b.trades == 0 {
                (b.open, b.high, b.low) = (tr.price, tr.price, tr.price);
            }
            b.high = b.high.max(tr.price);
            b.low = b.low.min(tr.price);
            b.close = tr.price;
            b.volume += tr.size;
            b.trades += 1;
            notional[k] += tr.price * tr.size;
        }
        for (b, n) in bars.iter_mut().zip(notional) {
            if b.trades > 0 {
                b.vwap = (n / b.volume * 10_000.0).round() / 10_000.0;
            }
        }
        bars
    }
}

/// The UTC days of `[start, end]`.
pub(crate) fn utc_days(start_ns: i64, end_ns: i64) -> Vec<NaiveDate> {
    ShardUnit::UtcDay.keys_in(start_ns, end_ns)
}

/// Appends one crypto quote as Alpaca's JSON object.
pub fn write_quote(out: &mut Vec<u8>, q: &CryptoQuote) {
    let mut r = Record::at(out, q.t);
    for (key, v) in [
        ("bp", q.bid_price),
        ("bs", q.bid_size),
        ("ap", q.ask_price),
        ("as", q.ask_size),
    ] {
        r.float(key, v);
    }
    r.end();
}

/// Appends one crypto trade as Alpaca's JSON object.
pub(crate) fn write_trade(out: &mut Vec<u8>, tr: &CryptoTrade) {
    Record::at(out, tr.t)
        .float("p", tr.price)
        .float("s", tr.size)
        .int("i", tr.id)
        .char("tks", tr.taker_side)
        .end();
}

/// Appends one crypto bar as Alpaca's JSON object (fractional `v`).
pub(crate) fn write_bar(out: &mut Vec<u8>, b: &GenBar) {
    crate::generate::write_bar_of(out, b, false);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_deterministic_ordered_and_whole() {
        let date = NaiveDate::from_ymd_opt(2024, 1, 6).unwrap(); // a Saturday
        let day = CryptoDay::new("us", "BTC/USD", date, 1000);
        let again = CryptoDay::new("us", "BTC/USD", date, 1000);
        let mut last = day.midnight;
        for i in 0..day.quote_count() {
            let q = day.quote(i);
            assert_eq!(q, again.quote(i));
            assert!(q.t >= last && q.t < day.midnight + DAY_NS);
            assert!(q.bid_price < q.ask_price && q.bid_size > 0.0);
            last = q.t;
        }
        assert_eq!(day.lower_bound(day.midnight, false), 0);
        assert_eq!(
            day.lower_bound(day.midnight + DAY_NS, true),
            day.trade_count()
        );
        let bars = day.bars(60 * 60 * 1_000_000_000);
        assert_eq!(bars.len(), 24);
        assert_eq!(
            bars.iter().map(|b| b.trades).sum::<u64>(),
            u64::from(day.trade_count())
        );
        assert!(is_pair("BTC/USD") && !is_pair("BTCUSD") && !is_pair("BTC/usd"));
    }
}
