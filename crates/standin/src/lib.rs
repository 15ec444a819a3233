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
//!
//! Crypto (`/v1beta3/crypto/{loc}/{quotes,trades,bars}`, see `crypto`): public (credentials
//! optional, checked when sent), pairs only (`^[A-Z]+/[A-Z]+$`, 400 otherwise), no stock
//! parameter (`feed`, `asof`, ...: 400 `unexpected parameter`), UTC days around the clock.

pub mod actions;
pub mod crypto;
pub mod generate;
pub mod options;
pub mod record;
mod refusal;
mod request;
mod trading;

use request::{now_ms, page_body, Market};
pub use request::{
    StandinConfig, DEFAULT_GZIP_LEVEL, DEFAULT_LIMIT, DEFAULT_QUOTES_PER_DAY, MAX_LIMIT,
    RECENT_SIP_MESSAGE,
};

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

struct AppState {
    cfg: StandinConfig,
    requests: AtomicU64,
    window: Mutex<(u64, u32)>,
    log: Mutex<Vec<Logged>>,
    /// Bodies as sent, by request ([`StandinConfig::replay`]).
    replay: Mutex<HashMap<String, Bytes>>,
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
    /// The body was sent gzip-compressed.
    pub gzip: bool,
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
            replay: Mutex::new(HashMap::new()),
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

/// The header every answer of the stand-in carries: its rows are synthetic. The importer
/// asks a non-Alpaca `--api-url` for it before importing and marks the rows it stores from
/// such a server as the stand-in's, however they were fetched (`--standin`, or the
/// `alpaca-standin` binary over HTTP).
pub use data_core::model::SYNTHETIC_HEADER;

async fn mark_synthetic(mut r: Response) -> Response {
    r.headers_mut().insert(
        SYNTHETIC_HEADER,
        axum::http::HeaderValue::from_static("synthetic"),
    );
    r
}

fn router(state: Arc<AppState>) -> Router {
    let says_synthetic = state.cfg.says_synthetic;
    let app = Router::new()
        .route("/v2/stocks/{kind}", get(multi_symbols))
        .route("/v2/stocks/{symbol}/{kind}", get(single_symbol))
        .route("/v2/calendar", get(trading::calendar))
        .route("/v1beta3/crypto/{loc}/{kind}", get(crypto_data))
        .route("/v1beta1/options/{kind}", get(option_data))
        .route("/v2/options/contracts", get(trading::option_contracts))
        .route("/v1/corporate-actions", get(corporate_actions))
        .fallback(|| async {
            json_error(
                StatusCode::NOT_FOUND,
                r#"{"code":40410000,"message":"endpoint not found"}"#,
            )
        })
        .with_state(state);
    match says_synthetic {
        true => app.layer(axum::middleware::map_response(mark_synthetic)),
        false => app,
    }
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
    data_request(&st, Market::Stocks, kind, &params, &headers).await
}

/// A multi-symbol data request of `market`: answered, then logged.
async fn data_request(
    st: &AppState,
    market: Market,
    kind: &'static str,
    params: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Response {
    let symbols = symbols_param(params);
    let r = handle(st, market, kind, params, headers, symbols, false).await;
    log_request(st, params, &r);
    r
}

/// `/v1beta3/crypto/{loc}/{quotes|trades|bars}?symbols=BTC/USD,...`: public (credentials
/// optional, checked when sent), the location in the path.
async fn crypto_data(
    State(st): State<Arc<AppState>>,
    Path((loc, kind)): Path<(String, String)>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let Some(kind) = data_kind(&kind) else {
        return not_found();
    };
    let Some(loc) = crypto::LOCATIONS.into_iter().find(|l| *l == loc) else {
        let body =
            serde_json::json!({"code": 40010001, "message": format!("invalid location: {loc}")});
        return json_error(StatusCode::BAD_REQUEST, &body.to_string());
    };
    data_request(&st, Market::Crypto(loc), kind, &params, &headers).await
}

/// The `symbols` parameter's comma-separated names.
fn symbols_param(params: &HashMap<String, String>) -> Vec<String> {
    params
        .get("symbols")
        .map(|s| {
            s.split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// `/v1beta1/options/{trades|bars}?symbols=AAPL240419P00140000,...`: up to 100 contracts.
async fn option_data(
    State(st): State<Arc<AppState>>,
    Path(kind): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    // Alpaca has no historical option quotes (only the latest).
    let Some(kind) = data_kind(&kind).filter(|k| *k != "quotes") else {
        return not_found();
    };
    data_request(&st, Market::Options, kind, &params, &headers).await
}

/// `GET /v1/corporate-actions` (see `actions::actions_body`): keys required, paced and
/// counted as a data request.
async fn corporate_actions(
    State(st): State<Arc<AppState>>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    json_request(&st, &params, &headers, actions::actions_body).await
}

/// The body of a JSON endpoint (corporate actions, option contracts) for a listing.
type JsonBody = fn(&refusal::Listing) -> Result<String, refusal::Refusal>;

/// A JSON request answered by `body` (params, today, the page cap): keys required, counted,
/// delayed and logged as a data request.
async fn json_request(
    st: &AppState,
    params: &HashMap<String, String>,
    headers: &HeaderMap,
    body: JsonBody,
) -> Response {
    if let Some(refused) = unauthorized(headers) {
        return refused;
    }
    st.requests.fetch_add(1, Ordering::SeqCst);
    if !st.cfg.delay.is_zero() {
        tokio::time::sleep(st.cfg.delay).await;
    }
    let today = chrono::Utc::now().date_naive();
    let listing = refusal::Listing {
        params,
        today,
        max_page: st.cfg.max_page,
    };
    let r = json_answer(body(&listing));
    log_request(st, params, &r);
    r
}

/// A JSON body, or the refusal's status and body.
fn json_answer(body: Result<String, refusal::Refusal>) -> Response {
    match body {
        Ok(body) => {
            let mut r = Response::new(Body::from(body));
            r.headers_mut()
                .insert("content-type", HeaderValue::from_static("application/json"));
            r
        }
        Err(refusal) => json_error(refusal.0, &refusal.1),
    }
}

fn log_request(st: &AppState, params: &HashMap<String, String>, r: &Response) {
    let entry = Logged {
        symbols: params.get("symbols").cloned().unwrap_or_default(),
        start: params.get("start").cloned(),
        end: params.get("end").cloned(),
        continued: params.contains_key("page_token"),
        status: r.status().as_u16(),
        gzip: r.headers().contains_key("content-encoding"),
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
    let r = handle(
        &st,
        Market::Stocks,
        kind,
        &params,
        &headers,
        vec![symbol],
        true,
    )
    .await;
    log_request(&st, &params, &r);
    r
}

/// The trading API's 401 for a request without both key headers.
fn unauthorized(headers: &HeaderMap) -> Option<Response> {
    let present = |h: &str| headers.get(h).is_some_and(|v| !v.is_empty());
    (!present("APCA-API-KEY-ID") || !present("APCA-API-SECRET-KEY")).then(|| {
        json_error(
            StatusCode::UNAUTHORIZED,
            r#"{"code":40110000,"message":"request is not authorized"}"#,
        )
    })
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

async fn handle(
    st: &AppState,
    market: Market,
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
    // Crypto data is public: credentials are optional there (checked when sent).
    let anonymous = key.is_empty() && secret.is_empty();
    let public = matches!(market, Market::Crypto(_));
    if (key.is_empty() || secret.is_empty()) && !(public && anonymous) {
        return json_error(
            StatusCode::UNAUTHORIZED,
            r#"{"code":40110000,"message":"request is not authorized"}"#,
        );
    }
    if let Some((k, s)) = cfg.credentials.as_ref().filter(|_| !(public && anonymous)) {
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

    let truncate = cfg
        .truncate_every
        .is_some_and(|k| k > 0 && n.is_multiple_of(k));
    let gz = cfg.gzip && accepts_gzip(headers) && !truncate;
    let key = (cfg.replay && !truncate).then(|| replay_key(market, kind, single, params, gz));
    let kept = key.as_ref().and_then(|k| {
        let kept = st.replay.lock().unwrap_or_else(|p| p.into_inner());
        kept.get(k).cloned()
    });
    let body = match kept {
        Some(body) => body,
        None => {
            let body = match page_body(cfg, market, kind, params, symbols, single) {
                Ok(b) => b,
                Err(r) => return with_rate_headers(json_error(r.0, &r.1)),
            };
            let sent = Bytes::from(if gz {
                gzip(&body, cfg.gzip_level)
            } else {
                body
            });
            if let Some(k) = key {
                let mut kept = st.replay.lock().unwrap_or_else(|p| p.into_inner());
                kept.insert(k, sent.clone());
            }
            sent
        }
    };
    if !cfg.delay.is_zero() {
        tokio::time::sleep(cfg.delay).await;
    }
    let mut r = if truncate {
        // Half the body, then an error: hyper aborts the chunked response mid-stream, so the
        // client sees the connection close before the message completes.
        // The pause lets hyper flush the status line and the first half before the abort.
        use futures_util::StreamExt;
        let half = body.slice(..body.len() / 2);
        let first = futures_util::stream::once(async move { Ok::<_, std::io::Error>(half) });
        let cut = futures_util::stream::once(async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "injected truncation",
            ))
        });
        Response::new(Body::from_stream(first.chain(cut)))
    } else {
        Response::new(Body::from(body))
    };
    if gz {
        r.headers_mut()
            .insert("content-encoding", HeaderValue::from_static("gzip"));
    }
    r.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    with_rate_headers(r)
}

/// A data request's identity for [`StandinConfig::replay`]: endpoint, parameters in a fixed
/// order, and whether the body goes out gzip-compressed.
fn replay_key(
    market: Market,
    kind: &str,
    single: bool,
    params: &HashMap<String, String>,
    gzip: bool,
) -> String {
    let mut sorted: Vec<_> = params.iter().collect();
    sorted.sort();
    format!("{market:?} {kind} {single} {gzip} {sorted:?}")
}

/// Whether the request's `Accept-Encoding` lists gzip.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all("accept-encoding")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|e| e.split(';').next().is_some_and(|e| e.trim() == "gzip"))
}

/// `body` gzip-compressed at `level` (0-9; above 9 counts as 9).
pub fn gzip(body: &[u8], level: u32) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4),
        flate2::Compression::new(level.min(9)),
    );
    // Writing to a Vec cannot fail.
    let _ = e.write_all(body);
    e.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use data_core::time::NANOS_PER_SEC;
    use request::{bound, decode_token, encode_token, Cursor};

    /// Every level inflates back exactly (the client's own gunzip is tested on these bodies in
    /// `source::gzip`), and the default
    /// compresses as a server's zlib does: well under zlib-rs' level 1 (its quick strategy).
    #[test]
    fn gzip_bodies_inflate_exactly_at_every_level() {
        let params: HashMap<String, String> = [
            ("start", "2024-01-05T00:00:00Z"),
            ("end", "2024-01-06T00:00:00Z"),
            ("limit", "10000"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let cfg = StandinConfig::default();
        let body = page_body(
            &cfg,
            Market::Stocks,
            "quotes",
            &params,
            vec!["AAPL".into()],
            true,
        )
        .unwrap();
        assert!(body.len() > 1_000_000, "{}", body.len());
        for level in 0..=9 {
            let gz = gzip(&body, level);
            let mut back = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut back)
                .unwrap();
            assert_eq!(back, body, "level {level}");
        }
        let (fast, default) = (gzip(&body, 1).len(), gzip(&body, DEFAULT_GZIP_LEVEL).len());
        assert!(
            default * 10 < fast * 7,
            "level 1: {fast} bytes, default: {default}"
        );
    }

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
