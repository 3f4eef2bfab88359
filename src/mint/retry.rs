//! When to try an API call again, and how long to wait: the retry and deadline policy.
//!
//! tskeyctl runs at boot, when the network may still be coming up and the API may be busy. So a
//! connect error, a timeout, a 429 or a 5xx is retried with jittered exponential backoff, and a
//! `Retry-After` (seconds or an HTTP date) is honoured — never earlier than asked, but with jitter
//! added on top, because a fleet rate-limited in one burst is told the same `Retry-After` and
//! would otherwise come back in lockstep and be refused again. A 4xx verdict on the request itself
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

    /// The wait after a reply that asked for `Retry-After: server`: that long, plus a jitter
    /// of [`Self::spread_after`], so that hosts refused together spread out when they return.
    pub fn after_server(&self, server: Duration) -> Duration {
        server + self.spread_after(server).mul_f64(random_unit())
    }

    /// The width of the jitter added to a server's `Retry-After`: half of it, at least `base`
    /// (a `Retry-After: 0` still spreads), at most `cap`.
    pub fn spread_after(&self, server: Duration) -> Duration {
        (server / 2).max(self.base).min(self.cap)
    }

    /// The wait before retry number `retry`: after the server's `Retry-After` with jitter when
    /// it sent one, else the backoff. If the jitter alone would carry the wait past `deadline`,
    /// the bare `Retry-After` is used: the server's wish still fits, so it is worth a try.
    pub fn wait(&self, retry: u32, server: Option<Duration>, deadline: &Deadline) -> Duration {
        match server {
            None => self.backoff(retry),
            Some(ra) => {
                let jittered = self.after_server(ra);
                if deadline.allows_wait(jittered) {
                    jittered
                } else {
                    ra
                }
            }
        }
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
    fn retry_after_is_honoured_with_jitter_on_top() {
        let p = Policy::default();
        let ra = Duration::from_secs(1);
        assert_eq!(p.spread_after(ra), Duration::from_millis(500));
        assert_eq!(p.spread_after(Duration::ZERO), p.base);
        assert_eq!(p.spread_after(Duration::from_secs(60)), p.cap);
        let waits: Vec<Duration> = (0..200).map(|_| p.after_server(ra)).collect();
        for w in &waits {
            assert!(*w >= ra && *w < ra + Duration::from_millis(500), "{w:?}");
        }
        // Spread, not lockstep: 200 hosts told "1 s" do not all come back in one 50 ms window
        // (uniform over 500 ms puts about 20 in each; 100 in one is out of the question).
        let mut sorted = waits.clone();
        sorted.sort();
        let busiest = (0..sorted.len())
            .map(|i| {
                sorted[i..]
                    .iter()
                    .take_while(|w| **w < sorted[i] + Duration::from_millis(50))
                    .count()
            })
            .max()
            .unwrap();
        assert!(busiest < 100, "{busiest} of 200 within 50 ms");
        let long = Deadline::after(Duration::from_secs(100));
        assert!(p.wait(1, Some(ra), &long) >= ra);
        let w = p.wait(3, None, &long);
        assert!(
            w >= Duration::from_millis(500) && w <= Duration::from_secs(1),
            "{w:?}"
        );
    }

    #[test]
    fn retry_after_that_fits_the_deadline_only_bare_is_kept_bare() {
        let p = Policy {
            max_attempts: 6,
            base: Duration::from_millis(250),
            cap: Duration::from_secs(8),
        };
        // 10 s left, the server asks for 9.9 s: its jitter (up to 4.95 s) would not fit.
        let d = Deadline::after(Duration::from_secs(10));
        let ra = Duration::from_millis(9_900);
        for _ in 0..20 {
            let w = p.wait(1, Some(ra), &d);
            assert!(w >= ra && d.allows_wait(w), "{w:?}");
        }
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
