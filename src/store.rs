//! `data status` and `data archive`: what each store holds, and moving old days from the
//! database to the Parquet store without ever losing or duplicating a row.
//!
//! Archive works one New York day at a time: the day's database rows (merged with any file
//! already stored for that day) are written as the day's file atomically, read back and
//! verified (row count and checksum), and only then deleted from the database. A crash at
//! any point leaves the rows in the database, in the file, or both — and a rerun merges by
//! key, so it neither loses nor duplicates anything.

use crate::model::{Quote, Symbol};
use crate::sink::database::{is_postgres_url, Database};
use crate::sink::parquet::{day_file, list_days, read_day_file, write_day_file};
use crate::time::{is_weekday, new_york_time_nanos};
use anyhow::{anyhow, Context};
use chrono::{Duration as Days, NaiveDate};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// One line of `data status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holding {
    pub dataset: String,
    pub symbol: String,
    pub store: &'static str,
    pub first: NaiveDate,
    pub last: NaiveDate,
    pub days: usize,
    pub rows: i64,
    /// Weekdays between first and last with no rows (exchange holidays show here too).
    pub gaps: Vec<NaiveDate>,
}

fn holdings(store: &'static str, per_day: Vec<(String, String, NaiveDate, i64)>) -> Vec<Holding> {
    let mut grouped: BTreeMap<(String, String), BTreeMap<NaiveDate, i64>> = BTreeMap::new();
    for (ds, sym, d, n) in per_day {
        *grouped.entry((ds, sym)).or_default().entry(d).or_default() += n;
    }
    grouped
        .into_iter()
        .filter_map(|((dataset, symbol), days)| {
            let (&first, &last) = (days.keys().next()?, days.keys().next_back()?);
            let gaps = first
                .iter_days()
                .take_while(|d| *d <= last)
                .filter(|d| is_weekday(*d) && !days.contains_key(d))
                .collect();
            Some(Holding {
                dataset,
                symbol,
                store,
                first,
                last,
                days: days.len(),
                rows: days.values().sum(),
                gaps,
            })
        })
        .collect()
}

/// What the database (if it exists) and the Parquet store hold.
pub async fn status(
    database_url: &str,
    root: &Path,
    busy: std::time::Duration,
) -> anyhow::Result<(Vec<Holding>, Vec<String>)> {
    let mut notes = Vec::new();
    let mut out = Vec::new();
    let exists = is_postgres_url(database_url) || {
        let opts = crate::sink::sqlite::connect_options(database_url)?;
        let db_path = opts.get_filename().to_path_buf();
        let exists = db_path.exists();
        if !exists {
            notes.push(format!("database {}: does not exist", db_path.display()));
        }
        exists
    };
    if exists {
        let mut db = Database::open(database_url, busy).await?;
        out.extend(holdings("database", db.day_counts(None).await?));
    }
    let files = list_days(root)?;
    if files.is_empty() {
        notes.push(format!("Parquet store {}: no day files", root.display()));
    }
    out.extend(holdings(
        "parquet",
        files
            .into_iter()
            .map(|(sym, d, n, _)| ("quotes".to_string(), sym, d, n))
            .collect(),
    ));
    out.sort_by(|a, b| (&a.dataset, &a.symbol, a.store).cmp(&(&b.dataset, &b.symbol, b.store)));
    Ok((out, notes))
}

/// Renders `status` as an aligned table.
pub fn render(holdings: &[Holding], notes: &[String]) -> String {
    let mut lines = vec![[
        "DATASET".to_string(),
        "SYMBOL".into(),
        "STORE".into(),
        "FIRST".into(),
        "LAST".into(),
        "DAYS".into(),
        "ROWS".into(),
        "WEEKDAY GAPS".into(),
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
            h.store.to_string(),
            h.first.to_string(),
            h.last.to_string(),
            h.days.to_string(),
            h.rows.to_string(),
            gaps,
        ]);
    }
    let widths: Vec<usize> = (0..8)
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
    for n in notes {
        out.push_str(n);
        out.push('\n');
    }
    out
}

/// Parses `--older-than`: `30d` (days before today in New York) or a date `YYYY-MM-DD`.
/// Returns the first day that is kept in the database.
pub fn parse_cutoff(text: &str, today: NaiveDate) -> anyhow::Result<NaiveDate> {
    if let Some(n) = text.strip_suffix('d') {
        let n: i64 = n.parse().map_err(|_| {
            anyhow!(
                "--older-than {text:?}: expected a number of days like 30d, or a date YYYY-MM-DD"
            )
        })?;
        return Ok(today - Days::days(n));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
        anyhow!("--older-than {text:?}: expected a number of days like 30d, or a date YYYY-MM-DD")
    })
}

/// An order-sensitive checksum of every field of every row.
pub fn checksum(rows: &[Quote]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h = (h ^ *b as u64).wrapping_mul(0x0000_0100_0000_01B3);
        }
    };
    for r in rows {
        eat(&r.t.to_le_bytes());
        eat(&r.seq.to_le_bytes());
        eat(r.bid_exchange.as_bytes());
        eat(&r.bid_price.to_bits().to_le_bytes());
        eat(&r.bid_size.to_le_bytes());
        eat(r.ask_exchange.as_bytes());
        eat(&r.ask_price.to_bits().to_le_bytes());
        eat(&r.ask_size.to_le_bytes());
        eat(r.conditions_json().as_bytes());
        eat(r.tape.as_bytes());
        eat(&[0xff]);
    }
    h
}

#[derive(Debug, Default)]
pub struct ArchiveReport {
    pub days: usize,
    pub rows: u64,
}

/// Moves `symbol`'s raw quotes of New York days before `cutoff` from the database to the
/// Parquet store, day by day (write, verify, then delete).
pub async fn archive(
    db: &mut Database,
    root: &Path,
    symbol: &Symbol,
    cutoff: NaiveDate,
) -> anyhow::Result<ArchiveReport> {
    let mut report = ArchiveReport::default();
    let days: Vec<NaiveDate> = db
        .day_counts(Some(symbol.as_str()))
        .await?
        .into_iter()
        .filter(|(ds, _, d, _)| ds == "quotes" && *d < cutoff)
        .map(|(_, _, d, _)| d)
        .collect();
    let shared: Arc<str> = symbol.shared();
    for date in days {
        let from = new_york_time_nanos(date, 0, 0);
        let until = new_york_time_nanos(date.succ_opt().context("date out of range")?, 0, 0);
        let in_db = db.read_quotes(symbol.as_str(), from, until).await?;
        let path = day_file(root, symbol.as_str(), date);
        // Merge with a file already stored for the day (an earlier archive or import, or a
        // run that crashed after writing): keyed by (t, seq), the database's row wins.
        let mut merged: BTreeMap<(i64, u32), Quote> = BTreeMap::new();
        if path.exists() {
            for q in read_day_file(&path, &shared)? {
                merged.insert((q.t, q.seq), q);
            }
        }
        let n_db = in_db.len();
        for q in in_db {
            merged.insert((q.t, q.seq), q);
        }
        let rows: Vec<Quote> = merged.into_values().collect();
        let written = {
            let (root, sym, rows) = (
                root.to_path_buf(),
                symbol.as_str().to_string(),
                rows.clone(),
            );
            tokio::task::spawn_blocking(move || write_day_file(&root, &sym, date, &rows))
                .await
                .context("the file writer task failed")??
        };
        let back = read_day_file(&written, &shared)?;
        if back.len() != rows.len() || checksum(&back) != checksum(&rows) {
            anyhow::bail!(
                "verification of {} failed ({} rows read back, {} written); nothing was deleted from the database",
                written.display(),
                back.len(),
                rows.len()
            );
        }
        let deleted = db.delete_quotes(symbol.as_str(), from, until).await?;
        tracing::info!(
            "[ARCHIVE] {symbol} {date}: {n_db} database rows -> {} ({} rows, verified), {deleted} deleted from the database",
            written.display(),
            rows.len()
        );
        report.days += 1;
        report.rows += n_db as u64;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cutoffs() {
        let today = NaiveDate::from_ymd_opt(2024, 12, 31).unwrap();
        assert_eq!(
            parse_cutoff("30d", today).unwrap(),
            NaiveDate::from_ymd_opt(2024, 12, 1).unwrap()
        );
        assert_eq!(
            parse_cutoff("2024-06-01", today).unwrap(),
            NaiveDate::from_ymd_opt(2024, 6, 1).unwrap()
        );
        assert!(parse_cutoff("soon", today)
            .unwrap_err()
            .to_string()
            .contains("expected a number of days"));
    }

    #[test]
    fn gaps_are_missing_weekdays() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let per_day = vec![
            ("quotes".into(), "AAPL".into(), d("2024-01-04"), 5),
            ("quotes".into(), "AAPL".into(), d("2024-01-05"), 5),
            ("quotes".into(), "AAPL".into(), d("2024-01-09"), 7),
        ];
        let h = holdings("database", per_day);
        assert_eq!(h.len(), 1);
        assert_eq!((h[0].days, h[0].rows), (3, 17));
        assert_eq!(h[0].gaps, vec![d("2024-01-08")]);
    }
}
