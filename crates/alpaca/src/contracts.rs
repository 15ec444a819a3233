//! Option contract discovery: the trading API's `GET /v2/options/contracts` (the trading
//! host, with the same keys, pacing and retries as the data client), paged with
//! `page_token`. Alpaca lists only active contracts unless asked, so both `status=active`
//! and `status=inactive` (expired) are listed, each with explicit expiry bounds (its default
//! upper bound is the coming weekend).

use super::alpaca::{AlpacaClient, ApiError};
use data_core::model::{Contract, ContractQuery};
use reqwest::Url;
use serde::Deserialize;

#[derive(Deserialize)]
struct ContractPage {
    option_contracts: Vec<Contract>,
    next_page_token: Option<String>,
}

/// Every contract matching `q`, active and expired, by symbol; the number of pages asked.
pub async fn list_contracts(
    client: &AlpacaClient,
    trading_url: &str,
    q: &ContractQuery,
) -> Result<(Vec<Contract>, u32), ApiError> {
    let base = Url::parse(trading_url.trim_end_matches('/'))
        .map_err(|e| ApiError::Decode(format!("invalid trading API URL {trading_url:?}: {e}")))?;
    let mut out: Vec<Contract> = Vec::new();
    let mut pages = 0;
    for status in ["active", "inactive"] {
        let mut token: Option<String> = None;
        loop {
            let mut url = base.clone();
            url.set_path(&format!(
                "{}/v2/options/contracts",
                base.path().trim_end_matches('/')
            ));
            {
                let mut p = url.query_pairs_mut();
                p.append_pair("underlying_symbols", q.underlying.as_str())
                    .append_pair("status", status)
                    .append_pair("expiration_date_gte", &q.expiry_from.to_string())
                    .append_pair("expiration_date_lte", &q.expiry_to.to_string())
                    .append_pair("limit", "10000");
                if let Some(call) = q.call {
                    p.append_pair("type", if call { "call" } else { "put" });
                }
                if let Some(v) = q.strike_min {
                    p.append_pair("strike_price_gte", &v.to_string());
                }
                if let Some(v) = q.strike_max {
                    p.append_pair("strike_price_lte", &v.to_string());
                }
                if let Some(t) = &token {
                    p.append_pair("page_token", t);
                }
            }
            let body = client.get(&url, "GET /v2/options/contracts").await?;
            pages += 1;
            let page: ContractPage = serde_json::from_slice(&body).map_err(|e| {
                ApiError::Decode(format!("unexpected /v2/options/contracts answer: {e}"))
            })?;
            out.extend(page.option_contracts);
            match page.next_page_token.filter(|t| !t.is_empty()) {
                Some(t) => token = Some(t),
                None => break,
            }
        }
    }
    out.sort_by(|a, b| a.symbol.cmp(&b.symbol));
    out.dedup_by(|a, b| a.symbol == b.symbol);
    Ok((out, pages))
}
