//! `POST /v1/agent/run`: validate everything, queue the run, and optionally wait for it.

use crate::auth::Caller;
use crate::error::{ApiError, problem};
use crate::json::ApiJson;
use crate::state::AppState;
use crate::views;
use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rollout_domain::run::{DEFAULT_MAX_STEPS, MAX_MAX_STEPS};
use rollout_domain::{RunId, RunSpec, ScenarioSpec, ValidationItem};
use rollout_store::{EnvStatus, EnvVersion};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::time::Duration;

/// Default and largest wait of a `sync` request, in seconds.
const DEFAULT_SYNC_TIMEOUT: i64 = 300;
const MAX_SYNC_TIMEOUT: i64 = 600;

/// The body of `POST /v1/agent/run`. Unknown fields are refused, so typos do not pass
/// silently.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RunRequest {
    env_name: String,
    scenario_name: String,
    #[serde(default)]
    scenario_args: Map<String, Value>,
    model: Option<String>,
    max_steps: Option<i64>,
    #[serde(default)]
    sync: bool,
    timeout: Option<i64>,
    #[serde(default)]
    metadata: Map<String, Value>,
    #[serde(default)]
    validation: Vec<ValidationItem>,
    system_prompt: Option<String>,
    env_version: Option<i64>,
}

/// Queues a run (202), or with `sync` waits for it and returns its summary.
pub(crate) async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(request): ApiJson<RunRequest>,
) -> Result<Response, ApiError> {
    let version = serving_version(&state, &caller, &request).await?;
    let scenario = find_scenario(&version, &request.scenario_name)?;
    let spec = validate(&state, &request, &version, &scenario)?;
    let sync_timeout = request.timeout.unwrap_or(DEFAULT_SYNC_TIMEOUT);

    let run_id = RunId::generate();
    // Subscribe before queueing so that a fast run cannot finish unseen.
    let mut finished = state.notifier.subscribe();
    let run = state
        .store
        .insert_run(&run_id, &caller.project_id, &spec)
        .await?;
    state.notifier.run_queued();
    tracing::info!(run = %run_id, key = %caller.key_id, env = %spec.env_name, scenario = %spec.scenario_name, model = %spec.model, "run queued");

    if !request.sync {
        let body = json!({
            "trace_id": run.id,
            "trace_url": state.trace_url(run.id.as_str()),
            "status": run.status,
        });
        return Ok((StatusCode::ACCEPTED, Json(body)).into_response());
    }

    let deadline = tokio::time::Instant::now() + Duration::from_secs(sync_timeout.unsigned_abs());
    loop {
        let current = state
            .store
            .get_run(&caller.project_id, run_id.as_str())
            .await?;
        let current = current.ok_or_else(|| ApiError::internal("a queued run disappeared"))?;
        if current.status.is_terminal() {
            return Ok((StatusCode::OK, Json(views::run_summary(&state, &current))).into_response());
        }
        // Wake on this process's notification, or poll: another process may run it.
        let wait = async {
            loop {
                match finished.recv().await {
                    Ok(update) if update.run_id == run_id => return,
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => return,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                        std::future::pending::<()>().await;
                    }
                }
            }
        };
        tokio::select! {
            _ = wait => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = tokio::time::sleep_until(deadline) => {
                let current = state.store.get_run(&caller.project_id, run_id.as_str()).await?;
                let current = current.ok_or_else(|| ApiError::internal("a queued run disappeared"))?;
                let status = if current.status.is_terminal() { StatusCode::OK } else { StatusCode::ACCEPTED };
                return Ok((status, Json(views::run_summary(&state, &current))).into_response());
            }
        }
    }
}

/// The environment version the run will use: the one asked for, or the newest ready one.
async fn serving_version(
    state: &AppState,
    caller: &Caller,
    request: &RunRequest,
) -> Result<EnvVersion, ApiError> {
    let name = &request.env_name;
    let versions = state.store.env_versions(&caller.project_id, name).await?;
    if versions.is_empty() {
        let available: Vec<String> = state
            .store
            .list_environments(&caller.project_id)
            .await?
            .into_iter()
            .map(|v| v.name)
            .collect();
        return Err(ApiError::not_found(
            "environment_not_found",
            format!(
                "environment '{name}' not found; available: {}",
                list_or_none(&available)
            ),
        )
        .with_details(json!({ "available": available })));
    }
    let chosen = match request.env_version {
        Some(wanted) => versions
            .iter()
            .find(|v| v.version == wanted)
            .ok_or_else(|| {
                let known: Vec<String> = versions.iter().map(|v| v.version.to_string()).collect();
                ApiError::not_found(
                    "environment_version_not_found",
                    format!(
                        "environment '{name}' has no version {wanted}; versions: {}",
                        known.join(", ")
                    ),
                )
            })?,
        None => versions
            .iter()
            .find(|v| v.status == EnvStatus::Ready)
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::CONFLICT,
                    "environment_not_ready",
                    format!(
                        "environment '{name}' has no ready version; the newest failed: {}",
                        versions[0].error.clone().unwrap_or_default()
                    ),
                )
            })?,
    };
    if chosen.status != EnvStatus::Ready {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "environment_not_ready",
            format!(
                "version {} of '{name}' is not ready: {}",
                chosen.version,
                chosen.error.clone().unwrap_or_default()
            ),
        ));
    }
    Ok(chosen.clone())
}

fn find_scenario(version: &EnvVersion, name: &str) -> Result<ScenarioSpec, ApiError> {
    let description = version.description.clone().unwrap_or_default();
    description.scenario(name).cloned().ok_or_else(|| {
        let available: Vec<String> = description
            .scenarios
            .iter()
            .map(|s| s.name.clone())
            .collect();
        ApiError::not_found(
            "scenario_not_found",
            format!(
                "scenario '{name}' not found in environment '{}'; available: {}",
                version.name,
                list_or_none(&available)
            ),
        )
        .with_details(json!({ "available": available }))
    })
}

/// Checks every remaining field and collects every problem into one 422.
fn validate(
    state: &AppState,
    request: &RunRequest,
    version: &EnvVersion,
    scenario: &ScenarioSpec,
) -> Result<RunSpec, ApiError> {
    let mut problems = args_problems(scenario, &request.scenario_args);
    let max_steps = request.max_steps.unwrap_or(i64::from(DEFAULT_MAX_STEPS));
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
    } else if let Err(error) = state.catalog.client(&model, &request.validation) {
        problems.push(problem("model", error.to_string()));
    }
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
        agent_timeout_seconds: state.config.agent_timeout_seconds,
        grading_timeout_seconds: state.config.grading_timeout_seconds,
    })
}

/// Every way the arguments break the scenario's schema.
fn args_problems(scenario: &ScenarioSpec, args: &Map<String, Value>) -> Vec<Value> {
    let validator = match jsonschema::validator_for(&scenario.args_schema) {
        Ok(validator) => validator,
        Err(error) => {
            tracing::warn!(scenario = %scenario.id, %error, "scenario has an invalid argument schema; arguments not checked");
            return Vec::new();
        }
    };
    let instance = Value::Object(args.clone());
    validator
        .iter_errors(&instance)
        .map(|error| {
            let path = error.instance_path().to_string();
            let field = if path.is_empty() {
                "scenario_args".to_string()
            } else {
                format!("scenario_args{}", path.replace('/', "."))
            };
            problem(&field, format!("scenario_args: {error}"))
        })
        .collect()
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}
