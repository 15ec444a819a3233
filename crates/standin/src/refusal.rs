//! A request the stand-in refuses, answered as Alpaca answers it: the status and Alpaca's
//! JSON error body.

use axum::http::StatusCode;

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
