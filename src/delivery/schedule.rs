//! When to try again, as pure functions: the clock, backoff with jitter, `Retry-After`, what an
//! answer means, and how long a failing server is paused.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
#[cfg(test)]
use std::time::UNIX_EPOCH;
use std::time::{Duration, SystemTime};

/// Where the queue reads the time. Scheduling uses it; signatures always use the wall clock,
/// since the peer checks `Date` against its own.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> SystemTime;
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// The wall clock plus an offset that tests move forward by hand ("three hours later"). Work
/// queued at the real time is due on it at once; clones share the offset.
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn new() -> ManualClock {
        ManualClock::default()
    }

    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        SystemTime::now() + Duration::from_millis(self.0.load(Ordering::SeqCst).max(0) as u64)
    }
}

/// Retry schedule and circuit breaker settings.
#[derive(Debug, Clone)]
pub struct Backoff {
    /// Delay after the first failure; doubled after each further one.
    pub base: Duration,
    /// Longest delay between two attempts of one delivery.
    pub cap: Duration,
    /// Consecutive failures of a server before it is paused.
    pub breaker_threshold: u32,
    /// First pause of a failing server; doubled at each failed probe, up to `breaker_cap`.
    pub breaker_pause: Duration,
    pub breaker_cap: Duration,
    /// Pause after a 429 without Retry-After.
    pub rate_limit_pause: Duration,
}

impl Default for Backoff {
    /// 30 s, 1 min, 2 min … 12 h, then every 12 h: twelve attempts in the first day and about
    /// eighteen over three days. A server failing five times in a row is paused for 1 min, then
    /// 2, 4 … up to 1 h between probes.
    fn default() -> Self {
        Backoff {
            base: Duration::from_secs(30),
            cap: Duration::from_secs(12 * 60 * 60),
            breaker_threshold: 5,
            breaker_pause: Duration::from_secs(60),
            breaker_cap: Duration::from_secs(60 * 60),
            rate_limit_pause: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    /// Delay before attempt `failures + 1` of delivery `delivery_id`: exponential, capped, with
    /// ±20 % jitter so that deliveries that failed together do not come back together. The
    /// jitter is a hash of the delivery and attempt, so tests can predict the range.
    pub fn retry_delay(&self, failures: u32, delivery_id: i64) -> Duration {
        let exp = failures.saturating_sub(1).min(30);
        let raw = self.base.saturating_mul(1u32 << exp).min(self.cap);
        let unit = mix(delivery_id as u64 ^ (u64::from(failures) << 48)) as f64 / u64::MAX as f64;
        raw.mul_f64(0.8 + 0.4 * unit)
    }

    /// How long to pause a server that has failed `consecutive` times in a row, or `None`
    /// while it is below the threshold.
    pub fn pause_for(&self, consecutive: u32) -> Option<Duration> {
        let over = consecutive.checked_sub(self.breaker_threshold)?;
        Some(
            self.breaker_pause
                .saturating_mul(1u32 << over.min(20))
                .min(self.breaker_cap),
        )
    }
}

/// splitmix64: a cheap, well-spread hash for jitter.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// `Retry-After` as seconds or an HTTP date (RFC 9110 §10.2.3), as a delay from `now`. A date in
/// the past means "now"; values over a day are clamped to a day.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    const MAX: Duration = Duration::from_secs(24 * 60 * 60);
    let value = value.trim();
    let delay = if let Ok(secs) = value.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        let at = httpdate::parse_http_date(value).ok()?;
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(delay.min(MAX))
}

/// What one attempt's result means for the delivery and for its server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx: done.
    Delivered,
    /// 408, 5xx, network trouble: try again later; counts against the server.
    Retry { retry_after: Option<Duration> },
    /// 429: try again after Retry-After; the server is paused but not counted as failing.
    RateLimited { retry_after: Option<Duration> },
    /// 410 Gone: the recipient no longer exists.
    Gone,
    /// Any other answer: the peer refused this activity; trying again would not help.
    Rejected,
}

/// Reads an HTTP status (and its Retry-After) as a [`Verdict`].
pub fn verdict(status: u16, retry_after: Option<Duration>) -> Verdict {
    match status {
        200..=299 => Verdict::Delivered,
        429 => Verdict::RateLimited { retry_after },
        408 | 500..=599 => Verdict::Retry { retry_after },
        410 => Verdict::Gone,
        _ => Verdict::Rejected,
    }
}

/// Milliseconds since the Unix epoch; times before it count as 0.
pub fn unix_ms(t: std::time::SystemTime) -> i64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let b = Backoff::default();
        for id in 1..50 {
            let first = b.retry_delay(1, id);
            assert!(first >= Duration::from_secs(24) && first <= Duration::from_secs(36));
            let fifth = b.retry_delay(5, id);
            assert!(fifth >= Duration::from_secs(384) && fifth <= Duration::from_secs(576));
            assert!(b.retry_delay(40, id) <= Duration::from_secs(12 * 3600 * 12 / 10));
        }
        // Jitter spreads deliveries that failed together.
        let spread: std::collections::HashSet<_> =
            (1..20).map(|id| b.retry_delay(3, id).as_millis()).collect();
        assert!(spread.len() > 15);
    }

    #[test]
    fn three_days_hold_about_eighteen_attempts() {
        let b = Backoff::default();
        let (mut t, mut n) = (Duration::ZERO, 0);
        while t < Duration::from_secs(3 * 86400) {
            n += 1;
            t += b.retry_delay(n, 7);
        }
        assert!((15..=22).contains(&n), "{n} attempts");
    }

    #[test]
    fn breaker_pauses_after_threshold_and_grows() {
        let b = Backoff::default();
        assert_eq!(b.pause_for(4), None);
        assert_eq!(b.pause_for(5), Some(Duration::from_secs(60)));
        assert_eq!(b.pause_for(6), Some(Duration::from_secs(120)));
        assert_eq!(b.pause_for(60), Some(Duration::from_secs(3600)));
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        let later = httpdate::fmt_http_date(now + Duration::from_secs(90));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(90))
        );
        let past = httpdate::fmt_http_date(now - Duration::from_secs(90));
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("999999999", now),
            Some(Duration::from_secs(86400))
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn statuses_map_to_verdicts() {
        assert_eq!(verdict(202, None), Verdict::Delivered);
        assert_eq!(verdict(408, None), Verdict::Retry { retry_after: None });
        assert_eq!(verdict(503, None), Verdict::Retry { retry_after: None });
        assert_eq!(
            verdict(429, Some(Duration::from_secs(5))),
            Verdict::RateLimited {
                retry_after: Some(Duration::from_secs(5))
            }
        );
        assert_eq!(verdict(410, None), Verdict::Gone);
        for s in [400, 401, 403, 404, 422, 301] {
            assert_eq!(verdict(s, None), Verdict::Rejected, "{s}");
        }
    }
}
