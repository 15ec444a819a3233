//! The validated values every stage shares: a ticker `Symbol` and the data `Feed`. (Rows
//! travel as columnar batches: see [`crate::batch`] and [`crate::dataset`].)
//!
//! Parsing happens here, at the edge; nothing downstream re-validates.

use std::fmt;
use std::sync::Arc;

/// A ticker as Alpaca spells it: 1–21 characters of A–Z, 0–9, `.`, `-` or `/`
/// (e.g. `AAPL`, `BRK.B`). Lower-case input is upper-cased.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Symbol(Arc<str>);

impl Symbol {
    pub fn parse(text: &str) -> Result<Self, String> {
        let upper = text.to_ascii_uppercase();
        if upper.is_empty() || upper.len() > 21 {
            return Err(format!(
                "symbol {text:?} must be 1 to 21 characters long (e.g. AAPL, BRK.B)"
            ));
        }
        if let Some(c) = upper.chars().find(|c| {
            !(c.is_ascii_uppercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '/'))
        }) {
            return Err(format!(
                "symbol {text:?} contains {c:?}, which no ticker has \
                 (use letters, digits, '.', '-' or '/', e.g. AAPL, BRK.B)"
            ));
        }
        if !upper.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err(format!("symbol {text:?} must start with a letter or digit"));
        }
        Ok(Symbol(upper.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A crypto pair (`BTC/USD`): the only symbols with a `/`.
    pub fn is_crypto(&self) -> bool {
        self.0.contains('/')
    }

    /// A crypto pair as Alpaca's v1beta3 endpoints take it: `BASE/QUOTE`, letters only
    /// (`BTC/USD`); lower case is upper-cased. `BTCUSD` (the legacy form) is refused.
    pub fn parse_crypto(text: &str) -> Result<Self, String> {
        let upper = text.trim().to_ascii_uppercase();
        let letters =
            |s: &str| !s.is_empty() && s.len() <= 10 && s.bytes().all(|b| b.is_ascii_uppercase());
        match upper.split_once('/') {
            Some((base, quote)) if letters(base) && letters(quote) => Ok(Symbol(upper.into())),
            _ => Err(format!(
                "crypto symbol {text:?} must be BASE/QUOTE in letters, e.g. BTC/USD or ETH/USD"
            )),
        }
    }

    /// Whether the text has the shape of an OCC option contract symbol (long, with a run of
    /// six or more digits, which no ticker has): such a symbol is validated as one, never
    /// taken for a ticker.
    pub fn looks_like_option(text: &str) -> bool {
        let text = text.trim();
        let longest_digits = text
            .split(|c: char| !c.is_ascii_digit())
            .map(str::len)
            .max()
            .unwrap_or(0);
        text.len() >= 12 && longest_digits >= 6
    }

    /// An OCC option contract symbol, parsed from the right as roots may carry digits:
    /// `ROOT` (1-6 letters or digits, from a letter) + `YYMMDD` expiry + `C`|`P` + the
    /// strike times 1000 in 8 digits, e.g. `AAPL240419P00140000` (AAPL put, 2024-04-19,
    /// $140). Lower case is upper-cased.
    pub fn parse_option(text: &str) -> Result<Self, String> {
        let upper = text.trim().to_ascii_uppercase();
        let why = option_problem(&upper);
        match why {
            None => Ok(Symbol(upper.into())),
            Some(why) => Err(format!(
                "option symbol {text:?} is not an OCC contract symbol ({why}): expected \
                 ROOT+YYMMDD+C|P+strike x 1000 in 8 digits, e.g. AAPL240419P00140000"
            )),
        }
    }

    /// An option contract's expiry, type (`C`/`P`) and strike, read from its OCC symbol.
    pub fn option_parts(&self) -> Option<(chrono::NaiveDate, char, f64)> {
        let s = self.as_str();
        let n = s.len();
        let tail = s.get(n.checked_sub(15)?..)?;
        let date =
            chrono::NaiveDate::parse_from_str(&format!("20{}", &tail[..6]), "%Y%m%d").ok()?;
        let kind = tail[6..7].chars().next()?;
        let strike = tail[7..].parse::<u64>().ok()? as f64 / 1000.0;
        Some((date, kind, strike))
    }

    /// The symbol as a file-system and partition-path name: `BTC/USD` becomes `BTC-USD`
    /// (crypto pairs hold no `-`, stock tickers no `/`, so this maps back one to one).
    pub fn path_name(text: &str) -> String {
        text.replace('/', "-")
    }

    pub fn shared(&self) -> Arc<str> {
        self.0.clone()
    }
}

/// What is wrong with `s` as an OCC symbol, parsed from the right; `None` when it is one.
fn option_problem(s: &str) -> Option<&'static str> {
    let b = s.as_bytes();
    if b.len() < 16 || b.len() > 21 {
        return Some("16 to 21 characters");
    }
    let n = b.len();
    if !b[n - 8..].iter().all(u8::is_ascii_digit) {
        return Some("the last 8 characters must be the strike's digits");
    }
    if !matches!(b[n - 9], b'C' | b'P') {
        return Some("C or P must precede the strike");
    }
    let date = &s[n - 15..n - 9];
    if !date.bytes().all(|c| c.is_ascii_digit())
        || chrono::NaiveDate::parse_from_str(&format!("20{date}"), "%Y%m%d").is_err()
    {
        return Some("the 6 characters before C or P must be the expiry date YYMMDD");
    }
    let root = &b[..n - 15];
    if root.is_empty()
        || root.len() > 6
        || !root[0].is_ascii_uppercase()
        || !root
            .iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    {
        return Some("the root must be 1 to 6 letters or digits, from a letter");
    }
    None
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which feed to ask Alpaca for. Part of a dataset's identity: rows of different feeds of
/// one symbol are never mixed (the database keys them apart, the Parquet store keeps each
/// feed under its own folder).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub enum Feed {
    /// All US exchanges (the consolidated SIP feed; paid plans, or older than 15 minutes).
    Sip,
    /// The IEX exchange only (free plan).
    Iex,
    /// Over-the-counter securities.
    Otc,
    /// Blue Ocean ATS (overnight trading).
    Boats,
    /// Crypto, location `us` (Alpaca US; `--loc us`, the default). The crypto locations are
    /// set with `--loc`, never `--feed`.
    #[value(skip)]
    CryptoUs,
    /// Crypto, location `us-1` (Kraken US).
    #[value(skip)]
    CryptoUs1,
    /// Crypto, location `us-2`.
    #[value(skip)]
    CryptoUs2,
    /// Crypto, location `eu-1` (Kraken EU).
    #[value(skip)]
    CryptoEu1,
    /// Crypto, location `bs-1`.
    #[value(skip)]
    CryptoBs1,
    /// Options: OPRA, as Alpaca's historical option bars and trades are (they take no feed
    /// parameter).
    #[value(skip)]
    Opra,
}

impl Feed {
    /// The stock feeds (`--feed`).
    pub const STOCKS: [Feed; 4] = [Feed::Sip, Feed::Iex, Feed::Otc, Feed::Boats];
    /// The crypto locations (`--loc`).
    pub const CRYPTO: [Feed; 5] = [
        Feed::CryptoUs,
        Feed::CryptoUs1,
        Feed::CryptoUs2,
        Feed::CryptoEu1,
        Feed::CryptoBs1,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Feed::Sip => "sip",
            Feed::Iex => "iex",
            Feed::Otc => "otc",
            Feed::Boats => "boats",
            Feed::CryptoUs => "us",
            Feed::CryptoUs1 => "us-1",
            Feed::CryptoUs2 => "us-2",
            Feed::CryptoEu1 => "eu-1",
            Feed::CryptoBs1 => "bs-1",
            Feed::Opra => "opra",
        }
    }

    /// A stock feed or a crypto location, as the `symbols` table and progress keys spell it.
    pub fn parse(text: &str) -> Option<Feed> {
        Feed::STOCKS
            .into_iter()
            .chain(Feed::CRYPTO)
            .chain([Feed::Opra])
            .find(|f| f.as_str() == text)
    }

    /// Which market's feed (or location) it is.
    pub fn asset(self) -> Asset {
        match self {
            Feed::Opra => Asset::Options,
            f if Feed::STOCKS.contains(&f) => Asset::Stocks,
            _ => Asset::Crypto,
        }
    }

    /// The default feed of `asset`: sip, or the `us` location.
    pub fn default_of(asset: Asset) -> Feed {
        match asset {
            Asset::Stocks => Feed::Sip,
            Asset::Crypto => Feed::CryptoUs,
            Asset::Options => Feed::Opra,
        }
    }

    /// A crypto location (`--loc`).
    pub fn parse_loc(text: &str) -> Option<Feed> {
        Feed::CRYPTO.into_iter().find(|f| f.as_str() == text)
    }

    /// The default of its asset class (sip for stocks, us for crypto, opra for options): keys and folders
    /// name only the others.
    pub fn is_default(self) -> bool {
        matches!(self, Feed::Sip | Feed::CryptoUs | Feed::Opra)
    }

    /// A dataset key of this feed: the key itself for the default feed (as keys were before
    /// feeds were told apart), `KEY@FEED` for the others.
    pub fn key(self, base: &str) -> String {
        match self.is_default() {
            true => base.to_string(),
            false => format!("{base}@{}", self.as_str()),
        }
    }
}

/// Which contracts `--underlying` asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct ContractQuery {
    pub underlying: Symbol,
    pub expiry_from: chrono::NaiveDate,
    pub expiry_to: chrono::NaiveDate,
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
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
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

/// Which market a dataset is of: US stocks (`/v2/stocks`) or crypto (`/v1beta3/crypto`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum)]
pub enum Asset {
    /// US equities: New York session days, feeds sip/iex/otc/boats
    Stocks,
    /// Crypto pairs (BTC/USD): UTC days, weekends included, locations us/us-1/...
    Crypto,
    /// Option contracts by OCC symbol (AAPL240419P00140000): trades and bars, no quotes
    Options,
}

impl Asset {
    /// Its `--asset` value.
    pub fn flag(self) -> &'static str {
        match self {
            Asset::Stocks => "stocks",
            Asset::Crypto => "crypto",
            Asset::Options => "options",
        }
    }

    /// One symbol of it, for messages: `a stock ticker`, `a crypto pair`, `an option
    /// contract`.
    pub fn one(self) -> &'static str {
        match self {
            Asset::Stocks => "a stock ticker",
            Asset::Crypto => "a crypto pair",
            Asset::Options => "an option contract",
        }
    }

    /// Its symbols, for messages: `stock tickers`, `crypto pairs`, `option contracts`.
    pub fn many(self) -> &'static str {
        match self {
            Asset::Stocks => "stock tickers",
            Asset::Crypto => "crypto pairs",
            Asset::Options => "option contracts",
        }
    }
}

/// The header every answer of the offline stand-in carries (`x-alpaca-standin: synthetic`):
/// an importer marks what it stores from such a server as synthetic, and never sends it the
/// user's keys.
pub const SYNTHETIC_HEADER: &str = "x-alpaca-standin";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols() {
        assert_eq!(Symbol::parse("aapl").unwrap().as_str(), "AAPL");
        assert_eq!(Symbol::parse("BRK.B").unwrap().as_str(), "BRK.B");
        for bad in [
            "",
            "AA PL",
            "AAPL;DROP",
            "$AAPL",
            "ÄPPL",
            ".A",
            "ABCDEFGHIJKLMNOPQRSTUV",
        ] {
            assert!(Symbol::parse(bad).is_err(), "{bad:?} accepted");
        }
        let e = Symbol::parse("AA$PL").unwrap_err();
        assert!(e.contains("contains '$', which no ticker has"), "{e}");
    }
}
