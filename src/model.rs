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

    pub fn shared(&self) -> Arc<str> {
        self.0.clone()
    }
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
}

impl Feed {
    pub const ALL: [Feed; 4] = [Feed::Sip, Feed::Iex, Feed::Otc, Feed::Boats];

    pub fn as_str(self) -> &'static str {
        match self {
            Feed::Sip => "sip",
            Feed::Iex => "iex",
            Feed::Otc => "otc",
            Feed::Boats => "boats",
        }
    }

    pub fn parse(text: &str) -> Option<Feed> {
        Feed::ALL.into_iter().find(|f| f.as_str() == text)
    }

    /// A dataset key of this feed: the key itself for sip (the default, as keys were before
    /// feeds were told apart), `KEY@FEED` for the others.
    pub fn key(self, base: &str) -> String {
        match self {
            Feed::Sip => base.to_string(),
            other => format!("{base}@{}", other.as_str()),
        }
    }

    /// The Parquet store's root for this feed: `root` itself for sip, `root/feed=FEED` for
    /// the others (each holding the same layout).
    pub fn store_root(self, root: &std::path::Path) -> std::path::PathBuf {
        match self {
            Feed::Sip => root.to_path_buf(),
            other => root.join(format!("feed={}", other.as_str())),
        }
    }
}

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
