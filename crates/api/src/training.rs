//! Training jobs: a checkpoint made from a dataset.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// The body of `POST /v1/training`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"dataset": "DATASET_ID", "base_model": "claude-sonnet-4-5", "backend": "fewshot", "name": "arith-fewshot", "params": {"k": 3}}))]
pub struct CreateTraining {
    /// A dataset id.
    pub dataset: String,
    pub base_model: String,
    /// `fewshot` (default) or a configured backend.
    #[serde(default = "fewshot")]
    pub backend: String,
    /// The checkpoint's model name.
    pub name: String,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub params: Map<String, Value>,
}

fn fewshot() -> String {
    "fewshot".into()
}

/// A training job; `log` only when one job is asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TrainingJob {
    pub id: String,
    /// The checkpoint's model name.
    pub name: String,
    /// The dataset id.
    pub dataset: String,
    pub base_model: String,
    pub backend: String,
    #[schema(value_type = Object)]
    pub params: Value,
    /// `queued`, `running`, `succeeded`, `failed` or `cancelled`.
    pub status: String,
    pub error: Option<String>,
    /// The model name to run, once it succeeded.
    pub checkpoint: Option<String>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
}

/// `GET /v1/training`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TrainingList {
    pub training_jobs: Vec<TrainingJob>,
}
