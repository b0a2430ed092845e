//! The operations of human review (score configs, a trace's scores, labels, notes and
//! reward override, review queues, share links) as the OpenAPI document describes them:
//! stand-ins like `super::paths`, kept apart so that file stays small. Statuses every
//! operation may answer are added by `super::CommonResponses`.

#![allow(dead_code)]

use rollout_api::ErrorBody;
use rollout_api::review_queues::{
    CreateQueueRequest, ItemRequest, ItemView, NextView, QueueList, QueueView, ReviewerQuery,
};
use rollout_api::reviews::{
    AuthorQuery, Deleted, HistoryList, LabelList, LabelsRequest, NoteList, NoteRequest, NoteView,
    ReviewView, RewardOverrideRequest, RewardOverrideView, ScoreConfigList, ScoreConfigRequest,
    ScoreConfigView, ScoreList, ScoreRequest, ScoreView,
};
use rollout_api::shares::{ShareLinkList, ShareLinkView, ShareRequest, SharingSetting};

// ---- score configs ----

#[utoipa::path(get, path = "/v1/score-configs", tag = "reviews",
    responses((status = 200, description = "The project's score configs", body = ScoreConfigList)))]
fn score_configs() {}

#[utoipa::path(post, path = "/v1/score-configs", tag = "reviews", request_body = ScoreConfigRequest,
    responses(
        (status = 201, description = "Defined", body = ScoreConfigView),
        (status = 403, description = "Not an admin key", body = ErrorBody),
        (status = 409, description = "A config of that name exists (change it with PUT)", body = ErrorBody),
    ))]
fn create_score_config() {}

#[utoipa::path(get, path = "/v1/score-configs/{name}", tag = "reviews",
    params(("name" = String, Path, description = "The score's name")),
    responses((status = 200, description = "The score config", body = ScoreConfigView)))]
fn score_config() {}

#[utoipa::path(put, path = "/v1/score-configs/{name}", tag = "reviews",
    params(("name" = String, Path, description = "The score's name")), request_body = ScoreConfigRequest,
    responses(
        (status = 200, description = "Replaced (scores already recorded stay as they were)", body = ScoreConfigView),
        (status = 201, description = "Defined", body = ScoreConfigView),
        (status = 403, description = "Not an admin key", body = ErrorBody),
    ))]
fn put_score_config() {}

#[utoipa::path(delete, path = "/v1/score-configs/{name}", tag = "reviews",
    params(("name" = String, Path, description = "The score's name")),
    responses(
        (status = 200, description = "Deleted; scores of that name stay", body = Deleted),
        (status = 403, description = "Not an admin key", body = ErrorBody),
    ))]
fn delete_score_config() {}

// ---- a trace's review ----

#[utoipa::path(get, path = "/v1/traces/{id}/review", tag = "reviews",
    params(("id" = String, Path, description = "The trace id")),
    responses((status = 200, description = "Scores, labels, notes, the reward override and whether it was reviewed", body = ReviewView)))]
fn review() {}

#[utoipa::path(get, path = "/v1/traces/{id}/history", tag = "reviews",
    params(("id" = String, Path, description = "The trace id")),
    responses((status = 200, description = "Every change, oldest first", body = HistoryList)))]
fn review_history() {}

#[utoipa::path(get, path = "/v1/traces/{id}/scores", tag = "reviews",
    params(("id" = String, Path, description = "The trace id")),
    responses((status = 200, description = "The trace's scores", body = ScoreList)))]
fn scores() {}

#[utoipa::path(post, path = "/v1/traces/{id}/scores", tag = "reviews",
    params(("id" = String, Path, description = "The trace id")), request_body = ScoreRequest,
    responses(
        (status = 200, description = "The author's score of that name, edited (the old value is in the history)", body = ScoreView),
        (status = 201, description = "Recorded", body = ScoreView),
    ))]
fn add_score() {}

#[utoipa::path(delete, path = "/v1/traces/{id}/scores/{score_id}", tag = "reviews",
    params(("id" = String, Path, description = "The trace id"),
        ("score_id" = String, Path, description = "The score id"), AuthorQuery),
    responses((status = 200, description = "Deleted", body = Deleted)))]
fn delete_score() {}

#[utoipa::path(get, path = "/v1/traces/{id}/labels", tag = "reviews",
    params(("id" = String, Path, description = "The trace id")),
    responses((status = 200, description = "The trace's labels", body = LabelList)))]
fn labels() {}

#[utoipa::path(post, path = "/v1/traces/{id}/labels", tag = "reviews",
    params(("id" = String, Path, description = "The trace id")), request_body = LabelsRequest,
    responses((status = 200, description = "Every label of the trace, and those this request added", body = LabelList)))]
fn add_labels() {}

#[utoipa::path(delete, path = "/v1/traces/{id}/labels/{label}", tag = "reviews",
    params(("id" = String, Path, description = "The trace id"),
        ("label" = String, Path, description = "The label"), AuthorQuery),
    responses((status = 200, description = "Removed", body = Deleted)))]
fn remove_label() {}

#[utoipa::path(get, path = "/v1/traces/{id}/notes", tag = "reviews",
    params(("id" = String, Path, description = "The trace id")),
    responses((status = 200, description = "The trace's notes", body = NoteList)))]
fn notes() {}

#[utoipa::path(post, path = "/v1/traces/{id}/notes", tag = "reviews",
    params(("id" = String, Path, description = "The trace id")), request_body = NoteRequest,
    responses((status = 201, description = "Added", body = NoteView)))]
fn add_note() {}

#[utoipa::path(patch, path = "/v1/traces/{id}/notes/{note_id}", tag = "reviews",
    params(("id" = String, Path, description = "The trace id"),
        ("note_id" = String, Path, description = "The note id")), request_body = NoteRequest,
    responses((status = 200, description = "The new text (the old one stays in the history)", body = NoteView)))]
fn edit_note() {}

#[utoipa::path(delete, path = "/v1/traces/{id}/notes/{note_id}", tag = "reviews",
    params(("id" = String, Path, description = "The trace id"),
        ("note_id" = String, Path, description = "The note id"), AuthorQuery),
    responses((status = 200, description = "Deleted", body = Deleted)))]
fn delete_note() {}

#[utoipa::path(get, path = "/v1/traces/{id}/reward-override", tag = "reviews",
    params(("id" = String, Path, description = "The trace id")),
    responses((status = 200, description = "The override and the grader's reward it replaces", body = RewardOverrideView)))]
fn reward_override() {}

#[utoipa::path(put, path = "/v1/traces/{id}/reward-override", tag = "reviews",
    params(("id" = String, Path, description = "The trace id")), request_body = RewardOverrideRequest,
    responses((status = 200, description = "Set; metrics and datasets use it from now on", body = RewardOverrideView)))]
fn put_reward_override() {}

#[utoipa::path(delete, path = "/v1/traces/{id}/reward-override", tag = "reviews",
    params(("id" = String, Path, description = "The trace id"), AuthorQuery),
    responses((status = 200, description = "Cleared: back to the grader's reward", body = Deleted)))]
fn clear_reward_override() {}

// ---- review queues ----

#[utoipa::path(get, path = "/v1/review-queues", tag = "review queues",
    responses((status = 200, description = "Queues, newest first, with progress", body = QueueList)))]
fn review_queues() {}

#[utoipa::path(post, path = "/v1/review-queues", tag = "review queues", request_body = CreateQueueRequest,
    responses(
        (status = 201, description = "The queue, its traces frozen now", body = QueueView),
        (status = 409, description = "A queue of that name exists", body = ErrorBody),
    ))]
fn create_review_queue() {}

#[utoipa::path(get, path = "/v1/review-queues/{id}", tag = "review queues",
    params(("id" = String, Path, description = "The queue id or name")),
    responses((status = 200, description = "The queue and its progress", body = QueueView)))]
fn review_queue() {}

#[utoipa::path(delete, path = "/v1/review-queues/{id}", tag = "review queues",
    params(("id" = String, Path, description = "The queue id or name")),
    responses((status = 200, description = "Deleted; what reviewers recorded stays", body = Deleted)))]
fn delete_review_queue() {}

#[utoipa::path(get, path = "/v1/review-queues/{id}/next", tag = "review queues",
    params(("id" = String, Path, description = "The queue id or name"), ReviewerQuery),
    responses((status = 200, description = "The trace the reviewer holds, else the next one nobody holds (`trace_id` null when none is left)", body = NextView)))]
fn next_in_queue() {}

#[utoipa::path(post, path = "/v1/review-queues/{id}/complete", tag = "review queues",
    params(("id" = String, Path, description = "The queue id or name")), request_body = ItemRequest,
    responses(
        (status = 200, description = "Done", body = ItemView),
        (status = 409, description = "Done already, or another reviewer holds it", body = ErrorBody),
    ))]
fn complete_in_queue() {}

#[utoipa::path(post, path = "/v1/review-queues/{id}/release", tag = "review queues",
    params(("id" = String, Path, description = "The queue id or name")), request_body = ItemRequest,
    responses(
        (status = 200, description = "Given back", body = ItemView),
        (status = 409, description = "The reviewer does not hold it", body = ErrorBody),
    ))]
fn release_in_queue() {}

// ---- share links ----

#[utoipa::path(post, path = "/v1/traces/{id}/share", tag = "sharing",
    params(("id" = String, Path, description = "The trace id")), request_body = ShareRequest,
    responses(
        (status = 201, description = "The link, with its URL and token shown only here", body = ShareLinkView),
        (status = 403, description = "The project turned sharing off", body = ErrorBody),
    ))]
fn share() {}

#[utoipa::path(get, path = "/v1/traces/{id}/shares", tag = "sharing",
    params(("id" = String, Path, description = "The trace id")),
    responses((status = 200, description = "The trace's links, without their tokens", body = ShareLinkList)))]
fn shares() {}

#[utoipa::path(delete, path = "/v1/traces/{id}/shares/{share_id}", tag = "sharing",
    params(("id" = String, Path, description = "The trace id"),
        ("share_id" = String, Path, description = "The link id")),
    responses((status = 200, description = "Revoked: the link stops working at once", body = Deleted)))]
fn revoke_share() {}

#[utoipa::path(get, path = "/v1/projects/{id}/sharing", tag = "sharing",
    params(("id" = String, Path, description = "The caller's project id")),
    responses((status = 200, description = "Whether the project's traces may be shared", body = SharingSetting)))]
fn sharing() {}

#[utoipa::path(put, path = "/v1/projects/{id}/sharing", tag = "sharing",
    params(("id" = String, Path, description = "The caller's project id")), request_body = SharingSetting,
    responses(
        (status = 200, description = "The setting now", body = SharingSetting),
        (status = 403, description = "Not an admin key", body = ErrorBody),
    ))]
fn put_sharing() {}
