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

/// Refuses the first parameter that is in none of `known`, as Alpaca refuses one it does
/// not take (`unexpected parameter: feed`).
pub(super) fn only_known(
    params: &HashMap<String, String>,
    known: &[&[&str]],
) -> Result<(), Refusal> {
    match params
        .keys()
        .find(|p| !known.iter().any(|k| k.contains(&p.as_str())))
    {
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
