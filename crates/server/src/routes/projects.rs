//! Per-project defaults, limits and quotas: `GET/PATCH /v1/projects/{id}`, and their
//! enforcement when runs are created (`POST /v1/agent/run`, `POST /v1/jobs`).
//!
//! A project may cap its runs in flight (queued + running; beyond: 429 with `Retry-After`),
//! cap the runs created and the tokens used in any 24 hours (beyond: 429 `quota_exceeded`
//! with the usage and when it falls), set the `timeout_seconds` and `max_steps` of requests
//! that omit them, and cap `timeout_seconds` (above: 422). Unset settings fall back to the
//! server's configuration or mean "no limit". The check counts in one store query before
//! the insert, so concurrent requests may overshoot a limit by their number.

use super::keys::ADMIN_PROJECT;
use crate::auth::Caller;
use crate::error::{ApiError, problem};
use crate::json::ApiJson;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use rollout_api::projects::{Project, ProjectUsage as UsageView, ServerDefaults, Settings};
use rollout_domain::run::{DEFAULT_MAX_STEPS, MAX_MAX_STEPS};
use rollout_domain::time::{now_ms, rfc3339_from_ms};
use rollout_store::{ProjectRecord, ProjectSettings, ProjectUsage};
use serde_json::{Map, Value, json};

/// The quotas' rolling window.
const WINDOW_MS: i64 = 86_400_000;
/// `Retry-After` of a refusal for runs in flight: when a run ends is unknown, so a short poll.
const IN_FLIGHT_RETRY_AFTER_SECONDS: u64 = 5;
/// The settings `PATCH` accepts.
const FIELDS: [&str; 6] = [
    "max_runs_in_flight",
    "default_timeout_seconds",
    "max_timeout_seconds",
    "default_max_steps",
    "max_runs_per_day",
    "max_tokens_per_day",
];

/// The caller's project's settings (none for a project without a row).
pub(crate) async fn settings_of(
    state: &AppState,
    project_id: &str,
) -> Result<ProjectSettings, ApiError> {
    Ok(state
        .store
        .get_project(project_id)
        .await?
        .map(|project| project.settings)
        .unwrap_or_default())
}

/// The settings of the caller's project: those read with its key, else read now.
pub(crate) async fn caller_settings(
    state: &AppState,
    caller: &Caller,
) -> Result<ProjectSettings, ApiError> {
    match caller.known_settings() {
        Some(settings) => Ok(settings.clone()),
        None => settings_of(state, &caller.project_id).await,
    }
}

/// The `max_steps` of a request: asked, else the project's default (else the server's).
pub(crate) fn max_steps(settings: &ProjectSettings, asked: Option<i64>) -> Option<i64> {
    asked.or(settings.default_max_steps)
}

/// The `timeout_seconds` of a request: asked (422 above the project's max), else the
/// project's default, else the server's default capped at the project's max.
pub(crate) fn timeout_seconds(
    state: &AppState,
    settings: &ProjectSettings,
    asked: Option<i64>,
    problems: &mut Vec<Value>,
) -> Option<i64> {
    match (asked, settings.max_timeout_seconds) {
        (Some(value), Some(max)) if value > max => {
            problems.push(problem(
                "timeout_seconds",
                format!(
                    "timeout_seconds must be at most {max} in this project (its \
                     max_timeout_seconds), got {value}"
                ),
            ));
            asked
        }
        (Some(_), _) => asked,
        (None, max) => settings.default_timeout_seconds.or_else(|| {
            let server = i64::try_from(state.config.agent_timeout_seconds).unwrap_or(i64::MAX);
            max.filter(|max| *max < server)
        }),
    }
}

/// Admits `new_runs` runs into the project, or refuses with 429: a quota used up
/// (`quota_exceeded`, with the usage and when it falls) or too many runs in flight
/// (`too_many_runs_in_flight`). One store query; none when the project sets no limit.
pub(crate) async fn admit(
    state: &AppState,
    project_id: &str,
    settings: &ProjectSettings,
    new_runs: i64,
) -> Result<(), ApiError> {
    if settings.max_runs_in_flight.is_none()
        && settings.max_runs_per_day.is_none()
        && settings.max_tokens_per_day.is_none()
    {
        return Ok(());
    }
    let now = now_ms();
    let usage = state
        .store
        .project_usage(project_id, now - WINDOW_MS)
        .await?;
    if let Some(max) = settings.max_runs_per_day
        && usage.runs + new_runs > max
    {
        return Err(quota_exceeded(
            project_id,
            "max_runs_per_day",
            max,
            usage.runs,
            "runs",
            &usage,
            now,
            new_runs,
        ));
    }
    if let Some(max) = settings.max_tokens_per_day
        && usage.tokens >= max
    {
        return Err(quota_exceeded(
            project_id,
            "max_tokens_per_day",
            max,
            usage.tokens,
            "tokens",
            &usage,
            now,
            new_runs,
        ));
    }
    if let Some(max) = settings.max_runs_in_flight
        && usage.in_flight + new_runs > max
    {
        let mut message = format!(
            "project '{project_id}' has {} run(s) in flight (queued or running) and its \
             limit max_runs_in_flight is {max}; retry when runs end",
            usage.in_flight
        );
        if new_runs > 1 {
            message.push_str(&format!(" (this request would add {new_runs} runs)"));
        }
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_runs_in_flight",
            message,
        )
        .with_details(json!({
            "limit": "max_runs_in_flight",
            "max": max,
            "in_flight": usage.in_flight,
            "requested": new_runs,
        }))
        .with_retry_after(IN_FLIGHT_RETRY_AFTER_SECONDS));
    }
    Ok(())
}

/// 429 `quota_exceeded`: the quota, the period's usage and when it starts to fall (the
/// oldest counted run leaves the window), also as `Retry-After`.
#[allow(clippy::too_many_arguments)]
fn quota_exceeded(
    project_id: &str,
    quota: &str,
    max: i64,
    used: i64,
    unit: &str,
    usage: &ProjectUsage,
    now: i64,
    new_runs: i64,
) -> ApiError {
    let resets_at = usage.oldest_run_at_ms.map(|oldest| oldest + WINDOW_MS);
    let when = resets_at.map_or_else(
        || "raise the quota to run more".to_string(),
        |at| format!("usage starts to fall at {}", rfc3339_from_ms(at)),
    );
    let error = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "quota_exceeded",
        format!(
            "project '{project_id}' used its quota {quota}: {used} {unit} in the last 24 hours \
             (limit {max}); {when}"
        ),
    )
    .with_details(json!({
        "quota": quota,
        "limit": max,
        "used": used,
        "requested_runs": new_runs,
        "period": "24h",
        "period_start": rfc3339_from_ms(now - WINDOW_MS),
        "resets_at": resets_at.map(rfc3339_from_ms),
    }));
    match resets_at {
        Some(at) => {
            let seconds = u64::try_from(at - now).unwrap_or(0).div_ceil(1000).max(1);
            error.with_retry_after(seconds)
        }
        None => error,
    }
}

/// The project the caller may see: its own, or any for the admin project's admins. Another
/// project answers 404, as if it did not exist.
async fn visible_project(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<ProjectRecord, ApiError> {
    let not_found =
        || ApiError::not_found("project_not_found", format!("project '{id}' not found"));
    if caller.project_id != id && caller.project_id != ADMIN_PROJECT {
        return Err(not_found());
    }
    state.store.get_project(id).await?.ok_or_else(not_found)
}

fn project_view(state: &AppState, project: &ProjectRecord, usage: &ProjectUsage) -> Project {
    let s = &project.settings;
    Project {
        id: project.id.clone(),
        name: project.name.clone(),
        created_at: rfc3339_from_ms(project.created_at_ms),
        settings: Settings {
            max_runs_in_flight: s.max_runs_in_flight,
            default_timeout_seconds: s.default_timeout_seconds,
            max_timeout_seconds: s.max_timeout_seconds,
            default_max_steps: s.default_max_steps,
            max_runs_per_day: s.max_runs_per_day,
            max_tokens_per_day: s.max_tokens_per_day,
        },
        server_defaults: ServerDefaults {
            timeout_seconds: state.config.agent_timeout_seconds,
            max_timeout_seconds: state.config.max_timeout_seconds,
            max_steps: DEFAULT_MAX_STEPS,
        },
        usage: UsageView {
            runs_in_flight: usage.in_flight,
            runs_last_24h: usage.runs,
            tokens_last_24h: usage.tokens,
        },
    }
}

/// `GET /v1/projects/{id}`: settings and current usage (admin keys of the project, or of
/// the admin project).
pub(crate) async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Project>, ApiError> {
    caller.require_admin("reading a project's settings")?;
    let project = visible_project(&state, &caller, &id).await?;
    let usage = state
        .store
        .project_usage(&project.id, now_ms() - WINDOW_MS)
        .await?;
    Ok(Json(project_view(&state, &project, &usage)))
}

/// `PATCH /v1/projects/{id}`: changes the settings named in the body (`null` unsets one);
/// admin keys of the admin project only. 422 lists every problem; nothing is changed then.
pub(crate) async fn update(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> Result<Json<Project>, ApiError> {
    caller.require_admin("changing a project's settings")?;
    if caller.project_id != ADMIN_PROJECT {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "changing a project's settings needs an admin key of the '{ADMIN_PROJECT}' project"
            ),
        ));
    }
    let project = visible_project(&state, &caller, &id).await?;
    let mut settings = project.settings.clone();
    let mut problems = Vec::new();
    for (field, value) in &body {
        let slot = match field.as_str() {
            "max_runs_in_flight" => &mut settings.max_runs_in_flight,
            "default_timeout_seconds" => &mut settings.default_timeout_seconds,
            "max_timeout_seconds" => &mut settings.max_timeout_seconds,
            "default_max_steps" => &mut settings.default_max_steps,
            "max_runs_per_day" => &mut settings.max_runs_per_day,
            "max_tokens_per_day" => &mut settings.max_tokens_per_day,
            _ => {
                problems.push(problem(
                    field,
                    format!(
                        "unknown setting '{field}'; expected one of {}",
                        FIELDS.join(", ")
                    ),
                ));
                continue;
            }
        };
        match value {
            Value::Null => *slot = None,
            value => match value.as_i64() {
                Some(number) => *slot = Some(number),
                None => problems.push(problem(
                    field,
                    format!("{field} must be an integer or null, got {value}"),
                )),
            },
        }
    }
    problems.extend(settings_problems(&state, &settings));
    if !problems.is_empty() {
        return Err(ApiError::invalid(problems));
    }
    if !state.store.set_project_settings(&id, &settings).await? {
        return Err(ApiError::not_found(
            "project_not_found",
            format!("project '{id}' not found"),
        ));
    }
    tracing::info!(project = %id, by = %caller.key_id, ?settings, "project settings changed");
    let project = ProjectRecord {
        settings,
        ..project
    };
    let usage = state
        .store
        .project_usage(&project.id, now_ms() - WINDOW_MS)
        .await?;
    Ok(Json(project_view(&state, &project, &usage)))
}

/// Every problem with a whole set of settings.
fn settings_problems(state: &AppState, settings: &ProjectSettings) -> Vec<Value> {
    let mut problems = Vec::new();
    let mut at_least = |field: &str, value: Option<i64>, min: i64, max: i64| {
        if let Some(value) = value
            && !(min..=max).contains(&value)
        {
            problems.push(problem(
                field,
                format!("{field} must be between {min} and {max}, got {value}"),
            ));
        }
    };
    let server_max = i64::try_from(state.config.max_timeout_seconds).unwrap_or(i64::MAX);
    at_least(
        "max_runs_in_flight",
        settings.max_runs_in_flight,
        0,
        i64::MAX,
    );
    at_least("max_runs_per_day", settings.max_runs_per_day, 0, i64::MAX);
    at_least(
        "max_tokens_per_day",
        settings.max_tokens_per_day,
        0,
        i64::MAX,
    );
    at_least(
        "default_timeout_seconds",
        settings.default_timeout_seconds,
        1,
        server_max,
    );
    at_least(
        "max_timeout_seconds",
        settings.max_timeout_seconds,
        1,
        server_max,
    );
    at_least(
        "default_max_steps",
        settings.default_max_steps,
        1,
        i64::from(MAX_MAX_STEPS),
    );
    if let (Some(default), Some(max)) = (
        settings.default_timeout_seconds,
        settings.max_timeout_seconds,
    ) && default > max
    {
        problems.push(problem(
            "default_timeout_seconds",
            format!(
                "default_timeout_seconds ({default}) must not exceed max_timeout_seconds ({max})"
            ),
        ));
    }
    problems
}

/// [`admit`] for one run of `POST /v1/agent/run`; a request whose idempotency key the
/// project already holds is a replay (or a conflict), never refused for the limits.
pub(crate) async fn admit_run(
    state: &AppState,
    project_id: &str,
    settings: &ProjectSettings,
    idempotency_key: Option<&str>,
) -> Result<(), ApiError> {
    if let Some(key) = idempotency_key
        && state.store.idempotency_key_is_live(project_id, key).await?
    {
        return Ok(());
    }
    admit(state, project_id, settings, 1).await
}
