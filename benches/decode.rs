//! The page decoder alone, on pages of AAPL quotes as the stand-in writes them (10,000
//! records a page, no HTTP, no gzip): quotes per second (median of `BENCH_RUNS`, default 5)
//! and, for instruction counts that the machine's noise does not touch, a fixed amount of
//! work to run under `valgrind --tool=callgrind`:
//!
//! ```sh
//! cargo bench --bench decode
//! BENCH_DAYS=2 BENCH_RUNS=1 valgrind --tool=callgrind target/release/deps/decode-*
//! ```
//!
//! `BENCH_DAYS` (default 20) sets how many trading days of 2024 are decoded per run.
//!
//! Beside it, in the same run, the least any general JSON parser does with the same pages:
//! serde_json validating and skipping every value (`IgnoredAny`: no value is built), and
//! simd-json building its tape (SIMD, with runtime CPU detection; on a copy of the page, as
//! it parses in place). The decoder does more than either — every field into its Arrow
//! column, times parsed — so a parser slower than the decoder alone could not make it faster.

use data::dataset::Kind;
use data::model::Symbol;
use data::source::page::decode_page;
use data::standin::generate::{write_quote, DayQuotes};
use std::time::Instant;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The days' quotes as pages of up to 10,000 records.
fn pages(days: usize) -> Vec<Vec<u8>> {
    let mut pages = Vec::new();
    let mut date = chrono::NaiveDate::from_ymd_opt(2024, 1, 2).expect("date");
    let mut done = 0;
    while done < days {
        if let Some(day) = DayQuotes::new("AAPL", "sip", date, 37_000) {
            let mut i = 0;
            while i < day.len() {
                let mut body = br#"{"quotes":{"AAPL":["#.to_vec();
                for k in i..day.len().min(i + 10_000) {
                    if k > i {
                        body.push(b',');
                    }
                    write_quote(&mut body, &day.quote(k));
                }
                i = day.len().min(i + 10_000);
                body.extend_from_slice(
                    br#"]},"next_page_token":"QUFQTHwxNzA0MjA1MDAwMDAwMDAwMDAw"}"#,
                );
                pages.push(body);
            }
            done += 1;
        }
        date = date.succ_opt().expect("date");
    }
    pages
}

fn main() {
    let runs = env_usize("BENCH_RUNS", 5).max(1);
    let pages = pages(env_usize("BENCH_DAYS", 20).max(1));
    let bytes: usize = pages.iter().map(Vec::len).sum();
    let symbols = [Symbol::parse("AAPL").expect("symbol")];
    let cols = Kind::Quotes.columns();
    let mut times = Vec::new();
    let mut rows = 0;
    for _ in 0..runs {
        let started = Instant::now();
        rows = 0;
        for body in &pages {
            let page = decode_page(body, cols, &symbols).expect("decode");
            rows += page.rows();
        }
        times.push(started.elapsed().as_secs_f64());
    }
    let median = |mut times: Vec<f64>| {
        times.sort_by(f64::total_cmp);
        times[times.len() / 2]
    };
    let decode = median(times);
    let (mut serde, mut simd) = (Vec::new(), Vec::new());
    let mut copy = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        for body in &pages {
            serde_json::from_slice::<serde::de::IgnoredAny>(body).expect("serde_json");
        }
        serde.push(started.elapsed().as_secs_f64());
        let started = Instant::now();
        for body in &pages {
            copy.clear();
            copy.extend_from_slice(body);
            simd_json::to_tape(&mut copy).expect("simd-json");
        }
        simd.push(started.elapsed().as_secs_f64());
    }
    println!(
        "decode: {rows} quotes ({:.1} MB of JSON, {:.0} bytes/quote) in {decode:.3} s (median of {runs}): {:.0} quotes/s",
        bytes as f64 / 1e6,
        bytes as f64 / rows as f64,
        rows as f64 / decode
    );
    for (name, t) in [
        ("serde_json, parse and skip (IgnoredAny)", median(serde)),
        ("simd-json, tape only (copy + to_tape)", median(simd)),
    ] {
        println!(
            "{name}: {t:.3} s, {:.0} quotes/s; the decoder takes {:.0}% of its time",
            rows as f64 / t,
            100.0 * decode / t
        );
    }
}
