//! The JSON contract of review queues, as typed requests and responses.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

/// The body of `POST /v1/review-queues`: the traces are `trace_ids`, or those `filter`
/// selects (the filters of `GET /v1/traces`, newest first, at most `limit`), frozen now.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateQueueRequest {
    pub name: String,
    pub description: Option<String>,
    pub trace_ids: Option<Vec<String>>,
    #[schema(value_type = Option<Object>)]
    pub filter: Option<Map<String, Value>>,
    /// Most traces a filter puts in the queue (default and maximum 5000).
    pub limit: Option<usize>,
    /// How long `next` holds a trace for its reviewer (default 900, 10 to 86400).
    pub lease_seconds: Option<i64>,
    /// Who made it; default: the API key's name.
    pub author: Option<String>,
}

/// `?reviewer=` of `next`: default the API key's name. Reviewers sharing a key must name
/// themselves, or they are one reviewer.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReviewerQuery {
    pub reviewer: Option<String>,
}

/// The body of `POST /v1/review-queues/{id}/complete` and `.../release`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemRequest {
    pub trace_id: String,
    pub reviewer: Option<String>,
}

/// One reviewer's part of a queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReviewerProgressView {
    pub reviewer: String,
    pub done: i64,
    pub in_review: i64,
}

/// Done of total, held now, and per reviewer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ProgressView {
    pub total: i64,
    pub done: i64,
    pub in_review: i64,
    pub remaining: i64,
    pub reviewers: Vec<ReviewerProgressView>,
}

/// A review queue with its progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct QueueView {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    /// The `trace_ids` or the `filter` the queue was made from.
    #[schema(value_type = Object)]
    pub selection: Value,
    pub lease_seconds: i64,
    pub created_by: String,
    pub created_at: String,
    pub progress: ProgressView,
}

/// `GET /v1/review-queues`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct QueueList {
    pub review_queues: Vec<QueueView>,
}

/// `GET /v1/review-queues/{id}/next`: the trace to review (`null` when none is left to
/// hand out) and until when it is the reviewer's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NextView {
    pub queue_id: String,
    pub reviewer: String,
    pub trace_id: Option<String>,
    pub trace_url: Option<String>,
    pub position: Option<i64>,
    pub lease_expires_at: Option<String>,
    pub progress: ProgressView,
}

/// The answer of `complete` and `release`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ItemView {
    pub queue_id: String,
    pub trace_id: String,
    pub reviewer: String,
    pub progress: ProgressView,
}
