//! How many requests are in flight: a fixed K (`--concurrency K`), or adaptive
//! (`--concurrency auto`, the default), like vector's adaptive request concurrency.
//!
//! A fetcher holds one permit while it pages through one request (a shard, or symbols'
//! shared day). Adaptive mode starts at [`START_AUTO`] permits and, once per window (a
//! second; half that during slow start), looks at what the window showed (until the first
//! sign of a limit it doubles instead of adding one, as TCP's slow start does, so a slow
//! network is hidden within seconds, not minutes):
//! - a 429, a retried failure (5xx, timeout, reset) → the server or the network is pushing
//!   back: halve K (multiplicative decrease);
//! - fetchers spent half their time waiting for room in the channel → the sink, not the
//!   network, sets the pace: one fewer (more fetchers would only wait); a quarter → no more;
//! - every permit was busy for most of the window, and K is below what the rate limit can
//!   use (requests/s × latency, plus a margin) and below the cap → one more (additive
//!   increase);
//! - otherwise K stays.
//!
//! The K in use is kept in [`RequestStats::concurrency`] for the batch lines.

use super::pace::RequestStats;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub use data_core::pipeline::{MAX_AUTO, START_AUTO};
/// How often adaptive mode decides.
const WINDOW: Duration = Duration::from_millis(1000);
/// Busy-permit samples per window.
const SAMPLES: u32 = 20;

/// The permits of a run's fetchers.
pub(crate) struct Limiter {
    sem: Arc<Semaphore>,
    /// The K in effect (permits that exist, taken or not).
    limit: AtomicUsize,
    /// The most fetchers that may ever hold permits (the number of fetch tasks to start).
    max: usize,
    adaptive: bool,
    /// Nanoseconds fetchers spent waiting for room in the channel (downstream backpressure).
    blocked_ns: AtomicU64,
    stats: Arc<RequestStats>,
    /// Requests per second the pacer allows; 0 = no client-side limit.
    rate_per_sec: f64,
}

impl Limiter {
    /// `Some(k)`: exactly `k` in flight. `None`: adaptive, from 1 up to [`MAX_AUTO`] and to
    /// what `rate_per_min` (0 = unlimited) can use.
    pub fn new(fixed: Option<usize>, rate_per_min: u32, stats: Arc<RequestStats>) -> Arc<Self> {
        let (start, max) = match fixed {
            Some(k) => (k.max(1), k.max(1)),
            None => (START_AUTO, MAX_AUTO),
        };
        stats.concurrency.store(start, Ordering::Relaxed);
        Arc::new(Limiter {
            sem: Arc::new(Semaphore::new(start)),
            limit: AtomicUsize::new(start),
            max,
            adaptive: fixed.is_none(),
            blocked_ns: AtomicU64::new(0),
            stats,
            rate_per_sec: f64::from(rate_per_min) / 60.0,
        })
    }

    pub(crate) fn is_adaptive(&self) -> bool {
        self.adaptive
    }

    /// The most fetchers there can be at once.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Waits for a permit to start a request (held until its last page is in).
    pub(crate) async fn acquire(&self) -> Option<OwnedSemaphorePermit> {
        self.sem.clone().acquire_owned().await.ok()
    }

    /// A fetcher waited `d` for room in the channel.
    pub fn blocked(&self, d: Duration) {
        self.blocked_ns
            .fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
    }

    fn set_limit(&self, new: usize) {
        let old = self.limit.load(Ordering::Relaxed);
        let new = new.clamp(1, self.max);
        if new > old {
            self.sem.add_permits(new - old);
        } else if new < old {
            // Permits in use are forgotten as they come back.
            let mut left = old - new;
            left -= self.sem.forget_permits(left);
            if left > 0 {
                let (sem, n) = (self.sem.clone(), left as u32);
                tokio::spawn(async move {
                    if let Ok(p) = sem.acquire_many_owned(n).await {
                        p.forget();
                    }
                });
            }
        }
        if new != old {
            tracing::debug!("[API] concurrency {old} -> {new}");
        }
        self.limit.store(new, Ordering::Relaxed);
        self.stats.concurrency.store(new, Ordering::Relaxed);
    }

    /// Adaptive mode's loop: one decision per window, until the task is aborted.
    pub(crate) async fn adapt(self: Arc<Self>) {
        let mut last = Totals::of(&self.stats);
        let mut slow_start = true;
        loop {
            let length = if slow_start { WINDOW / 2 } else { WINDOW };
            let mut busy = 0;
            for _ in 0..SAMPLES {
                tokio::time::sleep(length / SAMPLES).await;
                busy += u32::from(self.sem.available_permits() == 0);
            }
            let now = Totals::of(&self.stats);
            let blocked = Duration::from_nanos(self.blocked_ns.swap(0, Ordering::Relaxed));
            let window = Window {
                length,
                limit: self.limit.load(Ordering::Relaxed),
                pushed_back: now.pushback > last.pushback,
                blocked,
                busy: f64::from(busy) / f64::from(SAMPLES),
                latency: now.mean_latency_since(&last),
            };
            last = now;
            let (next, still) = window.next_limit(self.rate_per_sec, slow_start);
            slow_start = still;
            self.set_limit(next);
        }
    }
}

/// The counters a window is judged by.
#[derive(Debug, Clone, Copy)]
struct Totals {
    /// 429s and retries so far.
    pushback: u64,
    responses: u64,
    latency_ns: u64,
}

impl Totals {
    fn of(s: &RequestStats) -> Totals {
        Totals {
            pushback: s.rate_limited() + s.retries(),
            responses: s.responses.load(Ordering::Relaxed),
            latency_ns: s.latency_ns.load(Ordering::Relaxed),
        }
    }

    fn mean_latency_since(&self, before: &Totals) -> Option<Duration> {
        let n = self
            .responses
            .checked_sub(before.responses)
            .filter(|n| *n > 0)?;
        Some(Duration::from_nanos(
            self.latency_ns.saturating_sub(before.latency_ns) / n,
        ))
    }
}

/// What one window showed.
#[derive(Debug, Clone, Copy)]
struct Window {
    length: Duration,
    limit: usize,
    pushed_back: bool,
    /// Time fetchers waited for the channel, summed.
    blocked: Duration,
    /// Share of samples with every permit taken.
    busy: f64,
    /// Mean time a response took (none came: `None`).
    latency: Option<Duration>,
}

impl Window {
    /// AIMD: the K for the next window, and whether slow start goes on (it ends at the
    /// first pushback, backpressure or limit).
    fn next_limit(&self, rate_per_sec: f64, slow_start: bool) -> (usize, bool) {
        let k = self.limit;
        if self.pushed_back {
            return ((k / 2).max(1), false);
        }
        // The fetchers' time this window, and the share of it spent waiting on the writer.
        let waiting = self.blocked.as_secs_f64() / (k as f64 * self.length.as_secs_f64());
        if waiting >= 0.5 {
            return (k.saturating_sub(1).max(1), false);
        }
        if waiting >= 0.25 {
            return (k, false);
        }
        // What the pacer lets K requests of this latency use: more would wait for slots.
        let useful = match (rate_per_sec > 0.0, self.latency) {
            (true, Some(l)) => (rate_per_sec * l.as_secs_f64() * 1.25).ceil() as usize + 1,
            _ => MAX_AUTO,
        }
        .min(MAX_AUTO);
        match (self.busy >= 0.8 && k < useful, slow_start) {
            (true, true) => ((2 * k).min(useful), true),
            (true, false) => (k + 1, false),
            (false, _) => (k, slow_start && k < useful),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(limit: usize) -> Window {
        Window {
            length: WINDOW,
            limit,
            pushed_back: false,
            blocked: Duration::ZERO,
            busy: 1.0,
            latency: Some(Duration::from_millis(600)),
        }
    }

    #[test]
    fn additive_increase_multiplicative_decrease() {
        // Busy, no pushback, latency to hide: one more (twice as many in slow start).
        assert_eq!(window(4).next_limit(0.0, false), (5, false));
        assert_eq!(window(4).next_limit(0.0, true), (8, true));
        assert_eq!(window(48).next_limit(0.0, true), (MAX_AUTO, true));
        // A 429 or a retry halves it, and ends slow start.
        let pushed = Window {
            pushed_back: true,
            ..window(12)
        };
        assert_eq!(pushed.next_limit(0.0, true), (6, false));
        assert_eq!(
            Window { limit: 1, ..pushed }.next_limit(0.0, false),
            (1, false)
        );
        // Fetchers waiting on the sink half their time: one fewer; a quarter: no more.
        let blocked = Window {
            blocked: Duration::from_millis(4_000),
            ..window(8)
        };
        assert_eq!(blocked.next_limit(0.0, true), (7, false));
        let slowed = Window {
            blocked: Duration::from_millis(2_400),
            ..window(8)
        };
        assert_eq!(slowed.next_limit(0.0, true), (8, false));
        let little = Window {
            blocked: Duration::from_millis(800),
            ..window(8)
        };
        assert_eq!(little.next_limit(0.0, true), (16, true));
        // Idle permits: stay.
        let idle = Window {
            busy: 0.3,
            ..window(8)
        };
        assert_eq!(idle.next_limit(0.0, false), (8, false));
        // 10 requests/s at 600 ms use about 8.5 in flight: no more than that.
        assert_eq!(window(8).next_limit(10.0, false), (9, false));
        assert_eq!(window(9).next_limit(10.0, false), (9, false));
        assert_eq!(window(4).next_limit(10.0, true), (8, true));
        assert_eq!(window(8).next_limit(10.0, true), (9, true));
        assert_eq!(window(9).next_limit(10.0, true), (9, false));
    }

    #[tokio::test]
    async fn a_lower_limit_takes_effect_as_permits_come_back() {
        let stats = Arc::new(RequestStats::default());
        let l = Limiter::new(None, 0, stats.clone());
        assert_eq!(l.sem.available_permits(), START_AUTO);
        l.set_limit(3);
        let held = l.acquire().await.unwrap();
        l.set_limit(1);
        assert_eq!(
            l.sem.available_permits(),
            0,
            "one is held, the other two forgotten"
        );
        drop(held);
        tokio::task::yield_now().await;
        assert_eq!(l.sem.available_permits(), 1);
        assert_eq!(stats.concurrency.load(Ordering::Relaxed), 1);
    }
}
