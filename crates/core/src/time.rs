//! Time on the wire and on the command line.
//!
//! Owns the two conversions the importer does millions of times or must get exactly right:
//! Alpaca's RFC 3339 timestamps (0–9 fractional digits) to integer nanoseconds UTC and back,
//! and the user's `START END` arguments to a UTC range, where a bare date means that New York
//! day's 04:00–20:00 extended-hours session. It knows nothing about HTTP or storage.

use chrono::{DateTime, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::America::New_York;
use std::fmt;

pub const NANOS_PER_SEC: i64 = 1_000_000_000;

/// Why a timestamp string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid RFC 3339 timestamp {text:?}: {reason}")]
pub struct TimestampError {
    pub text: String,
    pub reason: &'static str,
}

fn ts_err(text: &str, reason: &'static str) -> TimestampError {
    TimestampError {
        text: text.to_string(),
        reason,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
#[inline]
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day number (inverse of [`days_from_civil`]).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[inline]
fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

#[inline(always)]
fn digits(b: &[u8], text: &str) -> Result<u32, TimestampError> {
    let mut v = 0u32;
    for &c in b {
        if !c.is_ascii_digit() {
            return Err(not_a_digit(text));
        }
        v = v * 10 + (c - b'0') as u32;
    }
    Ok(v)
}

#[cold]
fn not_a_digit(text: &str) -> TimestampError {
    ts_err(text, "expected a digit")
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fffffffff](Z|±HH:MM)` into nanoseconds since the Unix epoch.
///
/// Hand-written rather than chrono's parser because it runs once per quote (millions per
/// import) and must keep every one of up to nine fractional digits.
#[inline]
pub fn parse_rfc3339_nanos(text: &str) -> Result<i64, TimestampError> {
    let b = text.as_bytes();
    if b.len() < 20 {
        return Err(ts_err(text, "too short"));
    }
    if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return Err(ts_err(text, "expected YYYY-MM-DDTHH:MM:SS"));
    }
    if b[13] != b':' || b[16] != b':' {
        return Err(ts_err(text, "expected HH:MM:SS"));
    }
    let year = digits(&b[0..4], text)? as i64;
    let month = digits(&b[5..7], text)?;
    let day = digits(&b[8..10], text)?;
    let hour = digits(&b[11..13], text)?;
    let minute = digits(&b[14..16], text)?;
    let second = digits(&b[17..19], text)?;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return Err(ts_err(text, "no such date"));
    }
    if hour > 23 || minute > 59 || second > 59 {
        return Err(ts_err(text, "no such time of day"));
    }
    let mut pos = 19;
    let mut frac: i64 = 0;
    if b[pos] == b'.' {
        pos += 1;
        let start = pos;
        while pos < b.len() && b[pos].is_ascii_digit() {
            pos += 1;
        }
        let n = pos - start;
        if n == 0 {
            return Err(ts_err(text, "empty fraction"));
        }
        if n > 9 {
            return Err(ts_err(text, "more than 9 fractional digits"));
        }
        frac = digits(&b[start..pos], text)? as i64 * 10i64.pow((9 - n) as u32);
    }
    let offset_secs: i64 = match b.get(pos) {
        Some(b'Z') | Some(b'z') if pos + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) if pos + 6 == b.len() && b[pos + 3] == b':' => {
            let oh = digits(&b[pos + 1..pos + 3], text)? as i64;
            let om = digits(&b[pos + 4..pos + 6], text)? as i64;
            if oh > 23 || om > 59 {
                return Err(ts_err(text, "bad UTC offset"));
            }
            let o = oh * 3600 + om * 60;
            if sign == b'+' {
                o
            } else {
                -o
            }
        }
        _ => return Err(ts_err(text, "expected Z or ±HH:MM after the time")),
    };
    let secs = days_from_civil(year, month, day) * 86_400
        + hour as i64 * 3600
        + minute as i64 * 60
        + second as i64
        - offset_secs;
    // Nanoseconds in an i64 span 1677-09-21 to 2262-04-11.
    secs.checked_mul(NANOS_PER_SEC)
        .and_then(|ns| ns.checked_add(frac))
        .ok_or_else(|| {
            ts_err(
                text,
                "outside the years 1677-2262 that nanoseconds can hold",
            )
        })
}

/// Formats nanoseconds since the epoch as RFC 3339 UTC with all nine fractional digits,
/// e.g. `2024-01-02T14:30:00.000000001Z`: the exact stored value, for logs and errors.
pub fn format_nanos(ns: i64) -> String {
    let secs = ns.div_euclid(NANOS_PER_SEC);
    let frac = ns.rem_euclid(NANOS_PER_SEC);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:09}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

/// Formats a UTC instant the way the importer sends it to Alpaca: RFC 3339 with `Z`, with a
/// fraction only when the instant has one (a `+` offset would need percent-encoding).
pub fn format_for_api(ns: i64) -> String {
    let s = format_nanos(ns);
    let frac = ns.rem_euclid(NANOS_PER_SEC);
    if frac == 0 {
        format!("{}Z", &s[..19])
    } else {
        let trimmed = s[..29].trim_end_matches('0');
        format!("{trimmed}Z")
    }
}

/// The start of the New York extended-hours session (04:00).
pub(crate) const SESSION_OPEN: (u32, u32) = (4, 0);
/// The end of the New York extended-hours session (20:00).
pub(crate) const SESSION_CLOSE: (u32, u32) = (20, 0);

/// Nanoseconds UTC of a New York wall-clock time on a date. New York has no skipped or
/// repeated wall times at 04:00 or 20:00 (DST switches at 02:00), so this is unambiguous.
pub fn new_york_time_nanos(date: NaiveDate, hour: u32, minute: u32) -> i64 {
    let naive = date.and_time(NaiveTime::from_hms_opt(hour, minute, 0).unwrap_or(NaiveTime::MIN));
    let local = New_York
        .from_local_datetime(&naive)
        .earliest()
        .map(|dt| dt.with_timezone(&Utc))
        .unwrap_or_else(|| Utc.from_utc_datetime(&naive));
    local.timestamp() * NANOS_PER_SEC + local.timestamp_subsec_nanos() as i64
}

/// The New York calendar date an instant falls on.
pub fn new_york_date(ns: i64) -> NaiveDate {
    let utc = DateTime::<Utc>::from_timestamp_nanos(ns);
    utc.with_timezone(&New_York).date_naive()
}

/// New York's offset from UTC at the instant `ns`, in seconds (-18000 in winter, -14400 in
/// summer). It changes only on whole UTC hours.
pub fn new_york_offset_secs(ns: i64) -> i64 {
    use chrono::Offset;
    let utc = DateTime::<Utc>::from_timestamp_nanos(ns).naive_utc();
    i64::from(
        New_York
            .offset_from_utc_datetime(&utc)
            .fix()
            .local_minus_utc(),
    )
}

/// The New York dates from the one holding `start_ns` to the one holding `end_ns`.
pub fn new_york_dates(start_ns: i64, end_ns: i64) -> impl Iterator<Item = NaiveDate> {
    let first = new_york_date(start_ns);
    let last = new_york_date(end_ns);
    first.iter_days().take_while(move |d| *d <= last)
}

/// An inclusive UTC time range, validated: `start <= end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateRange {
    pub start_ns: i64,
    pub end_ns: i64,
}

impl DateRange {
    /// Parses the user's START and END. A bare date `YYYY-MM-DD` means the New York session
    /// of that day: START at 04:00 New York time, END (inclusive) at 20:00 New York time.
    /// Anything else must be an RFC 3339 timestamp and is taken exactly.
    pub fn parse(start: &str, end: &str) -> Result<Self, RangeError> {
        let open = |d| new_york_time_nanos(d, SESSION_OPEN.0, SESSION_OPEN.1);
        let close = |d| new_york_time_nanos(d, SESSION_CLOSE.0, SESSION_CLOSE.1);
        let start_ns = parse_bound(start, "START", &open, &new_york_date)?;
        let end_ns = parse_bound(end, "END", &close, &new_york_date)?;
        DateRange::checked(start_ns, end_ns, start, end, false)
    }

    /// As [`parse`](Self::parse), for markets that never close (crypto): a bare date is
    /// the whole UTC day, START from 00:00:00 UTC and END through 23:59:59.999999999 UTC.
    pub fn parse_utc(start: &str, end: &str) -> Result<Self, RangeError> {
        let midnight = |d: NaiveDate| {
            d.and_hms_opt(0, 0, 0)
                .and_then(|t| t.and_utc().timestamp_nanos_opt())
                .unwrap_or(i64::MAX)
        };
        let utc_date = |ns: i64| chrono::DateTime::from_timestamp_nanos(ns).date_naive();
        let start_ns = parse_bound(start, "START", &midnight, &utc_date)?;
        let end_ns = parse_bound(
            end,
            "END",
            &|d| d.succ_opt().map_or(i64::MAX, |next| midnight(next) - 1),
            &utc_date,
        )?;
        DateRange::checked(start_ns, end_ns, start, end, true)
    }

    /// `utc`: the range's days are UTC days (else New York's).
    fn checked(
        start_ns: i64,
        end_ns: i64,
        start: &str,
        end: &str,
        utc: bool,
    ) -> Result<Self, RangeError> {
        // A timestamp near the ends of the i64 nanoseconds parses, but its day (New York's
        // or UTC's) would not fit: the same bounds as for a bare date.
        for (ns, which, text) in [(start_ns, "START", start), (end_ns, "END", end)] {
            let day = match utc {
                true => DateTime::<Utc>::from_timestamp_nanos(ns).date_naive(),
                false => new_york_date(ns),
            };
            if !(FIRST_DATE..=LAST_DATE).contains(&day) {
                return Err(RangeError(format!(
                    "{which} {text} is outside the dates the stores can hold \
                     ({FIRST_DATE} to {LAST_DATE}: nanoseconds since 1970 in 64 bits)"
                )));
            }
        }
        if end_ns < start_ns {
            return Err(RangeError(format!(
                "END {end} is before START {start} (END is inclusive; give a later or equal end)"
            )));
        }
        Ok(DateRange { start_ns, end_ns })
    }

    /// Fraction (0.0–1.0) of the range that lies before `t_ns`.
    pub fn fraction_done(&self, t_ns: i64) -> f64 {
        let span = (self.end_ns - self.start_ns).max(1) as f64;
        ((t_ns - self.start_ns) as f64 / span).clamp(0.0, 1.0)
    }
}

impl fmt::Display for DateRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} .. {}",
            format_for_api(self.start_ns),
            format_for_api(self.end_ns)
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RangeError(pub String);

/// The first whole day a timestamp of the stores can hold: nanoseconds since 1970 in an
/// `i64` begin at 1677-09-21T00:12:43.145224192Z.
pub(crate) const FIRST_DATE: NaiveDate = match NaiveDate::from_ymd_opt(1677, 9, 22) {
    Some(d) => d,
    None => NaiveDate::MIN,
};
/// The last whole day (New York or UTC) they can hold: they end at
/// 2262-04-11T23:47:16.854775807Z, so the next day's midnight is still in range.
pub(crate) const LAST_DATE: NaiveDate = match NaiveDate::from_ymd_opt(2262, 4, 10) {
    Some(d) => d,
    None => NaiveDate::MAX,
};

fn parse_bound(
    text: &str,
    which: &str,
    of_date: &dyn Fn(NaiveDate) -> i64,
    today: &dyn Fn(i64) -> NaiveDate,
) -> Result<i64, RangeError> {
    let bad = |why: &str| {
        RangeError(format!(
            "{which} {text:?} is not a valid date or timestamp: {why} \
             (expected YYYY-MM-DD, today, now or an RFC 3339 timestamp such as \
             2024-01-02T14:30:00Z)"
        ))
    };
    // `today`: the market's current day (New York's, or UTC's for crypto), as a date;
    // `now`: this instant.
    if text.eq_ignore_ascii_case("today") {
        return Ok(of_date(today(now_ns())));
    }
    if text.eq_ignore_ascii_case("now") {
        return Ok(now_ns());
    }
    let looks_like_date = text.len() == 10 && text.as_bytes()[4] == b'-';
    if looks_like_date {
        let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| bad("no such date"))?;
        if !(FIRST_DATE..=LAST_DATE).contains(&date) {
            return Err(RangeError(format!(
                "{which} {text} is outside the dates the stores can hold \
                 ({FIRST_DATE} to {LAST_DATE}: nanoseconds since 1970 in 64 bits)"
            )));
        }
        return Ok(of_date(date));
    }
    if text.len() < 20 {
        return Err(bad("unrecognised format"));
    }
    parse_rfc3339_nanos(text).map_err(|e| bad(e.reason))
}

/// The variable that sets the importer's clock, for tests only: an RFC 3339 time taken as
/// "now" (what data exists yet, which periods are open). Unset, the real clock.
pub const TEST_NOW_ENV: &str = "DATA_TEST_NOW";

/// Now, in ns UTC.
pub fn now_ns() -> i64 {
    if let Some(t) = std::env::var(TEST_NOW_ENV)
        .ok()
        .and_then(|v| parse_rfc3339_nanos(&v).ok())
    {
        return t;
    }
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chrono_nanos(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s)
            .unwrap()
            .timestamp_nanos_opt()
            .unwrap()
    }

    #[test]
    fn dates_outside_what_nanoseconds_hold_are_refused_not_wrapped() {
        for (start, end) in [
            ("9999-12-31", "9999-12-31"),
            ("0000-01-01", "2024-01-02"),
            ("1677-09-20", "1677-09-22"),
            ("2262-04-11", "2262-04-11"),
            ("1677-09-21T00:12:44Z", "2024-01-02"),
        ] {
            for parsed in [
                DateRange::parse(start, end),
                DateRange::parse_utc(start, end),
            ] {
                let e = parsed.unwrap_err().to_string();
                assert!(
                    e.contains("outside the dates the stores can hold (1677-09-22 to 2262-04-10"),
                    "{start} {end}: {e}"
                );
            }
        }
        let r = DateRange::parse("1677-09-22", "2262-04-10").unwrap();
        assert!(r.start_ns < r.end_ns);
        assert_eq!(new_york_date(r.end_ns).to_string(), "2262-04-10");
    }

    #[test]
    fn parses_every_fraction_length_like_chrono() {
        for s in [
            "2022-02-01T05:00:00Z",
            "2024-03-01T14:30:00.5Z",
            "2021-10-13T08:00:16.91Z",
            "2021-10-13T08:00:00.183Z",
            "2021-10-13T08:00:14.0709007Z",
            "2021-10-13T08:00:14.012577217Z",
            "2024-01-03T14:30:00.000000001Z",
            "2024-01-03T09:30:00.000000001-05:00",
            "2024-07-03T09:30:00.25+02:00",
            "1969-12-31T23:59:59.999999999Z",
            "2000-02-29T00:00:00Z",
        ] {
            assert_eq!(parse_rfc3339_nanos(s).unwrap(), chrono_nanos(s), "{s}");
        }
    }

    #[test]
    fn years_beyond_nanoseconds_are_errors_not_overflows() {
        // Found by tests/it/decode.rs's mutated pages: 9024 overflowed the multiplication.
        let e = parse_rfc3339_nanos("9024-01-03T14:30:00Z").unwrap_err();
        assert!(e.to_string().contains("1677-2262"), "{e}");
        assert!(parse_rfc3339_nanos("1600-01-03T14:30:00Z").is_err());
        assert_eq!(
            parse_rfc3339_nanos("2262-04-11T23:47:16.854775807Z").unwrap(),
            i64::MAX
        );
        assert!(parse_rfc3339_nanos("2262-04-11T23:47:16.854775808Z").is_err());
    }

    #[test]
    fn keeps_nanoseconds() {
        let a = parse_rfc3339_nanos("2024-01-03T14:30:00.000000001Z").unwrap();
        let b = parse_rfc3339_nanos("2024-01-03T14:30:00.000000002Z").unwrap();
        assert_eq!(b - a, 1);
        assert_eq!(a % NANOS_PER_SEC, 1);
    }

    #[test]
    fn rejects_malformed() {
        for (s, reason) in [
            ("2024-02-30T00:00:00Z", "no such date"),
            ("2023-02-29T00:00:00Z", "no such date"),
            ("2024-13-01T00:00:00Z", "no such date"),
            ("2024-01-01T24:00:00Z", "no such time of day"),
            ("2024-01-01T00:00:00", "too short"),
            ("2024-01-01T00:00:00.Z", "empty fraction"),
            (
                "2024-01-01T00:00:00.1234567891Z",
                "more than 9 fractional digits",
            ),
            (
                "2024-01-01T00:00:00+0500",
                "expected Z or ±HH:MM after the time",
            ),
            (
                "2024-01-01T00:00:00Zjunk",
                "expected Z or ±HH:MM after the time",
            ),
            ("2024-0a-01T00:00:00Z", "expected a digit"),
        ] {
            assert_eq!(parse_rfc3339_nanos(s).unwrap_err().reason, reason, "{s}");
        }
    }

    #[test]
    fn format_round_trips() {
        for s in [
            "2024-01-03T14:30:00.000000001Z",
            "1969-12-31T23:59:59.999999999Z",
            "2024-12-31T20:00:00.000000000Z",
        ] {
            assert_eq!(format_nanos(parse_rfc3339_nanos(s).unwrap()), s);
        }
        let ns = parse_rfc3339_nanos("2024-01-03T14:30:00.5Z").unwrap();
        assert_eq!(format_for_api(ns), "2024-01-03T14:30:00.5Z");
        let ns = parse_rfc3339_nanos("2024-01-03T14:30:00Z").unwrap();
        assert_eq!(format_for_api(ns), "2024-01-03T14:30:00Z");
    }

    #[test]
    fn civil_round_trip() {
        for z in [-800_000, -1, 0, 1, 19_723, 20_000, 2_932_896] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
    }

    #[test]
    fn bare_dates_cover_the_new_york_session_across_dst() {
        // Winter: New York is UTC-5, so 04:00 ET = 09:00Z and 20:00 ET = 01:00Z next day.
        let r = DateRange::parse("2024-01-02", "2024-01-02").unwrap();
        assert_eq!(format_for_api(r.start_ns), "2024-01-02T09:00:00Z");
        assert_eq!(format_for_api(r.end_ns), "2024-01-03T01:00:00Z");
        // Summer: UTC-4.
        let r = DateRange::parse("2024-07-01", "2024-07-31").unwrap();
        assert_eq!(format_for_api(r.start_ns), "2024-07-01T08:00:00Z");
        assert_eq!(format_for_api(r.end_ns), "2024-08-01T00:00:00Z");
        assert_eq!(
            new_york_date(r.end_ns),
            NaiveDate::from_ymd_opt(2024, 7, 31).unwrap()
        );
    }

    #[test]
    fn timestamps_are_taken_exactly_and_mix_with_dates() {
        let r = DateRange::parse("2024-01-02T14:30:00.123Z", "2024-01-03").unwrap();
        assert_eq!(format_for_api(r.start_ns), "2024-01-02T14:30:00.123Z");
        assert_eq!(format_for_api(r.end_ns), "2024-01-04T01:00:00Z");
    }

    #[test]
    fn range_errors_name_the_argument() {
        let e = DateRange::parse("2024-02-30", "2024-03-01").unwrap_err().0;
        assert!(
            e.starts_with("START \"2024-02-30\" is not a valid date"),
            "{e}"
        );
        let e = DateRange::parse("2024-01-01", "yesterday").unwrap_err().0;
        assert!(
            e.starts_with("END \"yesterday\" is not a valid date"),
            "{e}"
        );
        let e = DateRange::parse("2024-01-05", "2024-01-04").unwrap_err().0;
        assert!(
            e.starts_with("END 2024-01-04 is before START 2024-01-05"),
            "{e}"
        );
        assert!(DateRange::parse("2024-01-05", "2024-01-05").is_ok());
    }
}
