//! Request pacing and request accounting, shared by every concurrent fetcher of a run.
//!
//! The pacer spaces requests evenly at the plan's rate (`--rate-limit N` per minute): each
//! request takes the next free slot, one every 60/N seconds, so N requests per minute are
//! sustained without a burst that a fixed one-minute window would refuse. It also follows
//! the server: when a response says `X-RateLimit-Remaining: 0`, or a 429 arrives, no request
//! leaves until `X-RateLimit-Reset`. Slots are taken before every attempt, retries included.
//!
//! Hand-written rather than the governor crate: it is a single "next slot" instant (GCRA
//! with a burst of one), it must also hold for the server's reset time, which governor does
//! not model, and it runs on tokio's clock, so tests can drive it with paused time.

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

/// Longest hold for a server-announced reset; Alpaca's windows are one minute.
const MAX_HOLD: Duration = Duration::from_secs(65);

#[derive(Debug)]
struct Slots {
    next: Instant,
    hold_until: Option<Instant>,
}

#[derive(Debug)]
pub(crate) struct Pacer {
    /// None: no client-side limit (`--rate-limit 0`).
    interval: Option<Duration>,
    slots: Mutex<Slots>,
}

impl Pacer {
    /// A pacer for `per_minute` requests per minute; 0 means unlimited (the server's
    /// headers are still followed).
    pub(crate) fn per_minute(per_minute: u32) -> Self {
        Pacer {
            interval: (per_minute > 0).then(|| Duration::from_secs(60) / per_minute),
            slots: Mutex::new(Slots {
                next: Instant::now(),
                hold_until: None,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for this request's slot.
    pub async fn wait(&self) {
        let at = {
            let mut s = self.lock();
            let now = Instant::now();
            let mut at = s.next.max(now);
            if let Some(hold) = s.hold_until {
                if hold > at {
                    at = hold;
                } else if hold <= now {
                    s.hold_until = None;
                }
            }
            if let Some(step) = self.interval {
                s.next = at + step;
            }
            at
        };
        tokio::time::sleep_until(at).await;
    }

    /// What a response said about the rate window. `reset_epoch` is in Unix seconds.
    pub(crate) fn observe(&self, remaining: Option<u64>, reset_epoch: Option<u64>) {
        if remaining == Some(0) {
            self.hold_until_reset(reset_epoch);
        }
    }

    /// Holds every request until the window resets (after a 429, or when none remain).
    /// Without a reset time, holds one interval's worth of a second.
    pub(crate) fn hold_until_reset(&self, reset_epoch: Option<u64>) {
        let wait = match reset_epoch {
            Some(reset) => {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default();
                // The reset has one-second resolution: land a little after it.
                // A reset already past (a client clock ahead of the server's) still holds
                // requests for the retry's floor, not 50 ms.
                (Duration::from_secs(reset).saturating_sub(now) + Duration::from_millis(50))
                    .max(data_core::retry::RATE_LIMIT_FLOOR)
            }
            None => Duration::from_secs(1),
        };
        let until = Instant::now() + wait.min(MAX_HOLD);
        let mut s = self.lock();
        if s.hold_until.is_none_or(|h| h < until) {
            s.hold_until = Some(until);
        }
    }
}

pub use data_core::pipeline::RequestStats;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn spaces_requests_evenly_at_the_rate() {
        let p = Pacer::per_minute(120); // one every 500 ms
        let start = Instant::now();
        let mut at = Vec::new();
        for _ in 0..5 {
            p.wait().await;
            at.push((Instant::now() - start).as_millis());
        }
        assert_eq!(at, vec![0, 500, 1000, 1500, 2000]);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_waiters_share_the_slots() {
        let p = std::sync::Arc::new(Pacer::per_minute(600)); // 100 ms
        let start = Instant::now();
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let p = p.clone();
                tokio::spawn(async move {
                    p.wait().await;
                    (Instant::now() - start).as_millis()
                })
            })
            .collect();
        let mut at = Vec::new();
        for t in tasks {
            at.push(t.await.unwrap());
        }
        at.sort();
        assert_eq!(at, vec![0, 100, 200, 300]);
    }

    #[tokio::test(start_paused = true)]
    async fn idle_time_is_not_saved_up_as_a_burst() {
        let p = Pacer::per_minute(60); // 1 s
        p.wait().await;
        tokio::time::sleep(Duration::from_secs(10)).await;
        let start = Instant::now();
        p.wait().await;
        p.wait().await;
        assert_eq!((Instant::now() - start).as_millis(), 1000);
    }

    #[tokio::test(start_paused = true)]
    async fn none_remaining_holds_until_the_reset() {
        let p = Pacer::per_minute(0);
        let start = Instant::now();
        p.wait().await;
        p.observe(Some(5), None);
        p.wait().await;
        assert_eq!(
            (Instant::now() - start).as_millis(),
            0,
            "unlimited, 5 remaining"
        );
        p.observe(Some(0), None);
        p.wait().await;
        assert_eq!((Instant::now() - start).as_millis(), 1000);
    }
}
