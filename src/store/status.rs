//! `data status`: what each store holds, per dataset, symbol and feed (days, rows, gaps,
//! unfinished days), read without creating anything, and rendered as a table.

use crate::config::Settings;
use crate::store::Store;
pub use data_job::store::{trades_on, Holding, SYNTHETIC};

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
    use chrono::NaiveDate;
    use data_job::store::holdings;

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
