//! Deployed environments: `POST /v1/environments/{name}/deploy` (a tar.gz bundle),
//! `POST /v1/environments` with `git`, the build log of a version, and
//! `DELETE /v1/environments/{name}`.
//!
//! A deploy runs inside the request: unpack or clone, hash (identical content answers 200
//! with the existing version), build, start, introspect. The answer carries the build log.

use crate::auth::Caller;
use crate::error::{ApiError, problem};
use crate::state::AppState;
use crate::views;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use futures::StreamExt;
use rollout_domain::RunId;
use rollout_worker::deploy::{check_env_name, remove_environment_files};
use rollout_worker::{BundleSource, DeployConfig, DeployError, deploy_environment};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;

/// Bytes of a refused upload read and thrown away before the answer: a server that answers
/// and closes while the client is still sending makes the client's TCP stack see a reset
/// instead of the answer (`curl: (55) Send failure: Connection reset by peer`), so the
/// refusal is read up to this much for the client to get its 413, 403 or 415.
const DRAIN_LIMIT_BYTES: usize = 64 * 1024 * 1024;

/// The `git` member of `POST /v1/environments`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GitRequest {
    /// An https or ssh URL (`file://` and local paths when the operator allows them).
    url: String,
    /// A branch, tag or commit (default: the default branch).
    #[serde(rename = "ref")]
    reference: Option<String>,
}

/// `POST /v1/environments/{name}/deploy`: the body is a tar.gz of the bundle.
pub(crate) async fn bundle(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let mut chunks = body.into_data_stream();
    let checked = check_upload(&caller, &headers);
    let body = match checked {
        Ok(()) => read_upload(&mut chunks, state.config.max_upload_bytes).await,
        Err(error) => Err(error),
    };
    let body = match body {
        Ok(body) => body,
        Err(error) => {
            drain(&mut chunks).await;
            return Err(error);
        }
    };
    if body.is_empty() {
        return Err(ApiError::invalid(vec![problem(
            "body",
            "the body is empty; send a tar.gz of the bundle",
        )]));
    }
    deploy(&state, &caller, &name, BundleSource::Archive(body.to_vec())).await
}

/// Who may deploy and what they send, checked before the body is read.
fn check_upload(caller: &Caller, headers: &HeaderMap) -> Result<(), ApiError> {
    caller.require_admin("deploying an environment")?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if !matches!(
        content_type.as_str(),
        "application/gzip" | "application/x-gzip" | "application/octet-stream"
    ) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the bundle as a tar.gz with the header 'Content-Type: application/gzip'",
        ));
    }
    Ok(())
}

/// Reads the upload whole, refusing it (413) once it passes `max` bytes.
async fn read_upload(
    chunks: &mut axum::body::BodyDataStream,
    max: usize,
) -> Result<Bytes, ApiError> {
    let mut body = Vec::new();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|error| {
            ApiError::bad_request(format!("could not read the request body: {error}"))
        })?;
        if body.len() + chunk.len() > max {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!(
                    "the bundle is larger than the server accepts ({} MiB)",
                    max / (1024 * 1024)
                ),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(body))
}

/// Reads and drops what is left of a refused upload, up to [`DRAIN_LIMIT_BYTES`].
async fn drain(chunks: &mut axum::body::BodyDataStream) {
    let mut drained = 0;
    while drained < DRAIN_LIMIT_BYTES {
        match chunks.next().await {
            Some(Ok(chunk)) => drained += chunk.len(),
            _ => break,
        }
    }
}

/// `POST /v1/environments` with `{"name", "git": {"url", "ref"}}`.
pub(crate) async fn git(
    state: &AppState,
    caller: &Caller,
    name: &str,
    git: GitRequest,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require_operator("deploying an environment from git")?;
    deploy(
        state,
        caller,
        name,
        BundleSource::Git {
            url: git.url,
            reference: git.reference,
        },
    )
    .await
}

async fn deploy(
    state: &AppState,
    caller: &Caller,
    name: &str,
    source: BundleSource,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    check_env_name(name).map_err(|message| ApiError::invalid(vec![problem("name", message)]))?;
    let Some(data_dir) = state.config.data_dir.clone() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "deploy_unavailable",
            "this server has no data directory to deploy bundles to",
        ));
    };
    let config = DeployConfig {
        data_dir,
        build_timeout: state.config.build_timeout,
        introspect_timeout: state.config.introspect_timeout,
        sandbox: state.config.sandbox.clone(),
        git: state.config.git.clone(),
        locks: state.config.deploy_locks.clone(),
    };
    tracing::info!(env = name, key = %caller.key_id, "deploy requested");
    let deployed = deploy_environment(&state.store, &caller.project_id, name, source, &config)
        .await
        .map_err(deploy_error)?;
    let versions = state.store.env_versions(&caller.project_id, name).await?;
    let mut body = views::environment(name, &versions);
    body["deployed_version"] = json!(deployed.version.version);
    body["unchanged"] = json!(!deployed.created);
    body["build_log"] = json!(deployed.build_log.unwrap_or_default());
    let status = if deployed.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(body)))
}

fn deploy_error(error: DeployError) -> ApiError {
    match error {
        DeployError::InvalidBundle(message) => {
            ApiError::invalid(vec![problem("bundle", message)])
        }
        DeployError::Git(message) => ApiError::invalid(vec![problem("git", message)]),
        DeployError::BuildFailed {
            name,
            reason,
            log_tail,
            version,
        } => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "build_failed",
            format!(
                "the build of environment '{name}' failed: {reason}\n--- build log (tail) ---\n{log_tail}"
            ),
        )
        .with_details(json!({
            "version": version.version,
            "status": version.status,
            "error": reason,
            "build_log_tail": log_tail,
        })),
        DeployError::Unusable {
            name,
            message,
            version,
        } => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "environment_unusable",
            format!("environment '{name}' was built but could not be started or introspected: {message}"),
        )
        .with_details(json!({
            "version": version.version,
            "status": version.status,
            "error": message,
        })),
        DeployError::Io { .. } => ApiError::internal(error),
        DeployError::Store(error) => error.into(),
    }
}

/// `GET /v1/environments/{name}/versions/{version}/log`: the build log, as text.
pub(crate) async fn build_log(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((name, version)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let not_found = || {
        ApiError::not_found(
            "version_not_found",
            format!("environment '{name}' has no version {version}"),
        )
    };
    let number: i64 = version.parse().map_err(|_| not_found())?;
    let log = state
        .store
        .env_build_log(&caller.project_id, &name, number)
        .await?
        .ok_or_else(not_found)?
        .ok_or_else(|| {
            ApiError::not_found(
                "build_log_not_found",
                format!(
                    "version {number} of '{name}' was registered by command or URL; it was not built"
                ),
            )
        })?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], log).into_response())
}

/// `DELETE /v1/environments/{name}[?force=true]`: deletes the environment and its versions
/// (and its bundles' files); runs and their traces stay. While runs of it are queued or
/// running it answers 409, unless `force=true`, which cancels them first.
pub(crate) async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    caller.require_admin("deleting an environment")?;
    let force = match query.get("force").map(String::as_str) {
        None | Some("false" | "0") => false,
        Some("true" | "1" | "") => true,
        Some(other) => {
            return Err(ApiError::invalid(vec![problem(
                "force",
                format!("force must be true or false, got '{other}'"),
            )]));
        }
    };
    if state
        .store
        .env_versions(&caller.project_id, &name)
        .await?
        .is_empty()
    {
        return Err(ApiError::not_found(
            "environment_not_found",
            format!("environment '{name}' not found"),
        ));
    }
    let active = state
        .store
        .active_env_runs(&caller.project_id, &name)
        .await?;
    if !active.is_empty() && !force {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "environment_busy",
            format!(
                "environment '{name}' has {} run(s) queued or running; wait for them, or delete with ?force=true to cancel them",
                active.len()
            ),
        )
        .with_details(json!({ "runs": active })));
    }
    let mut cancelled = Vec::new();
    for id in &active {
        if let Some(outcome) = state.store.cancel_run(&caller.project_id, id).await? {
            super::cancel::announce(&state, &caller, &RunId(id.clone()), outcome).await?;
        }
        cancelled.push(id.clone());
    }
    let deleted = state
        .store
        .delete_environment(&caller.project_id, &name)
        .await?;
    if let Some(data_dir) = &state.config.data_dir {
        remove_environment_files(data_dir, &caller.project_id, &name).await;
    }
    tracing::info!(env = %name, key = %caller.key_id, versions = deleted, cancelled = cancelled.len(), "environment deleted");
    Ok(Json(json!({
        "name": name,
        "deleted_versions": deleted,
        "cancelled_runs": cancelled,
    })))
}
