//! One error type for every handler, rendered as `{"error": {"code", "message", "details"}}`.
//! Server-side failures are logged with their cause and answered with a generic message.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// An API error: status, a stable machine-readable code, a human message, details.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Value,
    /// Seconds for a `Retry-After` header (429, 503).
    retry_after: Option<u64>,
}

impl ApiError {
    /// A new error without details.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: Value::Null,
            retry_after: None,
        }
    }

    /// Adds a `Retry-After` header (seconds) to the response.
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// Adds details.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    /// 400: the body is not what the endpoint reads.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 404 for a named thing.
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    /// 422 with a list of problems, each `{"field", "message"}`.
    pub fn invalid(problems: Vec<Value>) -> Self {
        let summary = problems
            .iter()
            .filter_map(|p| p.get("message").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("; ");
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", summary)
            .with_details(json!({ "errors": problems }))
    }

    /// 500: logs the cause, tells the client only that it was ours.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal server error; see the server log",
        )
    }
}

impl From<rollout_store::StoreError> for ApiError {
    fn from(error: rollout_store::StoreError) -> Self {
        if error.is_unavailable() {
            tracing::error!(%error, "store unavailable");
            return Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "the database is unavailable; try again",
            );
        }
        Self::internal(error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = rollout_api::ErrorBody {
            error: rollout_api::ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
                details: (!self.details.is_null()).then_some(self.details),
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

/// A problem with one field of a request, for `ApiError::invalid`.
pub(crate) fn problem(field: &str, message: impl Into<String>) -> Value {
    json!({"field": field, "message": message.into()})
}
