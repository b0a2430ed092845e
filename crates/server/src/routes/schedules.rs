//! Schedules: `POST/GET /v1/schedules`, `GET/DELETE /v1/schedules/{id}`,
//! `POST /v1/schedules/{id}/pause|resume`, `GET /v1/schedules/{id}/runs`. The ticks are
//! fired by [`crate::run_scheduler`].

use super::runs;
use crate::auth::Caller;
use crate::cron::{Cron, parse_zone};
use crate::error::{ApiError, problem};
use crate::json::ApiJson;
use crate::state::AppState;
use crate::views;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use rollout_domain::time::rfc3339_from_ms;
use rollout_store::{NewSchedule, ScheduleRecord};
use serde_json::json;

/// Most runs listed by `GET /v1/schedules/{id}/runs`.
const MAX_LISTED_RUNS: i64 = 500;

use rollout_api::runs::ScheduledRun;
pub(crate) use rollout_api::schedules::CreateSchedule;
use rollout_api::schedules::{Schedule, ScheduleList, ScheduleRuns, ScheduledSpec};

/// The next tick after `after`, as unix ms.
pub(crate) fn next_tick(cron: &str, zone: &str, after_ms: i64) -> Option<i64> {
    let cron = Cron::parse(cron).ok()?;
    let zone = parse_zone(zone).ok()?;
    let after = DateTime::<Utc>::from_timestamp_millis(after_ms)?;
    cron.next_after(after, zone).map(|t| t.timestamp_millis())
}

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

fn view(schedule: &ScheduleRecord) -> Schedule {
    let spec = &schedule.spec;
    Schedule {
        id: schedule.id.clone(),
        name: schedule.name.clone(),
        cron: schedule.cron.clone(),
        timezone: schedule.timezone.clone(),
        paused: schedule.paused,
        next_run_at: schedule.next_run_at_ms.map(rfc3339_from_ms),
        last_run_at: schedule.last_run_at_ms.map(rfc3339_from_ms),
        last_skipped_at: schedule.last_skipped_at_ms.map(rfc3339_from_ms),
        last_skip_reason: schedule.last_skip_reason.clone(),
        last_error: schedule.last_error.clone(),
        created_at: rfc3339_from_ms(schedule.created_at_ms),
        // The run without its callback's secret and headers.
        run: ScheduledSpec {
            env_name: spec.env_name.clone(),
            env_version: schedule.pinned_version,
            scenario_name: spec.scenario_name.clone(),
            scenario_args: spec.scenario_args.clone(),
            model: spec.model.clone(),
            max_steps: spec.max_steps,
            metadata: spec.metadata.clone(),
            timeout_seconds: spec.agent_timeout_seconds,
            callback_url: spec.callback.as_ref().map(|c| c.url.clone()),
        },
    }
}

async fn find(state: &AppState, caller: &Caller, id: &str) -> Result<ScheduleRecord, ApiError> {
    state
        .store
        .get_schedule(&caller.project_id, id)
        .await?
        .ok_or_else(|| {
            ApiError::not_found("schedule_not_found", format!("schedule '{id}' not found"))
        })
}

/// `POST /v1/schedules`: 201 with the schedule and its first tick.
pub(crate) async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(request): ApiJson<CreateSchedule>,
) -> Result<Response, ApiError> {
    let timezone = request.timezone.clone().unwrap_or_else(|| "UTC".into());
    let mut problems = Vec::new();
    if let Err(error) = Cron::parse(&request.cron) {
        problems.push(problem("cron", format!("cron: {error}")));
    }
    if let Err(error) = parse_zone(&timezone) {
        problems.push(problem("timezone", error));
    }
    if !problems.is_empty() {
        return Err(ApiError::invalid(problems));
    }
    let (mut spec, pinned_version) = runs::spec_from_body(&state, &caller, request.run).await?;
    let id = rollout_domain::new_id();
    spec.metadata.insert("schedule_id".into(), json!(id));
    let name = request
        .name
        .filter(|name| !name.trim().is_empty())
        .unwrap_or_else(|| format!("{} {}", spec.env_name, spec.scenario_name));
    let new = NewSchedule {
        project_id: caller.project_id.clone(),
        name,
        cron: request.cron.trim().to_string(),
        next_run_at_ms: next_tick(&request.cron, &timezone, now_ms()),
        timezone,
        spec,
        pinned_version,
    };
    let schedule = state.store.insert_schedule(&id, &new).await?;
    tracing::info!(schedule = %id, key = %caller.key_id, cron = %schedule.cron, "schedule created");
    Ok((StatusCode::CREATED, Json(view(&schedule))).into_response())
}

/// `GET /v1/schedules`.
pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<ScheduleList>, ApiError> {
    let schedules = state.store.list_schedules(&caller.project_id).await?;
    Ok(Json(ScheduleList {
        schedules: schedules.iter().map(view).collect(),
    }))
}

/// `GET /v1/schedules/{id}`.
pub(crate) async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Schedule>, ApiError> {
    Ok(Json(view(&find(&state, &caller, &id).await?)))
}

/// `DELETE /v1/schedules/{id}`: 204; its runs stay.
pub(crate) async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if !state.store.delete_schedule(&caller.project_id, &id).await? {
        return Err(ApiError::not_found(
            "schedule_not_found",
            format!("schedule '{id}' not found"),
        ));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/schedules/{id}/pause`.
pub(crate) async fn pause(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Schedule>, ApiError> {
    let schedule = find(&state, &caller, &id).await?;
    state
        .store
        .set_schedule_paused(&caller.project_id, &id, true, schedule.next_run_at_ms)
        .await?;
    Ok(Json(view(&find(&state, &caller, &id).await?)))
}

/// `POST /v1/schedules/{id}/resume`: ticks missed while paused are skipped.
pub(crate) async fn resume(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Schedule>, ApiError> {
    let schedule = find(&state, &caller, &id).await?;
    let next = next_tick(&schedule.cron, &schedule.timezone, now_ms());
    state
        .store
        .set_schedule_paused(&caller.project_id, &id, false, next)
        .await?;
    Ok(Json(view(&find(&state, &caller, &id).await?)))
}

/// `GET /v1/schedules/{id}/runs`: the runs it started, newest first, with their ticks.
pub(crate) async fn runs(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<ScheduleRuns>, ApiError> {
    let schedule = find(&state, &caller, &id).await?;
    let runs = state
        .store
        .schedule_runs(&caller.project_id, &schedule.id, MAX_LISTED_RUNS)
        .await?;
    let runs = runs
        .iter()
        .map(|(tick, run)| ScheduledRun {
            run: views::run_summary(&state, run),
            tick_at: rfc3339_from_ms(*tick),
        })
        .collect();
    Ok(Json(ScheduleRuns {
        schedule_id: schedule.id,
        runs,
    }))
}
