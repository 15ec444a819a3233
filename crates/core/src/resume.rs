//! Shards and resume points: how an import's range splits into units of work (one symbol's
//! New York day), and how the progress a sink committed with its batches turns a rerun into
//! "fetch only what is missing".
//!
//! A shard's progress record holds the span it covers, the last committed quote position
//! `(t, seq)` and whether it is done. Planning against those records: a done shard whose
//! span covers the requested one is skipped; a started shard of raw quotes resumes right
//! after its last committed quote (the request starts at that quote's nanosecond and the
//! quotes up to and including it are dropped, so `seq` numbering is the same as in one
//! uninterrupted run); anything else is fetched from its start (upserts keep it idempotent).

use crate::model::Symbol;
use crate::time::DateRange;
use chrono::NaiveDate;

pub use crate::dataset::ShardUnit;

/// One unit of work: `symbol`'s quotes on New York day `day`, within `[start_ns, end_ns]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    pub symbol: Symbol,
    pub day: NaiveDate,
    pub start_ns: i64,
    pub end_ns: i64,
    /// Start of the span the progress record claims (earlier than `start_ns` when resuming).
    pub record_start_ns: i64,
    /// Skip rows up to and including this position (a resumed shard).
    pub resume_after: Option<(i64, u32)>,
    /// False when the span reaches into the future: such a shard is never recorded as done,
    /// since more data may still arrive.
    pub can_finish: bool,
}

impl Shard {
    /// The span to request from the source.
    pub fn fetch_range(&self) -> DateRange {
        DateRange {
            start_ns: self
                .resume_after
                .map_or(self.start_ns, |(t, _)| t.max(self.start_ns)),
            end_ns: self.end_ns,
        }
    }
}

/// What a database sink needs to commit progress with its batches: the dataset name and the
/// run's shards (a [`crate::pipeline::Mark`] names a shard by its index here).
#[derive(Debug, Clone)]
pub struct Tracking {
    pub dataset: String,
    pub shards: std::sync::Arc<Vec<Shard>>,
}

impl Tracking {
    /// The shard a mark refers to, and the values of its progress row.
    pub fn row(&self, mark: &crate::pipeline::Mark) -> Option<ProgressRow<'_>> {
        let shard = self.shards.get(mark.shard as usize)?;
        Some(ProgressRow {
            dataset: &self.dataset,
            symbol: shard.symbol.as_str(),
            day: shard.day,
            start_ns: shard.record_start_ns,
            end_ns: shard.end_ns,
            last: mark.position,
            done: mark.done && shard.can_finish,
        })
    }
}

/// One progress row to upsert (a missing `last` keeps the stored one).
#[derive(Debug, Clone, Copy)]
pub struct ProgressRow<'a> {
    pub dataset: &'a str,
    pub symbol: &'a str,
    pub day: NaiveDate,
    pub start_ns: i64,
    pub end_ns: i64,
    pub last: Option<(i64, u32)>,
    pub done: bool,
}

/// A committed progress record, as loaded from the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    pub day: NaiveDate,
    pub start_ns: i64,
    pub end_ns: i64,
    pub last: Option<(i64, u32)>,
    pub done: bool,
}

/// An `import_progress` row as both databases return it: (day as `YYYY-MM-DD`, start_ns,
/// end_ns, last_t, last_seq, done).
pub type ProgressRecord = (String, i64, i64, Option<i64>, Option<i64>, bool);

impl Saved {
    pub fn from_record(
        (day, start_ns, end_ns, t, seq, done): ProgressRecord,
    ) -> anyhow::Result<Saved> {
        let day = day
            .parse::<NaiveDate>()
            .map_err(|e| anyhow::anyhow!("import_progress holds a bad day {day:?}: {e}"))?;
        Ok(Saved {
            day,
            start_ns,
            end_ns,
            last: t.zip(seq).map(|(t, seq)| (t, seq as u32)),
            done,
        })
    }
}

/// The weekdays of `range` as shards of `symbol`: each day's extended session, 04:00 to
/// 20:00 New York (when US stocks trade; weekends cost no requests), clipped to the range.
/// A whole day is thus the same span whichever range it is part of, so a day done by one
/// run is recognised as done by an overlapping one. `now_ns` decides which shards can be
/// recorded as done.
pub fn day_shards(symbol: &Symbol, range: DateRange, now_ns: i64) -> Vec<Shard> {
    shards_of(symbol, range, now_ns, ShardUnit::Session)
}

/// The shards of `range` for `symbol` in `unit`s, each clipped to the range. Data exists up
/// to `now_ns` (now, or SIP's delayed now): a unit starting later is no shard yet, and one
/// that `now_ns` cuts short is asked for up to it and can never be recorded as done (a
/// later run completes it).
pub fn shards_of(symbol: &Symbol, range: DateRange, now_ns: i64, unit: ShardUnit) -> Vec<Shard> {
    unit.keys_in(range.start_ns, range.end_ns)
        .into_iter()
        .filter(|key| unit.trades_on(*key))
        .filter_map(|day| {
            let (from, until) = unit.span(day);
            let (start_ns, end_ns) = (range.start_ns.max(from), range.end_ns.min(until));
            (start_ns <= end_ns && start_ns <= now_ns).then(|| Shard {
                symbol: symbol.clone(),
                day,
                start_ns,
                end_ns: end_ns.min(now_ns),
                record_start_ns: start_ns,
                resume_after: None,
                can_finish: end_ns <= now_ns,
            })
        })
        .collect()
}

/// What planning decided, for the opening log line.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PlanCounts {
    pub total: usize,
    /// Done in an earlier run: not fetched.
    pub skipped: usize,
    /// Started in an earlier run: fetched from their last committed quote.
    pub resumed: usize,
}

impl std::ops::AddAssign for PlanCounts {
    fn add_assign(&mut self, o: Self) {
        self.total += o.total;
        self.skipped += o.skipped;
        self.resumed += o.resumed;
    }
}

/// Applies saved progress to `shards`: drops done ones, sets resume points on started ones
/// (only when `positions_usable`: rows that are the raw stream, not thinned output).
pub fn apply_progress(
    shards: Vec<Shard>,
    saved: &[Saved],
    positions_usable: bool,
) -> (Vec<Shard>, PlanCounts) {
    let mut counts = PlanCounts {
        total: shards.len(),
        ..PlanCounts::default()
    };
    let mut todo = Vec::with_capacity(shards.len());
    for mut shard in shards {
        let Some(s) = saved.iter().find(|s| s.day == shard.day) else {
            todo.push(shard);
            continue;
        };
        let covers_start = s.start_ns <= shard.start_ns;
        if s.done && covers_start && s.end_ns >= shard.end_ns {
            counts.skipped += 1;
            continue;
        }
        if let (true, true, Some(last)) = (positions_usable, covers_start, s.last) {
            if last.0 >= shard.start_ns && last.0 <= shard.end_ns {
                shard.resume_after = Some(last);
                shard.record_start_ns = s.start_ns;
                counts.resumed += 1;
            }
        }
        todo.push(shard);
    }
    (todo, counts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::calendar::utc_midnight;
    use crate::time::{new_york_time_nanos, NANOS_PER_SEC};

    fn aapl() -> Symbol {
        Symbol::parse("AAPL").unwrap()
    }

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    /// `hour`:00 New York on `day`.
    fn at(day: &str, hour: u32) -> i64 {
        new_york_time_nanos(d(day), hour, 0)
    }

    #[test]
    fn holidays_are_no_shards_and_early_closes_end_at_17() {
        // Wednesday 2024-07-03 (early close) to Friday 2024-07-05; the 4th is a holiday.
        let range = DateRange::parse("2024-07-03", "2024-07-05").unwrap();
        let shards = day_shards(&aapl(), range, i64::MAX);
        let days: Vec<NaiveDate> = shards.iter().map(|s| s.day).collect();
        assert_eq!(days, vec![d("2024-07-03"), d("2024-07-05")]);
        assert_eq!(shards[0].end_ns, at("2024-07-03", 17));
        assert_eq!(shards[1].end_ns, at("2024-07-05", 20));
    }

    #[test]
    fn weekdays_become_shards_clipped_to_the_range() {
        // Friday 2024-01-05 to Tuesday 2024-01-09: the weekend is skipped.
        let range = DateRange::parse("2024-01-05", "2024-01-09").unwrap();
        let shards = day_shards(&aapl(), range, i64::MAX);
        let days: Vec<NaiveDate> = shards.iter().map(|s| s.day).collect();
        assert_eq!(
            days,
            vec![d("2024-01-05"), d("2024-01-08"), d("2024-01-09")]
        );
        assert_eq!(shards[0].start_ns, range.start_ns);
        assert_eq!(shards[2].end_ns, range.end_ns);
        // A middle day is the whole session, as are the first and last here.
        assert_eq!(shards[1].start_ns, at("2024-01-08", 4));
        assert_eq!(shards[1].end_ns, at("2024-01-08", 20));
        assert_eq!(
            shards[1].end_ns - shards[1].start_ns,
            shards[0].end_ns - shards[0].start_ns
        );
        assert!(shards.iter().all(|s| s.can_finish));
        // A day still in progress cannot be finished, and is asked for up to now; a day
        // not begun is no shard yet.
        let now = shards[2].start_ns + NANOS_PER_SEC;
        let shards = day_shards(&aapl(), range, now);
        assert_eq!(
            shards.iter().map(|s| s.can_finish).collect::<Vec<_>>(),
            vec![true, true, false]
        );
        assert_eq!(shards[2].end_ns, now);
        assert_eq!(day_shards(&aapl(), range, shards[1].end_ns).len(), 2);
    }

    #[test]
    fn utc_days_include_weekends_and_run_midnight_to_midnight_utc() {
        // Friday 2024-01-05 12:00 UTC to Monday 2024-01-08 06:00 UTC: four UTC days.
        let range = DateRange {
            start_ns: utc_midnight(d("2024-01-05")) + 12 * 3_600 * NANOS_PER_SEC,
            end_ns: utc_midnight(d("2024-01-08")) + 6 * 3_600 * NANOS_PER_SEC,
        };
        let shards = shards_of(&aapl(), range, i64::MAX, ShardUnit::UtcDay);
        let days: Vec<NaiveDate> = shards.iter().map(|s| s.day).collect();
        assert_eq!(
            days,
            vec![
                d("2024-01-05"),
                d("2024-01-06"),
                d("2024-01-07"),
                d("2024-01-08")
            ]
        );
        assert_eq!(shards[0].start_ns, range.start_ns);
        assert_eq!(shards[3].end_ns, range.end_ns);
        assert_eq!(shards[1].start_ns, utc_midnight(d("2024-01-06")));
        assert_eq!(shards[1].end_ns, utc_midnight(d("2024-01-07")) - 1);
        let unit = ShardUnit::UtcDay;
        assert_eq!(
            unit.key_of(utc_midnight(d("2024-01-07")) - 1),
            d("2024-01-06")
        );
        assert_eq!(unit.key_of(utc_midnight(d("2024-01-07"))), d("2024-01-07"));
        assert_eq!(
            unit.bounds(d("2024-01-06")),
            (utc_midnight(d("2024-01-06")), utc_midnight(d("2024-01-07")))
        );
        assert_eq!((unit.noun(), unit.file_noun()), ("days", "day"));
    }

    #[test]
    fn every_unit_spans_within_its_bounds_and_keys_its_own_times() {
        for unit in [ShardUnit::Session, ShardUnit::Month, ShardUnit::UtcDay] {
            for key in unit.keys_in(at("2024-02-27", 12), at("2024-03-12", 12)) {
                let (from, until) = unit.bounds(key);
                let (start, end) = unit.span(key);
                assert!(
                    from <= start && start <= end && end < until,
                    "{unit:?} {key}"
                );
                assert_eq!(unit.key_of(from), key, "{unit:?} {key}");
                assert_eq!(unit.key_of(until - 1), key, "{unit:?} {key}");
                assert_eq!(unit.key_of(until), unit.key_of(until + 1), "{unit:?} {key}");
            }
        }
    }

    #[test]
    fn bars_are_cut_into_months_from_midnight() {
        let range = DateRange {
            start_ns: at("2024-01-15", 0),
            end_ns: at("2024-03-02", 0) - 1,
        };
        let shards = shards_of(&aapl(), range, i64::MAX, ShardUnit::Month);
        let days: Vec<NaiveDate> = shards.iter().map(|s| s.day).collect();
        assert_eq!(
            days,
            vec![d("2024-01-01"), d("2024-02-01"), d("2024-03-01")]
        );
        assert_eq!(shards[0].start_ns, range.start_ns);
        assert_eq!(shards[1].start_ns, at("2024-02-01", 0));
        assert_eq!(shards[1].end_ns + 1, at("2024-03-01", 0));
        assert_eq!(shards[2].end_ns, range.end_ns);
    }

    #[test]
    fn progress_skips_done_days_and_resumes_started_ones() {
        let range = DateRange::parse("2024-01-02", "2024-01-05").unwrap();
        let shards = day_shards(&aapl(), range, i64::MAX);
        let saved = vec![
            Saved {
                day: d("2024-01-02"),
                start_ns: shards[0].start_ns,
                end_ns: shards[0].end_ns,
                last: Some((shards[0].end_ns - 5, 3)),
                done: true,
            },
            Saved {
                day: d("2024-01-03"),
                start_ns: shards[1].start_ns,
                end_ns: shards[1].end_ns,
                last: Some((shards[1].start_ns + 77, 1)),
                done: false,
            },
            // Done, but over a narrower span than now asked: fetch the rest.
            Saved {
                day: d("2024-01-04"),
                start_ns: shards[2].start_ns,
                end_ns: shards[2].end_ns - 1000,
                last: Some((shards[2].end_ns - 2000, 0)),
                done: true,
            },
        ];
        let (todo, counts) = apply_progress(shards.clone(), &saved, true);
        assert_eq!(
            counts,
            PlanCounts {
                total: 4,
                skipped: 1,
                resumed: 2
            }
        );
        assert_eq!(todo.len(), 3);
        assert_eq!(todo[0].resume_after, Some((shards[1].start_ns + 77, 1)));
        assert_eq!(todo[0].fetch_range().start_ns, shards[1].start_ns + 77);
        assert_eq!(todo[1].fetch_range().start_ns, shards[2].end_ns - 2000);
        assert_eq!(todo[2], shards[3]);
        // Thinned output: done days are still skipped, started ones start over.
        let (todo, counts) = apply_progress(shards, &saved, false);
        assert_eq!((counts.skipped, counts.resumed), (1, 0));
        assert!(todo.iter().all(|s| s.resume_after.is_none()));
    }

    #[test]
    fn a_record_starting_later_than_asked_is_fetched_from_the_start() {
        let range = DateRange::parse("2024-01-02", "2024-01-02").unwrap();
        let shards = day_shards(&aapl(), range, i64::MAX);
        let saved = vec![Saved {
            day: d("2024-01-02"),
            start_ns: shards[0].start_ns + 10,
            end_ns: shards[0].end_ns,
            last: Some((shards[0].end_ns, 0)),
            done: true,
        }];
        let (todo, counts) = apply_progress(shards.clone(), &saved, true);
        assert_eq!(todo, shards);
        assert_eq!((counts.skipped, counts.resumed), (0, 0));
    }
}
