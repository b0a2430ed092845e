//! The shared HTTP client and the one retry loop every provider client goes through.
//!
//! Errors leave this module as domain `ModelError`s: classified by kind, with the HTTP
//! status, the provider's own error message, and never the API key or a request body.

use crate::config::RetryPolicy;
use crate::retry::{backoff, retry_after};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use rollout_domain::{ModelError, ModelErrorKind};
use serde_json::Value;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

/// Secrets shorter than this are not redacted from messages; real keys are far longer.
const MIN_REDACTED_LEN: usize = 8;

static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();

/// The process-wide HTTP client (one connection pool for all providers).
pub(crate) fn shared_client() -> Result<reqwest::Client, ModelError> {
    if let Some(client) = CLIENT.get() {
        return Ok(client.clone());
    }
    // reqwest is built with `rustls-no-provider`; the crypto provider must be installed
    // before the first client. Another crate may have installed it already, which is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder().build().map_err(|error| {
        ModelError::new(
            ModelErrorKind::Connect,
            format!("could not build the HTTP client: {}", describe(&error)),
        )
    })?;
    Ok(CLIENT.get_or_init(|| client).clone())
}

/// A header value holding a secret: reqwest keeps it out of its `Debug` output.
pub(crate) fn secret_header(value: &str) -> Result<HeaderValue, ModelError> {
    let mut header = HeaderValue::from_str(value).map_err(|_| {
        ModelError::new(
            ModelErrorKind::Auth,
            "the API key contains characters not allowed in a header",
        )
    })?;
    header.set_sensitive(true);
    Ok(header)
}

/// One JSON POST to a provider, retried under `retry`.
pub(crate) struct JsonPost<'a> {
    /// The provider's name, for messages and logs.
    pub(crate) provider: &'a str,
    pub(crate) url: String,
    pub(crate) headers: HeaderMap,
    /// The JSON body, encoded.
    pub(crate) body: Vec<u8>,
    pub(crate) retry: RetryPolicy,
    pub(crate) timeout: Duration,
    /// Redacted from any error message, in case a provider echoes it back.
    pub(crate) secret: Option<&'a str>,
}

impl JsonPost<'_> {
    /// Sends the request, retrying retryable failures with backoff, and returns the JSON body.
    pub(crate) async fn send(&self) -> Result<Value, ModelError> {
        let client = shared_client()?;
        let max_attempts = self.retry.max_attempts.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let error = match self.attempt(&client).await {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            if !error.is_retryable() || attempt >= max_attempts {
                return Err(self.final_error(error, attempt, None));
            }
            let delay = match error.retry_after_ms.map(Duration::from_millis) {
                Some(asked) if asked > self.retry.max_delay => {
                    return Err(self.final_error(error, attempt, Some(asked)));
                }
                Some(asked) => asked,
                None => backoff(&self.retry, attempt),
            };
            tracing::warn!(
                provider = self.provider,
                attempt,
                max_attempts,
                kind = %error.kind,
                status = error.status,
                delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                "model request failed; retrying"
            );
            tokio::time::sleep(delay).await;
        }
    }

    async fn attempt(&self, client: &reqwest::Client) -> Result<Value, ModelError> {
        let response = client
            .post(&self.url)
            .headers(self.headers.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(self.body.clone())
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|error| self.transport_error(&error))?;
        let status = response.status();
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok());
        let hint = retry_after(
            header("retry-after-ms"),
            header("retry-after"),
            SystemTime::now(),
        );
        let bytes = response
            .bytes()
            .await
            .map_err(|error| self.transport_error(&error))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|error| {
                ModelError::new(
                    ModelErrorKind::InvalidResponse,
                    format!(
                        "{} returned a response that is not JSON: {error}",
                        self.provider
                    ),
                )
            });
        }
        let code = status.as_u16();
        let kind = match code {
            429 => ModelErrorKind::RateLimited,
            // A server-side request timeout; the official SDKs retry it too.
            408 => ModelErrorKind::Timeout,
            401 | 403 => ModelErrorKind::Auth,
            // 500..=599 includes Anthropic's 529 "overloaded".
            500..=599 => ModelErrorKind::Server,
            _ => ModelErrorKind::BadRequest,
        };
        let detail = provider_message(&bytes).unwrap_or_else(|| {
            status
                .canonical_reason()
                .unwrap_or("no error message")
                .to_string()
        });
        Err(ModelError {
            kind,
            status: Some(code),
            message: format!("{} error: {detail}", self.provider),
            retry_after_ms: hint.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        })
    }

    fn transport_error(&self, error: &reqwest::Error) -> ModelError {
        let target = redacted_url(&self.url);
        let (kind, what) = if error.is_timeout() {
            (
                ModelErrorKind::Timeout,
                format!("no answer within {:?}", self.timeout),
            )
        } else if error.is_builder() {
            (
                ModelErrorKind::BadRequest,
                "the request could not be built".to_string(),
            )
        } else {
            (ModelErrorKind::Connect, "the connection failed".to_string())
        };
        let message = format!(
            "{} request to {target}: {what}: {}",
            self.provider,
            describe(error)
        );
        ModelError::new(kind, message)
    }

    fn final_error(
        &self,
        mut error: ModelError,
        attempts: u32,
        asked: Option<Duration>,
    ) -> ModelError {
        if let Some(asked) = asked {
            error.message.push_str(&format!(
                " (the provider asked to wait {:.1} s, more than the retry limit of {:.1} s)",
                asked.as_secs_f64(),
                self.retry.max_delay.as_secs_f64()
            ));
        } else if attempts > 1 {
            error
                .message
                .push_str(&format!(" (gave up after {attempts} attempts)"));
        }
        // Very short "keys" (test values, placeholders) would mangle ordinary words.
        if let Some(secret) = self.secret.filter(|s| s.len() >= MIN_REDACTED_LEN) {
            error.message = error.message.replace(secret, "***");
        }
        error
    }
}

/// The human-readable message of a provider's JSON error body: Anthropic's
/// `{"type":"error","error":{"type","message"}}`, OpenAI's `{"error":{"message","type","code"}}`,
/// and the looser shapes of compatible servers (`{"error":"..."}`, `{"detail":"..."}`).
pub(crate) fn provider_message(bytes: &[u8]) -> Option<String> {
    let Ok(body) = serde_json::from_slice::<Value>(bytes) else {
        let text = String::from_utf8_lossy(bytes);
        let text = text.trim();
        return (!text.is_empty()).then(|| truncate(text, 300));
    };
    let error = body.get("error").unwrap_or(&body);
    if let Some(text) = error.as_str() {
        return Some(truncate(text, 500));
    }
    let message = ["message", "detail"]
        .iter()
        .find_map(|key| error.get(key).and_then(Value::as_str))
        .or_else(|| body.get("detail").and_then(Value::as_str))?;
    let kind = error
        .get("type")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty());
    let message = truncate(message, 500);
    Some(match kind {
        Some(kind) => format!("{kind}: {message}"),
        None => message,
    })
}

fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}

/// The error and its sources, without the URL (which is reported separately, redacted).
fn describe(error: &reqwest::Error) -> String {
    let mut text = String::new();
    let mut source: Option<&dyn std::error::Error> = Some(error);
    while let Some(current) = source {
        let part = current.to_string();
        if !text.contains(&part) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&part);
        }
        source = current.source();
    }
    // reqwest appends "for url (...)" to its own message; drop it, the URL is reported redacted.
    match text.find(" for url (") {
        Some(start) => {
            let end = text[start..]
                .find(')')
                .map_or(text.len(), |e| start + e + 1);
            format!("{}{}", &text[..start], &text[end..])
        }
        None => text,
    }
}

/// The URL without credentials or query string (some providers take keys in the query).
fn redacted_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.set_query(None);
            parsed.to_string()
        }
        Err(_) => "<invalid url>".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_error_messages_of_every_shape() {
        let anthropic =
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        assert_eq!(
            provider_message(anthropic).unwrap(),
            "overloaded_error: Overloaded"
        );
        let openai = br#"{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#;
        assert_eq!(
            provider_message(openai).unwrap(),
            "requests: Rate limit reached"
        );
        assert_eq!(
            provider_message(br#"{"error":"model not found"}"#).unwrap(),
            "model not found"
        );
        assert_eq!(
            provider_message(br#"{"detail":"Not Found"}"#).unwrap(),
            "Not Found"
        );
        assert_eq!(provider_message(b"Bad Gateway").unwrap(), "Bad Gateway");
        assert_eq!(provider_message(b""), None);
    }

    #[test]
    fn redacts_credentials_and_query() {
        assert_eq!(
            redacted_url("https://user:pw@host/v1/chat/completions?key=secret"),
            "https://host/v1/chat/completions"
        );
    }

    #[test]
    fn truncates_on_char_boundaries() {
        assert_eq!(truncate("ééé", 2), "éé...");
        assert_eq!(truncate("ab", 2), "ab");
    }
}
