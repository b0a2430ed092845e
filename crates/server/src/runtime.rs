//! The hud 0.6 runtime endpoints, for unmodified hud 0.6 clients (`HUD_RUNTIME_URL` pointing
//! at rollout, a rollout API key as `HUD_API_KEY`; task protocol §8, item 2):
//! `POST /runtime/sessions` starts one process of a hosted hud 0.6 environment (in its
//! sandbox, like a run's) and answers its id; every TCP connection the client makes (the
//! control connection and each capability tunnel) arrives as a WebSocket at
//! `/runtime/tunnels/{id}` and is spliced, bytes unchanged, to the environment's port;
//! `DELETE /runtime/sessions/{id}` kills it. Each task the client plays on the control
//! connection is recorded as a trace with `model: "external"`, by the MCP gateway's recorder.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::gateway::SessionRegistry;
use crate::json::ApiJson;
use crate::state::AppState;
use axum::Extension;
use axum::Json;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use rollout_mcp::gateway::{GatewayEvent, GatewayHook};
use rollout_mcp::{ControlSniffer, Hud06Process};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The live runtime sessions, by id, in the project that opened them; counted per API key
/// like the MCP gateway's sessions (the same registry type).
#[derive(Default)]
pub(crate) struct Runtime {
    sessions: SessionRegistry<Arc<RuntimeSession>>,
}

/// One client's environment process.
struct RuntimeSession {
    /// Taken (and so killed) by `DELETE`; tunnels still open then end with it.
    process: Mutex<Option<Hud06Process>>,
    hook: Arc<dyn GatewayHook>,
}

impl Drop for RuntimeSession {
    fn drop(&mut self) {
        // Ends the recording: a task left ungraded is recorded as cancelled.
        self.hook.record(GatewayEvent::Closed);
    }
}

/// The body hud's `HUDRuntime` sends.
#[derive(Debug, Deserialize)]
pub(crate) struct CreateSession {
    environment: String,
    /// The client's trace id (kept in the logs only: rollout names its own traces).
    trace_id: Option<String>,
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(
        "runtime_session_not_found",
        format!("no runtime session '{id}' for this project"),
    )
}

/// `POST /runtime/sessions`: starts the environment, answers `{"id"}`.
pub(crate) async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(runtime): Extension<Arc<Runtime>>,
    ApiJson(request): ApiJson<CreateSession>,
) -> Result<Json<Value>, ApiError> {
    // Each session is an environment process: a key holds at most the MCP gateway's
    // number of sessions (`[gateway] max_sessions_per_key`).
    let max = state.config.gateway.max_sessions_per_key;
    let slot = runtime
        .sessions
        .take_slot(&caller.key_id, max)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_sessions",
                format!("this API key has {max} runtime sessions open; delete one first"),
            )
        })?;
    let name = request.environment;
    let (version, target) =
        crate::gateway::ready_version(&state, &caller.project_id, &name).await?;
    if !target.is_hud06() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_a_hud06_environment",
            format!(
                "environment '{name}' speaks the hud 0.5 scenario protocol (MCP), which hud 0.6 \
                 clients cannot drive; reach it with a 0.5 client through the MCP gateway \
                 (HUD_MCP_URL={}/v1/mcp)",
                state.config.public_url.trim_end_matches('/')
            ),
        ));
    }
    let sandbox = state.config.sandbox.for_env(&caller.project_id, &name);
    let label = format!("{name}@v{} runtime", version.version);
    let started = tokio::time::timeout(
        state.config.gateway.connect_timeout,
        Hud06Process::start(&target, &label, &sandbox),
    )
    .await;
    let unavailable = |message: String| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "environment_unavailable",
            message,
        )
    };
    let process = match started {
        Ok(Ok(process)) => process,
        Ok(Err(error)) => return Err(unavailable(error.to_string())),
        Err(_) => {
            return Err(unavailable(format!(
                "environment '{name}' did not start within {} s",
                state.config.gateway.connect_timeout.as_secs()
            )));
        }
    };
    let id = rollout_domain::new_id();
    tracing::info!(session = %id, env = %name, client_trace = ?request.trace_id, "hud 0.6 runtime session started");
    let hook = crate::gateway::spawn_recorder(&state, &caller, &name, version.version);
    let session = Arc::new(RuntimeSession {
        process: Mutex::new(Some(process)),
        hook,
    });
    runtime
        .sessions
        .insert(&id, &caller.project_id, session, slot);
    Ok(Json(json!({ "id": id })))
}

/// `DELETE /runtime/sessions/{id}`: kills the environment.
pub(crate) async fn delete(
    Extension(caller): Extension<Caller>,
    Extension(runtime): Extension<Arc<Runtime>>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let session = runtime
        .sessions
        .get(&id, &caller.project_id)
        .ok_or_else(|| not_found(&id))?;
    runtime.sessions.remove(&id);
    drop(
        session
            .process
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take(),
    );
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /runtime/tunnels/{id}` (WebSocket): one client TCP connection, spliced to the
/// environment's port.
pub(crate) async fn tunnel(
    Extension(caller): Extension<Caller>,
    Extension(runtime): Extension<Arc<Runtime>>,
    Path(id): Path<String>,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let session = runtime
        .sessions
        .get(&id, &caller.project_id)
        .ok_or_else(|| not_found(&id))?;
    let address = session
        .process
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
        .map(Hud06Process::address)
        .ok_or_else(|| not_found(&id))?;
    Ok(upgrade.on_upgrade(move |socket| async move {
        if let Err(error) = splice(socket, address, &session).await {
            tracing::debug!(%error, "a hud 0.6 runtime tunnel ended");
        }
    }))
}

/// Copies binary messages to the environment and its bytes back, reading the control
/// connection's frames on the way, until either side closes.
async fn splice(
    socket: WebSocket,
    address: std::net::SocketAddr,
    session: &RuntimeSession,
) -> Result<(), String> {
    let stream = tokio::net::TcpStream::connect(address)
        .await
        .map_err(|e| format!("the environment is gone: {e}"))?;
    let (mut env_read, mut env_write) = stream.into_split();
    let (mut client_tx, mut client_rx) = socket.split();
    let mut sniffer = ControlSniffer::new(session.hook.clone());
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        tokio::select! {
            message = client_rx.next() => {
                let bytes = match message {
                    Some(Ok(Message::Binary(bytes))) => bytes.to_vec(),
                    Some(Ok(Message::Text(text))) => text.as_str().as_bytes().to_vec(),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(_))) | None => break,
                    Some(Err(error)) => return Err(error.to_string()),
                };
                sniffer.client_bytes(&bytes);
                env_write.write_all(&bytes).await.map_err(|e| e.to_string())?;
            }
            read = env_read.read(&mut buffer) => {
                let read = read.map_err(|e| e.to_string())?;
                if read == 0 {
                    break;
                }
                let bytes = &buffer[..read];
                sniffer.env_bytes(bytes);
                client_tx
                    .send(Message::Binary(bytes.to_vec().into()))
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
    }
    let _ = client_tx.close().await;
    Ok(())
}
