//! Datasets: traces selected for training, in chat and trajectory formats.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

/// The body of `POST /v1/datasets`: every given filter narrows the selection. The
/// selection is stored with the dataset as given.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "arith-good", "taskset": "arith", "reward_min": 1.0}))]
pub struct CreateDataset {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A job id: its runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// A taskset name: the runs of every job over it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taskset: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "environment"
    )]
    pub env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// RFC 3339 time, date or unix milliseconds (runs created at or after).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub from: Option<Value>,
    /// RFC 3339 time, date or unix milliseconds (runs created before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub to: Option<Value>,
    /// Explicit traces (still narrowed by the other filters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_ids: Option<Vec<String>>,
    /// The reward threshold: only runs with a reward of at least this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reward_min: Option<f64>,
    /// Only traces with at least one of these labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels_any: Option<Vec<String>>,
    /// Only traces with none of these labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels_none: Option<Vec<String>>,
    /// Only traces whose score of each name (the mean over reviewers) is at least the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score_min: Option<std::collections::BTreeMap<String, f64>>,
    /// Run status to keep (default `completed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Most traces (newest first), up to 10000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

/// `?format=` of the download.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DownloadQuery {
    /// `chat` (default) or `trajectory`.
    pub format: Option<String>,
}

/// `?limit=` of a list.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LimitQuery {
    /// 1 to 500 (default 50).
    pub limit: Option<i64>,
}

/// A dataset: its selection, statistics and (when one dataset is asked for) its traces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Dataset {
    pub id: String,
    pub name: String,
    pub created_at: String,
    /// The `POST /v1/datasets` body that selected it.
    #[schema(value_type = Object)]
    pub selection: Value,
    /// Counts, rewards and tokens of the selected traces.
    #[schema(value_type = Object)]
    pub stats: Value,
    pub trace_count: usize,
    /// Absent in lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_ids: Option<Vec<String>>,
    /// The formats `download` offers.
    pub formats: Vec<String>,
}

/// `GET /v1/datasets`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DatasetList {
    pub datasets: Vec<Dataset>,
}
