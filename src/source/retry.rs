//! Every retry the Alpaca client makes goes through here: which failures are worth another
//! attempt (a method on the error, not string matching), how long to wait (exponential
//! backoff with jitter, or until `X-RateLimit-Reset` on a 429), and when to give up. The
//! final error says how many attempts were made over how long.

use super::alpaca::ApiError;
use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Longest wait for a rate-limit window to reset; Alpaca's windows are one minute.
const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(65);

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

impl RetryPolicy {
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

    /// The wait before retrying after `err`, or `None` if `err` is not worth retrying.
    pub fn delay_for(&self, err: &ApiError, attempt: u32) -> Option<Duration> {
        if !err.is_retryable() {
            return None;
        }
        if let ApiError::RateLimited {
            reset_epoch: Some(reset),
            ..
        } = err
        {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            let reset = Duration::from_secs(*reset);
            if reset > now {
                // The reset time has one-second resolution: add a little so we land after it.
                let jitter = Duration::from_millis(fastrand::u64(50..250));
                return Some(((reset - now) + jitter).min(MAX_RATE_LIMIT_WAIT));
            }
        }
        Some(self.backoff(attempt))
    }

    /// Runs `op` until it succeeds, fails with a fatal error, or attempts run out. A 429 is
    /// never fatal: it waits for the rate window to reset and does not use up an attempt
    /// (the plan's limit is a pace to keep, not a failure).
    pub async fn run<T, F, Fut>(&self, what: &str, mut op: F) -> Result<T, ApiError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ApiError>>,
    {
        let started = Instant::now();
        let max = self.max_attempts.max(1);
        let mut attempt = 1;
        loop {
            let err = match op().await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let Some(delay) = self.delay_for(&err, attempt) else {
                return Err(err);
            };
            if let ApiError::RateLimited { .. } = err {
                tracing::warn!(
                    "[API] {what}: {err}; waiting {:.1}s for the rate window to reset",
                    delay.as_secs_f64()
                );
                tokio::time::sleep(delay).await;
                continue;
            }
            if attempt >= max {
                return Err(ApiError::Exhausted {
                    attempts: attempt,
                    elapsed: started.elapsed(),
                    last: Box::new(err),
                });
            }
            tracing::warn!(
                "[API] {what}: attempt {attempt}/{max} failed: {err}; retrying in {:.1}s",
                delay.as_secs_f64()
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn quick(max_attempts: u32) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(4),
        }
    }

    #[test]
    fn backoff_grows_exponentially_within_jitter_bounds() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        for (attempt, step) in [(1, 100), (2, 200), (3, 400), (4, 800), (5, 1000), (9, 1000)] {
            for _ in 0..50 {
                let d = p.backoff(attempt).as_millis() as u64;
                assert!(d >= step / 2 && d <= step, "attempt {attempt}: {d}ms");
            }
        }
    }

    #[test]
    fn rate_limit_waits_until_reset() {
        let p = quick(3);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let err = ApiError::RateLimited {
            message: "too many requests".into(),
            reset_epoch: Some(now + 3),
        };
        let d = p.delay_for(&err, 1).unwrap();
        assert!(
            d > Duration::from_secs(1) && d <= Duration::from_secs(4),
            "{d:?}"
        );
        let fatal = ApiError::Fatal {
            status: 403,
            message: "forbidden".into(),
        };
        assert!(p.delay_for(&fatal, 1).is_none());
    }

    #[tokio::test]
    async fn rate_limits_do_not_use_up_attempts() {
        let calls = AtomicU32::new(0);
        let r = quick(2)
            .run("test", || async {
                match calls.fetch_add(1, Ordering::SeqCst) {
                    0..=4 => Err(ApiError::RateLimited {
                        message: "too many requests".into(),
                        reset_epoch: None,
                    }),
                    5 => Err(ApiError::Transport("reset".into())),
                    _ => Ok(7),
                }
            })
            .await;
        assert_eq!(r.unwrap(), 7);
        assert_eq!(calls.load(Ordering::SeqCst), 7);
    }

    #[tokio::test]
    async fn gives_up_with_attempt_count() {
        let calls = AtomicU32::new(0);
        let r: Result<(), _> = quick(3)
            .run("test", || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(ApiError::Server {
                    status: 503,
                    message: "unavailable".into(),
                })
            })
            .await;
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        let msg = r.unwrap_err().to_string();
        assert!(msg.starts_with("gave up after 3 attempts over "), "{msg}");
        assert!(msg.ends_with("HTTP 503 from Alpaca: unavailable"), "{msg}");
    }

    #[tokio::test]
    async fn fatal_errors_are_not_retried_and_transient_ones_recover() {
        let calls = AtomicU32::new(0);
        let r: Result<(), _> = quick(5)
            .run("test", || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(ApiError::Fatal {
                    status: 401,
                    message: "request is not authorized".into(),
                })
            })
            .await;
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(matches!(r, Err(ApiError::Fatal { status: 401, .. })));

        let calls = AtomicU32::new(0);
        let r = quick(5)
            .run("test", || async {
                if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                    Err(ApiError::Truncated("EOF".into()))
                } else {
                    Ok(42)
                }
            })
            .await;
        assert_eq!(r.unwrap(), 42);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }
}
