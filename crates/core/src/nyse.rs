//! The NYSE trading calendar, embedded: which days the exchange held a session, and which of
//! those closed early. US stock quotes and trades are sharded by it (holidays and weekends
//! cost no request; early closes are asked for only up to 17:00 New York), `data status`
//! counts missing trading days by it, and the stand-in serves by it.
//!
//! The rules are the exchange's standing ones (holidays moved off weekends as NYSE moves
//! them: a Saturday holiday closes the Friday before, a Sunday one the Monday after, except
//! New Year's Day, which a Saturday drops), plus the irregular closures and early closes
//! since 2000. They are checked day by day against exchange_calendars' XNYS for 2000–2030
//! (tests/data/xnys_2000_2030.tsv; .ci/run regenerates it from the PyPI package and compares).
//! Outside 2000–2030 the standing rules still apply; irregular events there are not known.

use chrono::{Datelike, NaiveDate, Weekday};

/// What the exchange did on a date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Session {
    /// A weekend, a holiday or an irregular closure.
    Closed,
    /// Regular session 09:30-16:00, extended hours 04:00-20:00 New York.
    Full,
    /// An early close: regular session to 13:00, extended hours to 17:00 New York.
    EarlyClose,
}

impl Session {
    pub(crate) fn is_open(self) -> bool {
        self != Session::Closed
    }

    /// The end of the regular session, New York (hour, minute); `None` when closed.
    pub fn regular_close(self) -> Option<(u32, u32)> {
        match self {
            Session::Closed => None,
            Session::Full => Some((16, 0)),
            Session::EarlyClose => Some((13, 0)),
        }
    }

    /// The end of extended hours, New York (hour, minute); `None` when closed.
    pub fn extended_close(self) -> Option<(u32, u32)> {
        match self {
            Session::Closed => None,
            Session::Full => Some((20, 0)),
            Session::EarlyClose => Some((17, 0)),
        }
    }
}

/// Closures outside the standing rules (national days of mourning, 9/11, hurricane Sandy).
const IRREGULAR_CLOSURES: [(i32, u32, u32); 10] = [
    (2001, 9, 11),
    (2001, 9, 12),
    (2001, 9, 13),
    (2001, 9, 14),
    (2004, 6, 11), // President Reagan
    (2007, 1, 2),  // President Ford
    (2012, 10, 29),
    (2012, 10, 30), // hurricane Sandy
    (2018, 12, 5),  // President G. H. W. Bush
    (2025, 1, 9),   // President Carter
];

/// Early closes outside the standing rules.
const IRREGULAR_EARLY_CLOSES: [(i32, u32, u32); 1] = [
    (2003, 12, 26), // the Friday after Christmas
];

fn ymd(y: i32, m: u32, d: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(y, m, d)
}

/// The `n`th (1-based) `weekday` of a month; `n = 0` the last one.
fn nth_weekday(year: i32, month: u32, weekday: Weekday, n: u8) -> Option<NaiveDate> {
    if n == 0 {
        let next = if month == 12 {
            ymd(year + 1, 1, 1)
        } else {
            ymd(year, month + 1, 1)
        }?;
        let last = next.pred_opt()?;
        let back = (7 + last.weekday().num_days_from_monday() - weekday.num_days_from_monday()) % 7;
        return last.checked_sub_days(chrono::Days::new(back as u64));
    }
    NaiveDate::from_weekday_of_month_opt(year, month, weekday, n)
}

/// Easter Sunday (Gregorian; the anonymous algorithm).
fn easter(year: i32) -> Option<NaiveDate> {
    let (a, b, c) = (year % 19, year / 100, year % 100);
    let (d, e) = (b / 4, b % 4);
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let (i, k) = (c / 4, c % 4);
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    ymd(year, month as u32, day as u32)
}

/// A fixed-date holiday as observed: Saturday -> the Friday before, Sunday -> the Monday after.
fn observed(date: NaiveDate) -> NaiveDate {
    match date.weekday() {
        Weekday::Sat => date.pred_opt().unwrap_or(date),
        Weekday::Sun => date.succ_opt().unwrap_or(date),
        _ => date,
    }
}

/// Whether the standing rules make `date` (a weekday) a full-day holiday.
fn is_holiday(date: NaiveDate) -> bool {
    let y = date.year();
    let is = |d: Option<NaiveDate>| d == Some(date);
    // New Year's Day: a Sunday one is kept on Monday; a Saturday one is not moved back.
    let new_year = ymd(y, 1, 1).filter(|d| d.weekday() != Weekday::Sat);
    is(new_year.map(observed))
        || (y >= 1998 && is(nth_weekday(y, 1, Weekday::Mon, 3))) // Martin Luther King Jr. Day
        || is(nth_weekday(y, 2, Weekday::Mon, 3)) // Washington's Birthday
        || is(easter(y).and_then(|e| e.checked_sub_days(chrono::Days::new(2)))) // Good Friday
        || is(nth_weekday(y, 5, Weekday::Mon, 0)) // Memorial Day
        || (y >= 2022 && is(ymd(y, 6, 19).map(observed))) // Juneteenth
        || is(ymd(y, 7, 4).map(observed)) // Independence Day
        || is(nth_weekday(y, 9, Weekday::Mon, 1)) // Labor Day
        || is(nth_weekday(y, 11, Weekday::Thu, 4)) // Thanksgiving
        || is(ymd(y, 12, 25).map(observed)) // Christmas
}

/// Whether `date` (an open weekday) closes at 13:00.
fn is_early_close(date: NaiveDate) -> bool {
    let y = date.year();
    let day_after_thanksgiving = nth_weekday(y, 11, Weekday::Thu, 4).and_then(|d| d.succ_opt());
    let independence = ymd(y, 7, 4);
    let around_independence = independence.is_some_and(|j4| match j4.weekday() {
        // The day before, when that is Monday to Thursday (Wednesday only since 2013).
        Weekday::Tue | Weekday::Wed | Weekday::Fri => j4.pred_opt() == Some(date),
        Weekday::Thu if y >= 2013 => j4.pred_opt() == Some(date),
        // Until 2012, the Friday after a Thursday Fourth.
        Weekday::Thu => j4.succ_opt() == Some(date),
        _ => false,
    });
    let christmas_eve = date.month() == 12
        && date.day() == 24
        && matches!(
            date.weekday(),
            Weekday::Mon | Weekday::Tue | Weekday::Wed | Weekday::Thu
        );
    day_after_thanksgiving == Some(date)
        || around_independence
        || christmas_eve
        || IRREGULAR_EARLY_CLOSES.contains(&(y, date.month(), date.day()))
}

/// What NYSE did (or will do, by its standing rules) on `date`.
pub fn session(date: NaiveDate) -> Session {
    if matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
        || is_holiday(date)
        || IRREGULAR_CLOSURES.contains(&(date.year(), date.month(), date.day()))
    {
        Session::Closed
    } else if is_early_close(date) {
        Session::EarlyClose
    } else {
        Session::Full
    }
}

/// Whether NYSE held (holds) a session on `date`.
pub fn is_trading_day(date: NaiveDate) -> bool {
    session(date).is_open()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn holidays_of_2024_are_closed_and_the_days_around_them_open() {
        for h in [
            "2024-01-01",
            "2024-01-15",
            "2024-02-19",
            "2024-03-29",
            "2024-05-27",
            "2024-06-19",
            "2024-07-04",
            "2024-09-02",
            "2024-11-28",
            "2024-12-25",
        ] {
            assert_eq!(session(d(h)), Session::Closed, "{h}");
            assert!(is_trading_day(d(h).pred_opt().unwrap()) || d(h).weekday() == Weekday::Mon);
        }
        assert_eq!(session(d("2024-01-02")), Session::Full);
        assert_eq!(session(d("2024-01-06")), Session::Closed, "a Saturday");
    }

    #[test]
    fn early_closes_end_extended_hours_at_17() {
        for e in ["2024-07-03", "2024-11-29", "2024-12-24", "2002-07-05"] {
            assert_eq!(session(d(e)), Session::EarlyClose, "{e}");
        }
        assert_eq!(Session::EarlyClose.extended_close(), Some((17, 0)));
        assert_eq!(Session::EarlyClose.regular_close(), Some((13, 0)));
        assert_eq!(Session::Full.extended_close(), Some((20, 0)));
        assert_eq!(Session::Closed.extended_close(), None);
    }

    #[test]
    fn irregular_closures_and_moved_holidays() {
        for c in [
            "2012-10-29",
            "2012-10-30",
            "2018-12-05",
            "2025-01-09",
            "2001-09-14",
        ] {
            assert_eq!(session(d(c)), Session::Closed, "{c}");
        }
        // Christmas 2021 on a Saturday closes Friday the 24th; New Year 2022 on a Saturday
        // closes nothing (Friday 2021-12-31 traded).
        assert_eq!(session(d("2021-12-24")), Session::Closed);
        assert_eq!(session(d("2021-12-31")), Session::Full);
        // New Year 2023 on a Sunday closes Monday the 2nd.
        assert_eq!(session(d("2023-01-02")), Session::Closed);
        assert_eq!(easter(2024), Some(d("2024-03-31")));
        assert_eq!(easter(2000), Some(d("2000-04-23")));
        assert_eq!(nth_weekday(2024, 5, Weekday::Mon, 0), Some(d("2024-05-27")));
    }
}
