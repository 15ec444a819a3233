//! The sharding calendar: how a range of a dataset is cut into units of work (and of the
//! Parquet store's files).

use crate::nyse;
use crate::time::{new_york_date, new_york_dates, new_york_time_nanos, SESSION_OPEN};
use chrono::NaiveDate;

/// How a range is cut into shards: the sharding calendar. A unit is keyed by a date (a day,
/// or a month's first day); it has the span a file of the Parquet store covers
/// ([`ShardUnit::bounds`]) and the span a shard asks the API for ([`ShardUnit::span`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardUnit {
    /// Each NYSE trading day's extended session, 04:00-20:00 New York, to 17:00 on an early
    /// close (quotes, trades); weekends and holidays are no unit of work.
    Session,
    /// Each New York calendar month, midnight to midnight (bars: a month of even 1-minute
    /// bars is a page or two, and a daily bar opens at midnight). Keyed by the month's
    /// first day.
    Month,
    /// Each UTC day, midnight to midnight, weekends included: for markets that trade around
    /// the clock (crypto).
    UtcDay,
    /// Each UTC calendar month (crypto bars). Keyed by the month's first day.
    UtcMonth,
}

const DAY_NS: i64 = 86_400 * 1_000_000_000;

/// UTC midnight of `day`, in ns.
pub fn utc_midnight(day: NaiveDate) -> i64 {
    day.and_hms_opt(0, 0, 0)
        .and_then(|t| t.and_utc().timestamp_nanos_opt())
        .unwrap_or(i64::MAX)
}

/// The UTC date of `t_ns`.
pub fn utc_date(t_ns: i64) -> NaiveDate {
    chrono::DateTime::from_timestamp_nanos(t_ns).date_naive()
}

impl ShardUnit {
    /// The word for progress lines: `days`, `months`.
    pub fn noun(self) -> &'static str {
        match self {
            ShardUnit::Month | ShardUnit::UtcMonth => "months",
            ShardUnit::Session | ShardUnit::UtcDay => "days",
        }
    }

    /// What one file of the Parquet store holds: `day`, `month`.
    pub fn file_noun(self) -> &'static str {
        match self {
            ShardUnit::Month | ShardUnit::UtcMonth => "month",
            ShardUnit::Session | ShardUnit::UtcDay => "day",
        }
    }

    /// Whether its days are UTC days (crypto), not New York days.
    pub(crate) fn is_utc(self) -> bool {
        matches!(self, ShardUnit::UtcDay | ShardUnit::UtcMonth)
    }

    /// Whether a unit is a month (one file, several days).
    pub fn is_month(self) -> bool {
        matches!(self, ShardUnit::Month | ShardUnit::UtcMonth)
    }

    /// The day of `t_ns` as this calendar counts days: UTC for crypto, New York otherwise.
    pub fn day_of(self, t_ns: i64) -> NaiveDate {
        match self.is_utc() {
            true => utc_date(t_ns),
            false => new_york_date(t_ns),
        }
    }

    /// The key of the unit holding time `t_ns`: its day, or its month's first day.
    pub fn key_of(self, t_ns: i64) -> NaiveDate {
        use chrono::Datelike;
        match self {
            ShardUnit::Session => new_york_date(t_ns),
            ShardUnit::Month => {
                let day = new_york_date(t_ns);
                day.with_day(1).unwrap_or(day)
            }
            ShardUnit::UtcDay => utc_date(t_ns),
            ShardUnit::UtcMonth => {
                let day = utc_date(t_ns);
                day.with_day(1).unwrap_or(day)
            }
        }
    }

    /// Whether the market trades in unit `key` (no request is made for one it does not).
    pub fn trades_on(self, key: NaiveDate) -> bool {
        match self {
            ShardUnit::Session => nyse::is_trading_day(key),
            ShardUnit::Month | ShardUnit::UtcDay | ShardUnit::UtcMonth => true,
        }
    }

    /// The whole span of unit `key`, `[from, until)` in ns UTC: midnight to midnight (New
    /// York, or UTC for `UtcDay`). A file of the store covers this.
    pub fn bounds(self, key: NaiveDate) -> (i64, i64) {
        match self {
            ShardUnit::Session => {
                let next = key.succ_opt().unwrap_or(key);
                (
                    new_york_time_nanos(key, 0, 0),
                    new_york_time_nanos(next, 0, 0),
                )
            }
            ShardUnit::Month => {
                let next = key
                    .checked_add_months(chrono::Months::new(1))
                    .unwrap_or(key);
                (
                    new_york_time_nanos(key, 0, 0),
                    new_york_time_nanos(next, 0, 0),
                )
            }
            ShardUnit::UtcDay => {
                let from = utc_midnight(key);
                (from, from.saturating_add(DAY_NS))
            }
            ShardUnit::UtcMonth => {
                let next = key
                    .checked_add_months(chrono::Months::new(1))
                    .unwrap_or(key);
                (utc_midnight(key), utc_midnight(next))
            }
        }
    }

    /// The span a shard of unit `key` asks for, inclusive: the extended session (04:00 to
    /// 20:00 New York, 17:00 on an early close) for `Session`, the whole unit otherwise.
    pub fn span(self, key: NaiveDate) -> (i64, i64) {
        match self {
            ShardUnit::Session => {
                let (h, m) = nyse::session(key).extended_close().unwrap_or((20, 0));
                (
                    new_york_time_nanos(key, SESSION_OPEN.0, SESSION_OPEN.1),
                    new_york_time_nanos(key, h, m),
                )
            }
            _ => {
                let (from, until) = self.bounds(key);
                (from, until - 1)
            }
        }
    }

    /// The keys of the units overlapping `start..=end`, in order (traded or not).
    pub fn keys_in(self, start_ns: i64, end_ns: i64) -> Vec<NaiveDate> {
        use chrono::Datelike;
        let mut keys: Vec<NaiveDate> = match self {
            ShardUnit::UtcDay => utc_date(start_ns)
                .iter_days()
                .take_while(|d| *d <= utc_date(end_ns))
                .collect(),
            ShardUnit::UtcMonth => utc_date(start_ns)
                .iter_days()
                .take_while(|d| *d <= utc_date(end_ns))
                .map(|d| d.with_day(1).unwrap_or(d))
                .collect(),
            ShardUnit::Session => new_york_dates(start_ns, end_ns).collect(),
            ShardUnit::Month => new_york_dates(start_ns, end_ns)
                .map(|d| d.with_day(1).unwrap_or(d))
                .collect(),
        };
        keys.dedup();
        keys
    }
}
