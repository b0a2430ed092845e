//! Checks shared by every route that queues runs: the serving environment version, the
//! scenario, and the scenario's arguments against its JSON Schema.

use crate::error::{ApiError, problem};
use axum::http::StatusCode;
use rollout_domain::ScenarioSpec;
use rollout_store::{EnvStatus, EnvVersion, Store};
use serde_json::{Map, Value, json};
use std::sync::Arc;

mod validators;

/// The environment version the run will use: the one asked for, or the newest ready one.
/// `generation`, the project's environment generation read with the caller's key
/// ([`crate::auth::Caller::known_env_generation`]), lets the store answer from memory
/// ([`Store::serving_version`]).
pub(crate) async fn serving_version(
    store: &Store,
    project_id: &str,
    name: &str,
    env_version: Option<i64>,
    generation: Option<i64>,
) -> Result<Arc<EnvVersion>, ApiError> {
    // The usual case reads one row, or none; only a refusal reads every version, for its
    // message.
    if let Some(version) = store
        .serving_version(project_id, name, env_version, generation)
        .await?
    {
        return Ok(version);
    }
    let versions = store.env_versions(project_id, name).await?;
    if versions.is_empty() {
        let available: Vec<String> = store
            .list_environments(project_id)
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
    let chosen = match env_version {
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
    Ok(Arc::new(chosen.clone()))
}

pub(crate) fn find_scenario(version: &EnvVersion, name: &str) -> Result<ScenarioSpec, ApiError> {
    let description = version.description.as_ref();
    if let Some(scenario) = description.and_then(|description| description.scenario(name)) {
        return Ok(scenario.clone());
    }
    let available: Vec<String> = description
        .map(|description| {
            description
                .scenarios
                .iter()
                .map(|s| s.name.clone())
                .collect()
        })
        .unwrap_or_default();
    Err(ApiError::not_found(
        "scenario_not_found",
        format!(
            "scenario '{name}' not found in environment '{}'; available: {}",
            version.name,
            list_or_none(&available)
        ),
    )
    .with_details(json!({ "available": available })))
}

/// Every way the arguments break the scenario's schema, each a problem whose field starts
/// with `field` (e.g. `scenario_args.query`). The schema is compiled once per version and
/// scenario ([`validators`]).
pub(crate) fn args_problems(
    version: &EnvVersion,
    scenario: &ScenarioSpec,
    args: &Map<String, Value>,
    field: &str,
) -> Vec<Value> {
    let Some(validator) = validators::compiled(&version.id, scenario) else {
        return Vec::new();
    };
    let instance = Value::Object(args.clone());
    validator
        .iter_errors(&instance)
        .map(|error| {
            let path = error.instance_path().to_string();
            let at = if path.is_empty() {
                field.to_string()
            } else {
                format!("{field}{}", path.replace('/', "."))
            };
            problem(&at, format!("{field}: {error}"))
        })
        .collect()
}

pub(crate) fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}
