//! `GET /v1/usage`.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Query of `GET /v1/usage`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsageQuery {
    /// Start (inclusive): RFC 3339 time, date or unix milliseconds; default 30 days before `to`.
    pub from: Option<String>,
    /// End (exclusive); default now.
    pub to: Option<String>,
    /// `day` (default), `model`, `environment` or `key`.
    pub group_by: Option<String>,
}

/// One group's usage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UsageGroup {
    /// The day (`YYYY-MM-DD`), the model, the environment or the key.
    pub group: String,
    pub runs: i64,
    pub steps: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    /// Seconds between start and end, summed over finished runs.
    pub compute_seconds: f64,
    /// `null` when a model of the group has no price.
    pub cost_usd: Option<f64>,
    /// The key's name, when grouped by key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_name: Option<String>,
}

/// `GET /v1/usage`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Usage {
    pub from: String,
    pub to: String,
    pub group_by: String,
    pub groups: Vec<UsageGroup>,
    pub total: UsageGroup,
}
