//! The records of training: datasets, their records, training jobs. Plain data: the SQL
//! lives in `store/training.rs`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A stored dataset: its selection, statistics and the traces it holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetRecord {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub selection: Value,
    pub stats: Value,
    pub trace_ids: Vec<String>,
    pub created_at_ms: i64,
}

/// One record of a dataset in both formats (JSONL lines without the newline).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetLine {
    pub trace_id: String,
    pub chat: String,
    pub trajectory: String,
}

/// A training job as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingJobRecord {
    pub id: String,
    pub project_id: String,
    /// The name the checkpoint gets.
    pub name: String,
    pub dataset_id: String,
    pub base_model: String,
    pub backend: String,
    pub params: Value,
    /// `queued`, `running`, `succeeded`, `failed` or `cancelled`.
    pub status: String,
    pub error: Option<String>,
    pub log: String,
    pub created_at_ms: i64,
    pub started_at_ms: Option<i64>,
    pub finished_at_ms: Option<i64>,
}

impl TrainingJobRecord {
    /// True once the job can no longer change.
    pub fn is_finished(&self) -> bool {
        matches!(self.status.as_str(), "succeeded" | "failed" | "cancelled")
    }
}
