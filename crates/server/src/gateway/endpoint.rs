//! The gateway's HTTP endpoint: `/v1/environments/{name}/mcp` and `/v1/mcp`, the session
//! ownership check, and opening a session (a slot of the key, the environment's target, its
//! recorder, then the proxy).

use super::Gateway;
use super::recorder;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use axum::Extension;
use axum::extract::{Path, Request};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use rollout_mcp::EnvTarget;
use rollout_mcp::gateway::{NewSession, Upstream};
use std::sync::Arc;

/// The MCP session header.
const SESSION_HEADER: &str = "mcp-session-id";

/// `/v1/environments/{name}/mcp`.
pub(crate) async fn env_endpoint(
    Extension(gateway): Extension<Arc<Gateway>>,
    axum::extract::State(state): axum::extract::State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    request: Request,
) -> Response {
    handle(&gateway, &state, &caller, &name, request).await
}

/// `/v1/mcp`: the hud hub convention, the environment named by `Environment-Name`.
pub(crate) async fn hub_endpoint(
    Extension(gateway): Extension<Arc<Gateway>>,
    axum::extract::State(state): axum::extract::State<AppState>,
    Extension(caller): Extension<Caller>,
    request: Request,
) -> Response {
    let name = environment_name(request.headers());
    match name {
        Some(name) => handle(&gateway, &state, &caller, &name, request).await,
        None => ApiError::bad_request(
            "send the environment's name in the 'Environment-Name' header \
             (or use /v1/environments/NAME/mcp)",
        )
        .into_response(),
    }
}

fn environment_name(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("environment-name")?.to_str().ok()?.trim();
    (!value.is_empty()).then(|| value.to_string())
}

fn session_not_found() -> ApiError {
    ApiError::not_found(
        "session_not_found",
        "no such MCP session (it ended or timed out); initialize a new one",
    )
}

async fn handle(
    gateway: &Gateway,
    state: &AppState,
    caller: &Caller,
    name: &str,
    request: Request,
) -> Response {
    api_shaped(proxy(gateway, state, caller, name, request).await).await
}

/// The proxy (rmcp) refuses requests it cannot take (no session id, an `Accept` without
/// `text/event-stream`, a body that is not JSON-RPC) in plain text; they are answered in the
/// API's error shape like every other refusal, with the proxy's words as the message.
async fn api_shaped(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if !status.is_client_error() || is_json {
        return response;
    }
    let text = axum::body::to_bytes(response.into_body(), 64 * 1024)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_string())
        .unwrap_or_default();
    let code = match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::NOT_FOUND => "session_not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::NOT_ACCEPTABLE => "not_acceptable",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        _ => "mcp_error",
    };
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("refused").to_string()
    } else {
        text
    };
    ApiError::new(status, code, message).into_response()
}

async fn proxy(
    gateway: &Gateway,
    state: &AppState,
    caller: &Caller,
    name: &str,
    request: Request,
) -> Response {
    let session = request
        .headers()
        .get(SESSION_HEADER)
        .and_then(|value| value.to_str().ok())
        .map(String::from);
    if let Some(session) = session {
        // A session is reachable only from the project and environment that opened it.
        if gateway
            .registry
            .get(&session, &caller.project_id)
            .as_deref()
            != Some(name)
        {
            return session_not_found().into_response();
        }
        let is_delete = request.method() == Method::DELETE;
        let response = gateway.service.handle(request, None).await;
        if is_delete && response.status().is_success() {
            gateway.registry.remove(&session);
        }
        return response;
    }
    if request.method() != Method::POST {
        return gateway.service.handle(request, None).await;
    }
    match open_session(gateway, state, caller, name, request).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

/// A request without a session: an `initialize` opens one, on a fresh environment session.
async fn open_session(
    gateway: &Gateway,
    state: &AppState,
    caller: &Caller,
    name: &str,
    request: Request,
) -> Result<Response, ApiError> {
    let max = state.config.gateway.max_sessions_per_key;
    let slot = gateway
        .registry
        .take_slot(&caller.key_id, max)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_sessions",
                format!(
                    "this API key has {max} MCP sessions open; close one (DELETE) or wait \
                     for an idle one to time out"
                ),
            )
        })?;
    let (version, target) = super::ready_version(state, &caller.project_id, name).await?;
    let sandbox = state.config.sandbox.for_env(&caller.project_id, name);
    let target = match (&target, &state.config.replicas) {
        (EnvTarget::Served { .. }, Some(replicas)) => replicas
            .resolve(&version.id, &target, &sandbox)
            .await
            .map_err(|message| {
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "environment_unavailable",
                    message,
                )
            })?,
        (EnvTarget::Served { .. }, None) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "gateway_unsupported",
                format!(
                    "environment '{name}' is served by replicas, which this server does not run"
                ),
            ));
        }
        _ => target,
    };
    let namer = slot.namer();
    let hook = recorder::spawn(state, caller, name, version.version, Some(slot));
    let upstream = Upstream {
        target,
        label: format!("{name}@v{} gateway", version.version),
        sandbox,
    };
    let response = gateway
        .service
        .handle(request, Some(NewSession::new(upstream, hook)))
        .await;
    if let Some(id) = response
        .headers()
        .get(SESSION_HEADER)
        .and_then(|value| value.to_str().ok())
    {
        namer.name(id, &caller.project_id, name.to_string());
    }
    Ok(response)
}
