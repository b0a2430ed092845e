//! Cancellation: `POST /v1/traces/{id}/cancel` and the bulk `POST /v1/traces/cancel`.
//!
//! A queued run leaves the queue at once. A running run is flagged in the store (workers of
//! every process poll it) and its worker in this process is notified at once; the worker
//! drops the run (the model call in flight, the environment's process group) and only then
//! writes `cancelled`. The single-run endpoint waits up to [`CANCEL_WAIT`] for that.

use crate::auth::Caller;
use crate::error::{ApiError, problem};
use crate::json::ApiJson;
use crate::state::AppState;
use crate::views;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use rollout_api::runs::{BulkCancelled, CancelledRun};
use rollout_domain::{RunId, RunStatus};
use rollout_store::{CancelOutcome, RunFilter, RunRecord};
use serde_json::json;
use std::time::Duration;

/// How long the single-run endpoint waits for a running run to reach `cancelled`.
const CANCEL_WAIT: Duration = Duration::from_secs(5);

/// `POST /v1/traces/{id}/cancel`: 200 with the run once cancelled; 202 with
/// `cancel_requested: true` while its worker is still stopping it; 409 if it already ended.
pub(crate) async fn cancel_one(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::not_found("trace_not_found", format!("trace '{id}' not found"));
    let before = state
        .store
        .get_run(&caller.project_id, &id)
        .await?
        .ok_or_else(not_found)?;
    if before.status.is_terminal() {
        if before.status == RunStatus::Cancelled {
            return Ok(reply(&state, &before, StatusCode::OK, false));
        }
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "run_finished",
            format!(
                "run '{id}' already ended with status '{}'; there is nothing to cancel",
                before.status
            ),
        )
        .with_details(json!({ "status": before.status })));
    }
    // Watch before asking, so that a fast worker cannot finish unseen.
    let run_id = RunId(id.clone());
    let mut finished = state.notifier.watch_finished(&run_id);
    let outcome = state
        .store
        .cancel_run(&caller.project_id, &id)
        .await?
        .ok_or_else(not_found)?;
    announce(&state, &caller, &run_id, outcome).await?;
    let deadline = tokio::time::Instant::now() + CANCEL_WAIT;
    loop {
        let current = state
            .store
            .get_run(&caller.project_id, &id)
            .await?
            .ok_or_else(not_found)?;
        if current.status.is_terminal() {
            return Ok(reply(&state, &current, StatusCode::OK, false));
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(reply(&state, &current, StatusCode::ACCEPTED, true));
        }
        // Wake on this process's notification, or poll: another process may run it.
        tokio::select! {
            _ = finished.finished() => {}
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}

/// Tells this process what a cancel did: the worker of a running run, waiters of a run
/// cancelled in the queue, and (only for the request that cancelled it, so that concurrent
/// cancels deliver it once) the run's callback.
pub(crate) async fn announce(
    state: &AppState,
    caller: &Caller,
    run_id: &RunId,
    outcome: CancelOutcome,
) -> Result<(), ApiError> {
    match outcome {
        CancelOutcome::Requested => {
            tracing::info!(run = %run_id, key = %caller.key_id, "cancellation requested");
            state.notifier.cancel_requested(run_id.clone());
        }
        CancelOutcome::Cancelled => {
            tracing::info!(run = %run_id, key = %caller.key_id, "queued run cancelled");
            state
                .notifier
                .run_finished(run_id.clone(), RunStatus::Cancelled);
            if let Some(run) = state
                .store
                .get_run(&caller.project_id, run_id.as_str())
                .await?
            {
                super::run_api::spawn_callback(state, run);
            }
        }
        CancelOutcome::Ended(_) => {}
    }
    Ok(())
}

fn reply(state: &AppState, run: &RunRecord, status: StatusCode, requested: bool) -> Response {
    let body = CancelledRun {
        run: views::run_summary(state, run),
        cancel_requested: requested,
    };
    (status, Json(body)).into_response()
}

/// The body of `POST /v1/traces/cancel`: which runs to cancel. Every field narrows.
pub(crate) use rollout_api::runs::BulkCancelRequest;

/// `POST /v1/traces/cancel`: cancels every queued and running run of the project that
/// matches the filters. Answers at once with the ids of the runs cancelled (they were
/// queued) and of those whose workers were asked to stop (they were running).
pub(crate) async fn cancel_many(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(request): ApiJson<BulkCancelRequest>,
) -> Result<Json<BulkCancelled>, ApiError> {
    let statuses = match request.status.as_deref() {
        None => vec![RunStatus::Queued, RunStatus::Running],
        Some("queued") => vec![RunStatus::Queued],
        Some("running") => vec![RunStatus::Running],
        Some(other) => {
            return Err(ApiError::invalid(vec![problem(
                "status",
                format!(
                    "status must be 'queued' or 'running' (runs that can be cancelled), got '{other}'"
                ),
            )]));
        }
    };
    let mut cancelled = Vec::new();
    let mut requested = Vec::new();
    for status in statuses {
        let mut filter = RunFilter {
            status: Some(status),
            env_name: request.env_name.clone(),
            scenario: request.scenario_name.clone(),
            model: request.model.clone(),
            limit: Some(RunFilter::MAX_LIMIT),
            before: None,
        };
        loop {
            let page = state.store.list_runs(&caller.project_id, &filter).await?;
            for run in &page {
                let Some(outcome) = state
                    .store
                    .cancel_run(&caller.project_id, run.id.as_str())
                    .await?
                else {
                    continue;
                };
                announce(&state, &caller, &run.id, outcome).await?;
                match outcome {
                    CancelOutcome::Cancelled => cancelled.push(run.id.to_string()),
                    CancelOutcome::Requested => requested.push(run.id.to_string()),
                    CancelOutcome::Ended(_) => {}
                }
            }
            match page.last() {
                Some(last) if page.len() as i64 == RunFilter::MAX_LIMIT => {
                    filter.before = Some(last.id.to_string());
                }
                _ => break,
            }
        }
    }
    tracing::info!(key = %caller.key_id, cancelled = cancelled.len(), requested = requested.len(), "bulk cancel");
    Ok(Json(BulkCancelled {
        cancelled,
        cancel_requested: requested,
    }))
}
