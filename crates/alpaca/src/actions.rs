//! The corporate-actions page decoder (`/v1/corporate-actions`): records come grouped by
//! action (`{"corporate_actions": {"forward_splits": [...], "cash_dividends": [...]}}`),
//! not by symbol, and every group has fields of its own. Each record becomes one row of
//! its symbol's run: its id, group, process date (as `t`, New York midnight), ex (or
//! effective) date, rates, and the whole record as JSON, so no field of any group — known
//! today or added later — is lost.

use super::page::Page;
use super::response::ApiError;
use data_core::batch::{Builder, Builders};
use data_core::dataset::DatasetId;
use data_core::model::Symbol;
use serde_json::Value;

/// The fields that may name the ticker an action concerns, in the order they are tried.
const SYMBOL_FIELDS: [&str; 7] = [
    "symbol",
    "old_symbol",
    "acquiree_symbol",
    "source_symbol",
    "target_symbol",
    "new_symbol",
    "acquirer_symbol",
];

/// One page of corporate actions, as runs of the request's `symbols` (each run sorted by
/// process date, then id). A record naming none of them goes to the first.
pub(crate) fn decode_actions(body: &[u8], symbols: &[Symbol]) -> Result<Page, ApiError> {
    let page: Value = serde_json::from_slice(body).map_err(|e| {
        if e.is_eof() {
            ApiError::Truncated(format!("the corporate actions page ends early: {e}"))
        } else {
            ApiError::Decode(format!("unexpected corporate actions page: {e}"))
        }
    })?;
    let groups = match page.get("corporate_actions") {
        Some(Value::Object(groups)) => Some(groups),
        None | Some(Value::Null) => None,
        Some(_) => {
            return Err(ApiError::Decode(
                "corporate_actions is not an object of groups".into(),
            ))
        }
    };
    let next_page_token = match page.get("next_page_token") {
        Some(Value::String(t)) if !t.is_empty() => Some(t.clone()),
        None | Some(Value::Null) | Some(Value::String(_)) => None,
        Some(other) => {
            return Err(ApiError::Decode(format!(
                "next_page_token is not a string: {other}"
            )))
        }
    };
    // (member, t, id, action, ex_date, old_rate, new_rate, rate, fields)
    type Row = (usize, i64, String, String, String, f64, f64, f64, String);
    let mut rows: Vec<Row> = Vec::new();
    for (group, records) in groups.into_iter().flatten() {
        let Value::Array(records) = records else {
            return Err(ApiError::Decode(format!("{group} is not a list")));
        };
        for r in records {
            let text = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("");
            let number = |k: &str| r.get(k).and_then(Value::as_f64).unwrap_or(0.0);
            let id = text("id");
            let process = text("process_date");
            let day = chrono::NaiveDate::parse_from_str(process, "%Y-%m-%d").map_err(|_| {
                ApiError::Decode(format!(
                    "{group} record {id:?} has no valid process_date ({process:?})"
                ))
            })?;
            if id.is_empty() {
                return Err(ApiError::Decode(format!("{group} record without an id")));
            }
            let member = SYMBOL_FIELDS
                .iter()
                .filter_map(|f| r.get(*f).and_then(Value::as_str))
                .find_map(|name| symbols.iter().position(|s| s.as_str() == name))
                .unwrap_or(0);
            let ex = match text("ex_date") {
                "" => text("effective_date"),
                ex => ex,
            };
            rows.push((
                member,
                data_core::time::new_york_time_nanos(day, 0, 0),
                id.to_string(),
                group.clone(),
                ex.to_string(),
                number("old_rate"),
                number("new_rate"),
                number("rate"),
                r.to_string(),
            ));
        }
    }
    rows.sort_by(|a, b| (a.0, a.1, &a.2).cmp(&(b.0, b.1, &b.2)));
    let cols = DatasetId::CorporateActions.columns();
    let mut runs = Vec::new();
    for (m, symbol) in symbols.iter().enumerate() {
        let mine: Vec<&Row> = rows.iter().filter(|r| r.0 == m).collect();
        if mine.is_empty() {
            continue;
        }
        let mut b = Builders::new(cols, mine.len());
        for r in &mine {
            let texts = [symbol.as_str(), &r.2, &r.3, &r.4, &r.8];
            let floats = [r.5, r.6, r.7];
            let (mut ti, mut fi) = (0, 0);
            for part in &mut b.parts {
                match part {
                    Builder::Ts(v) => v.push(r.1),
                    Builder::U32(v) => v.push(0),
                    Builder::Utf8(v) => {
                        v.append_value(texts[ti]);
                        ti += 1;
                    }
                    Builder::F64(v) => {
                        v.push(floats[fi]);
                        fi += 1;
                    }
                    Builder::U64(_) | Builder::List(_) => {
                        return Err(ApiError::Decode("unexpected action column".into()))
                    }
                }
            }
        }
        let batch = b.finish().map_err(|e| ApiError::Decode(format!("{e:#}")))?;
        runs.push((m, batch));
    }
    Ok(Page {
        runs,
        next_page_token,
    })
}
