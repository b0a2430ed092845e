//! Review queues' views (`rollout_api::review_queues`) built from the store's records.

use rollout_api::review_queues::{ProgressView, QueueView, ReviewerProgressView};
use rollout_domain::time::rfc3339_from_ms;
use rollout_store::{QueueProgress, ReviewQueueRecord};

pub(crate) fn progress(progress: &QueueProgress) -> ProgressView {
    ProgressView {
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

pub(crate) fn queue(queue: &ReviewQueueRecord, queue_progress: &QueueProgress) -> QueueView {
    QueueView {
        id: queue.id.clone(),
        name: queue.name.clone(),
        description: queue.description.clone(),
        selection: queue.selection.clone(),
        lease_seconds: queue.lease_seconds,
        created_by: queue.created_by.clone(),
        created_at: rfc3339_from_ms(queue.created_at_ms),
        progress: progress(queue_progress),
    }
}
