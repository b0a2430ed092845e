//! Configuration data: providers, catalog entries, retry policy and the per-client settings.
//!
//! Providers are data (base URL, key, wire format), not a type per vendor: every
//! OpenAI-compatible server is the `OpenAiChat` wire with another base URL.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// The default `max_tokens` sent to Anthropic, which requires the field.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;
/// The default timeout of one HTTP attempt; long because a model call can take minutes.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(600);

/// Which HTTP API a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WireFormat {
    /// Anthropic Messages (`POST /v1/messages`).
    Anthropic,
    /// OpenAI Chat Completions (`POST /chat/completions`), also vLLM, Ollama, llama.cpp, OpenRouter.
    #[serde(alias = "openai", alias = "openai_compatible")]
    OpenAiChat,
}

impl WireFormat {
    /// A stable name for logs and listings.
    pub fn as_str(self) -> &'static str {
        match self {
            WireFormat::Anthropic => "anthropic",
            WireFormat::OpenAiChat => "openai_chat",
        }
    }
}

/// A provider API key. It never prints: `Debug` and `Display` show `***`, so a key cannot
/// leak through logs, errors or traces by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key.
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// The key itself, for the request header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// One provider: where it lives, how it speaks, and which key it needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderConfig {
    /// The provider's name, used in catalog entries and in `provider/model` names.
    pub name: String,
    pub wire: WireFormat,
    /// For Anthropic the host (`https://api.anthropic.com`); for OpenAI-style servers the
    /// URL up to and including `/v1`.
    pub base_url: String,
    /// The environment variable the key comes from. `None` means the provider needs no key
    /// (a local server).
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// The key, filled in by the composition root from `api_key_env`. Never serialized.
    #[serde(skip)]
    pub api_key: Option<ApiKey>,
}

/// One configured model name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelEntry {
    /// The name callers use in `model`.
    pub name: String,
    /// The name of a configured provider.
    pub provider: String,
    /// The provider's model id; defaults to `name`.
    #[serde(default)]
    pub upstream: Option<String>,
    /// The output token limit. Anthropic gets [`DEFAULT_MAX_TOKENS`] when unset; OpenAI-style
    /// servers get no limit field when unset.
    #[serde(default)]
    pub max_tokens: Option<u32>,
    #[serde(default)]
    pub description: Option<String>,
}

/// How failed provider calls are retried (429, 5xx, 529, timeouts, connection errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first one included; at least 1.
    pub max_attempts: u32,
    /// The backoff before the second attempt; it doubles after each failure.
    pub base_delay: Duration,
    /// The longest single wait. A `retry-after` asking for more ends the retries.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

/// Everything the catalog needs: providers, configured models and the HTTP policy.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogConfig {
    pub providers: Vec<ProviderConfig>,
    pub models: Vec<ModelEntry>,
    pub retry: RetryPolicy,
    /// The timeout of one HTTP attempt.
    pub request_timeout: Duration,
    /// Prices by model name, over the built-in table (`[prices.MODEL]`).
    pub prices: std::collections::BTreeMap<String, crate::price::Price>,
}

impl CatalogConfig {
    /// The two built-in providers, without keys: the composition root fills keys from
    /// the named variables and may override the base URLs.
    pub fn builtin_providers() -> Vec<ProviderConfig> {
        vec![
            ProviderConfig {
                name: "anthropic".into(),
                wire: WireFormat::Anthropic,
                base_url: "https://api.anthropic.com".into(),
                api_key_env: Some("ANTHROPIC_API_KEY".into()),
                api_key: None,
            },
            ProviderConfig {
                name: "openai".into(),
                wire: WireFormat::OpenAiChat,
                base_url: "https://api.openai.com/v1".into(),
                api_key_env: Some("OPENAI_API_KEY".into()),
                api_key: None,
            },
        ]
    }
}

impl Default for CatalogConfig {
    fn default() -> Self {
        Self {
            providers: Self::builtin_providers(),
            models: Vec::new(),
            retry: RetryPolicy::default(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            prices: std::collections::BTreeMap::new(),
        }
    }
}

/// The settings of one provider client, bound to one upstream model.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientConfig {
    /// The provider's name, for errors and logs.
    pub provider: String,
    /// See [`ProviderConfig::base_url`].
    pub base_url: String,
    pub api_key: Option<ApiKey>,
    /// The provider's model id.
    pub model: String,
    /// See [`ModelEntry::max_tokens`].
    pub max_tokens: Option<u32>,
    pub retry: RetryPolicy,
    /// The timeout of one HTTP attempt.
    pub request_timeout: Duration,
}

impl ClientConfig {
    /// A config with the default retry policy and timeout, and no key.
    pub fn new(
        provider: impl Into<String>,
        base_url: impl Into<String>,
        model: impl Into<String>,
    ) -> Self {
        Self {
            provider: provider.into(),
            base_url: base_url.into(),
            api_key: None,
            model: model.into(),
            max_tokens: None,
            retry: RetryPolicy::default(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }

    /// Sets the key.
    pub fn with_api_key(mut self, key: ApiKey) -> Self {
        self.api_key = Some(key);
        self
    }

    /// Sets the output token limit.
    pub fn with_max_tokens(mut self, max_tokens: u32) -> Self {
        self.max_tokens = Some(max_tokens);
        self
    }

    /// Sets the retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sets the per-attempt timeout.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// A POST of `body` to `path` of this client's provider, with its retry policy,
    /// timeout and key (redacted from errors).
    pub(crate) fn post(
        &self,
        path: &str,
        headers: reqwest::header::HeaderMap,
        body: &impl serde::Serialize,
    ) -> Result<crate::http::JsonPost<'_>, rollout_domain::ModelError> {
        // Encoded once, however many times the request is sent.
        let body = serde_json::to_vec(body).map_err(|error| {
            rollout_domain::ModelError::new(
                rollout_domain::ModelErrorKind::BadRequest,
                format!(
                    "the request to {} could not be encoded: {error}",
                    self.provider
                ),
            )
        })?;
        Ok(crate::http::JsonPost {
            provider: &self.provider,
            url: self.url(path),
            headers,
            body,
            retry: self.retry,
            timeout: self.request_timeout,
            secret: self.api_key.as_ref().map(|key| key.expose()),
        })
    }

    /// `base_url` joined with `path`, without doubled slashes.
    pub(crate) fn url(&self, path: &str) -> String {
        format!(
            "{}/{}",
            self.base_url.trim_end_matches('/'),
            path.trim_start_matches('/')
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_key_never_prints() {
        let key = ApiKey::new("sk-secret");
        assert_eq!(format!("{key:?} {key}"), "*** ***");
        let config = ClientConfig::new("openai", "http://x/v1", "gpt-5").with_api_key(key);
        assert!(!format!("{config:?}").contains("sk-secret"));
    }

    #[test]
    fn url_joins_without_doubled_slashes() {
        let config = ClientConfig::new("p", "http://host/v1/", "m");
        assert_eq!(
            config.url("/chat/completions"),
            "http://host/v1/chat/completions"
        );
    }
}
