//! What a command's symbols are — stock tickers, crypto pairs or option contracts — and the
//! arguments only some kinds take: the option contract listing's query (`--underlying`) and
//! corporate actions' `--types`. Part of the one validation of [`super::Job`].

use super::usage;
use crate::args::{AssetArgs, ContractArgs};
use crate::config::{self, Settings};
use chrono::NaiveDate;
use data_core::dataset::{Asset, DatasetId};
use data_core::model::ContractQuery;
use data_core::model::{Feed, Symbol};
use data_core::time::{new_york_date, DateRange};

/// The asset class a symbol's form tells: a pair (`BTC/USD`) is crypto, an OCC contract
/// symbol (`AAPL240419P00140000`) an option, anything else a stock ticker.
fn class_of(symbol: &Symbol) -> Asset {
    if symbol.is_crypto() {
        Asset::Crypto
    } else if Symbol::looks_like_option(symbol.as_str()) {
        Asset::Options
    } else {
        Asset::Stocks
    }
}

/// The asset class of a command's symbols, and the symbols as that class spells them: what
/// `--asset` says, else what the symbols' form tells ([`class_of`]); one class per run, and
/// every symbol must be valid in it. For crypto the settings' feed becomes the `--loc`
/// location, for options OPRA; a `--feed` on the command line is for stocks only, `--loc`
/// for crypto only.
pub(super) fn asset_of(
    symbols: Vec<Symbol>,
    args: &AssetArgs,
    settings: &mut Settings,
) -> anyhow::Result<(Asset, Vec<Symbol>)> {
    let detected = symbols
        .iter()
        .map(|s| (class_of(s), s))
        .find(|(a, _)| *a != Asset::Stocks);
    let asset = match (args.asset, detected) {
        (Some(given), Some((found, s))) if given != found => {
            return Err(usage(format!(
            "SYMBOLS: {s} is {}, but --asset {} was given (use --asset {}, or leave --asset out)",
            found.one(),
            given.flag(),
            found.flag(),
        )))
        }
        (Some(given), _) => given,
        (None, Some((found, _))) => found,
        (None, None) => Asset::Stocks,
    };
    if let Some((found, s)) = detected {
        if let Some(other) = symbols.iter().find(|x| class_of(x) != found) {
            return Err(usage(format!(
                "SYMBOLS mixes {} ({s}) and {} ({other}): import them in separate runs",
                found.many(),
                class_of(other).many()
            )));
        }
    }
    if args.loc.is_some() && asset != Asset::Crypto {
        return Err(usage(
            "--loc applies to crypto only (pairs such as BTC/USD, or --asset crypto); stocks take --feed",
        ));
    }
    let feed_flag = settings
        .provenance
        .iter()
        .any(|(k, _, src)| *k == "feed" && matches!(src, config::Source::Flag(_)));
    let parse: fn(&str) -> Result<Symbol, String> = match asset {
        Asset::Stocks => return Ok((asset, symbols)),
        Asset::Crypto => Symbol::parse_crypto,
        Asset::Options => Symbol::parse_option,
    };
    if feed_flag {
        return Err(usage(match asset {
            Asset::Options => {
                "--feed applies to stocks; historical option data is OPRA's and takes no feed"
            }
            _ => "--feed applies to stocks; crypto takes --loc us|us-1|us-2|eu-1|bs-1",
        }));
    }
    let symbols = symbols
        .iter()
        .map(|s| parse(s.as_str()).map_err(|e| usage(format!("SYMBOLS: {e}"))))
        .collect::<anyhow::Result<Vec<_>>>()?;
    settings.feed = match asset {
        Asset::Crypto => {
            let loc = args.loc.as_deref().unwrap_or("us");
            Feed::parse_loc(loc).ok_or_else(|| {
                usage(format!(
                    "invalid --loc {loc:?}: must be us, us-1, us-2, eu-1 or bs-1"
                ))
            })?
        }
        _ => Feed::default_of(asset),
    };
    Ok((asset, symbols))
}

/// `--underlying` and its filters, as the contract listing's query: expiries default to the
/// range's New York dates.
pub(super) fn contracts_of(
    args: &ContractArgs,
    range: DateRange,
) -> anyhow::Result<Option<ContractQuery>> {
    let Some(underlying) = args.underlying.as_deref() else {
        return Ok(None);
    };
    let underlying = Symbol::parse(underlying).map_err(|e| usage(format!("--underlying: {e}")))?;
    if underlying.is_crypto() || Symbol::looks_like_option(underlying.as_str()) {
        return Err(usage(format!(
            "--underlying {underlying}: expected a stock ticker such as AAPL"
        )));
    }
    let date = |flag: &str, text: Option<&str>, default: NaiveDate| match text {
        None => Ok(default),
        Some(t) => NaiveDate::parse_from_str(t, "%Y-%m-%d")
            .map_err(|_| usage(format!("{flag} {t:?}: expected a date YYYY-MM-DD"))),
    };
    let expiry_from = date(
        "--expiry-from",
        args.expiry_from.as_deref(),
        new_york_date(range.start_ns),
    )?;
    let expiry_to = date(
        "--expiry-to",
        args.expiry_to.as_deref(),
        new_york_date(range.end_ns),
    )?;
    if expiry_to < expiry_from {
        return Err(usage(format!(
            "--expiry-to {expiry_to} is before --expiry-from {expiry_from}"
        )));
    }
    let call = match args.contract_type.as_deref() {
        None => None,
        Some("call") => Some(true),
        Some("put") => Some(false),
        Some(other) => {
            return Err(usage(format!(
                "invalid --type {other:?}: must be call or put"
            )))
        }
    };
    for (flag, v) in [
        ("--strike-min", args.strike_min),
        ("--strike-max", args.strike_max),
    ] {
        if v.is_some_and(|v| !(v.is_finite() && v > 0.0)) {
            return Err(usage(format!("{flag} must be a price above 0")));
        }
    }
    if let (Some(lo), Some(hi)) = (args.strike_min, args.strike_max) {
        if hi < lo {
            return Err(usage(format!(
                "--strike-max {hi} is below --strike-min {lo}"
            )));
        }
    }
    Ok(Some(ContractQuery {
        underlying,
        expiry_from,
        expiry_to,
        call,
        strike_min: args.strike_min,
        strike_max: args.strike_max,
    }))
}

/// The `types` Alpaca's `/v1/corporate-actions` takes.
pub const ACTION_TYPES: [&str; 15] = [
    "reverse_split",
    "forward_split",
    "unit_split",
    "cash_dividend",
    "stock_dividend",
    "spin_off",
    "cash_merger",
    "stock_merger",
    "stock_and_cash_merger",
    "redemption",
    "name_change",
    "worthless_removal",
    "rights_distribution",
    "partial_call",
    "reorganization",
];

/// Corporate actions' `--types`: a comma-separated list of [`ACTION_TYPES`], kept sorted
/// (so one set of types is one dataset key whatever its order).
pub(super) fn types_of(types: Option<&str>, dataset: DatasetId) -> anyhow::Result<Option<String>> {
    let Some(text) = types else {
        return Ok(None);
    };
    if dataset != DatasetId::CorporateActions {
        return Err(usage("--types applies to corporate-actions only"));
    }
    let mut list: Vec<&str> = Vec::new();
    for t in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        if !ACTION_TYPES.contains(&t) {
            return Err(usage(format!(
                "--types: unknown corporate action type {t:?}: expected some of {}",
                ACTION_TYPES.join(", ")
            )));
        }
        if !list.contains(&t) {
            list.push(t);
        }
    }
    if list.is_empty() {
        return Err(usage("--types names no type"));
    }
    list.sort_unstable();
    Ok(Some(list.join(",")))
}
