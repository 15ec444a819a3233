//! `data status`: what each store holds, per dataset, symbol and feed (days, rows, gaps,
//! unfinished days), read without creating anything, and rendered as a table.

use crate::config::Settings;
use crate::dataset::{Asset, DatasetId};
use crate::model::Feed;
use crate::nyse::is_trading_day;
use crate::resume::ShardUnit;
use crate::store::parquet::layout::Layout;
use crate::store::parquet::location::Location;
use crate::store::parquet::reader::{list_units, rows_per_day};
use crate::store::sql::database::Database;
use crate::store::Store;
use chrono::NaiveDate;
use std::collections::BTreeMap;

/// The suffix of a dataset key whose rows are the stand-in's (`#standin`).
pub const SYNTHETIC: &str = "#standin";

/// One line of `data status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holding {
    pub dataset: String,
    pub symbol: String,
    /// The feed the rows came from (`sip`, `iex`, ...): part of the dataset's identity.
    pub feed: String,
    /// The rows are the stand-in's synthetic data (`import-api --standin`).
    pub synthetic: bool,
    pub store: &'static str,
    pub first: NaiveDate,
    pub last: NaiveDate,
    pub days: usize,
    pub rows: i64,
    /// NYSE trading days between first and last with no rows (weekends and exchange
    /// holidays are never gaps).
    pub gaps: Vec<NaiveDate>,
    /// Rows per New York day held.
    pub per_day: BTreeMap<NaiveDate, i64>,
    /// Days held whose import is not finished (resumable): fewer rows than the day has.
    pub partial: std::collections::BTreeSet<NaiveDate>,
}

/// Whether dataset `key` should hold rows on `day`: every day for crypto, NYSE sessions
/// for stocks and options, no day in particular for corporate actions.
pub fn trades_on(key: &str, day: NaiveDate) -> bool {
    match DatasetId::from_key(key) {
        Some(d) if d.asset() == Asset::Crypto => true,
        // Corporate actions are sparse events: a day without one is not missing.
        Some(DatasetId::CorporateActions) => false,
        _ => is_trading_day(day),
    }
}

fn holdings(store: &'static str, per_day: Vec<(String, String, NaiveDate, i64)>) -> Vec<Holding> {
    let mut grouped: BTreeMap<(String, String), BTreeMap<NaiveDate, i64>> = BTreeMap::new();
    for (ds, sym, d, n) in per_day {
        *grouped.entry((ds, sym)).or_default().entry(d).or_default() += n;
    }
    grouped
        .into_iter()
        .filter_map(|((key, symbol), days)| {
            let (&first, &last) = (days.keys().next()?, days.keys().next_back()?);
            // Keys carry `@FEED` for every feed but sip (`Feed::key`), then `#standin` for
            // synthetic rows.
            let (key, synthetic) = match key.strip_suffix(SYNTHETIC) {
                Some(k) => (k.to_string(), true),
                None => (key, false),
            };
            let of = |d: &str| DatasetId::from_key(d).map(|d| d.asset());
            let (dataset, feed) = match key.split_once('@') {
                Some((d, f)) => (d.to_string(), f.to_string()),
                None => {
                    let default = Feed::default_of(of(&key).unwrap_or(Asset::Stocks));
                    (key, default.as_str().to_string())
                }
            };
            let gaps = first
                .iter_days()
                .take_while(|d| *d <= last)
                .filter(|d| trades_on(&dataset, *d) && !days.contains_key(d))
                .collect();
            Some(Holding {
                dataset,
                symbol,
                feed,
                synthetic,
                store,
                first,
                last,
                days: days.len(),
                rows: days.values().sum(),
                gaps,
                per_day: days,
                partial: Default::default(),
            })
        })
        .collect()
}

/// What every store the settings name holds (the database, if it exists, and the Parquet
/// store), read without creating anything, with a note for each that holds nothing.
pub async fn status(settings: &Settings) -> anyhow::Result<(Vec<Holding>, Vec<String>)> {
    let (mut out, mut notes) = (Vec::new(), Vec::new());
    for store in crate::store::every(settings) {
        let (held, said) = store.status().await?;
        out.extend(held);
        notes.extend(said);
    }
    out.sort_by(|a, b| {
        (&a.dataset, &a.symbol, &a.feed, a.store).cmp(&(&b.dataset, &b.symbol, &b.feed, b.store))
    });
    Ok((out, notes))
}

/// What the database holds, per dataset, symbol and feed; days whose import is unfinished
/// (a progress record not done) are partial.
pub async fn database_holdings(db: &mut Database) -> anyhow::Result<Vec<Holding>> {
    let mut held = holdings("database", db.day_counts(None).await?);
    let unfinished: std::collections::HashSet<(String, String, NaiveDate)> =
        db.unfinished_days().await?.into_iter().collect();
    for h in &mut held {
        let key = Feed::parse(&h.feed).map_or(h.dataset.clone(), |f| f.key(&h.dataset));
        let unit = DatasetId::from_key(&h.dataset).map_or(ShardUnit::Session, |d| d.unit());
        h.partial = h
            .per_day
            .keys()
            .copied()
            .filter(|d| {
                let u = unit.key_of(crate::time::new_york_time_nanos(*d, 12, 0));
                unfinished.contains(&(key.clone(), h.symbol.clone(), u))
            })
            .collect();
    }
    Ok(held)
}

/// What the Parquet store under `root` holds (every feed's folder), per dataset, symbol and
/// feed.
pub fn parquet_holdings(root: &Location) -> anyhow::Result<Vec<Holding>> {
    // A bucket that cannot be listed is an error, not an empty store.
    root.check()?;
    let mut per_day = Vec::new();
    for feed in Feed::STOCKS
        .into_iter()
        .chain(Feed::CRYPTO)
        .chain([Feed::Opra])
    {
        let root = crate::store::parquet::layout::feed_root(feed, root);
        for layout in crate::store::parquet::layout::present(&root) {
            if layout.asset() != feed.asset() {
                continue;
            }
            let name = feed.key(&layout.key());
            let mut marked: BTreeMap<String, bool> = BTreeMap::new();
            for (sym, key, n, path) in list_units(&root, &layout)? {
                let synthetic = match marked.get(&sym) {
                    Some(&m) => m,
                    None => {
                        let m = root.exists(&layout.synthetic_marker(root.path(), &sym))?;
                        *marked.entry(sym.clone()).or_insert(m)
                    }
                };
                let name = match synthetic {
                    true => format!("{name}{SYNTHETIC}"),
                    false => name.clone(),
                };
                match layout.unit().is_month() {
                    false => per_day.push((name.clone(), sym, key, n)),
                    // A month spans several days.
                    true => {
                        for (d, n) in rows_per_day(&root, &path, layout.unit())? {
                            per_day.push((name.clone(), sym.clone(), d, n));
                        }
                    }
                }
            }
        }
    }
    Ok(holdings("parquet", per_day))
}

/// Renders `status` as an aligned table.
pub fn render(holdings: &[Holding], notes: &[String]) -> String {
    let mut lines = vec![[
        "DATASET".to_string(),
        "SYMBOL".into(),
        "FEED".into(),
        "STORE".into(),
        "FIRST".into(),
        "LAST".into(),
        "DAYS".into(),
        "ROWS".into(),
        "MISSING TRADING DAYS".into(),
    ]];
    for h in holdings {
        let gaps = match h.gaps.len() {
            0 => "none".to_string(),
            n => {
                let shown: Vec<String> = h.gaps.iter().take(5).map(|d| d.to_string()).collect();
                format!(
                    "{n}: {}{}",
                    shown.join(", "),
                    if n > 5 { ", ..." } else { "" }
                )
            }
        };
        lines.push([
            h.dataset.clone(),
            h.symbol.clone(),
            if h.synthetic {
                format!("{}*", h.feed)
            } else {
                h.feed.clone()
            },
            h.store.to_string(),
            h.first.to_string(),
            h.last.to_string(),
            h.days.to_string(),
            h.rows.to_string(),
            gaps,
        ]);
    }
    let widths: Vec<usize> = (0..9)
        .map(|i| lines.iter().map(|l| l[i].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    if holdings.is_empty() {
        out.push_str("no data held\n");
    } else {
        for l in &lines {
            let cells: Vec<String> = l
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            out.push_str(cells.join("  ").trim_end());
            out.push('\n');
        }
    }
    if holdings.iter().any(|h| h.synthetic) {
        out.push_str(
            "* synthetic rows from the offline stand-in (import-api --standin), not market data\n",
        );
    }
    if holdings.iter().any(|h| !h.gaps.is_empty()) {
        out.push_str(
            "missing trading days: NYSE sessions between FIRST and LAST with no rows (weekends and \
             exchange holidays are not counted)\n",
        );
    }
    for n in notes {
        out.push_str(n);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_are_missing_trading_days() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        // 2024-01-12 (Fri) to 2024-01-17: the weekend and MLK day (Mon 15th) are no gap,
        // Tuesday the 16th is.
        let per_day = vec![
            ("quotes".into(), "AAPL".into(), d("2024-01-12"), 5),
            ("quotes".into(), "AAPL".into(), d("2024-01-17"), 7),
        ];
        let h = holdings("database", per_day);
        assert_eq!(h.len(), 1);
        assert_eq!((h[0].days, h[0].rows), (2, 12));
        assert_eq!(h[0].gaps, vec![d("2024-01-16")]);
        assert!(render(&h, &[]).contains("1: 2024-01-16"));
        assert!(render(&h, &[]).contains("exchange holidays are not counted"));
    }
}
