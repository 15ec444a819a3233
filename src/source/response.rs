//! One response of the Alpaca API: the page of records it carries, decoded (each record
//! stamped with its symbol, equal timestamps numbered in API order), or the error it is,
//! classified for the shared retry (fatal, worth another attempt, or rate limited).

use super::retry::{Retryable, Verdict};
use crate::model::{ApiRecord, Quote, Symbol};
use reqwest::StatusCode;
use serde::Deserialize;
use std::collections::HashMap;
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

/// One decoded page: this symbol's records (possibly none) and the continuation token.
#[derive(Debug)]
pub struct Page<T> {
    pub rows: Vec<T>,
    pub next_page_token: Option<String>,
}

/// One decoded quotes page.
#[derive(Debug)]
pub struct QuotesPage {
    pub quotes: Vec<Quote>,
    pub next_page_token: Option<String>,
}

/// Decodes a multi-symbol page (`{"quotes"|"trades"|"bars":{SYM:[...]}, "next_page_token": ...}`).
/// An empty map, a missing symbol key or a null array all mean "no data on this page".
/// Records are stamped with the symbol; `seq` is left for [`SeqAssigner`].
pub fn decode_page<T: ApiRecord>(body: &[u8], symbol: &Symbol) -> Result<Page<T>, ApiError> {
    decode_multi_page(body, std::slice::from_ref(symbol))
}

/// Decodes one page of a request for several `symbols`: their records, the first symbol's
/// first, each stamped with its symbol (a page may hold the end of one symbol's records and
/// the start of the next's; records of symbols not asked for are ignored).
pub fn decode_multi_page<T: ApiRecord>(
    body: &[u8],
    symbols: &[Symbol],
) -> Result<Page<T>, ApiError> {
    #[derive(Deserialize)]
    #[serde(bound = "T: serde::de::DeserializeOwned")]
    struct Raw<T> {
        #[serde(default, alias = "quotes", alias = "trades", alias = "bars")]
        data: Option<HashMap<String, Option<Vec<T>>>>,
        #[serde(default)]
        next_page_token: Option<String>,
    }
    let page: Raw<T> = serde_json::from_slice(body).map_err(|e| {
        if e.is_eof() {
            ApiError::Truncated(e.to_string())
        } else {
            ApiError::Decode(e.to_string())
        }
    })?;
    let mut data = page.data.unwrap_or_default();
    let mut rows = Vec::new();
    for symbol in symbols {
        let mut these = data.remove(symbol.as_str()).flatten().unwrap_or_default();
        let shared = symbol.shared();
        for r in &mut these {
            r.set_symbol(&shared);
        }
        if rows.is_empty() {
            rows = these;
        } else {
            rows.append(&mut these);
        }
    }
    Ok(Page {
        rows,
        next_page_token: page.next_page_token.filter(|t| !t.is_empty()),
    })
}

/// [`decode_page`] for quotes.
pub fn decode_quotes_page(body: &[u8], symbol: &Symbol) -> Result<QuotesPage, ApiError> {
    let page = decode_page::<Quote>(body, symbol)?;
    Ok(QuotesPage {
        quotes: page.rows,
        next_page_token: page.next_page_token,
    })
}

/// Numbers records that share a nanosecond timestamp, in API order, across page boundaries.
/// Alpaca returns each symbol's records sorted by time, so equal timestamps are adjacent.
#[derive(Debug, Default, Clone)]
pub struct SeqAssigner {
    last_t: Option<i64>,
    next: u32,
}

impl SeqAssigner {
    pub fn assign<T: ApiRecord>(&mut self, rows: &mut [T]) {
        for r in rows {
            let t = r.t();
            if self.last_t == Some(t) {
                r.set_seq(self.next);
                self.next += 1;
            } else {
                r.set_seq(0);
                self.next = 1;
                self.last_t = Some(t);
            }
        }
    }
}
