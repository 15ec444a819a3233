//! Option contract discovery: the trading API's `GET /v2/options/contracts` (the trading
//! host, with the same keys, pacing and retries as the data client), paged with
//! `page_token`. Alpaca lists only active contracts unless asked, so both `status=active`
//! and `status=inactive` (expired) are listed, each with explicit expiry bounds (its default
//! upper bound is the coming weekend).

use super::alpaca::{AlpacaClient, ApiError};
use crate::model::Symbol;
use chrono::NaiveDate;
use reqwest::Url;
use serde::Deserialize;

/// Which contracts `--underlying` asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct ContractQuery {
    pub underlying: Symbol,
    pub expiry_from: NaiveDate,
    pub expiry_to: NaiveDate,
    /// `Some(true)` calls only, `Some(false)` puts only.
    pub call: Option<bool>,
    pub strike_min: Option<f64>,
    pub strike_max: Option<f64>,
}

impl ContractQuery {
    /// For messages: `AAPL puts expiring 2024-04-01..2024-04-30, strikes 100-200`.
    pub fn describe(&self) -> String {
        let kind = match self.call {
            Some(true) => "calls",
            Some(false) => "puts",
            None => "contracts",
        };
        let strikes = match (self.strike_min, self.strike_max) {
            (None, None) => String::new(),
            (lo, hi) => format!(
                ", strikes {}-{}",
                lo.map_or("any".into(), |v| v.to_string()),
                hi.map_or("any".into(), |v| v.to_string())
            ),
        };
        format!(
            "{} {kind} expiring {}..{}{strikes}",
            self.underlying, self.expiry_from, self.expiry_to
        )
    }
}

/// One contract as the trading API lists it (decimals stay the strings it sends).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Contract {
    pub id: String,
    pub symbol: String,
    pub name: String,
    pub status: String,
    pub tradable: bool,
    pub expiration_date: String,
    pub root_symbol: String,
    pub underlying_symbol: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub style: String,
    pub strike_price: String,
    pub multiplier: String,
    #[serde(default)]
    pub size: Option<String>,
    #[serde(default)]
    pub open_interest: Option<String>,
    #[serde(default)]
    pub open_interest_date: Option<String>,
    #[serde(default)]
    pub close_price: Option<String>,
    #[serde(default)]
    pub close_price_date: Option<String>,
}

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
