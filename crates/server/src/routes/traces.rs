//! Traces: one run with its events, and the list of runs.

use crate::auth::Caller;
use crate::error::{ApiError, problem};
use crate::state::AppState;
use crate::views;
use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use rollout_domain::RunStatus;
use rollout_store::RunFilter;
use serde::Deserialize;
use serde_json::{Value, json};

/// Most events returned with one trace (the rest are paged by later API versions).
const MAX_EVENTS: i64 = 10_000;

/// `GET /v1/traces/{id}`: the whole trace.
pub(crate) async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let run = state
        .store
        .get_run(&caller.project_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("trace_not_found", format!("trace '{id}' not found")))?;
    let events = state
        .store
        .list_events(run.id.as_str(), 0, MAX_EVENTS)
        .await?;
    let position = if run.status == RunStatus::Queued {
        state.store.queue_position(run.id.as_str()).await?
    } else {
        None
    };
    Ok(Json(views::trace(&state, &run, &events, position)))
}

/// Filters of `GET /v1/traces`.
#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    status: Option<String>,
    env_name: Option<String>,
    scenario_name: Option<String>,
    model: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

/// `GET /v1/traces`: newest first, with a cursor for the next page.
pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let status = match &query.status {
        Some(status) => Some(
            status
                .parse::<RunStatus>()
                .map_err(|e| ApiError::invalid(vec![problem("status", e)]))?,
        ),
        None => None,
    };
    if let Some(limit) = query.limit
        && !(1..=500).contains(&limit)
    {
        return Err(ApiError::invalid(vec![problem(
            "limit",
            format!("limit must be between 1 and 500, got {limit}"),
        )]));
    }
    let limit = query.limit.unwrap_or(50);
    let filter = RunFilter {
        status,
        env_name: query.env_name,
        scenario: query.scenario_name,
        model: query.model,
        limit: Some(limit),
        before: query.cursor,
    };
    let runs = state.store.list_runs(&caller.project_id, &filter).await?;
    let next_cursor = if runs.len() as i64 == limit {
        runs.last().map(|r| r.id.to_string())
    } else {
        None
    };
    let traces: Vec<Value> = runs
        .iter()
        .map(|run| views::run_summary(&state, run))
        .collect();
    Ok(Json(
        json!({ "traces": traces, "next_cursor": next_cursor }),
    ))
}
