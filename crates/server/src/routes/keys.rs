//! API keys and projects: `POST/GET /v1/keys`, `DELETE /v1/keys/{id}` (admin keys only).
//!
//! Every key belongs to one project, the project of everything it creates and sees. An
//! admin key manages its own project's keys; an admin key of the server's admin project
//! (`default`, where the first admin key is made) also manages other projects' keys, with
//! `project` in the body or the query, and creating a key in a new project creates it.

use crate::auth::Caller;
use crate::error::{ApiError, problem};
use crate::json::{ApiJson, ApiQuery};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use rollout_domain::time::rfc3339_from_ms;
use rollout_store::{ApiKeyRecord, KeyRole, generate_api_key};

/// The project whose admin keys manage every project's keys.
pub(crate) const ADMIN_PROJECT: &str = "default";

pub(crate) use rollout_api::keys::{CreateKey as CreateKeyRequest, ProjectQuery};
use rollout_api::keys::{CreatedKey, Key, KeyList};

fn key_view(key: &ApiKeyRecord) -> Key {
    Key {
        id: key.id.clone(),
        project: key.project_id.clone(),
        name: key.name.clone(),
        role: key.role.as_str().to_string(),
        prefix: key.prefix.clone(),
        created_at: rfc3339_from_ms(key.created_at_ms),
    }
}

/// The project a request acts on: the caller's, or (for the admin project's admins only)
/// the one named.
pub(crate) fn target_project(caller: &Caller, asked: Option<&str>) -> Result<String, ApiError> {
    match asked {
        None => Ok(caller.project_id.clone()),
        Some(project) if project == caller.project_id => Ok(project.to_string()),
        Some(project) if caller.project_id == ADMIN_PROJECT => {
            let valid = !project.is_empty()
                && project.len() <= 64
                && project
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if valid {
                Ok(project.to_string())
            } else {
                Err(ApiError::invalid(vec![problem(
                    "project",
                    "project must be 1 to 64 letters, digits, '-' or '_'",
                )]))
            }
        }
        Some(_) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "an admin key manages the keys of its own project only",
        )),
    }
}

/// `POST /v1/keys`: 201 with the new key's secret, shown only in this response.
pub(crate) async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(request): ApiJson<CreateKeyRequest>,
) -> Result<Response, ApiError> {
    caller.require_admin("managing API keys")?;
    let project = target_project(&caller, request.project.as_deref())?;
    let mut problems = Vec::new();
    let name = request.name.trim().to_string();
    if name.is_empty() || name.len() > 200 {
        problems.push(problem("name", "name must be 1 to 200 characters"));
    }
    let role = match request
        .role
        .as_deref()
        .unwrap_or("member")
        .parse::<KeyRole>()
    {
        Ok(role) => role,
        Err(error) => {
            problems.push(problem(
                "role",
                format!("{error}; expected 'admin' or 'member'"),
            ));
            KeyRole::Member
        }
    };
    if !problems.is_empty() {
        return Err(ApiError::invalid(problems));
    }
    state.store.ensure_project(&project, &project).await?;
    let secret = generate_api_key();
    let key = state
        .store
        .create_api_key(&project, &name, role, &secret)
        .await?;
    tracing::info!(key = %key.id, project = %project, role = %role, by = %caller.key_id, "API key created");
    let body = CreatedKey {
        key: key_view(&key),
        secret,
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `GET /v1/keys`: the project's active keys (never their secrets).
pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiQuery(query): ApiQuery<ProjectQuery>,
) -> Result<Json<KeyList>, ApiError> {
    caller.require_admin("managing API keys")?;
    let project = target_project(&caller, query.project.as_deref())?;
    let keys = state.store.list_api_keys(&project).await?;
    Ok(Json(KeyList {
        project,
        keys: keys.iter().map(key_view).collect(),
    }))
}

/// `DELETE /v1/keys/{id}`: revokes the key at once (204); 404 if the project has no such
/// active key.
pub(crate) async fn revoke(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<ProjectQuery>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin("managing API keys")?;
    let project = target_project(&caller, query.project.as_deref())?;
    if id == caller.key_id {
        // A key that revokes itself locks its holder out; another admin key must do it.
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "cannot_revoke_own_key",
            "an API key cannot revoke itself; revoke it with another admin key",
        ));
    }
    if !state.store.revoke_api_key(&project, &id).await? {
        return Err(ApiError::not_found(
            "key_not_found",
            format!("no active API key '{id}' in project '{project}'"),
        ));
    }
    tracing::info!(key = %id, project = %project, by = %caller.key_id, "API key revoked");
    Ok(StatusCode::NO_CONTENT)
}
