//! Review queues: `/v1/review-queues`. A queue is a named list of the project's traces,
//! chosen by ids or by the filters of `GET /v1/traces` and frozen when it is made.
//! Reviewers call `GET .../next` for a trace, held for them for the queue's lease (two
//! reviewers never hold the same trace), record scores, labels and notes on it, then
//! `POST .../complete`; `POST .../release` gives a trace back unreviewed. Progress is done
//! of total, per queue and per reviewer. A queue of another project is 404.

use super::reviews::{check_name, done, named_reviewer};
use super::traces::ListQuery;
use crate::auth::Caller;
use crate::error::{ApiError, problem};
use crate::json::{ApiJson, ApiQuery};
use crate::state::AppState;
use crate::views::review_queues as views;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use rollout_api::review_queues::{
    CreateQueueRequest, ItemRequest, ItemView, NextView, QueueList, QueueView, ReviewerQuery,
};
use rollout_api::reviews::Deleted;
use rollout_domain::time::rfc3339_from_ms;
use rollout_store::{CompleteOutcome, NewReviewQueue, ReviewQueueRecord, TraceQuery};
use serde_json::{Map, Value, json};

/// Most traces in one queue.
const MAX_QUEUE_TRACES: usize = 5000;
/// A trace's hold, by default.
const DEFAULT_LEASE_SECONDS: i64 = 900;
/// The bounds of a queue's lease.
const LEASE_SECONDS: std::ops::RangeInclusive<i64> = 10..=86_400;
/// The keys of `filter`: the filters of `GET /v1/traces`.
const FILTER_KEYS: [&str; 26] = [
    "status",
    "env_name",
    "environment",
    "scenario_name",
    "scenario",
    "model",
    "reward_min",
    "reward_max",
    "from",
    "to",
    "metadata_key",
    "metadata_value",
    "job_id",
    "tokens_min",
    "tokens_max",
    "duration_min",
    "duration_max",
    "label",
    "labels_any",
    "labels_none",
    "score_name",
    "score_min",
    "score_max",
    "reviewed",
    "overridden",
    "reward",
];

/// The routes of this module (behind the API key).
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/review-queues", get(list).post(create))
        .route("/v1/review-queues/{id}", get(get_one).delete(delete))
        .route("/v1/review-queues/{id}/next", get(next))
        .route("/v1/review-queues/{id}/complete", post(complete))
        .route("/v1/review-queues/{id}/release", post(release))
}

/// The project's queue (by id or name), or 404.
pub(crate) async fn queue_of(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<ReviewQueueRecord, ApiError> {
    state
        .store
        .get_review_queue(&caller.project_id, id)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(
                "review_queue_not_found",
                format!("review queue '{id}' not found"),
            )
        })
}

async fn view(state: &AppState, queue: &ReviewQueueRecord) -> Result<QueueView, ApiError> {
    let progress = state.store.review_queue_progress(&queue.id).await?;
    Ok(views::queue(queue, &progress))
}

/// The filter of a queue as the trace list's query (values given as JSON strings, numbers
/// or booleans), or the problems with it.
fn filter_query(filter: &Map<String, Value>, problems: &mut Vec<Value>) -> Option<TraceQuery> {
    let mut strings = Map::new();
    for (key, value) in filter {
        if !FILTER_KEYS.contains(&key.as_str()) {
            problems.push(problem(
                &format!("filter.{key}"),
                format!(
                    "unknown filter '{key}'; the filters are those of GET /v1/traces: {}",
                    FILTER_KEYS.join(", ")
                ),
            ));
            continue;
        }
        let text = match value {
            Value::String(text) => text.clone(),
            Value::Number(_) | Value::Bool(_) => value.to_string(),
            Value::Array(items) => items
                .iter()
                .map(|item| {
                    item.as_str()
                        .map_or_else(|| item.to_string(), str::to_string)
                })
                .collect::<Vec<_>>()
                .join(","),
            Value::Null | Value::Object(_) => {
                problems.push(problem(
                    &format!("filter.{key}"),
                    "a filter is a string, a number, a boolean or a list of strings",
                ));
                continue;
            }
        };
        strings.insert(key.clone(), Value::String(text));
    }
    let query: ListQuery = match serde_json::from_value(Value::Object(strings)) {
        Ok(query) => query,
        Err(error) => {
            problems.push(problem("filter", error.to_string()));
            return None;
        }
    };
    match super::traces::to_query(&query) {
        Ok(query) => Some(query),
        Err(error) => {
            let listed = error.details["errors"].as_array().cloned();
            problems.extend(listed.unwrap_or_default().into_iter().map(|mut p| {
                if let Some(field) = p["field"].as_str() {
                    p["field"] = json!(format!("filter.{field}"));
                }
                p
            }));
            None
        }
    }
}

/// The traces of the selection, in queue order (given order for ids, newest first for a
/// filter).
async fn select(
    state: &AppState,
    caller: &Caller,
    request: &CreateQueueRequest,
    problems: &mut Vec<Value>,
) -> Result<Vec<String>, ApiError> {
    let limit = request.limit.unwrap_or(MAX_QUEUE_TRACES);
    if !(1..=MAX_QUEUE_TRACES).contains(&limit) {
        problems.push(problem(
            "limit",
            format!("limit must be between 1 and {MAX_QUEUE_TRACES}, got {limit}"),
        ));
    }
    match (&request.trace_ids, &request.filter) {
        (Some(_), Some(_)) | (None, None) => {
            problems.push(problem("trace_ids", "give either trace_ids or filter"));
            Ok(Vec::new())
        }
        (Some(ids), None) => {
            if ids.is_empty() || ids.len() > MAX_QUEUE_TRACES {
                problems.push(problem(
                    "trace_ids",
                    format!("give 1 to {MAX_QUEUE_TRACES} trace ids"),
                ));
                return Ok(Vec::new());
            }
            let mut unique: Vec<String> = Vec::with_capacity(ids.len());
            for id in ids {
                if !unique.contains(id) {
                    unique.push(id.clone());
                }
            }
            let mut found = std::collections::HashSet::new();
            for chunk in unique.chunks(500) {
                let query = TraceQuery {
                    ids: chunk.to_vec(),
                    limit: 500,
                    ..TraceQuery::default()
                };
                for run in state.store.search_runs(&caller.project_id, &query).await? {
                    found.insert(run.id.to_string());
                }
            }
            for (index, id) in unique.iter().enumerate() {
                if !found.contains(id) {
                    problems.push(problem(
                        &format!("trace_ids[{index}]"),
                        format!("trace '{id}' not found"),
                    ));
                }
            }
            Ok(unique)
        }
        (None, Some(filter)) => {
            let Some(mut query) = filter_query(filter, problems) else {
                return Ok(Vec::new());
            };
            let mut ids = Vec::new();
            query.limit = 500;
            loop {
                let page = state.store.search_runs(&caller.project_id, &query).await?;
                let full = page.len() == 500;
                query.before = page.last().map(|run| run.id.to_string());
                ids.extend(page.into_iter().map(|run| run.id.to_string()));
                if !full || ids.len() >= limit {
                    break;
                }
            }
            ids.truncate(limit);
            if ids.is_empty() {
                problems.push(problem("filter", "no trace matches the filter"));
            }
            Ok(ids)
        }
    }
}

/// `POST /v1/review-queues`: 201 with the queue; 409 when the name is taken.
async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(request): ApiJson<CreateQueueRequest>,
) -> Result<(StatusCode, Json<QueueView>), ApiError> {
    let mut problems = Vec::new();
    check_name("name", &request.name, &mut problems);
    let lease_seconds = request.lease_seconds.unwrap_or(DEFAULT_LEASE_SECONDS);
    if !LEASE_SECONDS.contains(&lease_seconds) {
        problems.push(problem(
            "lease_seconds",
            format!(
                "lease_seconds must be between {} and {}, got {lease_seconds}",
                LEASE_SECONDS.start(),
                LEASE_SECONDS.end()
            ),
        ));
    }
    let creator = named_reviewer(&caller, "author", request.author.as_deref(), &mut problems);
    let ids = select(&state, &caller, &request, &mut problems).await?;
    done(problems)?;
    let selection = match (&request.trace_ids, &request.filter) {
        (Some(ids), _) => json!({ "trace_ids": ids }),
        (None, filter) => json!({ "filter": filter, "limit": request.limit }),
    };
    let queue = NewReviewQueue {
        name: request.name.clone(),
        description: request.description.clone(),
        selection,
        lease_seconds,
        created_by: creator.author,
    };
    let Some(queue) = state
        .store
        .create_review_queue(&caller.project_id, &queue, &ids)
        .await?
    else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "review_queue_exists",
            format!("a review queue named '{}' exists", request.name),
        ));
    };
    Ok((StatusCode::CREATED, Json(view(&state, &queue).await?)))
}

/// `GET /v1/review-queues`: newest first, with progress.
async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<QueueList>, ApiError> {
    let mut review_queues = Vec::new();
    for queue in state.store.list_review_queues(&caller.project_id).await? {
        review_queues.push(view(&state, &queue).await?);
    }
    Ok(Json(QueueList { review_queues }))
}

/// `GET /v1/review-queues/{id}` (id or name).
async fn get_one(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<QueueView>, ApiError> {
    let queue = queue_of(&state, &caller, &id).await?;
    Ok(Json(view(&state, &queue).await?))
}

/// `DELETE /v1/review-queues/{id}`: the queue goes; what reviewers recorded stays.
async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Deleted>, ApiError> {
    let queue = queue_of(&state, &caller, &id).await?;
    let deleted = state
        .store
        .delete_review_queue(&caller.project_id, &queue.id)
        .await?;
    Ok(Json(Deleted { deleted }))
}

/// `GET /v1/review-queues/{id}/next?reviewer=`: the trace the reviewer holds (its hold
/// renewed), else the first one nobody holds, held for the queue's lease; `trace_id` is
/// `null` when none is left to hand out.
async fn next(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<ReviewerQuery>,
) -> Result<Json<NextView>, ApiError> {
    let queue = queue_of(&state, &caller, &id).await?;
    let mut problems = Vec::new();
    let reviewer = named_reviewer(
        &caller,
        "reviewer",
        query.reviewer.as_deref(),
        &mut problems,
    );
    done(problems)?;
    let item = state
        .store
        .next_review_item(
            &queue.id,
            &reviewer.author,
            queue.lease_seconds.saturating_mul(1000),
        )
        .await?;
    let progress = state.store.review_queue_progress(&queue.id).await?;
    Ok(Json(NextView {
        queue_id: queue.id.clone(),
        reviewer: reviewer.author,
        trace_url: item.as_ref().map(|item| state.trace_url(&item.run_id)),
        trace_id: item.as_ref().map(|item| item.run_id.clone()),
        position: item.as_ref().map(|item| item.position),
        lease_expires_at: item.map(|item| rfc3339_from_ms(item.lease_expires_at_ms)),
        progress: views::progress(&progress),
    }))
}

/// `POST /v1/review-queues/{id}/complete`: the reviewer reviewed the trace. 409 when it is
/// done already or another reviewer holds it; 404 when it is not in the queue.
pub(crate) async fn complete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<ItemRequest>,
) -> Result<Json<ItemView>, ApiError> {
    let queue = queue_of(&state, &caller, &id).await?;
    let mut problems = Vec::new();
    let reviewer = named_reviewer(
        &caller,
        "reviewer",
        request.reviewer.as_deref(),
        &mut problems,
    );
    done(problems)?;
    let outcome = state
        .store
        .complete_review_item(&caller.project_id, &queue.id, &request.trace_id, &reviewer)
        .await?;
    match outcome {
        CompleteOutcome::Completed => {}
        CompleteOutcome::NotInQueue => return Err(not_in_queue(&request.trace_id, &queue)),
        CompleteOutcome::AlreadyCompleted { by } => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "already_completed",
                format!("trace '{}' was reviewed already, by {by}", request.trace_id),
            ));
        }
        CompleteOutcome::HeldByOther { reviewer } => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "held_by_another_reviewer",
                format!(
                    "trace '{}' is being reviewed by {reviewer}",
                    request.trace_id
                ),
            ));
        }
    }
    let progress = state.store.review_queue_progress(&queue.id).await?;
    Ok(Json(ItemView {
        queue_id: queue.id,
        trace_id: request.trace_id,
        reviewer: reviewer.author,
        progress: views::progress(&progress),
    }))
}

fn not_in_queue(trace_id: &str, queue: &ReviewQueueRecord) -> ApiError {
    ApiError::not_found(
        "trace_not_in_queue",
        format!("trace '{trace_id}' is not in review queue '{}'", queue.name),
    )
}

/// `POST /v1/review-queues/{id}/release`: gives a held trace back (skip it). 409 when the
/// reviewer does not hold it.
async fn release(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<ItemRequest>,
) -> Result<Json<ItemView>, ApiError> {
    let queue = queue_of(&state, &caller, &id).await?;
    let mut problems = Vec::new();
    let reviewer = named_reviewer(
        &caller,
        "reviewer",
        request.reviewer.as_deref(),
        &mut problems,
    );
    done(problems)?;
    if !state
        .store
        .release_review_item(&queue.id, &request.trace_id, &reviewer.author)
        .await?
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_held",
            format!(
                "{} does not hold trace '{}' in this queue",
                reviewer.author, request.trace_id
            ),
        ));
    }
    let progress = state.store.review_queue_progress(&queue.id).await?;
    Ok(Json(ItemView {
        queue_id: queue.id,
        trace_id: request.trace_id,
        reviewer: reviewer.author,
        progress: views::progress(&progress),
    }))
}

#[cfg(test)]
mod tests {
    use super::FILTER_KEYS;
    use std::collections::BTreeSet;
    use utoipa::IntoParams;

    /// `FILTER_KEYS` copies the filters of `GET /v1/traces`: a filter added there and not
    /// here would be refused in a queue's `filter`.
    #[test]
    fn queue_filters_are_the_trace_lists_filters() {
        let list: BTreeSet<String> = rollout_api::runs::TraceListQuery::into_params(|| None)
            .into_iter()
            .map(|parameter| parameter.name)
            .filter(|name| name != "limit" && name != "cursor")
            // serde aliases, which the document does not list.
            .chain(["environment".to_string(), "scenario".to_string()])
            .collect();
        let queue: BTreeSet<String> = FILTER_KEYS.iter().map(|key| key.to_string()).collect();
        assert_eq!(queue, list);
    }
}
