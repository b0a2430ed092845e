//! A small client of the rollout HTTP API, for the commands that drive a server (`eval`,
//! `job`). Answers are read as the API's own types (`rollout_api`), the ones the server
//! writes. API errors come back as `anyhow` errors carrying the server's message and, for a
//! 422, every problem it listed.

use anyhow::{Context, anyhow};
use rollout_api::ErrorBody;
use rollout_api::error::Problem;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::time::Duration;

/// A server URL and an API key.
pub(crate) struct Api {
    base: String,
    key: String,
    http: reqwest::Client,
}

impl Api {
    /// A client of the server at `base` (e.g. `http://127.0.0.1:8300`).
    pub(crate) fn new(base: &str, key: &str) -> anyhow::Result<Self> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .context("building the HTTP client")?;
        Ok(Self {
            base: base.trim_end_matches('/').to_string(),
            key: key.to_string(),
            http,
        })
    }

    /// `GET path`; `None` on 404.
    pub(crate) async fn get_optional<T: DeserializeOwned>(
        &self,
        path: &str,
    ) -> anyhow::Result<Option<T>> {
        let request = self.http.get(self.url(path));
        match self.send(request).await {
            Ok(value) => Ok(Some(typed(value)?)),
            Err(ApiFailure::Status { status: 404, .. }) => Ok(None),
            Err(failure) => Err(failure.into()),
        }
    }

    /// `GET path`.
    pub(crate) async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        typed(self.send(self.http.get(self.url(path))).await?)
    }

    /// `POST path` with a JSON body.
    pub(crate) async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl serde::Serialize,
    ) -> anyhow::Result<T> {
        typed(self.send(self.http.post(self.url(path)).json(body)).await?)
    }

    /// `PATCH path` with a JSON body.
    pub(crate) async fn patch<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &Value,
    ) -> anyhow::Result<T> {
        typed(
            self.send(self.http.patch(self.url(path)).json(body))
                .await?,
        )
    }

    /// `DELETE path`.
    pub(crate) async fn delete<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        typed(self.send(self.http.delete(self.url(path))).await?)
    }

    /// `POST path` with a binary body of `content_type`, allowed `timeout` (uploads that
    /// the server processes while the request waits, e.g. an environment deploy).
    pub(crate) async fn post_bytes<T: DeserializeOwned>(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
        timeout: Duration,
    ) -> anyhow::Result<T> {
        let request = self
            .http
            .post(self.url(path))
            .header("content-type", content_type)
            .timeout(timeout)
            .body(body);
        typed(self.send(request).await?)
    }

    /// `POST path` with a JSON body, allowed `timeout`.
    pub(crate) async fn post_slow<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl serde::Serialize,
        timeout: Duration,
    ) -> anyhow::Result<T> {
        let request = self.http.post(self.url(path)).json(body).timeout(timeout);
        typed(self.send(request).await?)
    }

    /// `POST path` with a text body (JSONL).
    pub(crate) async fn post_text<T: DeserializeOwned>(
        &self,
        path: &str,
        body: String,
    ) -> anyhow::Result<T> {
        let request = self
            .http
            .post(self.url(path))
            .header("content-type", "application/x-ndjson")
            .body(body);
        typed(self.send(request).await?)
    }

    /// `GET path` of a text (not JSON) body, e.g. a JSONL download.
    pub(crate) async fn get_text(&self, path: &str) -> anyhow::Result<String> {
        let response = self
            .http
            .get(self.url(path))
            .bearer_auth(&self.key)
            .send()
            .await
            .map_err(|error| anyhow!("could not reach the server: {}: {error}", self.base))?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .map_err(|error| anyhow!("reading the response: {error}"))?;
        if (200..300).contains(&status) {
            return Ok(text);
        }
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Err(ApiFailure::Status { status, body }.into())
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<String, ApiFailure> {
        let response = request
            .bearer_auth(&self.key)
            .send()
            .await
            .map_err(|error| ApiFailure::Transport(format!("{}: {error}", self.base)))?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .map_err(|error| ApiFailure::Transport(error.to_string()))?;
        if (200..300).contains(&status) {
            return Ok(text);
        }
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Err(ApiFailure::Status { status, body })
    }
}

/// An answer as the API type `T` (an empty body, e.g. a 204, reads as `null`). Read from
/// the text, not a `Value`: maps with number keys (`pass_at_k`) only parse that way.
fn typed<T: DeserializeOwned>(body: String) -> anyhow::Result<T> {
    let body = if body.trim().is_empty() {
        "null"
    } else {
        &body
    };
    serde_json::from_str(body).context("the server's answer is not the API's shape")
}

/// Why a request failed.
enum ApiFailure {
    Transport(String),
    Status { status: u16, body: Value },
}

impl From<ApiFailure> for anyhow::Error {
    fn from(failure: ApiFailure) -> Self {
        match failure {
            ApiFailure::Transport(message) => anyhow!("could not reach the server: {message}"),
            ApiFailure::Status { status, body } => {
                let error = serde_json::from_value::<ErrorBody>(body.clone()).ok();
                let message = error
                    .as_ref()
                    .map(|e| e.error.message.clone())
                    .unwrap_or_else(|| body.to_string());
                let problems: Vec<String> = error
                    .and_then(|e| e.error.details)
                    .and_then(|details| details.get("errors").cloned())
                    .and_then(|errors| serde_json::from_value::<Vec<Problem>>(errors).ok())
                    .unwrap_or_default()
                    .into_iter()
                    .map(|p| format!("\n  - {}", p.message))
                    .collect();
                if problems.is_empty() {
                    anyhow!("the server answered {status}: {message}")
                } else {
                    anyhow!("the server answered {status}:{}", problems.concat())
                }
            }
        }
    }
}
