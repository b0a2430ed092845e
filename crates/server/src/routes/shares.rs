//! Share links: `POST /v1/traces/{id}/share` makes a read-only URL of one trace with an
//! unguessable token (only its hash is stored), optionally expiring; `GET .../shares` lists
//! a trace's links, `DELETE .../shares/{share_id}` revokes one. A project's admins turn
//! sharing off and on (`/v1/projects/{id}/sharing`); off, no link is made and none shows
//! anything. The page itself is `ui/shared.rs`.

use super::reviews::{done, reviewer, trace_of};
use crate::auth::Caller;
use crate::error::{ApiError, problem};
use crate::json::ApiJson;
use crate::state::AppState;
use crate::views::shares as views;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use rollout_api::reviews::Deleted;
use rollout_api::shares::{ShareLinkList, ShareLinkView, ShareRequest, SharingSetting};
use rollout_domain::time::now_ms;

/// The longest a link may live: a year.
const MAX_EXPIRY_SECONDS: i64 = 365 * 86_400;

/// The routes of this module (behind the API key).
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/traces/{id}/share", post(share))
        .route("/v1/traces/{id}/shares", get(list))
        .route("/v1/traces/{id}/shares/{share_id}", delete(revoke))
        .route(
            "/v1/projects/{id}/sharing",
            get(get_sharing).put(put_sharing),
        )
}

/// `POST /v1/traces/{id}/share`: 201 with the URL and token (shown this once); 403 when
/// the project turned sharing off.
async fn share(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<ShareRequest>,
) -> Result<(StatusCode, Json<ShareLinkView>), ApiError> {
    let run = trace_of(&state, &caller, &id).await?;
    let mut problems = Vec::new();
    if let Some(seconds) = request.expires_in_seconds
        && !(1..=MAX_EXPIRY_SECONDS).contains(&seconds)
    {
        problems.push(problem(
            "expires_in_seconds",
            format!("expires_in_seconds must be between 1 and {MAX_EXPIRY_SECONDS}, got {seconds}"),
        ));
    }
    let reviewer = reviewer(&caller, request.author.as_deref(), &mut problems);
    done(problems)?;
    if !state.store.sharing_enabled(&caller.project_id).await? {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "sharing_disabled",
            "sharing is turned off in this project (PUT /v1/projects/{id}/sharing)",
        ));
    }
    let now = now_ms();
    let expires = request
        .expires_in_seconds
        .map(|seconds| now.saturating_add(seconds.saturating_mul(1000)));
    let (link, token) = state
        .store
        .create_share_link(&caller.project_id, run.id.as_str(), &reviewer, expires)
        .await?;
    tracing::info!(trace = %run.id, share = %link.id, "trace shared");
    let mut view = views::share_link(&link, now);
    view.url = Some(format!(
        "{}/shared/{token}",
        state.config.public_url.trim_end_matches('/')
    ));
    view.token = Some(token);
    Ok((StatusCode::CREATED, Json(view)))
}

/// `GET /v1/traces/{id}/shares`: the trace's links, without their tokens.
async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<ShareLinkList>, ApiError> {
    let run = trace_of(&state, &caller, &id).await?;
    let links = state
        .store
        .share_links(&caller.project_id, run.id.as_str())
        .await?;
    let now = now_ms();
    Ok(Json(ShareLinkList {
        share_links: links.iter().map(|l| views::share_link(l, now)).collect(),
    }))
}

/// `DELETE /v1/traces/{id}/shares/{share_id}`: the link stops working at once.
async fn revoke(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((id, share_id)): Path<(String, String)>,
) -> Result<Json<Deleted>, ApiError> {
    let run = trace_of(&state, &caller, &id).await?;
    if !state
        .store
        .revoke_share_link(&caller.project_id, run.id.as_str(), &share_id)
        .await?
    {
        return Err(ApiError::not_found(
            "share_link_not_found",
            format!("trace '{id}' has no live share link '{share_id}'"),
        ));
    }
    tracing::info!(trace = %run.id, share = %share_id, "share link revoked");
    Ok(Json(Deleted { deleted: true }))
}

/// The caller's own project, else 404 (projects are boundaries).
fn own_project(caller: &Caller, id: &str) -> Result<(), ApiError> {
    if caller.project_id == id {
        Ok(())
    } else {
        Err(ApiError::not_found(
            "project_not_found",
            format!("project '{id}' not found"),
        ))
    }
}

/// `GET /v1/projects/{id}/sharing`.
async fn get_sharing(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<SharingSetting>, ApiError> {
    own_project(&caller, &id)?;
    Ok(Json(SharingSetting {
        enabled: state.store.sharing_enabled(&id).await?,
    }))
}

/// `PUT /v1/projects/{id}/sharing` (admin): `{"enabled": false}` stops every link of the
/// project from showing anything and refuses new ones; `true` brings the unrevoked,
/// unexpired links back.
async fn put_sharing(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    ApiJson(setting): ApiJson<SharingSetting>,
) -> Result<Json<SharingSetting>, ApiError> {
    own_project(&caller, &id)?;
    caller.require_admin("turning sharing on or off")?;
    state.store.set_sharing(&id, setting.enabled).await?;
    tracing::info!(project = %id, enabled = setting.enabled, "sharing changed");
    Ok(Json(SharingSetting {
        enabled: state.store.sharing_enabled(&id).await?,
    }))
}
