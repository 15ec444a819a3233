//! A request the stand-in refuses, answered as Alpaca answers it: the status and Alpaca's
//! JSON error body.

use axum::http::StatusCode;
use std::collections::HashMap;

/// A request the stand-in refuses: the status and Alpaca's JSON error body.
#[derive(Debug)]
pub(super) struct Refusal(pub(super) StatusCode, pub(super) String);

pub(super) fn bad_request(message: &str) -> Refusal {
    Refusal(
        StatusCode::BAD_REQUEST,
        serde_json::json!({"code": 40010001, "message": message}).to_string(),
    )
}

pub(super) fn unprocessable(message: &str) -> Refusal {
    Refusal(
        StatusCode::UNPROCESSABLE_ENTITY,
        serde_json::json!({"code": 42210000, "message": message}).to_string(),
    )
}

/// A request for a listing of the stand-in's JSON endpoints (corporate actions, option
/// contracts): its parameters, the stand-in's today, and the page size it caps pages at.
pub(super) struct Listing<'a> {
    pub(super) params: &'a HashMap<String, String>,
    pub(super) today: chrono::NaiveDate,
    pub(super) max_page: Option<usize>,
}

impl Listing<'_> {
    /// Refuses the first parameter named in none of `known` (space-separated lists).
    pub(super) fn only_known(&self, known: &[&str]) -> Result<(), Refusal> {
        only_known(self.params, known)
    }
}

/// Refuses the first parameter named in none of `known` (each a space-separated list of
/// names), as Alpaca refuses one it does not take (`unexpected parameter: feed`).
pub(super) fn only_known(params: &HashMap<String, String>, known: &[&str]) -> Result<(), Refusal> {
    let takes = |p: &str| known.iter().any(|k| k.split_whitespace().any(|n| n == p));
    match params.keys().find(|p| !takes(p)) {
        Some(p) => Err(bad_request(&format!("unexpected parameter: {p}"))),
        None => Ok(()),
    }
}

/// The page size asked for (`limit`: 1 to `max`, 100 when left out), cut to `max_page`
/// when the stand-in serves shorter pages.
pub(super) fn page_limit(
    params: &HashMap<String, String>,
    max: usize,
    max_page: Option<usize>,
) -> Result<usize, Refusal> {
    let limit = match params.get("limit") {
        None => 100,
        Some(l) => match l.parse::<usize>() {
            Ok(v) if (1..=max).contains(&v) => v,
            _ => return Err(bad_request(&format!("invalid limit: {l}"))),
        },
    };
    Ok(max_page.map_or(limit, |m| limit.min(m.max(1))))
}

/// The page of a listing of `len` records a request asks for: the records from where its
/// page token (`{prefix}{hex}`) says, or the first, `limit` of them; and the next page's
/// token, when records are left.
pub(super) fn page_of(
    params: &HashMap<String, String>,
    prefix: &str,
    len: usize,
    limit: usize,
) -> Result<(std::ops::Range<usize>, Option<String>), Refusal> {
    let from = match params.get("page_token").filter(|t| !t.is_empty()) {
        None => 0,
        Some(t) => t
            .strip_prefix(prefix)
            .and_then(|n| usize::from_str_radix(n, 16).ok())
            .filter(|n| *n <= len)
            .ok_or_else(|| bad_request("invalid page token"))?,
    };
    let until = (from + limit).min(len);
    let next = (until < len).then(|| format!("{prefix}{until:x}"));
    Ok((from..until, next))
}
