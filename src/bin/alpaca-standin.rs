//! `alpaca-standin`: the offline Alpaca Market Data stand-in, served over HTTP for CI,
//! benchmarks and trying `data` without an Alpaca account. Prints
//! `alpaca-standin listening on http://ADDR` once it accepts connections.

use clap::Parser;
use data::standin::{Standin, StandinConfig, DEFAULT_QUOTES_PER_DAY};
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

/// Offline stand-in for the Alpaca Market Data v2 stock endpoints, the v1beta3 crypto
/// endpoints (and the trading API's /v2/calendar)
#[derive(Debug, Parser)]
#[command(name = "alpaca-standin", version)]
struct Args {
    /// Address to listen on (port 0 picks a free port)
    #[arg(long, default_value = "127.0.0.1:8181")]
    listen: String,
    /// Quotes per symbol per weekday on the SIP feed (IEX serves a tenth)
    #[arg(long, default_value_t = DEFAULT_QUOTES_PER_DAY)]
    quotes_per_day: u32,
    /// Require this APCA-API-KEY-ID (403 otherwise; any non-empty key when unset)
    #[arg(long, requires = "secret")]
    key: Option<String>,
    /// Require this APCA-API-SECRET-KEY
    #[arg(long, requires = "key")]
    secret: Option<String>,
    /// Requests allowed per rate window; more get 429 with X-RateLimit-* headers
    #[arg(long)]
    rate_limit: Option<u32>,
    /// Rate window length in milliseconds (Alpaca: one minute)
    #[arg(long, default_value_t = 60_000)]
    rate_window_ms: u64,
    /// Every Nth request fails with 500, 502, 503, 504 in turn
    #[arg(long)]
    fail_every: Option<u64>,
    /// Every request after the Nth fails with 503 (an outage mid-import)
    #[arg(long)]
    fail_after: Option<u64>,
    /// Every Nth request sends half its body, then drops the connection
    #[arg(long)]
    truncate_every: Option<u64>,
    /// Serve at most N quotes per page, whatever the limit (short pages with a token)
    #[arg(long)]
    max_page: Option<usize>,
    /// Delay every data response by this many milliseconds
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// Send 403 and 5xx errors as nginx-style HTML pages instead of JSON
    #[arg(long)]
    html_errors: bool,
    /// Never gzip bodies (by default, requests that accept gzip get gzip, as from Alpaca)
    #[arg(long)]
    no_gzip: bool,
    /// gzip level of the bodies, 0-9 (6, zlib's default, unless set)
    #[arg(long, default_value_t = data::standin::DEFAULT_GZIP_LEVEL,
          value_parser = clap::value_parser!(u32).range(0..=9))]
    gzip_level: u32,
    /// Keep every page as sent and serve it again from memory to the same request (for
    /// profiling the client alone; memory grows with the pages served)
    #[arg(long)]
    replay: bool,
    /// Act as Alpaca's free plan: refuse feed=sip requests whose end is within the last 15
    /// minutes (HTTP 403 "subscription does not permit querying recent SIP data")
    #[arg(long)]
    free_plan: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let cfg = StandinConfig {
        quotes_per_day: args.quotes_per_day,
        credentials: args.key.zip(args.secret),
        rate_limit: args.rate_limit,
        rate_window: Duration::from_millis(args.rate_window_ms.max(1)),
        rate_headers_on_429_only: false,
        fail_every: args.fail_every,
        fail_after: args.fail_after,
        truncate_every: args.truncate_every,
        max_page: args.max_page,
        delay: Duration::from_millis(args.delay_ms),
        html_errors: args.html_errors,
        no_data_symbols: Vec::new(),
        gzip: !args.no_gzip,
        gzip_level: args.gzip_level,
        replay: args.replay,
        sip_delay: args.free_plan.then_some(Duration::from_secs(15 * 60)),
        // Whoever imports from it is told its rows are synthetic (`data` marks them).
        says_synthetic: true,
        fixed_now: None,
    };
    let runtime = match data::cli::runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    runtime.block_on(async {
        let listener = match tokio::net::TcpListener::bind(&args.listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: cannot listen on {}: {e}", args.listen);
                return ExitCode::FAILURE;
            }
        };
        let standin = match Standin::start_on(listener, cfg) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: cannot start the stand-in: {e}");
                return ExitCode::FAILURE;
            }
        };
        println!("alpaca-standin listening on {}", standin.url());
        let _ = std::io::stdout().flush();
        tokio::select! {
            _ = standin.wait() => ExitCode::FAILURE,
            _ = tokio::signal::ctrl_c() => ExitCode::SUCCESS,
        }
    })
}
