//! The MCP gateway: a streamable-HTTP MCP server whose every session is a faithful proxy to
//! a fresh session of a hosted environment (a new process for a stdio environment).
//!
//! Requests are forwarded as they are (tools, including hidden `_` tools; prompts, i.e.
//! scenario setup; resources, i.e. evaluation). What happens is reported to a
//! [`GatewayHook`] as [`GatewayEvent`]s made of domain types, so that the caller can record
//! the session as a trace without seeing rmcp. Dropping a session (client `DELETE`, idle
//! timeout) drops the upstream session, which kills a stdio environment's process group.

use crate::client::{EnvSession, EnvTarget};
use crate::sandbox::EnvSandbox;
use crate::wire;
use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, ErrorData, GetPromptRequestParams, GetPromptResponse,
    Implementation, InitializeRequestParams, InitializeResult, ListPromptsResult,
    ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
    ProtocolVersion, ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities,
    ServerConfig,
};
use rmcp::service::{RequestContext, ServiceError};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{RoleServer, ServerHandler};
use rollout_domain::{Evaluation, ToolCall, ToolResult, ToolSpec};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The hidden tool through which clients hand in the answer.
const SUBMIT_TOOL: &str = "_hud_submit";

/// What happened in a gateway session, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum GatewayEvent {
    /// The upstream environment session is up and the client initialized.
    Connected {
        /// `clientInfo.name` from the client's `initialize` (may be empty).
        client_name: String,
        /// The environment's `serverInfo.name`.
        server_name: String,
        duration_ms: u64,
    },
    /// A scenario was set up (`prompts/get` of `env:scenario`).
    Setup {
        /// The scenario id (`env:scenario`).
        scenario_id: String,
        /// The prompt arguments as sent on the wire.
        arguments: Map<String, Value>,
        prompt: String,
        /// The tools visible after setup (`_` tools left out).
        tools: Vec<ToolSpec>,
        duration_ms: u64,
    },
    /// A tool call (not `_hud_submit`) and its result.
    ToolCall {
        call: ToolCall,
        result: ToolResult,
        duration_ms: u64,
    },
    /// The answer handed in through `_hud_submit`.
    Submitted { answer: String },
    /// The scenario's evaluation (`resources/read` of its id).
    Evaluated {
        scenario_id: String,
        evaluation: Evaluation,
        duration_ms: u64,
    },
    /// Reading the evaluation failed.
    EvaluationFailed {
        scenario_id: String,
        message: String,
    },
    /// The session ended (client `DELETE`, idle timeout, or the server stopping).
    Closed,
}

/// Receives a gateway session's events. Called inline: keep it quick (send to a channel).
pub trait GatewayHook: Send + Sync + 'static {
    /// Records one event.
    fn record(&self, event: GatewayEvent);
}

/// Which `Host` headers the gateway accepts (protection against DNS rebinding).
#[derive(Debug, Clone, PartialEq)]
pub enum AllowedHosts {
    /// These hosts or `host:port` authorities only.
    Only(Vec<String>),
    /// Any host (only behind a proxy that checks it).
    Any,
}

/// Settings of the gateway's HTTP service.
#[derive(Debug, Clone)]
pub struct GatewaySettings {
    /// A session without any request for this long is closed (its environment killed).
    pub idle_timeout: Duration,
    /// Accepted `Host` headers.
    pub allowed_hosts: AllowedHosts,
    /// Accepted `Origin` headers (browsers); empty: requests with an `Origin` are refused.
    pub allowed_origins: Vec<String>,
    /// Budget to start the upstream environment during `initialize`.
    pub connect_timeout: Duration,
}

/// The upstream environment of one gateway session.
#[derive(Debug, Clone)]
pub struct Upstream {
    pub target: EnvTarget,
    /// Tags the environment's stderr lines in the logs.
    pub label: String,
    /// The sandbox a stdio environment starts in.
    pub sandbox: EnvSandbox,
}

/// The gateway's MCP endpoint: one session manager shared by every request.
#[derive(Clone)]
pub struct GatewayService {
    manager: Arc<LocalSessionManager>,
    config: StreamableHttpServerConfig,
    connect_timeout: Duration,
    /// Ends the open response streams when the server stops.
    stop: tokio_util::sync::CancellationToken,
}

impl fmt::Debug for GatewayService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GatewayService").finish_non_exhaustive()
    }
}

/// Who handles a new session's `initialize`.
pub struct NewSession {
    upstream: Upstream,
    hook: Arc<dyn GatewayHook>,
}

impl NewSession {
    /// A new session proxying to `upstream` and reporting to `hook`.
    pub fn new(upstream: Upstream, hook: Arc<dyn GatewayHook>) -> Self {
        Self { upstream, hook }
    }
}

impl GatewayService {
    /// The service, with its idle timeout and host checks.
    pub fn new(settings: &GatewaySettings) -> Self {
        let mut manager = LocalSessionManager::default();
        manager.session_config.keep_alive = Some(settings.idle_timeout);
        let config = StreamableHttpServerConfig::default();
        let config = match &settings.allowed_hosts {
            AllowedHosts::Only(hosts) => config.with_allowed_hosts(hosts.clone()),
            AllowedHosts::Any => config.disable_allowed_hosts(),
        };
        let config = if settings.allowed_origins.is_empty() {
            config.enforce_origin_validation()
        } else {
            config.with_allowed_origins(settings.allowed_origins.clone())
        };
        let stop = tokio_util::sync::CancellationToken::new();
        let config = config.with_cancellation_token(stop.clone());
        Self {
            manager: Arc::new(manager),
            config,
            connect_timeout: settings.connect_timeout,
            stop,
        }
    }

    /// Closes every session (their environments are killed) and ends the open response
    /// streams, so that a graceful shutdown does not wait for clients.
    pub async fn shutdown(&self) {
        use rmcp::transport::streamable_http_server::session::SessionManager;
        self.stop.cancel();
        let ids: Vec<_> = self.manager.sessions.read().await.keys().cloned().collect();
        for id in ids {
            if let Err(error) = self.manager.close_session(&id).await {
                tracing::warn!(%error, "could not close a gateway session");
            }
        }
    }

    /// Handles one HTTP request. `new_session` serves a request that opens a session
    /// (`initialize`); without it such a request is refused.
    pub async fn handle(&self, request: Request, new_session: Option<NewSession>) -> Response {
        let slot = Mutex::new(new_session);
        let connect_timeout = self.connect_timeout;
        let factory = move || {
            let taken = slot.lock().map(|mut slot| slot.take()).ok().flatten();
            match taken {
                Some(new) => Ok(GatewayHandler::new(new, connect_timeout)),
                None => Err(std::io::Error::other("no session can be opened here")),
            }
        };
        let service =
            StreamableHttpService::new(factory, self.manager.clone(), self.config.clone());
        let is_delete = request.method() == Method::DELETE;
        let mut response = service.handle(request).await.into_response();
        // rmcp answers a session DELETE with 202; the Python MCP client expects 200/204.
        if is_delete && response.status() == StatusCode::ACCEPTED {
            *response.status_mut() = StatusCode::OK;
        }
        response
    }
}

/// One gateway session: the MCP server side facing the client, the upstream session
/// (opened at `initialize`) facing the environment.
struct GatewayHandler {
    upstream: Upstream,
    connect_timeout: Duration,
    hook: Arc<dyn GatewayHook>,
    session: tokio::sync::OnceCell<EnvSession>,
    /// The active scenario id (from the last setup).
    scenario: Mutex<Option<String>>,
}

impl Drop for GatewayHandler {
    fn drop(&mut self) {
        self.hook.record(GatewayEvent::Closed);
    }
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// An upstream failure as the client sees it: the environment's own MCP errors pass
/// through unchanged; a broken connection is an internal error.
fn upstream_error(operation: &str, error: ServiceError) -> ErrorData {
    match error {
        ServiceError::McpError(error) => error,
        other => ErrorData::internal_error(format!("environment {operation}: {other}"), None),
    }
}

impl GatewayHandler {
    fn new(new: NewSession, connect_timeout: Duration) -> Self {
        Self {
            upstream: new.upstream,
            connect_timeout,
            hook: new.hook,
            session: tokio::sync::OnceCell::new(),
            scenario: Mutex::new(None),
        }
    }

    fn session(&self) -> Result<&EnvSession, ErrorData> {
        self.session
            .get()
            .ok_or_else(|| ErrorData::internal_error("the environment is not connected", None))
    }

    fn active_scenario(&self) -> Option<String> {
        self.scenario.lock().ok().and_then(|s| s.clone())
    }
}

impl ServerHandler for GatewayHandler {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_prompts()
            .enable_resources()
            .enable_tools()
            .build();
        let mut info = ServerConfig::new(capabilities);
        let (name, version) = match self.session.get() {
            Some(session) => (
                session.server_name().to_string(),
                session.server_version().to_string(),
            ),
            None => ("rollout-gateway".to_string(), String::new()),
        };
        info.server_info = Implementation::new(name, version);
        info.protocol_version = ProtocolVersion::LATEST_WITH_INITIALIZE;
        info
    }

    /// Scenario state lives in the MCP session, so stay on versions that have sessions.
    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Borrowed(ProtocolVersion::known_up_to(
            &ProtocolVersion::LATEST_WITH_INITIALIZE,
        ))
    }

    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, ErrorData> {
        context.peer.set_peer_info(request.clone());
        let started = Instant::now();
        let upstream = &self.upstream;
        let session = self
            .session
            .get_or_try_init(|| async {
                let connect =
                    EnvSession::connect(&upstream.target, &upstream.label, &upstream.sandbox);
                match tokio::time::timeout(self.connect_timeout, connect).await {
                    Ok(Ok(session)) => Ok(session),
                    Ok(Err(error)) => Err(ErrorData::internal_error(
                        format!("the environment did not start: {error}"),
                        None,
                    )),
                    Err(_) => Err(ErrorData::internal_error(
                        format!(
                            "the environment did not start within {} s",
                            self.connect_timeout.as_secs()
                        ),
                        None,
                    )),
                }
            })
            .await?;
        self.hook.record(GatewayEvent::Connected {
            client_name: request.client_info.name.clone(),
            server_name: session.server_name().to_string(),
            duration_ms: elapsed_ms(started),
        });
        self.negotiate_initialize(&request)
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let peer = self.session()?.peer();
        peer.list_tools(request)
            .await
            .map_err(|e| upstream_error("tools/list", e))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let peer = self.session()?.peer();
        let name = request.name.to_string();
        let arguments = Value::Object(request.arguments.clone().unwrap_or_default());
        let started = Instant::now();
        let response = peer
            .call_tool_once(request)
            .await
            .map_err(|e| upstream_error("tools/call", e))?;
        if name == SUBMIT_TOOL {
            if let CallToolResponse::Complete(result) = &response
                && result.is_error != Some(true)
            {
                let answer = arguments
                    .get("answer")
                    .map(|answer| match answer {
                        Value::String(text) => text.clone(),
                        other => other.to_string(),
                    })
                    .unwrap_or_default();
                self.hook.record(GatewayEvent::Submitted { answer });
            }
        } else {
            let call_id = format!("call_{}", rollout_domain::new_id());
            let result = match &response {
                CallToolResponse::Complete(result) => {
                    wire::tool_result(&call_id, &wire::to_json(result))
                }
                _ => ToolResult::error(&call_id, "the environment asked the client for input"),
            };
            self.hook.record(GatewayEvent::ToolCall {
                call: ToolCall {
                    id: call_id,
                    name,
                    arguments,
                },
                result,
                duration_ms: elapsed_ms(started),
            });
        }
        Ok(response)
    }

    async fn list_prompts(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        let peer = self.session()?.peer();
        peer.list_prompts(request)
            .await
            .map_err(|e| upstream_error("prompts/list", e))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let session = self.session()?;
        let scenario_id = request.name.clone();
        let arguments = request.arguments.clone().unwrap_or_default();
        let started = Instant::now();
        let response = session
            .peer()
            .get_prompt_once(request)
            .await
            .map_err(|e| upstream_error("prompts/get", e))?;
        if let GetPromptResponse::Complete(result) = &response {
            let duration_ms = elapsed_ms(started);
            let prompt = wire::prompt_text(&wire::to_json(result));
            if let Ok(mut active) = self.scenario.lock() {
                *active = Some(scenario_id.clone());
            }
            // The tools as a model would see them now (scenario filters applied).
            let tools = session.visible_tools().await.unwrap_or_default();
            self.hook.record(GatewayEvent::Setup {
                scenario_id,
                arguments,
                prompt,
                tools,
                duration_ms,
            });
        }
        Ok(response)
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let peer = self.session()?.peer();
        peer.list_resources(request)
            .await
            .map_err(|e| upstream_error("resources/list", e))
    }

    async fn list_resource_templates(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        let peer = self.session()?.peer();
        match peer.list_resource_templates(request).await {
            Ok(result) => Ok(result),
            // Environments without templates answer "method not found".
            Err(ServiceError::McpError(_)) => Ok(ListResourceTemplatesResult::default()),
            Err(e) => Err(upstream_error("resources/templates/list", e)),
        }
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let peer = self.session()?.peer();
        let uri = request.uri.clone();
        let is_scenario = self.active_scenario().as_deref() == Some(uri.as_str());
        let started = Instant::now();
        let response = peer.read_resource_once(request).await;
        if !is_scenario {
            return response.map_err(|e| upstream_error("resources/read", e));
        }
        let duration_ms = elapsed_ms(started);
        let evaluation = match &response {
            Ok(ReadResourceResponse::Complete(result)) => wire::evaluation(&wire::to_json(result)),
            Ok(_) => Err("the environment asked the client for input".to_string()),
            Err(ServiceError::McpError(error)) => Err(error.message.to_string()),
            Err(other) => Err(other.to_string()),
        };
        match evaluation {
            Ok(evaluation) => self.hook.record(GatewayEvent::Evaluated {
                scenario_id: uri,
                evaluation,
                duration_ms,
            }),
            Err(message) => self.hook.record(GatewayEvent::EvaluationFailed {
                scenario_id: uri,
                message,
            }),
        }
        response.map_err(|e| upstream_error("resources/read", e))
    }
}
