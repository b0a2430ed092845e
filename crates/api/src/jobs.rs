//! Jobs: a taskset × models × repeats of runs, their progress and metrics.

use rollout_domain::metrics::{Comparison, JobMetrics};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

/// The body of `POST /v1/jobs`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"taskset": "arith", "models": ["replay", "claude-sonnet-4-5"], "repeats": 3, "max_concurrency": 4}))]
pub struct CreateJob {
    pub taskset: String,
    pub models: Vec<String>,
    /// Runs of each task per model, 1 to 100.
    #[serde(default = "one")]
    pub repeats: i64,
    pub max_concurrency: Option<i64>,
    pub max_steps: Option<i64>,
    pub system_prompt: Option<String>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
}

fn one() -> i64 {
    1
}

/// `?threshold=` of the metrics endpoints, and `a`, `b` of the comparison.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MetricsQuery {
    /// The reward at or above which a run counts as a success (default 1.0).
    pub threshold: Option<f64>,
    /// `override` (default): a person's reward override where there is one; `grader`: the
    /// grader's reward always.
    pub reward: Option<String>,
    /// A model of the job (comparison only).
    pub a: Option<String>,
    /// Another model of the job (comparison only).
    pub b: Option<String>,
}

/// `?limit=&cursor=` of a list.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// 1 to 500 (default 50).
    pub limit: Option<i64>,
    /// A page's `next_cursor`.
    pub cursor: Option<String>,
}

/// What a job asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobHeader {
    pub id: String,
    pub taskset: String,
    pub models: Vec<String>,
    pub repeats: i64,
    pub max_concurrency: Option<i64>,
    pub max_steps: u32,
    pub system_prompt: Option<String>,
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
    pub task_count: usize,
    pub created_at: String,
    pub cancelled_at: Option<String>,
}

/// Run counts; `done` = completed + timed out (graded runs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Counts {
    pub total: i64,
    pub queued: i64,
    pub running: i64,
    pub done: i64,
    pub failed: i64,
    pub cancelled: i64,
}

/// A line of the job list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobLine {
    #[serde(flatten)]
    pub header: JobHeader,
    /// `running`, `cancelling`, `cancelled` or `finished`.
    pub status: String,
    pub counts: Counts,
}

/// One model's progress in a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ModelProgress {
    #[serde(flatten)]
    pub counts: Counts,
    pub model: String,
    pub mean_reward: Option<f64>,
}

/// A job with its progress: counts, an ETA, and per model done/total, failures and the
/// mean reward so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Job {
    #[serde(flatten)]
    pub line: JobLine,
    /// `null` before the first run ends or once none remain.
    pub eta_seconds: Option<f64>,
    pub progress: Vec<ModelProgress>,
}

/// `GET /v1/jobs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobList {
    pub jobs: Vec<JobLine>,
    pub next_cursor: Option<String>,
}

/// `POST /v1/jobs/{id}/retry`: the job, and how many failed runs went back to the queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RetriedJob {
    #[serde(flatten)]
    pub job: Job,
    pub retried: i64,
}

/// `GET /v1/jobs/{id}/metrics`: the job and its metrics overall, per model and per task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobWithMetrics {
    #[serde(flatten)]
    pub job: Job,
    /// Which reward the metrics use: `override` or `grader`.
    pub reward: String,
    /// Runs of the job whose reward a person overrode.
    pub overridden_runs: usize,
    /// `{"threshold", "overall", "models": [{"model", "summary", "tasks"}]}`.
    #[schema(value_type = Object)]
    pub metrics: JobMetrics,
}

/// One model's summary in a comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ModelSummary {
    pub model: String,
    pub scored: usize,
    pub failed: usize,
    pub mean_reward: Option<f64>,
    pub reward_stderr: Option<f64>,
    pub success_rate: Option<f64>,
}

/// `GET /v1/jobs/{id}/compare`: two models paired by task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobComparison {
    pub job_id: String,
    pub threshold: f64,
    /// Which reward the comparison uses: `override` or `grader`.
    pub reward: String,
    pub a: Option<ModelSummary>,
    pub b: Option<ModelSummary>,
    /// `{"a", "b", "paired_tasks", "mean_a", "mean_b", "difference", "difference_stderr", "tasks"}`.
    #[schema(value_type = Object)]
    pub comparison: Comparison,
}
