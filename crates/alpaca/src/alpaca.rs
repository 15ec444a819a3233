//! The Alpaca Market Data v2 client: builds requests, decodes pages, classifies failures,
//! and streams a symbol's quotes page by page into the pipeline's bounded channel.
//!
//! It owns paging (follow `next_page_token` until null or absent, never stop on a short
//! page) and the quote ordinal `seq`. It must not buffer more than the page in hand, and it
//! knows nothing about where rows are stored. Credentials only ever go into request headers
//! marked sensitive; no error or log line built here contains them.

use super::actions::decode_actions;
use super::pace::{Pacer, RequestStats};
pub use super::page::{decode_page, Page};
pub use super::response::{api_message, ApiError, SeqAssigner};
use data_core::dataset::{Asset, Column, DatasetId, Timeframe};
use data_core::model::{Feed, Symbol};
use data_core::retry::RetryPolicy;
use data_core::time::{format_for_api, new_york_date, DateRange};
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{StatusCode, Url};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub const KEY_ENV: &str = "APCA_API_KEY_ID";
pub const SECRET_ENV: &str = "APCA_API_SECRET_KEY";
pub(crate) const DEFAULT_API_URL: &str = "https://data.alpaca.markets";
/// Alpaca's maximum page size; the importer always asks for full pages.
pub const PAGE_LIMIT: u32 = 10_000;
/// The corporate actions endpoint's maximum page size.
pub(crate) const ACTIONS_PAGE_LIMIT: u32 = 1_000;
/// Requests per minute without credentials (crypto only). Alpaca publishes no figure for
/// its unauthenticated limit, only that it is lower than the free plan's 200; this stays
/// well under it, and the pacer still follows the X-RateLimit headers of the answers.
pub const UNAUTHENTICATED_RATE_LIMIT: u32 = 60;

/// API key pair. `Debug` never shows the values.
#[derive(Clone)]
pub struct Credentials {
    key_id: String,
    secret: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credentials { key_id: <redacted>, secret: <redacted> }")
    }
}

impl Credentials {
    /// No credentials: requests go without the key headers (crypto's public endpoints).
    pub fn anonymous() -> Self {
        Credentials::new("", "")
    }

    pub(crate) fn is_anonymous(&self) -> bool {
        self.key_id.is_empty() && self.secret.is_empty()
    }

    pub fn new(key_id: impl Into<String>, secret: impl Into<String>) -> Self {
        Credentials {
            key_id: key_id.into(),
            secret: secret.into(),
        }
    }

    /// Reads APCA_API_KEY_ID and APCA_API_SECRET_KEY; the error names both, and which is missing.
    pub fn from_env() -> Result<Self, String> {
        let get = |name| {
            std::env::var(name)
                .ok()
                .filter(|v: &String| !v.trim().is_empty())
        };
        match (get(KEY_ENV), get(SECRET_ENV)) {
            (Some(k), Some(s)) => Ok(Credentials::new(k, s)),
            (k, s) => {
                let missing: Vec<&str> = [(KEY_ENV, k.is_none()), (SECRET_ENV, s.is_none())]
                    .iter()
                    .filter(|(_, m)| *m)
                    .map(|(n, _)| *n)
                    .collect();
                Err(format!(
                    "missing Alpaca credentials: set {KEY_ENV} and {SECRET_ENV} ({} not set)",
                    missing.join(" and ")
                ))
            }
        }
    }
}

/// What to ask the API for: the endpoint (`quotes`, `trades`, `bars`) and its extra
/// parameters (`timeframe`, `adjustment` for bars).
#[derive(Debug, Clone)]
pub struct Request {
    /// The endpoint's last segment: `quotes`, `trades`, `bars`.
    pub path: &'static str,
    /// Stocks (`/v2/stocks/...`, with `feed` and `asof`) or crypto
    /// (`/v1beta3/crypto/{loc}/...`, the client's feed being the location).
    pub asset: Asset,
    /// The dataset asked for.
    pub dataset: DatasetId,
    /// Records come sorted by symbol, then time (the market data endpoints), so a symbol's
    /// shard is complete once a later symbol's records arrive. When not (corporate actions,
    /// grouped by type), a request's rows are held to its last page and handed over in
    /// time order.
    pub by_symbol: bool,
    pub extra: Vec<(&'static str, String)>,
    /// The columns of the records it returns.
    pub cols: &'static [Column],
    /// What one request's shard covers, for messages: `days`, `months`.
    pub unit: &'static str,
    /// How many symbols' shards of the same day (month) one request may ask for together
    /// (the multi-symbol endpoint; `limit` is shared across them). 1 for quotes and trades,
    /// whose pages fill with one symbol anyway; more for coarse bars.
    pub symbols_per_request: usize,
}

impl Request {
    /// The request for `dataset`: its endpoint and parameters, and how many symbols one
    /// request may name.
    pub fn for_dataset(dataset: DatasetId) -> Self {
        let symbols_per_request = match dataset {
            DatasetId::Bars { timeframe, .. } => symbols_per_bars_request(timeframe),
            DatasetId::CryptoBars { timeframe } => symbols_per_crypto_bars_request(timeframe),
            DatasetId::OptionBars { timeframe } => symbols_per_option_bars_request(timeframe),
            // A contract's day of trades is a handful of records: 100 contracts (the API's
            // cap) share a request.
            DatasetId::OptionTrades => 100,
            // A month of a hundred symbols' actions is a page or two.
            DatasetId::CorporateActions => 100,
            _ => 1,
        };
        Request {
            path: dataset.api_path(),
            asset: dataset.asset(),
            dataset,
            by_symbol: dataset != DatasetId::CorporateActions,
            extra: dataset
                .api_params()
                .into_iter()
                .map(|(k, v)| (k, v.to_string()))
                .collect(),
            cols: dataset.columns(),
            unit: dataset.unit().noun(),
            symbols_per_request,
        }
    }

    pub fn quotes() -> Self {
        Request::for_dataset(DatasetId::Quotes)
    }
}

/// How many symbols one request for a month of `timeframe` bars should name so that, at
/// most bars a month (the 04:00-20:00 session on 23 weekdays), the page of `PAGE_LIMIT`
/// holds them all: 1Min 1, 5Min 2, 15Min 6, 1Hour 27, 1Day 100 (the cap, which keeps the
/// URL short).
pub(crate) fn symbols_per_bars_request(timeframe: Timeframe) -> usize {
    let per_day = match timeframe {
        Timeframe::Day1 => 1,
        t => t.bars_per_session(),
    };
    (PAGE_LIMIT as usize / (per_day * 23)).clamp(1, 100)
}

/// As [`symbols_per_bars_request`] for a UTC month of crypto bars (24 hours a day, 31
/// days): 1Min 1, 5Min 1, 15Min 3, 1Hour 13, 1Day 100.
pub(crate) fn symbols_per_crypto_bars_request(timeframe: Timeframe) -> usize {
    let per_day = match timeframe {
        Timeframe::Day1 => 1,
        t => t.bars_per_session() * 24 / 16,
    };
    (PAGE_LIMIT as usize / (per_day * 31)).clamp(1, 100)
}

/// As [`symbols_per_bars_request`] for a month of option bars: contracts trade in the
/// regular session (6.5 hours), and a bar exists only for an interval with a trade, which
/// most minutes of most contracts lack; sized for a quarter of the intervals traded: 1Min 4,
/// 5Min 22, 15Min 66, 1Hour and 1Day 100. A request over its page simply pages on.
pub(crate) fn symbols_per_option_bars_request(timeframe: Timeframe) -> usize {
    let per_day = match timeframe {
        Timeframe::Day1 => 1,
        t => (t.bars_per_session() * 390).div_ceil(960),
    };
    (4 * PAGE_LIMIT as usize / (per_day * 23)).clamp(1, 100)
}

#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub base_url: String,
    pub feed: Feed,
    pub retry: RetryPolicy,
    pub request_timeout: Duration,
    /// Requests per minute for the pacer; 0 = no client-side limit.
    pub rate_limit: u32,
    /// Alpaca's `asof` (renamed tickers), sent when set.
    pub asof: Option<String>,
}

thread_local! {
    /// Each thread's buffer for inflating gzip pages: it grows to the largest page (a few
    /// MB) and is reused, so a page costs no allocation or zeroing of its text.
    static INFLATED: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The Alpaca data client. Cheap to clone.
#[derive(Clone)]
pub struct AlpacaClient {
    http: reqwest::Client,
    base: Arc<Url>,
    base_display: Arc<str>,
    feed: Feed,
    asof: Option<Arc<str>>,
    /// The plan's requests per minute (0: no client-side limit), for adaptive concurrency.
    pub(crate) rate_per_min: u32,
    retry: RetryPolicy,
    pacer: Arc<Pacer>,
    stats: Arc<RequestStats>,
}

impl AlpacaClient {
    pub fn new(cfg: &ClientConfig, creds: &Credentials) -> Result<Self, String> {
        let trimmed = cfg.base_url.trim_end_matches('/');
        let base = Url::parse(trimmed)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| {
                format!(
                    "invalid Alpaca API URL {:?}: expected http(s)://host[:port], e.g. {DEFAULT_API_URL}",
                    cfg.base_url
                )
            })?;
        let header = |v: &str, name: &str| {
            let mut h = HeaderValue::from_str(v)
                .map_err(|_| format!("{name} contains characters not allowed in an HTTP header"))?;
            h.set_sensitive(true);
            Ok::<_, String>(h)
        };
        let mut headers = HeaderMap::new();
        if !creds.is_anonymous() {
            headers.insert("APCA-API-KEY-ID", header(&creds.key_id, KEY_ENV)?);
            headers.insert("APCA-API-SECRET-KEY", header(&creds.secret, SECRET_ENV)?);
        }
        // Pages come gzipped, as Alpaca serves them; [`super::gzip`] inflates them whole.
        headers.insert(
            reqwest::header::ACCEPT_ENCODING,
            reqwest::header::HeaderValue::from_static("gzip"),
        );
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(concat!("data/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(cfg.request_timeout)
            .redirect(same_origin_redirects())
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(AlpacaClient {
            http,
            base_display: data_core::secrets::redact_url(trimmed).into(),
            base: Arc::new(base),
            feed: cfg.feed,
            asof: cfg.asof.as_deref().map(Arc::from),
            rate_per_min: cfg.rate_limit,
            retry: cfg.retry,
            pacer: Arc::new(Pacer::per_minute(cfg.rate_limit)),
            stats: Arc::new(RequestStats::default()),
        })
    }

    /// The request URL of one quotes page (multi-symbol endpoint, as the official SDKs use).
    #[cfg(test)]
    fn quotes_url(&self, symbol: &Symbol, range: &DateRange, token: Option<&str>) -> Url {
        self.page_url(
            &Request::quotes(),
            std::slice::from_ref(symbol),
            range,
            token,
        )
    }

    /// The request URL of one page of `req`.
    pub fn page_url(
        &self,
        req: &Request,
        symbols: &[Symbol],
        range: &DateRange,
        token: Option<&str>,
    ) -> Url {
        // Corporate actions take New York dates (matched on process dates) and at most
        // 1,000 a page; the market data endpoints RFC 3339 times and 10,000.
        let actions = req.dataset == DatasetId::CorporateActions;
        let (endpoint, start, end, limit) = match req.asset {
            _ if actions => (
                "v1/corporate-actions".to_string(),
                new_york_date(range.start_ns).to_string(),
                new_york_date(range.end_ns).to_string(),
                ACTIONS_PAGE_LIMIT,
            ),
            Asset::Stocks => (
                format!("v2/stocks/{}", req.path),
                format_for_api(range.start_ns),
                format_for_api(range.end_ns),
                PAGE_LIMIT,
            ),
            Asset::Crypto => (
                format!("v1beta3/crypto/{}/{}", self.feed.as_str(), req.path),
                format_for_api(range.start_ns),
                format_for_api(range.end_ns),
                PAGE_LIMIT,
            ),
            Asset::Options => (
                format!("v1beta1/options/{}", req.path),
                format_for_api(range.start_ns),
                format_for_api(range.end_ns),
                PAGE_LIMIT,
            ),
        };
        // Only stock market data takes a feed and asof: crypto's location is in the path,
        // options' historical bars and trades and corporate actions take neither.
        let stock_data = req.asset == Asset::Stocks && !actions;
        let mut url = (*self.base).clone();
        url.set_path(&format!(
            "{}/{endpoint}",
            self.base.path().trim_end_matches('/'),
        ));
        {
            let mut q = url.query_pairs_mut();
            let names: Vec<&str> = symbols.iter().map(Symbol::as_str).collect();
            q.append_pair("symbols", &names.join(","))
                .append_pair("start", &start)
                .append_pair("end", &end)
                .append_pair("limit", &limit.to_string());
            if stock_data {
                q.append_pair("feed", self.feed.as_str());
            }
            q.append_pair("sort", "asc");
            for (k, v) in &req.extra {
                q.append_pair(k, v);
            }
            if let Some(asof) = self.asof.as_ref().filter(|_| stock_data) {
                q.append_pair("asof", asof);
            }
            if let Some(t) = token {
                q.append_pair("page_token", t);
            }
        }
        url
    }

    /// One GET of `url` on any Alpaca host (the trading API's contract list), with this
    /// client's keys, pacing and retry policy; `what` names it in retry lines.
    pub async fn get(&self, url: &Url, what: &str) -> Result<bytes::Bytes, ApiError> {
        self.retry
            .run(what, || async {
                let (body, gzipped) = self.get_once(url).await?;
                match gzipped {
                    true => super::gzip::gunzip(&body).map(bytes::Bytes::from),
                    false => Ok(body),
                }
            })
            .await
    }

    /// Requests, retries and 429s so far (shared by every clone of this client).
    pub fn stats(&self) -> Arc<RequestStats> {
        self.stats.clone()
    }

    /// One request, after waiting for its slot from the pacer; the rate-limit headers of
    /// the response go back to the pacer. Returns the body as sent, and whether it is
    /// gzipped.
    async fn get_once(&self, url: &Url) -> Result<(bytes::Bytes, bool), ApiError> {
        let base = &*self.base_display;
        self.pacer.wait().await;
        self.stats
            .requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let sent = std::time::Instant::now();
        let resp = self
            .http
            .get(url.clone())
            .send()
            .await
            .map_err(|e| ApiError::transport(e, base))?;
        let status = resp.status();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        let (remaining, reset) = (header("X-RateLimit-Remaining"), header("X-RateLimit-Reset"));
        self.pacer.observe(remaining, reset);
        let gzipped = resp
            .headers()
            .get(reqwest::header::CONTENT_ENCODING)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
        if status.is_success() {
            let body = resp.bytes().await.map_err(|e| ApiError::transport(e, base));
            self.stats.responded(sent.elapsed());
            return body.map(|b| (b, gzipped));
        }
        self.stats.responded(sent.elapsed());
        if status == StatusCode::TOO_MANY_REQUESTS {
            self.stats
                .rate_limited
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.pacer.hold_until_reset(reset);
        }
        // A failed read (or inflate) of an error body still leaves the status to act on.
        let body = match resp.bytes().await.unwrap_or_default() {
            gz if gzipped => super::gzip::gunzip(&gz).unwrap_or_default().into(),
            plain => plain,
        };
        let request = match url.query() {
            Some(q) => format!("GET {}?{q}", url.path()),
            None => format!("GET {}", url.path()),
        };
        Err(ApiError::from_status(
            status,
            reset,
            &body,
            self.feed.as_str(),
            &request,
        ))
    }

    /// Fetches and decodes one page of `req`, retrying transient failures per the policy.
    /// A gzip body is inflated into a buffer the thread keeps (see [`INFLATED`]).
    pub async fn page(
        &self,
        req: &Request,
        symbols: &[Symbol],
        range: &DateRange,
        token: Option<&str>,
    ) -> Result<Page, ApiError> {
        let url = self.page_url(req, symbols, range, token);
        let mut calls = 0u32;
        let what = format!("GET {} page", req.path);
        self.retry
            .run(&what, || {
                calls += 1;
                if calls > 1 {
                    self.stats
                        .retries
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                async {
                    let (body, gzipped) = self.get_once(&url).await?;
                    let decode = |body: &[u8]| match req.dataset {
                        DatasetId::CorporateActions => decode_actions(body, symbols),
                        _ => decode_page(body, req.cols, symbols),
                    };
                    if !gzipped {
                        return decode(&body);
                    }
                    // Inflated into this thread's buffer and decoded at once (no await between).
                    INFLATED.with_borrow_mut(|scratch| {
                        let n = super::gzip::inflate(&body, scratch)?;
                        let page = decode(&scratch[..n]);
                        if scratch.len() > 64 << 20 {
                            *scratch = Vec::new();
                        }
                        page
                    })
                }
            })
            .await
    }
}

/// Whether the server at `base_url` is the offline stand-in (its answers carry
/// [`data_core::model::SYNTHETIC_HEADER`]): one GET of its root, without credentials, for a
/// URL that is not Alpaca's own. A server that does not answer is taken not to be.
pub async fn is_standin(base_url: &str) -> bool {
    let Ok(url) = Url::parse(base_url) else {
        return false;
    };
    if url
        .host_str()
        .is_some_and(|h| h == "alpaca.markets" || h.ends_with(".alpaca.markets"))
    {
        return false;
    }
    let Ok(client) = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .build()
    else {
        return false;
    };
    match client.get(url).send().await {
        Ok(r) => r.headers().contains_key(data_core::model::SYNTHETIC_HEADER),
        Err(_) => false,
    }
}

/// Redirects are followed only within the origin the request went to (scheme, host and
/// port), at most 5 deep. The client's default headers carry the APCA key and secret, and
/// reqwest strips only `Authorization` and `Cookie` on a cross-origin hop: a redirect to
/// another host (or from https to http) would hand both to it. Such a redirect fails the
/// request instead, naming where it pointed.
pub(crate) fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let Some(first) = attempt.previous().first() else {
            return attempt.follow();
        };
        let same = first.origin() == attempt.url().origin();
        if !same {
            let to = data_core::secrets::redact_url(
                attempt.url().origin().ascii_serialization().as_str(),
            );
            attempt.error(format!(
                "the server redirected to another origin ({to}); not followed, so the API keys are not sent there"
            ))
        } else if attempt.previous().len() > 5 {
            attempt.error("more than 5 redirects")
        } else {
            attempt.follow()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fetch::group_shards;
    use data_core::batch::{self, Value};
    use data_core::dataset::Kind;

    fn aapl() -> Symbol {
        Symbol::parse("AAPL").unwrap()
    }

    fn decode(body: &[u8], kind: Kind, symbols: &[Symbol]) -> Result<Page, ApiError> {
        decode_page(body, kind.columns(), symbols)
    }

    /// Column `name` of the `run`th run of the page.
    fn column(page: &Page, kind: Kind, run: usize, name: &str) -> Vec<Value> {
        let rows = &page.runs[run].1;
        let cells = batch::cells(rows, kind.columns(), name).unwrap();
        (0..rows.num_rows()).map(|i| cells.value(i)).collect()
    }

    fn s(v: &str) -> Value {
        Value::Str(v.into())
    }

    fn f(v: f64) -> Value {
        Value::Float(v.to_bits())
    }

    #[test]
    fn decodes_a_page_with_token_and_duplicate_timestamps() {
        let body = br#"{"quotes":{"AAPL":[
            {"t":"2024-03-01T14:30:00.001234567Z","bx":"Q","bp":411.2,"bs":3,"ax":"P","ap":411.25,"as":1,"c":["R"],"z":"C"},
            {"t":"2024-03-01T14:30:00.001234567Z","bx":"Q","bp":411.2,"bs":3,"ax":"Z","ap":411.25,"as":2,"c":["R"],"z":"C"}]},
            "next_page_token":"TVNGVHwy"}"#;
        let page = decode(body, Kind::Quotes, &[aapl()]).unwrap();
        assert_eq!(page.next_page_token.as_deref(), Some("TVNGVHwy"));
        assert_eq!(page.rows(), 2);
        let q = |name| column(&page, Kind::Quotes, 0, name)[1].clone();
        assert_eq!(q("symbol"), s("AAPL"));
        assert_eq!(q("t"), Value::Int(1_709_303_400_001_234_567));
        assert_eq!((q("bid_price"), q("ask_price")), (f(411.2), f(411.25)));
        assert_eq!(q("ask_size"), Value::UInt(2));
        assert_eq!(q("ask_exchange"), s("Z"));
        assert_eq!(q("conditions"), Value::List(vec!["R".into()]));
        assert_eq!(q("tape"), s("C"));
    }

    #[test]
    fn option_bars_share_requests_by_timeframe() {
        let per = |tf: &str| symbols_per_option_bars_request(tf.parse().unwrap());
        assert_eq!(
            [
                per("1Min"),
                per("5Min"),
                per("15Min"),
                per("1Hour"),
                per("1Day")
            ],
            [4, 22, 66, 100, 100]
        );
    }

    #[test]
    fn shards_of_one_month_share_requests_up_to_the_limit_unless_resumed() {
        use data_core::resume::{shards_of, ShardUnit};
        let range = DateRange::parse("2024-01-02", "2024-02-29").unwrap();
        let mut shards = Vec::new();
        for name in ["AAPL", "MSFT", "GOOG"] {
            let sym = Symbol::parse(name).unwrap();
            shards.extend(shards_of(&sym, range, i64::MAX, ShardUnit::Month));
        }
        // Plan order: AAPL Jan, AAPL Feb, MSFT Jan, MSFT Feb, GOOG Jan, GOOG Feb.
        assert_eq!(shards.len(), 6);
        assert_eq!(group_shards(&shards, 1).len(), 6);
        assert_eq!(
            group_shards(&shards, 100),
            vec![vec![0, 2, 4], vec![1, 3, 5]]
        );
        assert_eq!(
            group_shards(&shards, 2),
            vec![vec![0, 2], vec![1, 3], vec![4], vec![5]]
        );
        shards[2].resume_after = Some((shards[2].start_ns + 5, 0));
        assert_eq!(
            group_shards(&shards, 100),
            vec![vec![0, 4], vec![1, 3, 5], vec![2]]
        );
        assert_eq!(symbols_per_bars_request(Timeframe::Min1), 1);
        assert_eq!(symbols_per_bars_request(Timeframe::Min15), 6);
        assert_eq!(symbols_per_bars_request(Timeframe::Day1), 100);
        assert_eq!(
            Request::for_dataset(DatasetId::Trades).symbols_per_request,
            1
        );
    }

    #[test]
    fn a_page_of_several_symbols_keeps_the_asked_ones_in_order() {
        let body = br#"{"bars":{"MSFT":[{"t":"2024-03-01T05:00:00Z","o":1,"h":1,"l":1,"c":1,"v":1,"n":1,"vw":1}],
            "AAPL":[{"t":"2024-03-01T05:00:00Z","o":2,"h":2,"l":2,"c":2,"v":2,"n":2,"vw":2},
                    {"t":"2024-03-04T05:00:00Z","o":3,"h":3,"l":3,"c":3,"v":3,"n":3,"vw":3}],
            "IBM":[{"t":"2024-03-01T05:00:00Z","o":4,"h":4,"l":4,"c":4,"v":4,"n":4,"vw":4}]},
            "next_page_token":"n"}"#;
        let syms = [aapl(), Symbol::parse("MSFT").unwrap()];
        let page = decode(body, Kind::Bars, &syms).unwrap();
        let runs: Vec<usize> = page.runs.iter().map(|(m, _)| *m).collect();
        assert_eq!(runs, [0, 1]);
        assert_eq!(column(&page, Kind::Bars, 0, "open"), [f(2.0), f(3.0)]);
        assert_eq!(
            column(&page, Kind::Bars, 0, "symbol"),
            [s("AAPL"), s("AAPL")]
        );
        assert_eq!(column(&page, Kind::Bars, 1, "open"), [f(1.0)]);
        assert_eq!(column(&page, Kind::Bars, 1, "symbol"), [s("MSFT")]);
    }

    #[test]
    fn decodes_trades_and_bars_pages_that_mix_symbols() {
        let body = br#"{"trades":{"AAPL":[
            {"t":"2024-03-01T09:00:00.5Z","x":"P","p":410.9,"s":40,"c":["@","T","I"],"i":3,"z":"C"},
            {"t":"2024-03-01T09:00:01Z","x":"P","p":411.0,"s":40,"c":["@"],"i":3,"z":"C","u":"corrected"}],
            "MSFT":[{"t":"2024-03-01T09:00:00Z","x":"Q","p":1.0,"s":1,"c":[],"i":9,"z":"C"}]},
            "next_page_token":"x"}"#;
        let page = decode(body, Kind::Trades, &[aapl()]).unwrap();
        assert_eq!(page.rows(), 2);
        let t = |name| column(&page, Kind::Trades, 0, name);
        assert_eq!(t("id"), [Value::UInt(3), Value::UInt(3)]);
        assert_eq!(t("price")[1], f(411.0));
        assert_eq!(t("size")[1], Value::UInt(40));
        assert_eq!(t("update"), [Value::Null, s("corrected")]);
        assert_eq!(
            t("conditions")[0],
            Value::List(vec!["@".into(), "T".into(), "I".into()])
        );
        assert_eq!(page.next_page_token.as_deref(), Some("x"));
        let msft = decode(body, Kind::Trades, &[Symbol::parse("MSFT").unwrap()]).unwrap();
        assert_eq!(column(&msft, Kind::Trades, 0, "exchange"), [s("Q")]);

        let body = br#"{"bars":{"AAPL":[{"t":"2024-03-01T05:00:00Z","o":411.27,"h":415.87,"l":410.88,"c":415.5,"v":17823400,"n":254000,"vw":414.1}]},"next_page_token":null}"#;
        let page = decode(body, Kind::Bars, &[aapl()]).unwrap();
        let b = |name: &str| column(&page, Kind::Bars, 0, name)[0].clone();
        assert_eq!(b("t"), Value::Int(1_709_269_200_000_000_000));
        assert_eq!(
            (b("open"), b("close"), b("vwap")),
            (f(411.27), f(415.5), f(414.1))
        );
        assert_eq!(
            (b("volume"), b("trade_count")),
            (Value::UInt(17_823_400), Value::UInt(254_000))
        );
        assert!(page.next_page_token.is_none());
        // Optional fields left out take their defaults; required ones fail the page.
        let body =
            br#"{"bars":{"AAPL":[{"t":"2024-03-01T05:00:00Z","o":1,"h":1,"l":1,"c":1,"v":5}]}}"#;
        let page = decode(body, Kind::Bars, &[aapl()]).unwrap();
        assert_eq!(
            column(&page, Kind::Bars, 0, "trade_count"),
            [Value::UInt(0)]
        );
        let body = br#"{"bars":{"AAPL":[{"t":"2024-03-01T05:00:00Z","o":1,"h":1,"l":1,"c":1}]}}"#;
        let err = decode(body, Kind::Bars, &[aapl()]).unwrap_err();
        assert!(err.to_string().contains("missing field `v`"), "{err}");
    }

    #[test]
    fn empty_shapes_mean_no_data() {
        for body in [
            r#"{"quotes":{},"next_page_token":null}"#,
            r#"{"quotes":{"MSFT":[]},"next_page_token":null}"#,
            r#"{"quotes":{"AAPL":null},"next_page_token":null}"#,
            r#"{"quotes":{"AAPL":[]},"next_page_token":null}"#,
            r#"{"quotes":null}"#,
            r#"{}"#,
        ] {
            let page = decode(body.as_bytes(), Kind::Quotes, &[aapl()]).unwrap();
            assert!(page.runs.is_empty(), "{body}");
            assert!(page.next_page_token.is_none(), "{body}");
        }
        // A short (even empty) page with a token is not the end.
        let page = decode(
            br#"{"quotes":{},"next_page_token":"abc"}"#,
            Kind::Quotes,
            &[aapl()],
        )
        .unwrap();
        assert_eq!(page.next_page_token.as_deref(), Some("abc"));
    }

    #[test]
    fn truncated_and_malformed_bodies_are_told_apart() {
        let cut = br#"{"quotes":{"AAPL":[{"t":"2024-03-01T14:30:00Z","bx":"Q","bp":41"#;
        assert!(matches!(
            decode(cut, Kind::Quotes, &[aapl()]),
            Err(ApiError::Truncated(_))
        ));
        let bad = br#"{"quotes":{"AAPL":[{"t":"yesterday","bx":"Q"}]}}"#;
        let err = decode(bad, Kind::Quotes, &[aapl()]).unwrap_err();
        assert!(matches!(err, ApiError::Decode(_)), "{err}");
        assert!(
            err.to_string().contains("invalid RFC 3339 timestamp"),
            "{err}"
        );
        let trailing = br#"{"quotes":{}} x"#;
        assert!(matches!(
            decode(trailing, Kind::Quotes, &[aapl()]),
            Err(ApiError::Decode(_))
        ));
    }

    #[test]
    fn error_messages_from_every_body_shape() {
        assert_eq!(
            api_message(br#"{"code":42210000,"message":"invalid timeframe"}"#),
            "invalid timeframe (code 42210000)"
        );
        assert_eq!(
            api_message(br#"{"message":"subscription does not permit querying recent SIP data"}"#),
            "subscription does not permit querying recent SIP data"
        );
        assert_eq!(
            api_message(b"<html>\r\n<head><title>403 Forbidden</title></head>\r\n<body>\r\n<center><h1>403 Forbidden</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>"),
            "403 Forbidden"
        );
        assert_eq!(api_message(b"<p>Bad <b>gateway</b></p>"), "Bad gateway");
        assert_eq!(api_message(b""), "(empty body)");
        assert!(api_message(&[b'x'; 500]).len() < 210);
    }

    #[test]
    fn seq_numbers_equal_timestamps_across_pages() {
        let page = |times: &[i64]| {
            let quotes: Vec<_> = times
                .iter()
                .map(|&t| data_standin::generate::GenQuote {
                    t,
                    bid_exchange: b'Q',
                    bid_cents: 100,
                    bid_size: 1,
                    ask_exchange: b'Q',
                    ask_cents: 101,
                    ask_size: 1,
                    conditions: "[]",
                    tape: b'C',
                })
                .collect();
            data_standin::generate::quotes_batch("AAPL", &quotes).unwrap()
        };
        let mut a = SeqAssigner::default();
        let p1 = a.assign(page(&[1, 2, 2])).unwrap();
        let p2 = a.assign(page(&[2, 3, 3, 4])).unwrap();
        let seqs: Vec<u32> = (0..3)
            .map(|i| batch::position(&p1, i).unwrap().1)
            .chain((0..4).map(|i| batch::position(&p2, i).unwrap().1))
            .collect();
        assert_eq!(seqs, vec![0, 0, 1, 2, 0, 1, 0]);
    }

    #[test]
    fn request_url_shape() {
        let cfg = ClientConfig {
            base_url: "http://127.0.0.1:9/".into(),
            feed: Feed::Iex,
            retry: RetryPolicy::default(),
            request_timeout: Duration::from_secs(5),
            rate_limit: 0,
            asof: None,
        };
        let c = AlpacaClient::new(&cfg, &Credentials::new("k", "s")).unwrap();
        let r = DateRange::parse("2024-01-02", "2024-01-02T15:00:00.5+00:00").unwrap();
        assert_eq!(
            c.quotes_url(&aapl(), &r, Some("a+b/c=")).as_str(),
            "http://127.0.0.1:9/v2/stocks/quotes?symbols=AAPL&start=2024-01-02T09%3A00%3A00Z\
             &end=2024-01-02T15%3A00%3A00.5Z&limit=10000&feed=iex&sort=asc&page_token=a%2Bb%2Fc%3D"
        );
        let renamed = AlpacaClient::new(
            &ClientConfig {
                asof: Some("-".into()),
                ..cfg.clone()
            },
            &Credentials::new("k", "s"),
        )
        .unwrap();
        assert!(renamed
            .quotes_url(&aapl(), &r, None)
            .as_str()
            .ends_with("&feed=iex&sort=asc&asof=-"));
        let bad = ClientConfig {
            base_url: "data.alpaca.markets".into(),
            ..cfg
        };
        assert!(AlpacaClient::new(&bad, &Credentials::new("k", "s"))
            .err()
            .unwrap()
            .starts_with("invalid Alpaca API URL"));
    }

    #[test]
    fn credentials_debug_is_redacted() {
        let c = Credentials::new("AKXXXX", "very-secret");
        let s = format!("{c:?}");
        assert!(!s.contains("AKXXXX") && !s.contains("very-secret"));
    }
}
