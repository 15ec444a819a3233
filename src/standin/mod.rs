//! The offline Alpaca stand-in: an HTTP server speaking the v2 stock quotes endpoints
//! (multi-symbol `/v2/stocks/quotes?symbols=` and single-symbol `/v2/stocks/{symbol}/quotes`)
//! with deterministic synthetic data (see `generate`), real paging, real error shapes and
//! injectable faults. Tests start it in-process with [`Standin::start`]; the
//! `alpaca-standin` binary serves it for CI, benchmarks and offline use.
//!
//! Behaviour follows ../shared/alpaca-api.md: auth headers required (401 without, 403 when
//! they do not match configured keys); `limit` 1..=10000, default 1000; pages ordered by
//! symbol then time with one shared budget; opaque page tokens bound to the query (400 when
//! bad); `next_page_token: null` on the last page; `{"quotes":{}}` when empty; inclusive
//! `start`/`end` as RFC 3339 (`Z` or offset, 0–9 fraction digits) or `YYYY-MM-DD` (a date
//! means that UTC day: 00:00 for start, the day's last nanosecond for end);
//! `X-RateLimit-Limit/Remaining/Reset` headers. Only `sort=asc` is served.

pub mod generate;

use crate::time::{days_from_civil, parse_rfc3339_nanos, NANOS_PER_SEC};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use generate::{
    day_bars, new_york_dates, timeframe_ns, write_bar, write_quote, write_trade, DayQuotes,
    DayTrades, GenBar,
};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

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
            no_data_symbols: Vec::new(),
        }
    }
}

struct AppState {
    cfg: StandinConfig,
    requests: AtomicU64,
    window: Mutex<(u64, u32)>,
    log: Mutex<Vec<Logged>>,
}

/// One data request as received, for tests that check what was (not) fetched again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    pub symbols: String,
    pub start: Option<String>,
    pub end: Option<String>,
    /// A continuation request (it carried a page token).
    pub continued: bool,
    /// The HTTP status answered.
    pub status: u16,
}

/// A running stand-in (in-process). Dropping it stops the server.
pub struct Standin {
    pub addr: SocketAddr,
    state: Arc<AppState>,
    task: JoinHandle<()>,
}

impl Standin {
    /// Binds 127.0.0.1 on a free port and serves in the background.
    pub async fn start(cfg: StandinConfig) -> std::io::Result<Standin> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        Self::start_on(listener, cfg)
    }

    pub fn start_on(listener: TcpListener, cfg: StandinConfig) -> std::io::Result<Standin> {
        let addr = listener.local_addr()?;
        let state = Arc::new(AppState {
            cfg,
            requests: AtomicU64::new(0),
            window: Mutex::new((0, 0)),
            log: Mutex::new(Vec::new()),
        });
        let app = router(state.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("alpaca-standin: server error: {e}");
            }
        });
        Ok(Standin { addr, state, task })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Data requests received so far (including failed and refused ones).
    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// Every data request received so far, in arrival order.
    pub fn request_log(&self) -> Vec<Logged> {
        self.state
            .log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Serves until the task ends (for the binary).
    pub async fn wait(mut self) {
        let _ = (&mut self.task).await;
    }
}

impl Drop for Standin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v2/stocks/{kind}", get(multi_symbols))
        .route("/v2/stocks/{symbol}/{kind}", get(single_symbol))
        .fallback(|| async {
            json_error(
                StatusCode::NOT_FOUND,
                r#"{"code":40410000,"message":"endpoint not found"}"#,
            )
        })
        .with_state(state)
}

fn not_found() -> Response {
    json_error(
        StatusCode::NOT_FOUND,
        r#"{"code":40410000,"message":"endpoint not found"}"#,
    )
}

fn data_kind(kind: &str) -> Option<&'static str> {
    ["quotes", "trades", "bars"]
        .into_iter()
        .find(|k| *k == kind)
}

async fn multi_symbols(
    State(st): State<Arc<AppState>>,
    Path(kind): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let Some(kind) = data_kind(&kind) else {
        return not_found();
    };
    let symbols: Vec<String> = params
        .get("symbols")
        .map(|s| {
            s.split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let r = handle(&st, kind, &params, &headers, symbols, false).await;
    log_request(&st, &params, &r);
    r
}

fn log_request(st: &AppState, params: &HashMap<String, String>, r: &Response) {
    let entry = Logged {
        symbols: params.get("symbols").cloned().unwrap_or_default(),
        start: params.get("start").cloned(),
        end: params.get("end").cloned(),
        continued: params.contains_key("page_token"),
        status: r.status().as_u16(),
    };
    st.log.lock().unwrap_or_else(|p| p.into_inner()).push(entry);
}

async fn single_symbol(
    State(st): State<Arc<AppState>>,
    Path((symbol, kind)): Path<(String, String)>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let Some(kind) = data_kind(&kind) else {
        return not_found();
    };
    let mut params = params;
    params.insert("symbols".into(), symbol.clone());
    let r = handle(&st, kind, &params, &headers, vec![symbol], true).await;
    log_request(&st, &params, &r);
    r
}

fn json_error(status: StatusCode, body: &str) -> Response {
    let mut r = Response::new(Body::from(body.to_string()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    r
}

fn html_error(status: StatusCode) -> Response {
    let reason = status.canonical_reason().unwrap_or("Error");
    let code = status.as_u16();
    let body = format!(
        "<html>\r\n<head><title>{code} {reason}</title></head>\r\n<body>\r\n<center><h1>{code} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    );
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert("content-type", HeaderValue::from_static("text/html"));
    r
}

/// A request the stand-in refuses: the status and Alpaca's JSON error body.
#[derive(Debug)]
struct Refusal(StatusCode, String);

impl Refusal {
    fn into_response(self) -> Response {
        json_error(self.0, &self.1)
    }
}

fn bad_request(message: &str) -> Refusal {
    Refusal(
        StatusCode::BAD_REQUEST,
        serde_json::json!({"code": 40010001, "message": message}).to_string(),
    )
}

fn unprocessable(message: &str) -> Refusal {
    Refusal(
        StatusCode::UNPROCESSABLE_ENTITY,
        serde_json::json!({"code": 42210000, "message": message}).to_string(),
    )
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

/// Rate-limit bookkeeping: (limit, remaining, reset epoch seconds), or None when unlimited.
fn take_rate_slot(st: &AppState) -> Option<(u32, u32, u64, bool)> {
    let limit = st.cfg.rate_limit?;
    let window_ms = (st.cfg.rate_window.as_millis() as u64).max(1);
    let now = now_ms();
    let index = now / window_ms;
    let mut w = st.window.lock().unwrap_or_else(|p| p.into_inner());
    if w.0 != index {
        *w = (index, 0);
    }
    w.1 += 1;
    let allowed = w.1 <= limit;
    let reset = ((index + 1) * window_ms).div_ceil(1000);
    Some((limit, limit.saturating_sub(w.1), reset, allowed))
}

fn bound(text: Option<&String>, end: bool, what: &str) -> Result<Option<i64>, Refusal> {
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
struct Cursor {
    sym: usize,
    day: i64,
    i: u32,
}

fn encode_token(hash: u64, c: Cursor) -> String {
    let raw = format!("{hash:016x}|{}|{}|{}", c.sym, c.day, c.i);
    raw.bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode_token(token: &str, hash: u64) -> Option<Cursor> {
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

async fn handle(
    st: &AppState,
    kind: &'static str,
    params: &HashMap<String, String>,
    headers: &HeaderMap,
    symbols: Vec<String>,
    single: bool,
) -> Response {
    let n = st.requests.fetch_add(1, Ordering::SeqCst) + 1;
    let cfg = &st.cfg;
    let key = headers
        .get("APCA-API-KEY-ID")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let secret = headers
        .get("APCA-API-SECRET-KEY")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if key.is_empty() || secret.is_empty() {
        return json_error(
            StatusCode::UNAUTHORIZED,
            r#"{"code":40110000,"message":"request is not authorized"}"#,
        );
    }
    if let Some((k, s)) = &cfg.credentials {
        if key != k || secret != s {
            return if cfg.html_errors {
                html_error(StatusCode::FORBIDDEN)
            } else {
                json_error(StatusCode::FORBIDDEN, r#"{"message":"forbidden."}"#)
            };
        }
    }
    let rate = take_rate_slot(st);
    let with_rate_headers = |mut r: Response| {
        let quiet = cfg.rate_headers_on_429_only && r.status() != StatusCode::TOO_MANY_REQUESTS;
        if let Some((limit, remaining, reset, _)) = rate.filter(|_| !quiet) {
            let h = r.headers_mut();
            h.insert("X-RateLimit-Limit", HeaderValue::from(limit));
            h.insert("X-RateLimit-Remaining", HeaderValue::from(remaining));
            h.insert("X-RateLimit-Reset", HeaderValue::from(reset));
        }
        r
    };
    if let Some((_, _, _, false)) = rate {
        return with_rate_headers(json_error(
            StatusCode::TOO_MANY_REQUESTS,
            r#"{"code":42910000,"message":"too many requests."}"#,
        ));
    }
    if cfg.fail_after.is_some_and(|k| n > k) {
        return with_rate_headers(html_error(StatusCode::SERVICE_UNAVAILABLE));
    }
    if let Some(k) = cfg.fail_every.filter(|k| *k > 0 && n.is_multiple_of(*k)) {
        let status = [
            StatusCode::INTERNAL_SERVER_ERROR,
            StatusCode::BAD_GATEWAY,
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::GATEWAY_TIMEOUT,
        ][((n / k) % 4) as usize];
        return with_rate_headers(
            if cfg.html_errors || status != StatusCode::INTERNAL_SERVER_ERROR {
                html_error(status)
            } else {
                json_error(
                    status,
                    r#"{"code":50010000,"message":"internal server error occurred"}"#,
                )
            },
        );
    }

    let body = match page_body(cfg, kind, params, symbols, single) {
        Ok(b) => b,
        Err(r) => return with_rate_headers(r.into_response()),
    };
    if !cfg.delay.is_zero() {
        tokio::time::sleep(cfg.delay).await;
    }
    let truncate = cfg
        .truncate_every
        .is_some_and(|k| k > 0 && n.is_multiple_of(k));
    let body = if truncate {
        // Half the body, then an error: hyper aborts the chunked response mid-stream, so the
        // client sees the connection close before the message completes.
        // The pause lets hyper flush the status line and the first half before the abort.
        use futures_util::StreamExt;
        let half = body[..body.len() / 2].to_vec();
        let first = futures_util::stream::once(async move { Ok::<_, std::io::Error>(half) });
        let cut = futures_util::stream::once(async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "injected truncation",
            ))
        });
        Body::from_stream(first.chain(cut))
    } else {
        Body::from(body)
    };
    let mut r = Response::new(body);
    r.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    with_rate_headers(r)
}

/// One symbol-day of data of the requested kind, indexed in time order.
enum DaySeries {
    Quotes(DayQuotes),
    Trades(DayTrades),
    Bars(Vec<GenBar>),
}

impl DaySeries {
    fn new(
        kind: &str,
        symbol: &str,
        feed: &str,
        date: chrono::NaiveDate,
        per_day: u32,
        width: i64,
    ) -> Option<Self> {
        match kind {
            "trades" => DayTrades::new(symbol, feed, date, per_day).map(DaySeries::Trades),
            "bars" => {
                let trades = DayTrades::new(symbol, feed, date, per_day)?;
                Some(DaySeries::Bars(day_bars(&trades, date, width)))
            }
            _ => DayQuotes::new(symbol, feed, date, per_day).map(DaySeries::Quotes),
        }
    }

    fn lower_bound(&self, t: i64) -> u32 {
        match self {
            DaySeries::Quotes(d) => d.lower_bound(t),
            DaySeries::Trades(d) => d.lower_bound(t),
            DaySeries::Bars(b) => b.partition_point(|b| b.t < t) as u32,
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
        }
    }
}

/// Builds one page of `kind` (quotes, trades, bars) for the request, or the API's error
/// response.
fn page_body(
    cfg: &StandinConfig,
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
    let feed = params.get("feed").map(String::as_str).unwrap_or("sip");
    if !matches!(feed, "sip" | "iex" | "otc" | "boats") {
        return Err(unprocessable(&format!("invalid feed: {feed}")));
    }
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
    let now = now_ms() as i64 * 1_000_000;
    let start = bound(params.get("start"), false, "start")?
        .unwrap_or(now - now.rem_euclid(86_400 * NANOS_PER_SEC));
    let end = bound(params.get("end"), true, "end")?.unwrap_or(now);
    if end < start {
        return Err(unprocessable("end should not be before start"));
    }
    let hash = param_hash(&symbols, start, end, &series_key);
    let first_day = crate::time::new_york_date(start);
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
    let dates: Vec<chrono::NaiveDate> = new_york_dates(start, end).collect();
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
            let Some(dq) = DaySeries::new(kind, sym, feed, date, cfg.quotes_per_day, width) else {
                continue;
            };
            let lo = dq
                .lower_bound(start)
                .max(if day == cursor.day { cursor.i } else { 0 });
            let hi = dq.lower_bound(end.saturating_add(1));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_bound_to_the_query() {
        let c = Cursor {
            sym: 1,
            day: 19_724,
            i: 1234,
        };
        let t = encode_token(42, c);
        assert_eq!(decode_token(&t, 42), Some(c));
        assert_eq!(decode_token(&t, 43), None);
        assert_eq!(decode_token("zz", 42), None);
        assert_eq!(decode_token("not a token", 42), None);
    }

    #[test]
    fn date_bounds_cover_the_utc_day() {
        let s = bound(Some(&"2024-01-02".to_string()), false, "start")
            .unwrap()
            .unwrap();
        let e = bound(Some(&"2024-01-02".to_string()), true, "end")
            .unwrap()
            .unwrap();
        assert_eq!(e - s, 86_400 * NANOS_PER_SEC - 1);
        assert!(bound(Some(&"2024-02-30".to_string()), false, "start").is_err());
    }
}
