//! Backoff arithmetic and `retry-after` parsing, kept free of I/O so it is unit-tested.

use crate::config::RetryPolicy;
use std::hash::{BuildHasher, RandomState};
use std::time::{Duration, SystemTime};

/// The wait before attempt `failed_attempts + 1`: exponential from `base_delay`, capped at
/// `max_delay`, with "equal jitter" (half fixed, half random) so that many runs hitting the
/// same rate limit do not retry in lockstep.
pub(crate) fn backoff(policy: &RetryPolicy, failed_attempts: u32) -> Duration {
    let exponent = failed_attempts.saturating_sub(1).min(20);
    let full = policy
        .base_delay
        .saturating_mul(1u32 << exponent)
        .min(policy.max_delay);
    let half = full / 2;
    let half_ms = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
    let jitter_ms = if half_ms == 0 {
        0
    } else {
        random_u64() % (half_ms + 1)
    };
    half + Duration::from_millis(jitter_ms)
}

/// A random number without a `rand` dependency: std's `RandomState` is seeded randomly.
fn random_u64() -> u64 {
    RandomState::new().hash_one(SystemTime::now())
}

/// The wait a provider asked for, from `retry-after-ms` (OpenAI) or `retry-after`
/// (seconds or an HTTP-date).
pub(crate) fn retry_after(
    retry_after_ms: Option<&str>,
    retry_after: Option<&str>,
    now: SystemTime,
) -> Option<Duration> {
    if let Some(ms) = retry_after_ms.and_then(parse_non_negative) {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    let value = retry_after?.trim();
    if let Some(seconds) = parse_non_negative(value) {
        return Some(Duration::from_secs_f64(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

fn parse_non_negative(value: &str) -> Option<f64> {
    let number: f64 = value.trim().parse().ok()?;
    // Bound the value so that `Duration::from_secs_f64` cannot panic on absurd input.
    (number.is_finite() && (0.0..=1.0e9).contains(&number)).then_some(number)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
        }
    }

    #[test]
    fn backoff_doubles_within_jitter_and_is_capped() {
        for _ in 0..50 {
            let first = backoff(&policy(), 1);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
            let third = backoff(&policy(), 3);
            assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(400));
            let late = backoff(&policy(), 30);
            assert!(late >= Duration::from_millis(500) && late <= Duration::from_millis(1000));
        }
    }

    #[test]
    fn retry_after_reads_ms_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            retry_after(Some("250"), Some("9"), now),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            retry_after(None, Some("2"), now),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            retry_after(None, Some("1.5"), now),
            Some(Duration::from_millis(1500))
        );
        let date = httpdate::fmt_http_date(now + Duration::from_secs(7));
        assert_eq!(
            retry_after(None, Some(&date), now),
            Some(Duration::from_secs(7))
        );
        let past = httpdate::fmt_http_date(now - Duration::from_secs(7));
        assert_eq!(retry_after(None, Some(&past), now), Some(Duration::ZERO));
        assert_eq!(retry_after(None, Some("soon"), now), None);
        assert_eq!(retry_after(Some("-1"), None, now), None);
        assert_eq!(retry_after(None, None, now), None);
    }
}
