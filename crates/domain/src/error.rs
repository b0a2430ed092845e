//! Errors of the ports, so that the loop can classify them without knowing the transport.

use std::fmt;
use thiserror::Error;

/// Why a model call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelErrorKind {
    /// 429 from the provider.
    RateLimited,
    /// 5xx or 529 from the provider.
    Server,
    /// No response within the request timeout.
    Timeout,
    /// The connection could not be made or broke.
    Connect,
    /// 401/403: the key is missing or wrong.
    Auth,
    /// Another 4xx: the request was refused.
    BadRequest,
    /// The response could not be understood.
    InvalidResponse,
}

impl ModelErrorKind {
    /// A stable name for logs and traces.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelErrorKind::RateLimited => "rate_limited",
            ModelErrorKind::Server => "server_error",
            ModelErrorKind::Timeout => "timeout",
            ModelErrorKind::Connect => "connect_error",
            ModelErrorKind::Auth => "auth_error",
            ModelErrorKind::BadRequest => "bad_request",
            ModelErrorKind::InvalidResponse => "invalid_response",
        }
    }
}

impl fmt::Display for ModelErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed model call, after the client's own retries.
#[derive(Debug, Clone, Error)]
#[error("model call failed ({kind}{}): {message}", status.map(|s| format!(", HTTP {s}")).unwrap_or_default())]
pub struct ModelError {
    pub kind: ModelErrorKind,
    pub status: Option<u16>,
    pub message: String,
    /// What the provider asked us to wait before retrying, in milliseconds.
    pub retry_after_ms: Option<u64>,
}

impl ModelError {
    /// A new error without status or retry hint.
    pub fn new(kind: ModelErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            status: None,
            message: message.into(),
            retry_after_ms: None,
        }
    }

    /// True for errors worth retrying: rate limits, server errors, timeouts, broken connections.
    pub fn is_retryable(&self) -> bool {
        match self.kind {
            ModelErrorKind::RateLimited
            | ModelErrorKind::Server
            | ModelErrorKind::Timeout
            | ModelErrorKind::Connect => true,
            ModelErrorKind::Auth | ModelErrorKind::BadRequest | ModelErrorKind::InvalidResponse => {
                false
            }
        }
    }
}

/// The environment could not execute a tool call at all (its process died, the
/// connection broke, the call timed out). A tool that ran and reported an error is
/// not this: that is a `ToolResult` with `is_error`.
#[derive(Debug, Clone, Error)]
#[error("environment failed during tool call '{tool}': {message}")]
pub struct ToolError {
    pub tool: String,
    pub message: String,
}

/// An event could not be recorded (the store is unreachable).
#[derive(Debug, Clone, Error)]
#[error("could not record event: {0}")]
pub struct RecordError(pub String);
