//! The one retry mechanism: how long to wait (exponential backoff with jitter, or until a
//! rate window resets), and when to give up. Each source or sink classifies its own
//! failures ([`Retryable::verdict`]: fatal, worth another attempt, or rate limited); the
//! attempt counting and the waits are shared ([`Attempts`]). The Alpaca client runs its
//! requests through [`RetryPolicy::run`]; the PostgreSQL sink drives [`Attempts`] itself,
//! since it reconnects between attempts. The final error says how many attempts were made
//! over how long.

use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Longest wait for a rate-limit window to reset; Alpaca's windows are one minute.
const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(65);

/// What the component that saw a failure says about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Retrying cannot help.
    Fatal,
    /// Another attempt may succeed (uses up an attempt).
    Retry,
    /// The plan's pace was exceeded: wait (until the reset, if known) without using up an
    /// attempt.
    RateLimited { reset_epoch: Option<u64> },
}

/// A failure that knows whether it is worth another attempt.
pub trait Retryable: fmt::Display + Sized {
    fn verdict(&self) -> Verdict;
    /// The error to report once `attempts` attempts over `elapsed` all failed, the last
    /// with `self`.
    fn exhausted(self, attempts: u32, elapsed: Duration) -> Self;
}

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Total attempts, including the first (at least 1).
    pub max_attempts: u32,
    /// Wait before the second attempt; doubles each time (with jitter) up to `max_delay`.
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Wait, then make attempt number `attempt` (the failed one counted).
    Retry { delay: Duration, attempt: u32 },
    /// Rate limited: wait, then try again; no attempt used up.
    Wait(Duration),
    /// Fatal, or the attempts ran out.
    GiveUp,
}

/// One operation's attempts under a policy: counts them and decides each wait.
#[derive(Debug)]
pub struct Attempts {
    policy: RetryPolicy,
    attempt: u32,
    started: Instant,
    /// Rate-limited answers so far, and the time spent waiting on them.
    limited: u32,
    limited_wait: Duration,
}

/// The least wait after a 429, whatever its reset header says (a reset in the past, as a
/// client clock ahead of the server's makes it, would otherwise retry at once); it doubles
/// with each 429 in a row of the same request, up to the policy's `max_delay`.
pub const RATE_LIMIT_FLOOR: Duration = Duration::from_secs(1);

/// The most one request waits in all on rate limits before it gives up: a server that
/// answers 429 for this long is not recovering.
pub(crate) const RATE_LIMIT_GIVE_UP: Duration = Duration::from_secs(15 * 60);

impl Attempts {
    /// The attempt being made, 1-based.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    pub fn max(&self) -> u32 {
        self.policy.max_attempts.max(1)
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// After the current attempt failed with a failure judged `verdict`.
    pub fn after(&mut self, verdict: Verdict) -> Next {
        match verdict {
            Verdict::Fatal => Next::GiveUp,
            Verdict::RateLimited { reset_epoch } => {
                self.limited += 1;
                let wait = self.policy.rate_limit_wait(reset_epoch, self.limited);
                if self.limited_wait + wait > RATE_LIMIT_GIVE_UP {
                    return Next::GiveUp;
                }
                self.limited_wait += wait;
                Next::Wait(wait)
            }
            Verdict::Retry if self.attempt >= self.max() => Next::GiveUp,
            Verdict::Retry => {
                let delay = self.policy.backoff(self.attempt);
                self.attempt += 1;
                Next::Retry {
                    delay,
                    attempt: self.attempt,
                }
            }
        }
    }
}

impl RetryPolicy {
    /// The attempts of one operation, starting now.
    pub fn attempts(&self) -> Attempts {
        Attempts {
            policy: *self,
            attempt: 1,
            started: Instant::now(),
            limited: 0,
            limited_wait: Duration::ZERO,
        }
    }

    /// The wait after failed attempt number `attempt` (1-based): "equal jitter", i.e. a
    /// random point in the upper half of the exponential step, so that many clients that
    /// failed together do not retry together, yet each waits at least half the step.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
            .min(self.max_delay);
        let half = exp / 2;
        half + half.mul_f64(fastrand::f64())
    }

    /// The wait for a rate window to reset at `reset_epoch` (seconds), or the backoff when
    /// the reset is unknown or past; never less than the floor for the `limited`th 429 in
    /// a row ([`RATE_LIMIT_FLOOR`], doubling, at most `max_delay`).
    fn rate_limit_wait(&self, reset_epoch: Option<u64>, limited: u32) -> Duration {
        let floor = RATE_LIMIT_FLOOR
            .saturating_mul(1u32 << limited.saturating_sub(1).min(10))
            .min(self.max_delay);
        self.reset_wait(reset_epoch, limited).max(floor)
    }

    fn reset_wait(&self, reset_epoch: Option<u64>, attempt: u32) -> Duration {
        if let Some(reset) = reset_epoch {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            let reset = Duration::from_secs(reset);
            if reset > now {
                // The reset time has one-second resolution: add a little so we land after it.
                let jitter = Duration::from_millis(fastrand::u64(50..250));
                return ((reset - now) + jitter).min(MAX_RATE_LIMIT_WAIT);
            }
        }
        self.backoff(attempt)
    }

    /// The wait before retrying after `err`, or `None` if `err` is not worth retrying.
    pub fn delay_for<E: Retryable>(&self, err: &E, attempt: u32) -> Option<Duration> {
        match err.verdict() {
            Verdict::Fatal => None,
            Verdict::Retry => Some(self.backoff(attempt)),
            Verdict::RateLimited { reset_epoch } => {
                Some(self.rate_limit_wait(reset_epoch, attempt))
            }
        }
    }

    /// Runs `op` until it succeeds, fails with a fatal error, or attempts run out. A rate
    /// limit is never fatal: it waits for the rate window to reset and does not use up an
    /// attempt (the plan's limit is a pace to keep, not a failure). `what` names the
    /// operation in the `[API]` warning lines.
    pub async fn run<T, E, F, Fut>(&self, what: &str, mut op: F) -> Result<T, E>
    where
        E: Retryable,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let mut attempts = self.attempts();
        loop {
            let err = match op().await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let failed = attempts.attempt();
            match attempts.after(err.verdict()) {
                Next::Wait(delay) => {
                    tracing::warn!(
                        "[API] {what}: {err}; waiting {:.1}s for the rate window to reset",
                        delay.as_secs_f64()
                    );
                    tokio::time::sleep(delay).await;
                }
                Next::Retry { delay, .. } => {
                    tracing::warn!(
                        "[API] {what}: attempt {failed}/{} failed: {err}; retrying in {:.1}s",
                        attempts.max(),
                        delay.as_secs_f64()
                    );
                    tokio::time::sleep(delay).await;
                }
                Next::GiveUp if err.verdict() == Verdict::Fatal => return Err(err),
                Next::GiveUp => return Err(err.exhausted(failed, attempts.elapsed())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reset already past (a client clock ahead of the server's) once meant no wait at
    /// all: 2,140 requests in 90 s. The floor holds, and doubles while the 429s repeat, and
    /// a request that waits 15 minutes in all on them gives up.
    #[test]
    fn a_429_with_a_past_reset_waits_the_floor_and_gives_up_in_the_end() {
        let policy = RetryPolicy::default();
        let mut a = policy.attempts();
        let past = Verdict::RateLimited {
            reset_epoch: Some(1),
        };
        let mut waits = Vec::new();
        loop {
            match a.after(past) {
                Next::Wait(d) => waits.push(d),
                Next::GiveUp => break,
                Next::Retry { .. } => panic!("a 429 uses up no attempt"),
            }
            assert!(waits.len() < 1000, "never gave up");
        }
        assert!(waits[0] >= RATE_LIMIT_FLOOR, "{waits:?}");
        assert!(waits[1] >= 2 * RATE_LIMIT_FLOOR, "{waits:?}");
        assert!(waits.iter().all(|w| *w <= policy.max_delay));
        let total: Duration = waits.iter().sum();
        assert!(
            total <= RATE_LIMIT_GIVE_UP && total > RATE_LIMIT_GIVE_UP / 2,
            "{total:?}"
        );
    }
}
