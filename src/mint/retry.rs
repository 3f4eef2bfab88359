//! When to try an API call again, and how long to wait: the retry and deadline policy.
//!
//! tskeyctl runs at boot, when the network may still be coming up and the API may be busy. So a
//! connect error, a timeout, a 429 or a 5xx is retried with jittered exponential backoff, and a
//! `Retry-After` (seconds or an HTTP date) is honoured. A 4xx verdict on the request itself
//! (400/401/403/404) is never retried: asking again cannot change it. Everything runs under one
//! overall deadline: a wait that would end past it is not started, so the command fails early
//! with exit 75 instead of sleeping into a certain failure.

use std::time::{Duration, Instant, SystemTime};

/// Timeout to establish a connection (contract: 5 s).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Timeout of one whole request, response body included (contract: 15 s).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Default overall deadline (contract: `--deadline 60s`).
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(60);

/// Longest deadline honoured (about 136 years: "no deadline" without overflowing `Instant`).
pub const MAX_DEADLINE: Duration = Duration::from_secs(u32::MAX as u64);

/// Backoff parameters.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Most attempts per call, the first included.
    pub max_attempts: u32,
    /// Wait before the first retry (before jitter).
    pub base: Duration,
    /// Longest backoff wait (a `Retry-After` may ask for more, up to the deadline).
    pub cap: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_attempts: 6,
            base: Duration::from_millis(250),
            cap: Duration::from_secs(8),
        }
    }
}

impl Policy {
    /// Backoff before retry number `retry` (1-based): `base·2^(retry-1)`, capped, then "equal
    /// jitter" — a uniformly random point in the upper half — so that many hosts booting at once
    /// do not retry in lockstep.
    pub fn backoff(&self, retry: u32) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32 << retry.saturating_sub(1).min(16))
            .min(self.cap);
        let half = exp / 2;
        half + half.mul_f64(random_unit())
    }
}

/// A uniformly distributed number in [0, 1) from the operating system's random source (0.5
/// if that fails: the backoff then has no jitter, which is harmless).
fn random_unit() -> f64 {
    let mut b = [0u8; 8];
    match getrandom::getrandom(&mut b) {
        Ok(()) => (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64,
        Err(_) => 0.5,
    }
}

/// Parses a `Retry-After` value: delay seconds, or an HTTP date (relative to `now`). Invalid
/// values give `None` (the caller falls back to its own backoff).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The overall deadline of one command.
#[derive(Clone, Copy, Debug)]
pub struct Deadline {
    end: Instant,
    total: Duration,
}

impl Deadline {
    /// A deadline `total` from now (capped at [`MAX_DEADLINE`], so the sum cannot overflow).
    pub fn after(total: Duration) -> Self {
        let total = total.min(MAX_DEADLINE);
        Deadline {
            end: Instant::now() + total,
            total,
        }
    }

    /// This deadline, or one `grace` from now if that is later: for cleaning up after a
    /// failure (revoking a key nobody received) even when the deadline is (nearly) spent.
    pub fn at_least(&self, grace: Duration) -> Self {
        if self.remaining() >= grace {
            *self
        } else {
            Deadline::after(grace)
        }
    }

    /// Time left (zero once passed).
    pub fn remaining(&self) -> Duration {
        self.end.saturating_duration_since(Instant::now())
    }

    /// The configured total, for messages.
    pub fn total(&self) -> Duration {
        self.total
    }

    /// The timeout for the next request: the request timeout, or less if the deadline is nearer.
    pub fn request_timeout(&self) -> Duration {
        REQUEST_TIMEOUT.min(self.remaining())
    }

    /// Whether waiting `wait` and then making a request still has a chance to finish in time.
    pub fn allows_wait(&self, wait: Duration) -> bool {
        wait < self.remaining()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        assert_eq!(parse_retry_after("2", now), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        // 1445412480 = Wed, 21 Oct 2015 07:28:00 GMT
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:07 GMT", now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let p = Policy::default();
        for retry in 1..=10 {
            let exp = (p.base * (1 << (retry - 1))).min(p.cap);
            for _ in 0..50 {
                let b = p.backoff(retry);
                assert!(b >= exp / 2 && b <= exp, "retry {retry}: {b:?} vs {exp:?}");
            }
        }
        let distinct: std::collections::HashSet<Duration> = (0..20).map(|_| p.backoff(3)).collect();
        assert!(distinct.len() > 1, "no jitter");
    }

    #[test]
    fn deadline_bounds_requests() {
        let d = Deadline::after(Duration::from_secs(2));
        assert!(d.request_timeout() <= Duration::from_secs(2));
        assert!(d.allows_wait(Duration::from_millis(500)));
        assert!(!d.allows_wait(Duration::from_secs(3)));
        let d = Deadline::after(Duration::from_secs(100));
        assert_eq!(d.request_timeout(), REQUEST_TIMEOUT);
    }
}
