//! The JSON contract of review queues, as typed requests and responses.

use rollout_domain::time::rfc3339_from_ms;
use rollout_store::{QueueProgress, ReviewQueueRecord};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

/// The body of `POST /v1/review-queues`: the traces are `trace_ids`, or those `filter`
/// selects (the filters of `GET /v1/traces`, newest first, at most `limit`), frozen now.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateQueueRequest {
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    pub(crate) trace_ids: Option<Vec<String>>,
    #[schema(value_type = Option<Object>)]
    pub(crate) filter: Option<Map<String, Value>>,
    /// Most traces a filter puts in the queue (default and maximum 5000).
    pub(crate) limit: Option<usize>,
    /// How long `next` holds a trace for its reviewer (default 900, 10 to 86400).
    pub(crate) lease_seconds: Option<i64>,
    /// Who made it; default: the API key's name.
    pub(crate) author: Option<String>,
}

/// `?reviewer=` of `next`: default the API key's name. Reviewers sharing a key must name
/// themselves, or they are one reviewer.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ReviewerQuery {
    pub(crate) reviewer: Option<String>,
}

/// The body of `POST /v1/review-queues/{id}/complete` and `.../release`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ItemRequest {
    pub(crate) trace_id: String,
    pub(crate) reviewer: Option<String>,
}

/// One reviewer's part of a queue.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct ReviewerProgressView {
    pub(crate) reviewer: String,
    pub(crate) done: i64,
    pub(crate) in_review: i64,
}

/// Done of total, held now, and per reviewer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct ProgressView {
    pub(crate) total: i64,
    pub(crate) done: i64,
    pub(crate) in_review: i64,
    pub(crate) remaining: i64,
    pub(crate) reviewers: Vec<ReviewerProgressView>,
}

impl From<&QueueProgress> for ProgressView {
    fn from(progress: &QueueProgress) -> Self {
        Self {
            total: progress.total,
            done: progress.done,
            in_review: progress.in_review,
            remaining: progress.total - progress.done,
            reviewers: progress
                .reviewers
                .iter()
                .map(|r| ReviewerProgressView {
                    reviewer: r.reviewer.clone(),
                    done: r.done,
                    in_review: r.in_review,
                })
                .collect(),
        }
    }
}

/// A review queue with its progress.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct QueueView {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    /// The `trace_ids` or the `filter` the queue was made from.
    #[schema(value_type = Object)]
    pub(crate) selection: Value,
    pub(crate) lease_seconds: i64,
    pub(crate) created_by: String,
    pub(crate) created_at: String,
    pub(crate) progress: ProgressView,
}

impl QueueView {
    pub(crate) fn new(queue: &ReviewQueueRecord, progress: &QueueProgress) -> Self {
        Self {
            id: queue.id.clone(),
            name: queue.name.clone(),
            description: queue.description.clone(),
            selection: queue.selection.clone(),
            lease_seconds: queue.lease_seconds,
            created_by: queue.created_by.clone(),
            created_at: rfc3339_from_ms(queue.created_at_ms),
            progress: ProgressView::from(progress),
        }
    }
}

/// `GET /v1/review-queues`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct QueueList {
    pub(crate) review_queues: Vec<QueueView>,
}

/// `GET /v1/review-queues/{id}/next`: the trace to review (`null` when none is left to
/// hand out) and until when it is the reviewer's.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct NextView {
    pub(crate) queue_id: String,
    pub(crate) reviewer: String,
    pub(crate) trace_id: Option<String>,
    pub(crate) trace_url: Option<String>,
    pub(crate) position: Option<i64>,
    pub(crate) lease_expires_at: Option<String>,
    pub(crate) progress: ProgressView,
}

/// The answer of `complete` and `release`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct ItemView {
    pub(crate) queue_id: String,
    pub(crate) trace_id: String,
    pub(crate) reviewer: String,
    pub(crate) progress: ProgressView,
}
