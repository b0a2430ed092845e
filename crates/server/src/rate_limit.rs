//! Per-key request rate limits: an in-process token bucket per API key. A key gets `burst`
//! requests at once and `per_minute` more each minute; beyond that it gets 429 with
//! `Retry-After`. Each server process counts on its own. The API and the web UI's routes
//! share one limiter, so a key's browser session counts against the key's limit. The same
//! bucket, keyed by client address, throttles failed sign-ins (`ui::sign_in`).

use crate::auth::Caller;
use crate::error::ApiError;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// A per-key limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests a key may make per minute, sustained.
    pub per_minute: u32,
    /// Requests a key may make at once (the bucket's size).
    pub burst: u32,
}

/// Buckets kept before full ones are dropped.
const MAX_BUCKETS: usize = 10_000;

struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// The buckets of every key seen.
pub(crate) struct RateLimiter {
    limit: Option<RateLimit>,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    pub(crate) fn new(limit: Option<RateLimit>) -> Self {
        Self {
            limit: limit.filter(|l| l.per_minute > 0),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `key` at `now`; `Err(seconds)` to wait when there is none.
    pub(crate) fn take(&self, key: &str, now: Instant) -> Result<(), u64> {
        self.with_bucket(key, now, true)
    }

    /// Like [`Self::take`], but leaves the token: whether `key` may go on at `now`.
    pub(crate) fn check(&self, key: &str, now: Instant) -> Result<(), u64> {
        self.with_bucket(key, now, false)
    }

    fn with_bucket(&self, key: &str, now: Instant, take: bool) -> Result<(), u64> {
        let Some(limit) = self.limit else {
            return Ok(());
        };
        let capacity = f64::from(limit.burst.max(1));
        let per_second = f64::from(limit.per_minute) / 60.0;
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(key) {
            // Keys seen once (client addresses) must not grow the map without bound: a
            // bucket that has refilled is the same as no bucket.
            buckets.retain(|_, bucket| {
                let elapsed = now.duration_since(bucket.updated).as_secs_f64();
                bucket.tokens + elapsed * per_second < capacity
            });
        }
        let bucket = buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: capacity,
            updated: now,
        });
        let elapsed = now.duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_second).min(capacity);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            if take {
                bucket.tokens -= 1.0;
            }
            Ok(())
        } else {
            let wait = ((1.0 - bucket.tokens) / per_second).ceil().max(1.0);
            Err(wait as u64)
        }
    }
}

impl RateLimiter {
    /// Takes a token for the request's key (set by authentication): `Some(wait)` with the
    /// 429 to send when there is none.
    pub(crate) fn refuse(&self, request: &Request) -> Option<(u64, ApiError)> {
        let caller = request.extensions().get::<Caller>()?;
        let wait = self.take(&caller.key_id, Instant::now()).err()?;
        let message = format!("too many requests for this API key; retry in {wait} s");
        Some((
            wait,
            ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message),
        ))
    }
}

/// Sets `Retry-After: wait` on a response.
pub(crate) fn retry_after(response: &mut Response, wait: u64) {
    if let Ok(value) = HeaderValue::from_str(&wait.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
}

/// Middleware (after authentication): 429 with `Retry-After` once the key's bucket is empty.
pub(crate) async fn limit_rate(
    State(limiter): State<Arc<RateLimiter>>,
    request: Request,
    next: Next,
) -> Response {
    if let Some((wait, error)) = limiter.refuse(&request) {
        let mut response = error.into_response();
        retry_after(&mut response, wait);
        return response;
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_a_burst_then_refills_over_time() {
        let limiter = RateLimiter::new(Some(RateLimit {
            per_minute: 60,
            burst: 2,
        }));
        let start = Instant::now();
        assert_eq!(limiter.take("a", start), Ok(()));
        assert_eq!(limiter.take("a", start), Ok(()));
        assert_eq!(limiter.take("a", start), Err(1));
        assert_eq!(
            limiter.take("b", start),
            Ok(()),
            "keys have buckets of their own"
        );
        let later = start + std::time::Duration::from_secs(1);
        assert_eq!(limiter.take("a", later), Ok(()));
        assert_eq!(limiter.take("a", later), Err(1));
        assert!(RateLimiter::new(None).take("a", start).is_ok());
        assert_eq!(limiter.check("a", later), Err(1), "check takes nothing");
        let refilled = later + std::time::Duration::from_secs(1);
        assert_eq!(limiter.check("a", refilled), Ok(()));
        assert_eq!(limiter.check("a", refilled), Ok(()), "check takes nothing");
    }
}
