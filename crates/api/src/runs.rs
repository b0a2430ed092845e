//! Runs and their traces: `POST /v1/agent/run`, `GET /v1/traces`, `GET /v1/traces/{id}`,
//! cancelling and callback deliveries.

use rollout_domain::{CallbackSpec, Evaluation, RunId, RunStatus, ValidationItem};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

/// The body of `POST /v1/agent/run`. Unknown fields are refused, so typos do not pass
/// silently.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"env_name": "my-assistant", "scenario_name": "answer_question", "scenario_args": {"query": "What is 17 * 23?"}, "model": "replay", "validation": [{"name": "calculator", "arguments": {"expression": "17 * 23"}}, {"answer": "17 * 23 = 391"}], "sync": true}))]
pub struct RunRequest {
    pub env_name: String,
    /// The bare scenario name or `env:scenario`.
    pub scenario_name: String,
    /// Checked against the scenario's argument schema.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub scenario_args: Map<String, Value>,
    /// Required (see `GET /v1/models`); `replay` plays `validation` back without an LLM.
    pub model: Option<String>,
    pub max_steps: Option<i64>,
    /// Wait for the run to end (up to `timeout` seconds) and answer with its summary.
    #[serde(default)]
    pub sync: bool,
    /// The longest `sync` wait, 1 to 600 seconds (default 300).
    pub timeout: Option<i64>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
    /// Tool calls for the `replay` model: `[{"name", "arguments"}]`.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub validation: Vec<ValidationItem>,
    pub system_prompt: Option<String>,
    /// Pin a version of the environment (default: the newest ready one).
    pub env_version: Option<i64>,
    /// Where to POST the run's summary when it ends: `{"url", "headers", "secret", "retry_count"}`.
    #[schema(value_type = Option<Object>)]
    pub callback: Option<CallbackSpec>,
    /// Agent-phase budget in seconds (default from the server's configuration).
    pub timeout_seconds: Option<i64>,
    /// Grading budget in seconds (default from the server's configuration).
    pub grading_timeout_seconds: Option<i64>,
    /// Stop the agent once its model calls used more tokens than this; still graded.
    pub max_total_tokens: Option<i64>,
    /// Stop the agent once its model calls cost more than this many USD; still graded.
    pub max_cost_usd: Option<f64>,
}

/// The 202 answer of a queued run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct QueuedRun {
    #[schema(value_type = String)]
    pub trace_id: RunId,
    pub trace_url: String,
    #[schema(value_type = String)]
    pub status: RunStatus,
    /// 1 for the next run to start; `null` once it left the queue.
    pub queue_position: Option<i64>,
}

/// The short form of a run: what `sync` returns and what lists show.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RunSummary {
    #[schema(value_type = String)]
    pub trace_id: RunId,
    pub trace_url: String,
    /// `queued`, `running`, `completed`, `failed`, `cancelled` or `timed_out`.
    #[schema(value_type = String)]
    pub status: RunStatus,
    pub env_name: String,
    pub scenario_name: String,
    pub model: String,
    pub reward: Option<f64>,
    pub final_response: Option<String>,
    /// How the agent phase ended (`done`, `max_steps`, `budget`, ...), once known.
    pub outcome: Option<String>,
    pub steps_taken: i64,
    pub duration_seconds: Option<f64>,
    /// `null` when the model's price is unknown.
    pub cost_usd: Option<f64>,
    pub error: Option<String>,
    pub created_at: String,
}

/// A scheduled run: its summary and the tick that started it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ScheduledRun {
    #[serde(flatten)]
    pub run: RunSummary,
    pub tick_at: String,
}

/// Tokens of a trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TraceUsage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    pub total_tokens: u64,
}

/// The whole trace: the run, its evaluation, usage and a page of its events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Trace {
    #[serde(flatten)]
    pub summary: RunSummary,
    pub env_version: i64,
    #[schema(value_type = Object)]
    pub scenario_args: Map<String, Value>,
    pub max_steps: u32,
    pub system_prompt: Option<String>,
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
    /// What the environment's grader answered (`reward`, `done`, `info`, ...).
    #[schema(value_type = Option<Object>)]
    pub evaluation: Option<Evaluation>,
    pub usage: TraceUsage,
    pub attempts: i64,
    pub queue_position: Option<i64>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// A page of events; absent when `include` leaves them out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<Event>>,
    /// The `events_after` of the next page, `null` after the last; absent without events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<i64>)]
    pub events_next_after: Option<Option<i64>>,
}

/// One event of a run: `seq`, `at_ms`, `attempt`, `type` and the type's own fields, with an
/// RFC 3339 `at`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Event {
    pub seq: i64,
    pub at_ms: i64,
    pub attempt: i64,
    /// `started`, `model_call`, `tool_call`, `tool_result`, `evaluation`, ...
    #[serde(rename = "type")]
    pub kind: String,
    pub at: String,
    /// The type's own fields.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub fields: Map<String, Value>,
}

/// `GET /v1/traces`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TraceList {
    pub traces: Vec<TraceListItem>,
    /// Pass as `cursor` for the next page; `null` after the last.
    pub next_cursor: Option<String>,
}

/// A trace of the list: its summary and what people recorded on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TraceListItem {
    #[serde(flatten)]
    pub summary: RunSummary,
    /// Labels, alphabetical.
    pub labels: Vec<String>,
    /// Whether someone reviewed the trace.
    pub reviewed: bool,
    /// The reward a person set in place of the grader's, if any.
    pub reward_override: Option<f64>,
}

/// Filters of `GET /v1/traces`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TraceListQuery {
    /// A run status.
    pub status: Option<String>,
    #[serde(alias = "environment")]
    pub env_name: Option<String>,
    #[serde(alias = "scenario")]
    pub scenario_name: Option<String>,
    pub model: Option<String>,
    /// A number.
    pub reward_min: Option<String>,
    /// A number.
    pub reward_max: Option<String>,
    /// RFC 3339 time, date, or unix milliseconds.
    pub from: Option<String>,
    pub to: Option<String>,
    /// With `metadata_value`: runs whose metadata has this key with this value.
    pub metadata_key: Option<String>,
    pub metadata_value: Option<String>,
    pub job_id: Option<String>,
    /// Total tokens (input + output) bounds.
    pub tokens_min: Option<String>,
    pub tokens_max: Option<String>,
    /// Duration bounds in seconds (finished runs).
    pub duration_min: Option<String>,
    pub duration_max: Option<String>,
    /// 1 to 500 (default 50).
    pub limit: Option<String>,
    /// A page's `next_cursor`.
    pub cursor: Option<String>,
    /// Comma-separated labels the trace must all have.
    pub label: Option<String>,
    /// Comma-separated labels of which the trace must have one.
    pub labels_any: Option<String>,
    /// Comma-separated labels the trace must not have.
    pub labels_none: Option<String>,
    /// A score name: the trace has such a score (within `score_min`/`score_max`, compared
    /// with the mean over reviewers).
    pub score_name: Option<String>,
    /// A number.
    pub score_min: Option<String>,
    /// A number.
    pub score_max: Option<String>,
    /// `true`: only traces someone reviewed; `false`: only the others.
    pub reviewed: Option<String>,
    /// `true`: only traces whose reward is overridden; `false`: only the others.
    pub overridden: Option<String>,
    /// Which reward `reward_min`/`reward_max` compare: `override` (default: the override
    /// where there is one) or `grader`.
    pub reward: Option<String>,
}

/// Options of `GET /v1/traces/{id}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TraceQuery {
    /// Comma-separated parts to include; without it, events are included.
    pub include: Option<String>,
    /// Only events with a `seq` above this (a page's `events_next_after`).
    pub events_after: Option<i64>,
    /// Most events to return, 1 to 10000 (default 500); a page also ends at about 8 MiB.
    pub events_limit: Option<i64>,
}

/// Options of `GET /v1/traces/{id}/events`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventStreamQuery {
    /// Start after this `seq`, for clients that cannot set `Last-Event-ID`.
    pub after: Option<i64>,
}

/// The body of `POST /v1/traces/cancel`: which runs to cancel. Every field narrows.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"status": "queued", "model": "claude-sonnet-4-5"}))]
pub struct BulkCancelRequest {
    /// `queued` or `running`; both when absent.
    pub status: Option<String>,
    pub env_name: Option<String>,
    pub scenario_name: Option<String>,
    pub model: Option<String>,
}

/// The answer of `POST /v1/traces/cancel`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BulkCancelled {
    /// Runs cancelled at once (they were queued).
    pub cancelled: Vec<String>,
    /// Runs whose workers were asked to stop (they were running).
    pub cancel_requested: Vec<String>,
}

/// The answer of `POST /v1/traces/{id}/cancel`: the run's summary, and whether its worker
/// was asked to stop and has not yet (202).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CancelledRun {
    #[serde(flatten)]
    pub run: RunSummary,
    pub cancel_requested: bool,
}

/// One attempt to deliver a run's callback.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Delivery {
    pub id: String,
    pub attempt: i64,
    /// `auto` (after the run ended) or `manual` (redelivery through the API).
    pub kind: String,
    pub url: String,
    /// The receiver's HTTP status, if it answered.
    pub status_code: Option<i64>,
    pub latency_ms: i64,
    pub error: Option<String>,
    pub delivered: bool,
    pub created_at: String,
}

/// `GET /v1/traces/{id}/deliveries`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Deliveries {
    #[schema(value_type = String)]
    pub trace_id: RunId,
    pub callback_url: Option<String>,
    pub deliveries: Vec<Delivery>,
}

/// `POST /v1/traces/{id}/deliveries`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Redelivery {
    #[schema(value_type = String)]
    pub trace_id: RunId,
    pub delivered: bool,
    pub delivery: Option<Delivery>,
}
