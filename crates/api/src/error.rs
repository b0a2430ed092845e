//! The error body every endpoint answers with on failure.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// `{"error": {"code", "message", "details"}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong: a stable machine-readable code, a message for people, and details
/// (for 422: `{"errors": [{"field", "message"}]}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, snake_case (`invalid_request`, `trace_not_found`, `rate_limited`, ...).
    pub code: String,
    pub message: String,
    /// Absent when there is nothing more to say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub details: Option<Value>,
}

/// One problem of a 422's `details.errors`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// The request field at fault (`scenario_args.n`, `callback.url`, ...).
    pub field: String,
    pub message: String,
}
