//! Schedules: runs started by a cron line.

use crate::runs::ScheduledRun;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// The body of `POST /v1/schedules`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"cron": "0 * * * *", "timezone": "Europe/Paris", "run": {"env_name": "calc", "scenario_name": "add", "scenario_args": {"a": 1, "b": 2}, "model": "replay"}}))]
pub struct CreateSchedule {
    pub name: Option<String>,
    /// Five fields: minute hour day-of-month month day-of-week.
    pub cron: String,
    /// An IANA zone; UTC by default.
    pub timezone: Option<String>,
    /// A `POST /v1/agent/run` body, without `sync` and `timeout`.
    #[schema(value_type = crate::runs::RunRequest)]
    pub run: Value,
}

/// The run a schedule starts, without its callback's secret and headers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ScheduledSpec {
    pub env_name: String,
    /// The pinned version, `null` for the newest ready one at each tick.
    pub env_version: Option<i64>,
    pub scenario_name: String,
    #[schema(value_type = Object)]
    pub scenario_args: Map<String, Value>,
    pub model: String,
    pub max_steps: u32,
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
    pub timeout_seconds: u64,
    pub callback_url: Option<String>,
}

/// A schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Schedule {
    pub id: String,
    pub name: String,
    pub cron: String,
    pub timezone: String,
    pub paused: bool,
    pub next_run_at: Option<String>,
    pub last_run_at: Option<String>,
    /// The last tick that started no run, and why (quota, model, environment).
    pub last_skipped_at: Option<String>,
    pub last_skip_reason: Option<String>,
    pub last_error: Option<String>,
    pub created_at: String,
    pub run: ScheduledSpec,
}

/// `GET /v1/schedules`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ScheduleList {
    pub schedules: Vec<Schedule>,
}

/// `GET /v1/schedules/{id}/runs`: the runs it started, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ScheduleRuns {
    pub schedule_id: String,
    pub runs: Vec<ScheduledRun>,
}
