//! `POST /v1/agent/run`: validate everything, queue the run, and optionally wait for it.

use super::checks;
use super::projects;
use super::run_api;
use crate::auth::Caller;
use crate::error::{ApiError, problem};
use crate::json::ApiJson;
use crate::state::AppState;
use crate::views;
use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use rollout_api::runs::QueuedRun;
pub(crate) use rollout_api::runs::RunRequest;
use rollout_domain::run::{DEFAULT_MAX_STEPS, MAX_MAX_STEPS};
use rollout_domain::{RunId, RunSpec, ScenarioSpec};
use rollout_store::EnvVersion;
use serde_json::Value;
use std::time::Duration;

/// Default and largest wait of a `sync` request, in seconds.
const DEFAULT_SYNC_TIMEOUT: i64 = 300;
const MAX_SYNC_TIMEOUT: i64 = 600;

/// Queues a run (202), or with `sync` waits for it and returns its summary.
pub(crate) async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<RunRequest>,
) -> Result<Response, ApiError> {
    let idempotency_key = run_api::idempotency_key(&headers)?;
    let (mut spec, settings) = check(&state, &caller, &request).await?;
    spec.key_id = Some(caller.key_id.clone());
    spec.traceparent = traceparent(&headers);
    let key = idempotency_key.as_deref();
    projects::admit_run(&state, &caller.project_id, &settings, key).await?;
    let sync_timeout = request.timeout.unwrap_or(DEFAULT_SYNC_TIMEOUT);

    let run_id = RunId::generate();
    // Watch before queueing so that a fast run cannot finish unseen.
    let mut finished = state.notifier.watch_finished(&run_id);
    let idempotency = idempotency_key.map(|key| {
        let hash = run_api::request_hash(serde_json::to_value(&request).unwrap_or_default());
        (key, hash)
    });
    let (run, created) = run_api::insert(&state, &caller, &run_id, &spec, idempotency).await?;
    // A replay waits for (and reports) the run the key created.
    let run_id = run.id.clone();
    if created {
        state.notifier.run_queued();
        tracing::info!(run = %run_id, key = %caller.key_id, env = %spec.env_name, scenario = %spec.scenario_name, model = %spec.model, "run queued");
    } else {
        finished = state.notifier.watch_finished(&run_id);
    }

    if !request.sync {
        let body = QueuedRun {
            trace_url: state.trace_url(run.id.as_str()),
            queue_position: state.store.queue_position(run.id.as_str()).await?,
            trace_id: run.id,
            status: run.status,
        };
        let mut response = (StatusCode::ACCEPTED, Json(body)).into_response();
        if !created {
            response
                .headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
        }
        return Ok(response);
    }

    let deadline = tokio::time::Instant::now() + Duration::from_secs(sync_timeout.unsigned_abs());
    // A run this request just queued has not ended: the first read waits for a wake-up.
    let mut just_queued = created;
    loop {
        if !just_queued {
            let current = state
                .store
                .get_run(&caller.project_id, run_id.as_str())
                .await?;
            let current = current.ok_or_else(|| ApiError::internal("a queued run disappeared"))?;
            if current.status.is_terminal() {
                return Ok(
                    (StatusCode::OK, Json(views::run_summary(&state, &current))).into_response()
                );
            }
        }
        just_queued = false;
        // Wake on this process's notification, or poll: another process may run it.
        tokio::select! {
            ended = finished.finished() => {
                // The run as its finisher wrote it: no need to read it back.
                if let Some(run) = ended.filter(|run| run.project_id == caller.project_id) {
                    return Ok((StatusCode::OK, Json(views::run_summary(&state, &run))).into_response());
                }
            }
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            // The server is shutting down: answer now (202 with the run's status) rather than
            // hold the shutdown up; the run goes on (or back to the queue).
            _ = state.shutdown.cancelled() => return summary_now(&state, &caller, &run_id).await,
            _ = tokio::time::sleep_until(deadline) => return summary_now(&state, &caller, &run_id).await,
        }
    }
}

/// The run's summary as it stands: 200 once it ended, 202 while it is queued or running.
async fn summary_now(
    state: &AppState,
    caller: &Caller,
    run_id: &RunId,
) -> Result<Response, ApiError> {
    let current = state
        .store
        .get_run(&caller.project_id, run_id.as_str())
        .await?
        .ok_or_else(|| ApiError::internal("a queued run disappeared"))?;
    let status = if current.status.is_terminal() {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, Json(views::run_summary(state, &current))).into_response())
}

/// Checks a run request (`POST /v1/agent/run`, a schedule's run): the serving environment
/// version (404, 409), the scenario (404), then every other field ([`validate`]: 422 listing
/// every problem). A job checks its tasks the same way, with [`validate`] for each model
/// once it has a task's version and scenario (it lists every task's problems at once). Answers the run's spec, without its key and `traceparent`, and the
/// project's settings it was checked with. The settings and the version are read at once:
/// neither read waits for the other (on PostgreSQL each is a round trip to the database,
/// on a `sync` run's path).
pub(crate) async fn check(
    state: &AppState,
    caller: &Caller,
    request: &RunRequest,
) -> Result<(RunSpec, rollout_store::ProjectSettings), ApiError> {
    let (settings, version) = tokio::try_join!(
        projects::caller_settings(state, caller),
        checks::serving_version(
            &state.store,
            &caller.project_id,
            &request.env_name,
            request.env_version,
            caller.known_env_generation(),
        ),
    )?;
    let scenario = checks::find_scenario(&version, &request.scenario_name)?;
    let spec = validate(state, caller, request, &version, &scenario, &settings).await?;
    Ok((spec, settings))
}

/// Checks every field but the environment and scenario (found already) and collects every
/// problem into one 422. The model must resolve in the caller's project (its own
/// checkpoints, never another project's).
pub(crate) async fn validate(
    state: &AppState,
    caller: &Caller,
    request: &RunRequest,
    version: &EnvVersion,
    scenario: &ScenarioSpec,
    settings: &rollout_store::ProjectSettings,
) -> Result<RunSpec, ApiError> {
    let mut problems =
        checks::args_problems(version, scenario, &request.scenario_args, "scenario_args");
    let max_steps =
        projects::max_steps(settings, request.max_steps).unwrap_or(i64::from(DEFAULT_MAX_STEPS));
    if !(1..=i64::from(MAX_MAX_STEPS)).contains(&max_steps) {
        problems.push(problem(
            "max_steps",
            format!("max_steps must be between 1 and {MAX_MAX_STEPS}, got {max_steps}"),
        ));
    }
    if let Some(timeout) = request.timeout
        && !(1..=MAX_SYNC_TIMEOUT).contains(&timeout)
    {
        problems.push(problem(
            "timeout",
            format!("timeout must be between 1 and {MAX_SYNC_TIMEOUT} seconds, got {timeout}"),
        ));
    }
    let model = request.model.clone().unwrap_or_default();
    if model.trim().is_empty() {
        problems.push(problem(
            "model",
            "model is required (see GET /v1/models; 'replay' needs no API key)",
        ));
    } else if let Err(error) = state
        .catalog
        .client(&caller.project_id, &model, &request.validation)
    {
        problems.push(problem("model", error.to_string()));
    }
    if let Some(budget) = request.max_cost_usd {
        if !(budget.is_finite() && budget > 0.0) {
            problems.push(problem(
                "max_cost_usd",
                format!("max_cost_usd must be a positive number of USD, got {budget}"),
            ));
        } else if !model.trim().is_empty()
            && state.catalog.price(&caller.project_id, &model).is_none()
        {
            problems.push(problem(
                "max_cost_usd",
                format!(
                    "model '{model}' has no known price, so its cost cannot be budgeted; \
                     set [prices.\"{model}\"] input/output (USD per million tokens) in rollout.toml"
                ),
            ));
        }
    }
    problems.extend(run_api::callback_problems(state, request.callback.as_ref()).await);
    let timeout_seconds =
        projects::timeout_seconds(state, settings, request.timeout_seconds, &mut problems);
    let budgets = run_api::budgets(
        state,
        timeout_seconds,
        request.grading_timeout_seconds,
        request.max_total_tokens,
        &mut problems,
    );
    if !problems.is_empty() {
        return Err(ApiError::invalid(problems));
    }
    Ok(RunSpec {
        env_name: version.name.clone(),
        env_version: version.version,
        scenario_name: scenario.name.clone(),
        scenario_args: request.scenario_args.clone(),
        model,
        max_steps: u32::try_from(max_steps).unwrap_or(DEFAULT_MAX_STEPS),
        system_prompt: request.system_prompt.clone(),
        validation: request.validation.clone(),
        metadata: request.metadata.clone(),
        agent_timeout_seconds: budgets.agent_timeout_seconds,
        grading_timeout_seconds: budgets.grading_timeout_seconds,
        max_total_tokens: budgets.max_total_tokens,
        max_cost_usd: request.max_cost_usd,
        callback: request.callback.clone(),
        key_id: None,
        traceparent: None,
    })
}

/// The caller's W3C `traceparent`, when valid: the run's exported spans join its trace.
/// An invalid one is ignored, as W3C Trace Context asks of a receiver.
fn traceparent(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("traceparent")?.to_str().ok()?.trim();
    rollout_telemetry::is_valid_traceparent(value).then(|| value.to_string())
}

/// Checks a run body given as JSON (a schedule's `run`) as `POST /v1/agent/run` checks its
/// own, and returns the spec and the environment version the body pinned, if any. A
/// scheduled run cannot wait for itself: `sync` and `timeout` are refused.
pub(crate) async fn spec_from_body(
    state: &AppState,
    caller: &Caller,
    body: Value,
) -> Result<(RunSpec, Option<i64>), ApiError> {
    let request: RunRequest = serde_json::from_value(body)
        .map_err(|error| ApiError::invalid(vec![problem("run", format!("run: {error}"))]))?;
    if request.sync || request.timeout.is_some() {
        return Err(ApiError::invalid(vec![problem(
            "run.sync",
            "a scheduled run cannot wait for its result: remove sync and timeout",
        )]));
    }
    let (spec, _) = check(state, caller, &request).await?;
    Ok((spec, request.env_version))
}
