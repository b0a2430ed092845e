//! A run's callback: where rollout POSTs the run's summary once it ends.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Retries of a callback when the request does not say.
pub const DEFAULT_CALLBACK_RETRIES: u32 = 3;
/// The most retries a callback may ask for.
pub const MAX_CALLBACK_RETRIES: u32 = 10;

/// Where and how to deliver a run's summary. `headers` and `secret` may hold credentials:
/// they are redacted in `Debug` and never written to traces or logs.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallbackSpec {
    /// An `http` or `https` URL.
    pub url: String,
    /// Extra request headers, e.g. the receiver's own authorization.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// The HMAC-SHA256 key of the `X-Rollout-Signature` header; unsigned without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Retries after a failed attempt (exponential backoff); 3 by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_count: Option<u32>,
}

impl CallbackSpec {
    /// Retries to make after a failed first attempt.
    pub fn retries(&self) -> u32 {
        self.retry_count
            .unwrap_or(DEFAULT_CALLBACK_RETRIES)
            .min(MAX_CALLBACK_RETRIES)
    }
}

impl fmt::Debug for CallbackSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallbackSpec")
            .field("url", &self.url)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("secret", &self.secret.as_ref().map(|_| "***"))
            .field("retry_count", &self.retry_count)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_neither_secret_nor_header_values() {
        let callback = CallbackSpec {
            url: "https://example.com/hook".into(),
            headers: BTreeMap::from([("Authorization".into(), "Bearer top-secret".into())]),
            secret: Some("hmac-secret".into()),
            retry_count: None,
        };
        let text = format!("{callback:?}");
        assert!(
            !text.contains("top-secret") && !text.contains("hmac-secret"),
            "{text}"
        );
        assert!(text.contains("Authorization"));
        assert_eq!(callback.retries(), DEFAULT_CALLBACK_RETRIES);
    }
}
