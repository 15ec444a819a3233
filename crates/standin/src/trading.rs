//! The stand-in's trading API: `GET /v2/calendar` (NYSE's sessions from the embedded calendar,
//! with their settlement dates) and `GET /v2/options/contracts` (the option contracts of an
//! underlying, active and expired).

use super::{json_error, json_request, options, unauthorized, AppState};
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use std::collections::HashMap;
use std::sync::Arc;

/// The trading API's `GET /v2/options/contracts` (see `options::contracts_body`).
pub(super) async fn option_contracts(
    State(st): State<Arc<AppState>>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    json_request(&st, &params, &headers, options::contracts_body).await
}

/// The trading API's `GET /v2/calendar`: NYSE's sessions from `start` to `end` (dates,
/// inclusive; by default 1970 to 2029, as Alpaca lists them), from the embedded calendar.
pub(super) async fn calendar(
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = unauthorized(&headers) {
        return refused;
    }
    let date = |name: &str, default: &str| {
        let text = params.get(name).map_or(default, String::as_str);
        text.get(..10)
            .and_then(|d| d.parse::<chrono::NaiveDate>().ok())
            .ok_or_else(|| format!("invalid {name}: {text}"))
    };
    let (start, end) = match (date("start", "1970-01-01"), date("end", "2029-12-31")) {
        (Ok(s), Ok(e)) => (s, e),
        (Err(message), _) | (_, Err(message)) => {
            let body = serde_json::json!({"code": 40010001, "message": message});
            return json_error(StatusCode::BAD_REQUEST, &body.to_string());
        }
    };
    let days: Vec<serde_json::Value> = start
        .iter_days()
        .take_while(|d| *d <= end)
        .filter_map(|d| {
            let session = data_core::nyse::session(d);
            let (close, ext) = (session.regular_close()?, session.extended_close()?);
            Some(serde_json::json!({
                "date": d.to_string(),
                "open": "09:30",
                "close": format!("{:02}:{:02}", close.0, close.1),
                "session_open": "0400",
                "session_close": format!("{:02}{:02}", ext.0, ext.1),
                "settlement_date": settlement_date(d).to_string(),
            }))
        })
        .collect();
    let mut r = Response::new(Body::from(serde_json::Value::Array(days).to_string()));
    r.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    r
}

/// The settlement day of a trade on `d`: T+1 from 2024-05-28, T+2 from 2017-09-05, T+3
/// before, counted in NYSE sessions (bank holidays that are trading days are not known here).
pub(super) fn settlement_date(d: chrono::NaiveDate) -> chrono::NaiveDate {
    let cycle = match d.to_string().as_str() {
        s if s >= "2024-05-28" => 1,
        s if s >= "2017-09-05" => 2,
        _ => 3,
    };
    let mut out = d;
    for _ in 0..cycle {
        out = out
            .iter_days()
            .skip(1)
            .find(|x| data_core::nyse::is_trading_day(*x))
            .unwrap_or(out);
    }
    out
}
