//! One response of the Alpaca API: the page of records it carries (decoded by
//! [`super::page`]; equal timestamps numbered in API order here), or the error it is,
//! classified for the shared retry (fatal, worth another attempt, or rate limited).

use anyhow::Context;
use arrow_array::{RecordBatch, UInt32Array};
use data_core::dataset::Role;
use data_core::retry::{Retryable, Verdict};
use reqwest::StatusCode;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

/// A failed request, classified for the retry policy.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400/401/403/404/422 and other 4xx: retrying cannot help. The text says what to do
    /// ([`fatal_text`]): check the keys, change the feed or plan, fix a parameter.
    #[error("{}", fatal_text(*status, message, feed, request))]
    Fatal {
        status: u16,
        message: String,
        /// The feed asked for (`sip`, `iex`).
        feed: &'static str,
        /// The request's path and query (no credentials: those travel in headers).
        request: String,
    },
    #[error("HTTP {status} from Alpaca: {message}")]
    Server { status: u16, message: String },
    #[error("HTTP 429 rate limited by Alpaca: {message}")]
    RateLimited {
        message: String,
        reset_epoch: Option<u64>,
    },
    /// Connect failures, timeouts, resets, and bodies cut off by the connection closing.
    #[error("{0}")]
    Transport(String),
    /// A 200 whose JSON ended early.
    #[error("response body ended early: {0}")]
    Truncated(String),
    /// A 200 whose body is not the documented shape.
    #[error("unexpected response body from Alpaca: {0}")]
    Decode(String),
    /// The server misbehaves in a way retrying the same request cannot mend: a redirect
    /// to another origin, a page token that repeats, pages that bring nothing for ever.
    #[error("{0}")]
    Misbehaving(String),
    #[error("gave up after {attempts} attempts over {:.1}s: {last}", elapsed.as_secs_f64())]
    Exhausted {
        attempts: u32,
        elapsed: Duration,
        last: Box<ApiError>,
    },
}

impl Retryable for ApiError {
    fn verdict(&self) -> Verdict {
        match self {
            ApiError::RateLimited { reset_epoch, .. } => Verdict::RateLimited {
                reset_epoch: *reset_epoch,
            },
            ApiError::Server { .. } | ApiError::Transport(_) | ApiError::Truncated(_) => {
                Verdict::Retry
            }
            ApiError::Fatal { .. }
            | ApiError::Decode(_)
            | ApiError::Misbehaving(_)
            | ApiError::Exhausted { .. } => Verdict::Fatal,
        }
    }

    fn exhausted(self, attempts: u32, elapsed: Duration) -> Self {
        ApiError::Exhausted {
            attempts,
            elapsed,
            last: Box::new(self),
        }
    }
}

/// What a refused request means for the user, and what to do about it.
pub(crate) fn fatal_text(status: u16, message: &str, feed: &str, request: &str) -> String {
    let subscription = message.to_ascii_lowercase().contains("subscription");
    match status {
        403 if is_recent_sip(message) => format!(
            "Alpaca refused SIP data of the last 15 minutes (HTTP 403: {message}): the free plan \
             has SIP data only up to 15 minutes ago; keep --sip-delay at 15 (the default) or \
             more, and 0 only on a paid plan"
        ),
        403 if subscription => format!(
            "Alpaca refused feed {feed} (HTTP 403: {message}): your Alpaca plan does not \
             include it; the free plan has --feed iex, and sip older than 15 minutes"
        ),
        401 | 403 => format!(
            "Alpaca refused the credentials (HTTP {status}: {message}): check APCA_API_KEY_ID \
             and APCA_API_SECRET_KEY (both must be the key pair of your Alpaca account)"
        ),
        400 | 422 => format!("Alpaca rejected a parameter (HTTP {status}: {message}) of {request}"),
        404 => format!(
            "Alpaca has no such endpoint (HTTP 404: {message}): {request}; check --api-url \
             (APCA_API_DATA_URL)"
        ),
        _ => format!("Alpaca API refused the request with HTTP {status}: {message}"),
    }
}

/// Whether an error message is Alpaca's refusal of recent SIP data (the free plan's rule).
pub(crate) fn is_recent_sip(message: &str) -> bool {
    message
        .to_ascii_lowercase()
        .contains("does not permit querying recent sip data")
}

impl ApiError {
    /// A refusal that retrying cannot change.
    pub fn fatal(status: u16, message: &str) -> Self {
        ApiError::Fatal {
            status,
            message: message.to_string(),
            feed: "sip",
            request: String::new(),
        }
    }

    /// Whether running the same command again can get further: not after a refusal (keys,
    /// plan, parameters), which needs a change first.
    pub fn rerun_helps(&self) -> bool {
        !matches!(self, ApiError::Fatal { .. })
    }

    /// Alpaca's 403 for SIP data of the last 15 minutes (answered by asking for less).
    pub(crate) fn is_recent_sip_refusal(&self) -> bool {
        matches!(self, ApiError::Fatal { status: 403, message, .. } if is_recent_sip(message))
    }

    pub(crate) fn from_status(
        status: StatusCode,
        reset_epoch: Option<u64>,
        body: &[u8],
        feed: &'static str,
        request: &str,
    ) -> Self {
        let message = api_message(body);
        match status.as_u16() {
            429 => ApiError::RateLimited {
                message,
                reset_epoch,
            },
            408 | 500 | 502 | 503 | 504 => ApiError::Server {
                status: status.as_u16(),
                message,
            },
            s => ApiError::Fatal {
                status: s,
                message,
                feed,
                request: request.to_string(),
            },
        }
    }

    pub(crate) fn transport(e: reqwest::Error, base: &str) -> Self {
        let root = root_cause(&e);
        if e.is_redirect() {
            ApiError::Misbehaving(format!("request to {base} failed: {root}"))
        } else if e.is_timeout() {
            ApiError::Transport(format!("request to {base} timed out"))
        } else if e.is_connect() {
            ApiError::Transport(format!("cannot connect to {base}: {root}"))
        } else if e.is_body() || e.is_decode() {
            ApiError::Transport(format!(
                "connection to {base} broke while reading the response body: {root}"
            ))
        } else {
            ApiError::Transport(format!("request to {base} failed: {root}"))
        }
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// The human message of an error body: `message` from JSON (with or without `code`), else
/// the visible text of an HTML page, else the raw text, trimmed to one short line.
pub fn api_message(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct ErrBody {
        code: Option<serde_json::Value>,
        message: Option<String>,
    }
    let text = String::from_utf8_lossy(body);
    if let Ok(ErrBody {
        code,
        message: Some(m),
    }) = serde_json::from_str::<ErrBody>(&text)
    {
        let m = match code {
            Some(c) => format!("{m} (code {c})"),
            None => m,
        };
        // A server's text is shown as one bounded line, whatever it sent.
        return short_line(&m.split_whitespace().collect::<Vec<_>>().join(" "), 500);
    }
    // An HTML error page (a proxy's, say): its <title> is the message.
    let lower = text.to_ascii_lowercase();
    if let (Some(a), Some(b)) = (lower.find("<title>"), lower.find("</title>")) {
        let title = text.get(a + 7..b).unwrap_or("").trim();
        if !title.is_empty() && b > a {
            return short_line(&title.split_whitespace().collect::<Vec<_>>().join(" "), 200);
        }
    }
    let mut visible = String::new();
    let mut in_tag = false;
    for ch in text.chars() {
        match ch {
            '<' => {
                in_tag = true;
                visible.push(' ');
            }
            '>' => in_tag = false,
            c if !in_tag => visible.push(if c.is_whitespace() { ' ' } else { c }),
            _ => {}
        }
    }
    let collapsed: Vec<&str> = visible.split_whitespace().collect();
    let line = collapsed.join(" ");
    if line.is_empty() {
        return "(empty body)".to_string();
    }
    short_line(&line, 200)
}

/// `line` cut to at most `max` bytes (at a character boundary), `…` marking a cut; control
/// characters shown as spaces.
fn short_line(line: &str, max: usize) -> String {
    let mut line: String = line
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if line.len() > max {
        let cut = (0..=max)
            .rev()
            .find(|&i| line.is_char_boundary(i))
            .unwrap_or(0);
        line.truncate(cut);
        line.push('…');
    }
    line
}

/// Numbers records that share a nanosecond timestamp, in API order, across page boundaries.
/// Alpaca returns each symbol's records sorted by time, so equal timestamps are adjacent.
#[derive(Debug, Default, Clone)]
pub struct SeqAssigner {
    last_t: Option<i64>,
    next: u32,
}

impl SeqAssigner {
    /// `batch` (one symbol's records, in API order) with its `seq` column numbered.
    pub fn assign(&mut self, batch: RecordBatch) -> anyhow::Result<RecordBatch> {
        let Some(i) = batch.schema().index_of(Role::Seq.name()).ok() else {
            return Ok(batch);
        };
        let t =
            data_core::batch::times(&batch, Role::Time.name()).context("records have no time")?;
        let mut seq = Vec::with_capacity(t.len());
        for &t in t {
            if self.last_t == Some(t) {
                seq.push(self.next);
                self.next += 1;
            } else {
                seq.push(0);
                self.next = 1;
                self.last_t = Some(t);
            }
        }
        let mut columns = batch.columns().to_vec();
        columns[i] = Arc::new(UInt32Array::from(seq));
        RecordBatch::try_new(batch.schema(), columns).context("cannot number records")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(status: u16, body: &str, feed: &'static str) -> ApiError {
        ApiError::from_status(
            StatusCode::from_u16(status).unwrap(),
            None,
            body.as_bytes(),
            feed,
            "GET /v2/stocks/bars?symbols=AAPL&timeframe=7Min",
        )
    }

    #[test]
    fn refusals_say_what_to_do_and_only_transient_failures_ask_for_a_rerun() {
        let keys = refused(
            401,
            r#"{"code":40110000,"message":"request is not authorized"}"#,
            "sip",
        );
        let text = keys.to_string();
        assert!(text.starts_with("Alpaca refused the credentials (HTTP 401: request is not authorized (code 40110000)): check APCA_API_KEY_ID and APCA_API_SECRET_KEY"), "{text}");
        assert!(!keys.rerun_helps());
        let forbidden = refused(403, r#"{"message":"forbidden."}"#, "sip").to_string();
        assert!(forbidden.contains("check APCA_API_KEY_ID and APCA_API_SECRET_KEY"));
        let plan = refused(
            403,
            r#"{"message":"subscription does not permit querying OTC data"}"#,
            "iex",
        )
        .to_string();
        assert!(plan.starts_with("Alpaca refused feed iex (HTTP 403: subscription does not permit querying OTC data): your Alpaca plan does not include it"), "{plan}");
        let recent = refused(
            403,
            &format!(r#"{{"message":"{}"}}"#, data_standin::RECENT_SIP_MESSAGE),
            "sip",
        );
        assert!(recent.is_recent_sip_refusal());
        assert!(recent.to_string().contains("keep --sip-delay at 15"));
        for status in [400, 422] {
            let bad = refused(
                status,
                r#"{"code":42210000,"message":"invalid timeframe"}"#,
                "sip",
            )
            .to_string();
            assert_eq!(
                bad,
                format!("Alpaca rejected a parameter (HTTP {status}: invalid timeframe (code 42210000)) of GET /v2/stocks/bars?symbols=AAPL&timeframe=7Min")
            );
        }
        assert!(refused(503, "", "sip").rerun_helps());
        assert!(ApiError::Transport("reset".into()).rerun_helps());
    }
}

/// The retry mechanism (`data_core::retry`, in the core) with the Alpaca client's own errors.
#[cfg(test)]
mod retry_tests {
    use super::ApiError;
    use data_core::retry::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    fn quick(max_attempts: u32) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(4),
        }
    }

    #[test]
    fn backoff_grows_exponentially_within_jitter_bounds() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        for (attempt, step) in [(1, 100), (2, 200), (3, 400), (4, 800), (5, 1000), (9, 1000)] {
            for _ in 0..50 {
                let d = p.backoff(attempt).as_millis() as u64;
                assert!(d >= step / 2 && d <= step, "attempt {attempt}: {d}ms");
            }
        }
    }

    #[test]
    fn rate_limit_waits_until_reset() {
        let p = quick(3);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let err = ApiError::RateLimited {
            message: "too many requests".into(),
            reset_epoch: Some(now + 3),
        };
        let d = p.delay_for(&err, 1).unwrap();
        assert!(
            d > Duration::from_secs(1) && d <= Duration::from_secs(4),
            "{d:?}"
        );
        let fatal = ApiError::fatal(403, "forbidden");
        assert!(p.delay_for(&fatal, 1).is_none());
    }

    #[tokio::test]
    async fn rate_limits_do_not_use_up_attempts() {
        let calls = AtomicU32::new(0);
        let r = quick(2)
            .run("test", || async {
                match calls.fetch_add(1, Ordering::SeqCst) {
                    0..=4 => Err(ApiError::RateLimited {
                        message: "too many requests".into(),
                        reset_epoch: None,
                    }),
                    5 => Err(ApiError::Transport("reset".into())),
                    _ => Ok(7),
                }
            })
            .await;
        assert_eq!(r.unwrap(), 7);
        assert_eq!(calls.load(Ordering::SeqCst), 7);
    }

    /// Runs a request that fails with `error()` every time, with `attempts` allowed; what
    /// the retries end with, and how many calls were made.
    async fn always_failing(
        attempts: u32,
        error: impl Fn() -> ApiError,
    ) -> (Result<(), ApiError>, u32) {
        let calls = AtomicU32::new(0);
        let r = quick(attempts)
            .run("test", || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(error())
            })
            .await;
        (r, calls.load(Ordering::SeqCst))
    }

    #[tokio::test]
    async fn gives_up_with_attempt_count() {
        let (r, calls) = always_failing(3, || ApiError::Server {
            status: 503,
            message: "unavailable".into(),
        })
        .await;
        assert_eq!(calls, 3);
        let msg = r.unwrap_err().to_string();
        assert!(msg.starts_with("gave up after 3 attempts over "), "{msg}");
        assert!(msg.ends_with("HTTP 503 from Alpaca: unavailable"), "{msg}");
    }

    #[tokio::test]
    async fn fatal_errors_are_not_retried_and_transient_ones_recover() {
        let (r, calls) =
            always_failing(5, || ApiError::fatal(401, "request is not authorized")).await;
        assert_eq!(calls, 1);
        assert!(matches!(r, Err(ApiError::Fatal { status: 401, .. })));

        let calls = AtomicU32::new(0);
        let r = quick(5)
            .run("test", || async {
                if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                    Err(ApiError::Truncated("EOF".into()))
                } else {
                    Ok(42)
                }
            })
            .await;
        assert_eq!(r.unwrap(), 42);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }
}
