//! One response of the Alpaca API: the page of records it carries (decoded by
//! [`super::page`]; equal timestamps numbered in API order here), or the error it is,
//! classified for the shared retry (fatal, worth another attempt, or rate limited).

use super::retry::{Retryable, Verdict};
use anyhow::Context;
use arrow_array::{RecordBatch, UInt32Array};
use reqwest::StatusCode;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

/// A failed request, classified for the retry policy.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400/401/403/404/422 and other 4xx: retrying cannot help.
    #[error("Alpaca API refused the request with HTTP {status}: {message}")]
    Fatal { status: u16, message: String },
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
            ApiError::Fatal { .. } | ApiError::Decode(_) | ApiError::Exhausted { .. } => {
                Verdict::Fatal
            }
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

impl ApiError {
    pub(crate) fn from_status(status: StatusCode, reset_epoch: Option<u64>, body: &[u8]) -> Self {
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
            s => ApiError::Fatal { status: s, message },
        }
    }

    pub(crate) fn transport(e: reqwest::Error, base: &str) -> Self {
        let root = root_cause(&e);
        if e.is_timeout() {
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
        return match code {
            Some(c) => format!("{m} (code {c})"),
            None => m,
        };
    }
    // An HTML error page (a proxy's, say): its <title> is the message.
    let lower = text.to_ascii_lowercase();
    if let (Some(a), Some(b)) = (lower.find("<title>"), lower.find("</title>")) {
        let title = text.get(a + 7..b).unwrap_or("").trim();
        if !title.is_empty() && b > a {
            return title.split_whitespace().collect::<Vec<_>>().join(" ");
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
    let mut line = collapsed.join(" ");
    if line.is_empty() {
        return "(empty body)".to_string();
    }
    if line.len() > 200 {
        let cut = (0..=200)
            .rev()
            .find(|&i| line.is_char_boundary(i))
            .unwrap_or(0);
        line.truncate(cut);
        line.push('…');
    }
    line
}

pub use super::page::{decode_page, Page};

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
        let Some(i) = batch.schema().index_of("seq").ok() else {
            return Ok(batch);
        };
        let t = crate::batch::times(&batch, "t").context("records have no time")?;
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
