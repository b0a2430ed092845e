//! The MCP gateway's HTTP side: `/v1/environments/{name}/mcp` and the hud hub convention
//! `/v1/mcp` (environment from the `Environment-Name` header). Authentication is the usual
//! Bearer API key (the hud SDK sends `Authorization: Bearer $HUD_API_KEY` to the host of
//! `HUD_MCP_URL`); sessions belong to the project and environment that opened them, are
//! limited per key, and each scenario played in one is recorded as a run (its trace).
//!
//! The proxy itself (rmcp) is `rollout_mcp::gateway`; this module only sees its events.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use axum::Extension;
use axum::extract::{Path, Request};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use rollout_domain::{EventKind, RunId, RunSpec, RunStatus};
use rollout_mcp::EnvTarget;
use rollout_mcp::gateway::{
    AllowedHosts, GatewayEvent, GatewayHook, GatewayService, GatewaySettings, NewSession, Upstream,
};
use rollout_store::FinishRun;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// Who holds the lease of a gateway run.
const OWNER: &str = rollout_store::GATEWAY_OWNER;
/// The lease of a gateway run, renewed every third of it while the session lives.
const LEASE: Duration = Duration::from_secs(60);
/// The MCP session header.
const SESSION_HEADER: &str = "mcp-session-id";

/// Settings of the MCP gateway.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// A session without requests for this long is closed and its environment killed.
    pub idle_timeout: Duration,
    /// Open sessions per API key; more answer 429.
    pub max_sessions_per_key: usize,
    /// Accepted `Host` headers besides loopback and the public URL's host; `*` accepts any
    /// (for deployments behind a proxy that checks it).
    pub allowed_hosts: Vec<String>,
    /// Budget to start an environment when a session opens.
    pub connect_timeout: Duration,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(600),
            max_sessions_per_key: 16,
            allowed_hosts: Vec::new(),
            connect_timeout: Duration::from_secs(60),
        }
    }
}

/// The gateway's shared state: the MCP service and who owns which session.
pub(crate) struct Gateway {
    service: GatewayService,
    registry: Arc<Registry>,
}

#[derive(Default)]
struct Registry {
    /// Session id → (project, environment).
    sessions: Mutex<HashMap<String, (String, String)>>,
    /// API key id → open sessions.
    per_key: Mutex<HashMap<String, usize>>,
}

impl Registry {
    fn owner(&self, session: &str) -> Option<(String, String)> {
        self.sessions.lock().ok()?.get(session).cloned()
    }

    fn forget(&self, session: &str) {
        if let Ok(mut sessions) = self.sessions.lock() {
            sessions.remove(session);
        }
    }

    /// Takes a session slot of `key`, or `None` when it has `max` open.
    fn take_slot(self: &Arc<Self>, key: &str, max: usize) -> Option<Slot> {
        let mut per_key = self.per_key.lock().ok()?;
        let open = per_key.entry(key.to_string()).or_insert(0);
        if *open >= max {
            return None;
        }
        *open += 1;
        Some(Slot {
            registry: self.clone(),
            key: key.to_string(),
            session: Arc::new(Mutex::new(None)),
        })
    }
}

/// One open session's place in the registry, released when the session ends.
struct Slot {
    registry: Arc<Registry>,
    key: String,
    /// The session id, once the `initialize` response named it.
    session: Arc<Mutex<Option<String>>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut per_key) = self.registry.per_key.lock()
            && let Some(open) = per_key.get_mut(&self.key)
        {
            *open = open.saturating_sub(1);
            if *open == 0 {
                per_key.remove(&self.key);
            }
        }
        if let Some(session) = self.session.lock().ok().and_then(|s| s.clone()) {
            self.registry.forget(&session);
        }
    }
}

impl Gateway {
    /// The gateway of a server: hosts allowed are loopback, the public URL's host and the
    /// configured ones.
    pub(crate) fn new(config: &crate::ServerConfig) -> Self {
        let gateway = &config.gateway;
        let allowed_hosts = if gateway.allowed_hosts.iter().any(|host| host == "*") {
            AllowedHosts::Any
        } else {
            let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "::1", "[::1]"]
                .into_iter()
                .map(String::from)
                .collect();
            if let Some(host) = authority(&config.public_url) {
                hosts.push(host);
            }
            hosts.extend(gateway.allowed_hosts.iter().cloned());
            AllowedHosts::Only(hosts)
        };
        let allowed_origins = origin(&config.public_url).into_iter().collect();
        Self {
            service: GatewayService::new(&GatewaySettings {
                idle_timeout: gateway.idle_timeout,
                allowed_hosts,
                allowed_origins,
                connect_timeout: gateway.connect_timeout,
            }),
            registry: Arc::new(Registry::default()),
        }
    }
}

impl Gateway {
    /// Closes every session, for a graceful shutdown, and gives their recorders a moment to
    /// finish their runs (`cancelled`) while the store is still open.
    pub(crate) async fn shutdown(&self) {
        self.service.shutdown().await;
        let recorded = tokio::time::timeout(Duration::from_secs(5), async {
            while self
                .registry
                .per_key
                .lock()
                .is_ok_and(|open| !open.is_empty())
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        if recorded.is_err() {
            tracing::warn!(
                "gateway sessions still recording at shutdown; their runs end when their leases expire"
            );
        }
    }
}

/// `host[:port]` of a URL.
fn authority(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    (!authority.is_empty()).then(|| authority.to_string())
}

/// `scheme://host[:port]` of a URL.
fn origin(url: &str) -> Option<String> {
    let scheme = url.split_once("://")?.0;
    Some(format!("{scheme}://{}", authority(url)?))
}

/// The MCP URL of an environment on this server.
pub(crate) fn mcp_url(state: &AppState, name: &str) -> String {
    format!(
        "{}/v1/environments/{name}/mcp",
        state.config.public_url.trim_end_matches('/')
    )
}

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
    let session = request
        .headers()
        .get(SESSION_HEADER)
        .and_then(|value| value.to_str().ok())
        .map(String::from);
    if let Some(session) = session {
        // A session is reachable only from the project and environment that opened it.
        let expected = (caller.project_id.clone(), name.to_string());
        if gateway.registry.owner(&session) != Some(expected) {
            return session_not_found().into_response();
        }
        let is_delete = request.method() == Method::DELETE;
        let response = gateway.service.handle(request, None).await;
        if is_delete && response.status().is_success() {
            gateway.registry.forget(&session);
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
    let version = state
        .store
        .latest_ready_version(&caller.project_id, name)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(
                "environment_not_found",
                format!("environment '{name}' has no ready version"),
            )
        })?;
    let target: EnvTarget = serde_json::from_value(version.source.clone()).map_err(|e| {
        ApiError::internal(format!(
            "environment '{name}' has an unreadable source: {e}"
        ))
    })?;
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
    let session_id = slot.session.clone();
    let (tx, rx) = mpsc::unbounded_channel();
    let recorder = Recorder {
        state: state.clone(),
        project_id: caller.project_id.clone(),
        key_id: caller.key_id.clone(),
        env_name: name.to_string(),
        env_version: version.version,
    };
    tokio::spawn(recorder.run(rx, Some(slot)));
    let upstream = Upstream {
        target,
        label: format!("{name}@v{} gateway", version.version),
        sandbox,
    };
    let hook: Arc<dyn GatewayHook> = Arc::new(ChannelHook(tx));
    let response = gateway
        .service
        .handle(request, Some(NewSession::new(upstream, hook)))
        .await;
    if let Some(id) = response
        .headers()
        .get(SESSION_HEADER)
        .and_then(|value| value.to_str().ok())
    {
        if let Ok(mut sessions) = gateway.registry.sessions.lock() {
            sessions.insert(
                id.to_string(),
                (caller.project_id.clone(), name.to_string()),
            );
        }
        if let Ok(mut slot_session) = session_id.lock() {
            *slot_session = Some(id.to_string());
        }
    }
    Ok(response)
}

/// Starts a recorder for a session that is not the MCP gateway's own (a hud 0.6 client's
/// runtime session, `runtime.rs`): its events become runs like a gateway session's.
pub(crate) fn spawn_recorder(
    state: &AppState,
    caller: &Caller,
    env_name: &str,
    env_version: i64,
) -> Arc<dyn GatewayHook> {
    let (tx, rx) = mpsc::unbounded_channel();
    let recorder = Recorder {
        state: state.clone(),
        project_id: caller.project_id.clone(),
        key_id: caller.key_id.clone(),
        env_name: env_name.to_string(),
        env_version,
    };
    tokio::spawn(recorder.run(rx, None));
    Arc::new(ChannelHook(tx))
}

/// Hands the proxy's events to the recorder task, in order.
struct ChannelHook(mpsc::UnboundedSender<GatewayEvent>);

impl GatewayHook for ChannelHook {
    fn record(&self, event: GatewayEvent) {
        let _ = self.0.send(event);
    }
}

/// Records a gateway session's scenarios as runs.
struct Recorder {
    state: AppState,
    project_id: String,
    /// The API key that opened the session (usage per key).
    key_id: String,
    env_name: String,
    env_version: i64,
}

/// The run of the scenario being played.
struct ActiveRun {
    id: RunId,
    lease: rollout_store::Lease,
    /// Metrics and spans of the run, as for the worker's runs.
    observer: rollout_telemetry::RunObserver,
    steps: u32,
    answer: Option<String>,
}

impl Recorder {
    async fn run(self, mut events: mpsc::UnboundedReceiver<GatewayEvent>, slot: Option<Slot>) {
        let mut client = String::new();
        let mut connected: Option<(String, u64)> = None;
        let mut active: Option<ActiveRun> = None;
        let mut heartbeat = tokio::time::interval(LEASE / 3);
        loop {
            let event = tokio::select! {
                event = events.recv() => event,
                _ = heartbeat.tick() => {
                    if let Some(run) = &active
                        && let Err(error) = self.state.store.heartbeat(&run.lease, LEASE).await
                    {
                        tracing::warn!(run = %run.id, %error, "could not renew a gateway run's lease");
                    }
                    continue;
                }
            };
            let Some(event) = event else { break };
            match event {
                GatewayEvent::Connected {
                    client_name,
                    server_name,
                    duration_ms,
                } => {
                    client = client_name;
                    connected = Some((server_name, duration_ms));
                }
                GatewayEvent::Setup {
                    scenario_id,
                    arguments,
                    prompt,
                    tools,
                    duration_ms,
                } => {
                    if let Some(run) = active.take() {
                        let message = "the client set up another scenario before the evaluation";
                        self.finish(run, RunStatus::Cancelled, None, Some(message.into()))
                            .await;
                    }
                    let setup = EventKind::Setup {
                        scenario_id: scenario_id.clone(),
                        arguments: arguments.clone(),
                        prompt,
                        tools,
                        duration_ms,
                    };
                    match self
                        .start(&client, &scenario_id, arguments, connected.as_ref())
                        .await
                    {
                        Ok((lease, observer)) => {
                            let id = lease.run_id.clone();
                            self.append(&id, Some(&observer), &setup).await;
                            active = Some(ActiveRun {
                                id,
                                lease,
                                observer,
                                steps: 0,
                                answer: None,
                            });
                        }
                        Err(error) => {
                            tracing::error!(%error, "could not record a gateway session's run")
                        }
                    }
                }
                GatewayEvent::ToolCall {
                    call,
                    result,
                    duration_ms,
                } => {
                    let Some(run) = active.as_mut() else {
                        continue;
                    };
                    run.steps += 1;
                    let event = EventKind::ToolCall {
                        step: run.steps,
                        call_id: call.id,
                        name: call.name,
                        arguments: call.arguments,
                        result,
                        duration_ms,
                    };
                    self.append(&run.id, Some(&run.observer), &event).await;
                }
                GatewayEvent::Submitted { answer } => {
                    let Some(run) = active.as_mut() else {
                        continue;
                    };
                    run.answer = Some(answer.clone());
                    let event = EventKind::Answer {
                        text: answer,
                        outcome: "answered".into(),
                    };
                    self.append(&run.id, Some(&run.observer), &event).await;
                }
                GatewayEvent::Evaluated {
                    evaluation,
                    duration_ms,
                    ..
                } => {
                    let Some(run) = active.take() else {
                        continue;
                    };
                    let event = EventKind::Evaluation {
                        evaluation: evaluation.clone(),
                        duration_ms,
                    };
                    self.append(&run.id, Some(&run.observer), &event).await;
                    self.finish(run, RunStatus::Completed, Some(evaluation), None)
                        .await;
                }
                GatewayEvent::EvaluationFailed { message, .. } => {
                    let Some(run) = active.take() else {
                        continue;
                    };
                    let event = EventKind::Error {
                        phase: "grading".into(),
                        message: message.clone(),
                    };
                    self.append(&run.id, Some(&run.observer), &event).await;
                    self.finish(run, RunStatus::Failed, None, Some(message))
                        .await;
                }
                GatewayEvent::Closed => break,
            }
        }
        if let Some(run) = active.take() {
            let message = "the MCP session ended (closed by the client, idle, or server shutdown) before the evaluation";
            self.finish(run, RunStatus::Cancelled, None, Some(message.into()))
                .await;
        }
        drop(slot);
    }

    /// Inserts the run of a scenario just set up, `running`, with its first events.
    async fn start(
        &self,
        client: &str,
        scenario_id: &str,
        arguments: Map<String, Value>,
        connected: Option<&(String, u64)>,
    ) -> Result<(rollout_store::Lease, rollout_telemetry::RunObserver), rollout_store::StoreError>
    {
        let scenario_name = scenario_id
            .split_once(':')
            .map_or(scenario_id, |(_, name)| name)
            .to_string();
        // The client is the agent: its model is unknown to rollout.
        let model = "external".to_string();
        let mut metadata = Map::new();
        metadata.insert("source".into(), Value::String("mcp_gateway".into()));
        if !client.trim().is_empty() {
            metadata.insert("client".into(), Value::String(client.to_string()));
        }
        let config = &self.state.config;
        let spec = RunSpec {
            env_name: self.env_name.clone(),
            env_version: self.env_version,
            scenario_name,
            scenario_args: arguments,
            model,
            max_steps: 0,
            system_prompt: None,
            validation: Vec::new(),
            metadata,
            agent_timeout_seconds: config.gateway.idle_timeout.as_secs(),
            grading_timeout_seconds: config.grading_timeout_seconds,
            max_total_tokens: None,
            max_cost_usd: None,
            callback: None,
            key_id: Some(self.key_id.clone()),
            traceparent: None,
        };
        let id = RunId::generate();
        let claimed = self
            .state
            .store
            .insert_running_run(&id, &self.project_id, &spec, OWNER, LEASE)
            .await?;
        let observer = config.telemetry.start_run(rollout_telemetry::RunStart {
            run_id: id.to_string(),
            project: self.project_id.clone(),
            environment: spec.env_name.clone(),
            env_version: spec.env_version,
            scenario: spec.scenario_name.clone(),
            arguments: spec.scenario_args.clone(),
            model: spec.model.clone(),
            provider: spec.model.clone(),
            attempt: 1,
            created_at_ms: claimed.run.created_at_ms,
            claimed_at_ms: claimed.run.created_at_ms,
            traceparent: None,
        });
        self.append(
            &id,
            Some(&observer),
            &EventKind::AttemptStarted {
                attempt: 1,
                worker: OWNER.into(),
            },
        )
        .await;
        if let Some((server_name, duration_ms)) = connected {
            self.append(
                &id,
                Some(&observer),
                &EventKind::EnvConnected {
                    server_name: server_name.clone(),
                    version: self.env_version,
                    duration_ms: *duration_ms,
                },
            )
            .await;
        }
        Ok((claimed.lease, observer))
    }

    async fn append(
        &self,
        run_id: &RunId,
        observer: Option<&rollout_telemetry::RunObserver>,
        event: &EventKind,
    ) {
        match self.state.store.append_event(run_id, 1, event).await {
            Ok(appended) => {
                if let Some(observer) = observer {
                    observer.event(&appended);
                }
                self.state.notifier.event_appended(run_id.clone());
            }
            Err(error) => {
                tracing::error!(run = %run_id, %error, "could not record a gateway event")
            }
        }
    }

    async fn finish(
        &self,
        run: ActiveRun,
        status: RunStatus,
        evaluation: Option<rollout_domain::Evaluation>,
        error: Option<String>,
    ) {
        let finish = FinishRun {
            status,
            outcome: run.answer.as_ref().map(|_| "answered".to_string()),
            reward: evaluation.as_ref().map(|evaluation| evaluation.reward),
            evaluation,
            final_response: run.answer,
            steps: i64::from(run.steps),
            usage: Default::default(),
            error,
        };
        match self.state.store.finish_run(&run.lease, &finish).await {
            Ok(true) => {
                tracing::info!(run = %run.id, status = %status, reward = ?finish.reward, "gateway run finished");
                run.observer.finish(&rollout_telemetry::RunEnd {
                    status,
                    outcome: finish.outcome.clone(),
                    reward: finish.reward,
                    evaluation: finish.evaluation.clone(),
                    error: finish.error.clone(),
                    steps: finish.steps,
                    usage: finish.usage,
                    ended_at_ms: rollout_domain::time::now_ms(),
                });
                self.state.notifier.run_finished(run.id, status);
            }
            Ok(false) => {
                tracing::warn!(run = %run.id, "a gateway run was no longer ours to finish")
            }
            Err(error) => tracing::error!(run = %run.id, %error, "could not finish a gateway run"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authority_and_origin_of_urls() {
        assert_eq!(
            authority("http://127.0.0.1:8300/x").as_deref(),
            Some("127.0.0.1:8300")
        );
        assert_eq!(
            origin("https://rollout.example.com").as_deref(),
            Some("https://rollout.example.com")
        );
        assert_eq!(authority("nonsense"), None);
    }

    #[test]
    fn slots_are_limited_per_key_and_released_on_drop() {
        let registry = Arc::new(Registry::default());
        let first = registry.take_slot("k", 2);
        let second = registry.take_slot("k", 2);
        assert!(first.is_some() && second.is_some());
        assert!(registry.take_slot("k", 2).is_none());
        assert!(registry.take_slot("other", 2).is_some());
        drop(first);
        assert!(registry.take_slot("k", 2).is_some());
    }
}
