//! Coverage at a glance for `data status`: a calendar strip per dataset, symbol, feed and
//! store (one character per NYSE trading day, or per week for long spans: full, partial —
//! started and resumable —, missing), and the same as JSON for scripts.

use crate::store::status::Holding;
use chrono::{Datelike, NaiveDate};
use std::fmt::Write;

/// Spans longer than this many trading days get one character per week.
pub const DAYS_PER_STRIP: usize = 80;

/// What a trading day (or week) holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    Full,
    Partial,
    Missing,
}

impl Cell {
    pub fn glyph(self) -> char {
        match self {
            Cell::Full => '#',
            Cell::Partial => '+',
            Cell::Missing => '.',
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Cell::Full => "full",
            Cell::Partial => "partial",
            Cell::Missing => "missing",
        }
    }
}

/// Each trading day from `h.first` to `h.last`, with what it holds.
pub fn days(h: &Holding) -> Vec<(NaiveDate, Cell)> {
    h.first
        .iter_days()
        .take_while(|d| *d <= h.last)
        .filter(|d| crate::store::status::trades_on(&h.dataset, *d) || h.per_day.contains_key(d))
        .map(|d| {
            let cell = match (h.per_day.contains_key(&d), h.partial.contains(&d)) {
                (false, _) => Cell::Missing,
                (true, true) => Cell::Partial,
                (true, false) => Cell::Full,
            };
            (d, cell)
        })
        .collect()
}

/// The strip: one character per trading day, or per ISO week when the span is long (full
/// when every trading day of it is, missing when none holds rows, partial otherwise).
pub fn strip(h: &Holding) -> (String, &'static str) {
    let days = days(h);
    if days.len() <= DAYS_PER_STRIP {
        return (days.iter().map(|(_, c)| c.glyph()).collect(), "day");
    }
    let mut out = String::new();
    let mut week: Option<(i32, u32)> = None;
    let mut cells: Vec<Cell> = Vec::new();
    let flush = |cells: &mut Vec<Cell>, out: &mut String| {
        if cells.is_empty() {
            return;
        }
        let cell = if cells.iter().all(|c| *c == Cell::Full) {
            Cell::Full
        } else if cells.iter().all(|c| *c == Cell::Missing) {
            Cell::Missing
        } else {
            Cell::Partial
        };
        out.push(cell.glyph());
        cells.clear();
    };
    for (d, c) in days {
        let w = (d.iso_week().year(), d.iso_week().week());
        if week != Some(w) {
            flush(&mut cells, &mut out);
            week = Some(w);
        }
        cells.push(c);
    }
    flush(&mut cells, &mut out);
    (out, "week")
}

/// The strips of `holdings`, under a legend.
pub fn render_strips(holdings: &[Holding]) -> String {
    if holdings.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "\ncoverage from FIRST to LAST: # full, + partial (started, resumable), . missing; \
         one character per trading day (per week for spans over 80 trading days)\n",
    );
    let label = |h: &Holding| {
        format!(
            "{} {} {}{} {}",
            h.symbol,
            h.dataset,
            h.feed,
            if h.synthetic { "*" } else { "" },
            h.store
        )
    };
    let width = holdings.iter().map(|h| label(h).len()).max().unwrap_or(0);
    for h in holdings {
        let (strip, per) = strip(h);
        let _ = writeln!(
            out,
            "{:<width$}  {}{}",
            label(h),
            strip,
            if per == "week" { "  (weeks)" } else { "" }
        );
    }
    out
}

/// `data status --json`: every holding with its days.
pub fn to_json(holdings: &[Holding], notes: &[String]) -> serde_json::Value {
    let items: Vec<serde_json::Value> = holdings
        .iter()
        .map(|h| {
            let days: Vec<serde_json::Value> = days(h)
                .into_iter()
                .map(|(d, c)| {
                    serde_json::json!({
                        "date": d.to_string(),
                        "rows": h.per_day.get(&d).copied().unwrap_or(0),
                        "state": c.name(),
                    })
                })
                .collect();
            serde_json::json!({
                "dataset": h.dataset,
                "symbol": h.symbol,
                "feed": h.feed,
                "synthetic": h.synthetic,
                "store": h.store,
                "first": h.first.to_string(),
                "last": h.last.to_string(),
                "days_held": h.days,
                "rows": h.rows,
                "missing_trading_days": h.gaps.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
                "days": days,
            })
        })
        .collect();
    serde_json::json!({ "holdings": items, "notes": notes })
}

/// Layout of the `--html` page, in CSS pixels (the test finds cells by these).
pub mod page {
    /// Page margin.
    pub const MARGIN: u32 = 16;
    /// Title and legend above the rows.
    pub const HEAD: u32 = 56;
    /// Width of a row's label.
    pub const LABEL: u32 = 300;
    /// Cell size, and the step from one cell (row) to the next.
    pub const CELL: u32 = 14;
    pub const STEP: u32 = 16;
}

/// The colour of a cell: missing red, partial orange, full a green as dark as its rows are
/// many (quartiles of the busiest day held).
fn colour(cell: Cell, rows: i64, max: i64) -> &'static str {
    const GREENS: [&str; 4] = ["#a6dba0", "#5aae61", "#1b7837", "#00441b"];
    match cell {
        Cell::Missing => "#d73027",
        Cell::Partial => "#fdae61",
        Cell::Full => {
            let q = (rows.max(1) * 4 - 1) / max.max(1);
            GREENS[q.clamp(0, 3) as usize]
        }
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `data status --html FILE`: one self-contained page (no script, no outside resource), a
/// heatmap of rows per trading day, a row per dataset, symbol, feed and store; each cell's
/// tooltip gives its day and rows.
pub fn to_html(holdings: &[Holding], notes: &[String]) -> String {
    use page::*;
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>data status</title>\n\
         <style>\n\
         * {{ box-sizing: border-box; }}\n\
         body {{ margin: 0; padding: {MARGIN}px; font: 12px/14px sans-serif; background: #fff; \
         color: #222; }}\n\
         .head {{ height: {HEAD}px; overflow: hidden; }}\n\
         h1 {{ font-size: 15px; line-height: 20px; margin: 0 0 6px; }}\n\
         .row {{ display: flex; height: {STEP}px; white-space: nowrap; }}\n\
         .label {{ width: {LABEL}px; flex: none; overflow: hidden; }}\n\
         .c {{ width: {CELL}px; height: {CELL}px; margin: 1px {gap}px 1px 0; flex: none; }}\n\
         .key {{ display: inline-block; width: 10px; height: 10px; margin: 0 3px 0 10px; }}\n\
         </style></head><body>\n<div class=\"head\"><h1>What the store holds</h1>\n\
         <div>one cell per NYSE trading day:\
         <span class=\"key\" style=\"background:#1b7837\"></span>rows (darker: more)\
         <span class=\"key\" style=\"background:#fdae61\"></span>partial (resumable)\
         <span class=\"key\" style=\"background:#d73027\"></span>missing</div></div>\n",
        gap = STEP - CELL
    );
    for h in holdings {
        let max = h.per_day.values().copied().max().unwrap_or(1);
        let _ = write!(
            out,
            "<div class=\"row\"><div class=\"label\" title=\"{} to {}\">{} {} {}{} {}</div>",
            h.first,
            h.last,
            escape(&h.symbol),
            escape(&h.dataset),
            escape(&h.feed),
            if h.synthetic { " (stand-in)" } else { "" },
            h.store
        );
        for (d, cell) in days(h) {
            let rows = h.per_day.get(&d).copied().unwrap_or(0);
            let _ = write!(
                out,
                "<div class=\"c\" style=\"background:{}\" title=\"{d}: {rows} rows, {}\"></div>",
                colour(cell, rows, max),
                cell.name()
            );
        }
        out.push_str("</div>\n");
    }
    if holdings.is_empty() {
        out.push_str("<p>no data held</p>\n");
    }
    for n in notes {
        let _ = writeln!(out, "<p>{}</p>", escape(n));
    }
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nyse::is_trading_day;
    use std::collections::{BTreeMap, BTreeSet};

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn holding(per_day: &[(&str, i64)], partial: &[&str]) -> Holding {
        let per_day: BTreeMap<NaiveDate, i64> = per_day.iter().map(|(s, n)| (d(s), *n)).collect();
        Holding {
            dataset: "quotes".into(),
            symbol: "AAPL".into(),
            feed: "sip".into(),
            synthetic: false,
            store: "database",
            first: *per_day.keys().next().unwrap(),
            last: *per_day.keys().next_back().unwrap(),
            days: per_day.len(),
            rows: per_day.values().sum(),
            gaps: Vec::new(),
            per_day,
            partial: partial.iter().map(|s| d(s)).collect::<BTreeSet<_>>(),
        }
    }

    #[test]
    fn a_strip_has_a_character_per_trading_day() {
        // Fri 12th, (weekend, MLK Monday), Tue 16th missing, Wed 17th partial, Thu 18th.
        let h = holding(
            &[("2024-01-12", 5), ("2024-01-17", 3), ("2024-01-18", 5)],
            &["2024-01-17"],
        );
        assert_eq!(strip(&h), ("#.+#".to_string(), "day"));
        let json = to_json(&[h], &[]);
        assert_eq!(json["holdings"][0]["days"][1]["state"], "missing");
        assert_eq!(json["holdings"][0]["days"][2]["rows"], 3);
    }

    #[test]
    fn long_spans_get_a_character_per_week() {
        let mut per_day: Vec<(String, i64)> = Vec::new();
        let mut day = d("2024-01-02");
        while day <= d("2024-06-28") {
            // Every trading day but those of the week of 2024-03-11.
            if is_trading_day(day) && !(d("2024-03-11")..=d("2024-03-15")).contains(&day) {
                per_day.push((day.to_string(), 1));
            }
            day = day.succ_opt().unwrap();
        }
        let refs: Vec<(&str, i64)> = per_day.iter().map(|(s, n)| (s.as_str(), *n)).collect();
        let h = holding(&refs, &["2024-04-02"]);
        let (s, per) = strip(&h);
        assert_eq!(per, "week");
        assert_eq!(s.len(), 26);
        assert_eq!(s.matches('.').count(), 1, "{s}");
        assert_eq!(s.matches('+').count(), 1, "{s}");
    }
}
