//! Projects: settings, limits and usage.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The body of `PATCH /v1/projects/{id}`: each named setting is changed, `null` unsets it,
/// settings not named stay. (The server reads the body as a map, to tell `null` from
/// absent; this type documents it.)
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"max_runs_in_flight": 20, "default_max_steps": 30}))]
pub struct SettingsPatch {
    pub max_runs_in_flight: Option<i64>,
    pub default_timeout_seconds: Option<i64>,
    pub max_timeout_seconds: Option<i64>,
    pub default_max_steps: Option<i64>,
    pub max_runs_per_day: Option<i64>,
    pub max_tokens_per_day: Option<i64>,
}

/// A project's own settings; `null` falls back to the server's default or means no limit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Settings {
    /// Most runs queued or running at once.
    pub max_runs_in_flight: Option<i64>,
    /// `timeout_seconds` of a run that does not ask for one.
    pub default_timeout_seconds: Option<i64>,
    /// The largest `timeout_seconds` a run may ask for.
    pub max_timeout_seconds: Option<i64>,
    /// `max_steps` of a run that does not ask for one.
    pub default_max_steps: Option<i64>,
    /// Most runs created in any 24 hours.
    pub max_runs_per_day: Option<i64>,
    /// Most tokens used by runs created in any 24 hours.
    pub max_tokens_per_day: Option<i64>,
}

/// The server's defaults, for settings the project leaves unset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ServerDefaults {
    pub timeout_seconds: u64,
    pub max_timeout_seconds: u64,
    pub max_steps: u32,
}

/// The project's usage in the last 24 hours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProjectUsage {
    pub runs_in_flight: i64,
    pub runs_last_24h: i64,
    pub tokens_last_24h: i64,
}

/// `GET /v1/projects/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Project {
    pub id: String,
    pub name: String,
    pub created_at: String,
    pub settings: Settings,
    pub server_defaults: ServerDefaults,
    pub usage: ProjectUsage,
}
