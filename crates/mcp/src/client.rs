//! The client side: connect to an environment and speak the hud 0.5 scenario protocol.
//!
//! A stdio environment is a child process started in its sandbox ([`crate::sandbox`]), in
//! its own process group, killed (the whole group) when the session is dropped: hud
//! environments ignore stdin EOF, so a polite close would cost seconds per run and risk
//! orphans (see dependencies.md §2.4).

mod http_client;
mod stderr;

use crate::error::EnvError;
use crate::sandbox::{EnvSandbox, ProcessLimits, ProcessRole, ProcessSpec, WorkDir};
use crate::wire;
use async_trait::async_trait;
use http_client::SessionHttpClient;
use process_wrap::tokio::{CommandWrap, KillOnDrop, ProcessGroup};
use rmcp::model::{
    CallToolRequestParams, GetPromptRequestParams, JsonObject, ReadResourceRequestParams,
};
use rmcp::service::{RunningService, ServiceError};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{RoleClient, ServiceExt};
use rollout_domain::{
    EnvDescription, Evaluation, ScenarioSpec, ToolCall, ToolError, ToolHost, ToolResult, ToolSpec,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
pub use stderr::StderrTail;

/// How long a failed connection waits for the environment's last stderr lines.
const STDERR_SETTLE: Duration = Duration::from_secs(2);

/// Where an environment lives and how to reach it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EnvTarget {
    /// A program the server keeps running (one or more replicas) that serves streamable
    /// HTTP on 127.0.0.1. `{port}` in the command (and the `PORT` variable) is the port a
    /// replica must listen on. Reached through the worker's replica manager, which turns it
    /// into a `Url` target; listed first so that `port` tells it apart from `Command`.
    Served {
        command: Vec<String>,
        /// The port to listen on; 0 lets the server pick a free one per replica.
        port: u16,
        /// The MCP path, e.g. `/mcp`.
        path: String,
        /// How many processes serve sessions (each serves many at once).
        replicas: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cwd: Option<PathBuf>,
        #[serde(default, skip_serializing_if = "Map::is_empty")]
        env: Map<String, Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limits: Option<ProcessLimits>,
    },
    /// A hud 0.6 environment started by the server: a program that announces its control
    /// port (`HUD_SERVE_PORT=`) and speaks the 0.6 task protocol there ([`crate::hud06`]).
    /// `protocol: "hud-0.6"` tells it apart from `Command`.
    Hud06Command {
        protocol: crate::hud06::Hud06Protocol,
        command: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cwd: Option<PathBuf>,
        #[serde(default, skip_serializing_if = "Map::is_empty")]
        env: Map<String, Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limits: Option<ProcessLimits>,
    },
    /// A hud 0.6 environment already served by someone else (`tcp://host:port`).
    Hud06Address {
        protocol: crate::hud06::Hud06Protocol,
        address: String,
    },
    /// A program spoken to over stdio.
    Command {
        command: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cwd: Option<PathBuf>,
        #[serde(default, skip_serializing_if = "Map::is_empty")]
        env: Map<String, Value>,
        /// Resource limits a bundle's manifest asks for (the server's defaults otherwise).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limits: Option<ProcessLimits>,
    },
    /// A streamable-HTTP MCP endpoint.
    Url {
        url: String,
        #[serde(default, skip_serializing_if = "Map::is_empty")]
        headers: Map<String, Value>,
    },
}

impl EnvTarget {
    /// Whether the target speaks the hud 0.6 task protocol (else MCP).
    pub fn is_hud06(&self) -> bool {
        matches!(
            self,
            EnvTarget::Hud06Command { .. } | EnvTarget::Hud06Address { .. }
        )
    }

    /// A short description for logs and errors (no header values: they may hold secrets).
    pub fn describe(&self) -> String {
        match self {
            EnvTarget::Command { command, .. }
            | EnvTarget::Served { command, .. }
            | EnvTarget::Hud06Command { command, .. } => command.join(" "),
            EnvTarget::Url { url, .. } => url.clone(),
            EnvTarget::Hud06Address { address, .. } => address.clone(),
        }
    }
}

/// The result of setting up a scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Setup {
    /// The prompt the agent receives.
    pub prompt: String,
    /// The arguments as sent on the wire (strings).
    pub arguments: Map<String, Value>,
    /// The result's `_meta` (hud clients read tool filters here).
    pub meta: Map<String, Value>,
}

/// One MCP session with an environment. Dropping it ends the session and, for a stdio
/// environment, kills its process group.
pub struct EnvSession {
    service: RunningService<RoleClient, ()>,
    server_name: String,
    server_version: String,
    stderr: StderrTail,
    /// The process group of a stdio environment (its leader's pid), killed on drop.
    process_group: Option<u32>,
    /// Its private work directory, removed after the processes are killed (fields are
    /// dropped after `drop` runs).
    _work_dir: Option<WorkDir>,
}

impl Drop for EnvSession {
    /// Kills a stdio environment's whole process group at once, synchronously: rmcp's own
    /// close first waits seconds for the leader and never reaches the processes it started,
    /// so a cancelled run would otherwise leave them behind.
    fn drop(&mut self) {
        if let Some(group) = self.process_group {
            kill_process_group(group);
        }
    }
}

/// Sends SIGKILL to a process group. A group that already exited is fine.
#[cfg(unix)]
pub(crate) fn kill_process_group(group: u32) {
    use nix::sys::signal::{Signal, killpg};
    use nix::unistd::Pid;
    let Ok(raw) = i32::try_from(group) else {
        return;
    };
    if raw <= 1 {
        return;
    }
    match killpg(Pid::from_raw(raw), Signal::SIGKILL) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
        Err(error) => {
            tracing::warn!(group, %error, "could not kill an environment's process group")
        }
    }
}

#[cfg(not(unix))]
pub(crate) fn kill_process_group(_group: u32) {}

impl EnvSession {
    /// Starts (a stdio environment, in `sandbox`) or reaches (an HTTP one) the environment
    /// and completes the MCP handshake. `label` tags the environment's stderr lines in the
    /// logs (environment, version, run).
    pub async fn connect(
        target: &EnvTarget,
        label: &str,
        sandbox: &EnvSandbox,
    ) -> Result<Self, EnvError> {
        let stderr = StderrTail::default();
        let mut process_group = None;
        let mut work_dir = None;
        let service = match target {
            EnvTarget::Command {
                command,
                cwd,
                env,
                limits,
            } => {
                let spec = ProcessSpec {
                    role: ProcessRole::Session,
                    command,
                    cwd: cwd.as_deref(),
                    env: crate::sandbox::variables(env),
                    limits: limits.as_ref(),
                };
                let (transport, dir) = spawn(&spec, sandbox, label, &stderr)?;
                process_group = transport.id();
                work_dir = Some(dir);
                match ().serve(transport).await {
                    Ok(service) => service,
                    Err(e) => {
                        let stderr_tail = stderr.settled_text(STDERR_SETTLE).await;
                        if let Some(group) = process_group {
                            kill_process_group(group);
                        }
                        return Err(EnvError::Connect {
                            message: e.to_string(),
                            stderr_tail,
                        });
                    }
                }
            }
            EnvTarget::Hud06Command { .. } | EnvTarget::Hud06Address { .. } => {
                return Err(EnvError::Connect {
                    message: "a hud 0.6 environment speaks the task protocol, not MCP; \
                              it is reached through its control channel"
                        .into(),
                    stderr_tail: String::new(),
                });
            }
            EnvTarget::Served { .. } => {
                return Err(EnvError::Connect {
                    message: "an HTTP environment started by the server is reached through \
                              its replicas' URL, not directly"
                        .into(),
                    stderr_tail: String::new(),
                });
            }
            EnvTarget::Url { url, headers } => {
                let transport = http_transport(url, headers)?;
                ().serve(transport).await.map_err(|e| EnvError::Connect {
                    message: format!("{url}: {e}"),
                    stderr_tail: String::new(),
                })?
            }
        };
        let (server_name, server_version) = service
            .peer_info()
            .and_then(|info| info.server_info.clone())
            .map(|server| (server.name, server.version))
            .unwrap_or_default();
        Ok(Self {
            service,
            server_name,
            server_version,
            stderr,
            process_group,
            _work_dir: work_dir,
        })
    }

    /// True once the connection is gone (the process exited, the server went away).
    pub fn is_closed(&self) -> bool {
        self.service.is_closed()
    }

    /// `serverInfo.name` from the handshake.
    pub fn server_name(&self) -> &str {
        &self.server_name
    }

    /// The last lines the environment wrote to stderr.
    pub fn stderr_tail(&self) -> String {
        self.stderr.text()
    }

    /// `serverInfo.version` from the handshake.
    pub fn server_version(&self) -> &str {
        &self.server_version
    }

    /// The rmcp peer, for the gateway's faithful forwarding.
    pub(crate) fn peer(&self) -> &rmcp::Peer<RoleClient> {
        self.service.peer()
    }

    /// Reads the environment's tools and scenarios.
    pub async fn describe(&self) -> Result<EnvDescription, EnvError> {
        let tools = self.list_tools_raw().await?;
        let prompts = match self.service.list_all_prompts().await {
            Ok(prompts) => prompts.iter().map(wire::to_json).collect::<Vec<_>>(),
            // A plain MCP server without prompts has no scenarios.
            Err(ServiceError::McpError(_)) => Vec::new(),
            Err(e) => return Err(self.failed("prompts/list", e).await),
        };
        Ok(wire::description(
            self.server_name.clone(),
            self.server_version.clone(),
            &tools,
            &prompts,
        ))
    }

    /// The tools a model may see now (`_`-prefixed tools left out). Listed after setup,
    /// this reflects the active scenario's tool filters.
    pub async fn visible_tools(&self) -> Result<Vec<ToolSpec>, EnvError> {
        Ok(self
            .list_tools_raw()
            .await?
            .iter()
            .filter_map(wire::tool_spec)
            .filter(|tool| wire::is_visible_tool(&tool.name))
            .collect())
    }

    async fn list_tools_raw(&self) -> Result<Vec<Value>, EnvError> {
        let tools = self.service.list_all_tools().await;
        match tools {
            Ok(tools) => Ok(tools.iter().map(wire::to_json).collect()),
            Err(e) => Err(self.failed("tools/list", e).await),
        }
    }

    /// Sets up a scenario (`prompts/get` of its id) and returns the prompt.
    pub async fn setup(
        &self,
        scenario: &ScenarioSpec,
        args: &Map<String, Value>,
    ) -> Result<Setup, EnvError> {
        let arguments = wire::encode_prompt_arguments(args);
        let string_args: JsonObject = arguments.clone();
        let params = GetPromptRequestParams::new(scenario.id.clone()).with_arguments(string_args);
        let result = match self.service.get_prompt(params).await {
            Ok(result) => result,
            Err(e) => return Err(self.failed("scenario setup (prompts/get)", e).await),
        };
        let result = wire::to_json(&result);
        let prompt = wire::prompt_text(&result);
        if prompt.trim().is_empty() {
            return Err(EnvError::InvalidResponse {
                operation: "scenario setup (prompts/get)",
                message: format!("scenario '{}' returned an empty prompt", scenario.id),
            });
        }
        let meta = result
            .get("_meta")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        Ok(Setup {
            prompt,
            arguments,
            meta,
        })
    }

    /// Calls a tool. JSON-RPC errors (unknown tool, bad arguments) become error results
    /// the model can read; only a broken connection is an `EnvError`.
    pub async fn call(&self, call: &ToolCall) -> Result<ToolResult, EnvError> {
        let arguments = match &call.arguments {
            Value::Object(map) => map.clone(),
            Value::Null => Map::new(),
            other => {
                return Ok(ToolResult::error(
                    &call.id,
                    format!("tool arguments must be a JSON object, got: {other}"),
                ));
            }
        };
        let params = CallToolRequestParams::new(call.name.clone()).with_arguments(arguments);
        match self.service.call_tool(params).await {
            Ok(result) => Ok(wire::tool_result(&call.id, &wire::to_json(&result))),
            Err(ServiceError::McpError(error)) => Ok(ToolResult::error(
                &call.id,
                format!("Error calling tool '{}': {}", call.name, error.message),
            )),
            Err(e) => Err(self.failed("tools/call", e).await),
        }
    }

    /// Hands the final answer to the active scenario through the hidden `_hud_submit` tool,
    /// as hud's own client does for structured answers (protocol §5.4–5.5).
    pub async fn submit(&self, scenario_name: &str, answer: &str) -> Result<(), EnvError> {
        let mut arguments = Map::new();
        arguments.insert("scenario".into(), Value::String(scenario_name.into()));
        arguments.insert(
            "answer".into(),
            Value::String(wire::submitted_answer(answer)),
        );
        let call = ToolCall {
            id: "submit".into(),
            name: "_hud_submit".into(),
            arguments: Value::Object(arguments),
        };
        let result = self.call(&call).await?;
        if result.is_error {
            return Err(EnvError::Request {
                operation: "answer submission (_hud_submit)",
                message: result.text,
            });
        }
        Ok(())
    }

    /// Reads the scenario's evaluation (`resources/read` of its id). This ends the scenario.
    pub async fn evaluate(&self, scenario_id: &str) -> Result<Evaluation, EnvError> {
        let params = ReadResourceRequestParams::new(scenario_id.to_string());
        let result = match self.service.read_resource(params).await {
            Ok(result) => result,
            Err(e) => return Err(self.failed("evaluation (resources/read)", e).await),
        };
        wire::evaluation(&wire::to_json(&result)).map_err(|message| EnvError::InvalidResponse {
            operation: "evaluation (resources/read)",
            message,
        })
    }

    /// The error of a failed request; a broken connection carries the environment's last
    /// stderr lines (waiting briefly for them: a process that just died may be explaining).
    async fn failed(&self, operation: &'static str, error: ServiceError) -> EnvError {
        match error {
            ServiceError::McpError(error) => EnvError::Request {
                operation,
                message: error.message.to_string(),
            },
            ServiceError::Timeout { timeout } => EnvError::Timeout {
                operation,
                seconds: timeout.as_secs(),
            },
            other => EnvError::Transport {
                operation,
                message: other.to_string(),
                stderr_tail: self.stderr.settled_text(STDERR_SETTLE).await,
            },
        }
    }
}

#[async_trait]
impl ToolHost for EnvSession {
    async fn call_tool(&self, call: &ToolCall) -> Result<ToolResult, ToolError> {
        self.call(call).await.map_err(|e| ToolError {
            tool: call.name.clone(),
            message: e.to_string(),
        })
    }
}

/// Spawns a stdio environment in its sandbox and its own process group, with stderr
/// captured.
fn spawn(
    spec: &ProcessSpec<'_>,
    sandbox: &EnvSandbox,
    label: &str,
    stderr: &StderrTail,
) -> Result<(TokioChildProcess, WorkDir), EnvError> {
    let shown = spec.command.join(" ");
    let sandboxed = sandbox.command(spec).map_err(|source| EnvError::Spawn {
        command: shown.clone(),
        source,
    })?;
    let mut wrapped = CommandWrap::from(sandboxed.command);
    wrapped.wrap(KillOnDrop).wrap(ProcessGroup::leader());
    let (transport, child_stderr) = TokioChildProcess::builder(wrapped)
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| EnvError::Spawn {
            command: shown,
            source,
        })?;
    if let Some(child_stderr) = child_stderr {
        stderr.follow(child_stderr, label.to_string());
    }
    Ok((transport, sandboxed.work_dir))
}

/// The HTTP client of every streamable-HTTP session of the process: building a client reads
/// and parses the system's TLS root certificates, which a client per session paid on every
/// run (a tenth of the server's CPU under load, by `perf`); one client also keeps one
/// connection pool to each environment.
fn shared_http_client() -> Result<reqwest::Client, reqwest::Error> {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    if let Some(client) = CLIENT.get() {
        return Ok(client.clone());
    }
    // reqwest is built with `rustls-no-provider`: the provider must be installed first.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder().build()?;
    Ok(CLIENT.get_or_init(|| client).clone())
}

/// A streamable-HTTP transport with the target's headers, over the process's one client
/// (without the standalone SSE stream: [`SessionHttpClient`]).
fn http_transport(
    url: &str,
    headers: &Map<String, Value>,
) -> Result<StreamableHttpClientTransport<SessionHttpClient>, EnvError> {
    let invalid = |message: String| EnvError::Connect {
        message,
        stderr_tail: String::new(),
    };
    let mut custom = HashMap::new();
    for (name, value) in headers {
        let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| invalid(format!("invalid header name '{name}': {e}")))?;
        let value = value
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| value.to_string());
        let value = reqwest::header::HeaderValue::from_str(&value)
            .map_err(|e| invalid(format!("invalid value for header '{name}': {e}")))?;
        custom.insert(name, value);
    }
    let client = shared_http_client()
        .map_err(|e| invalid(format!("could not build an HTTP client: {e}")))?;
    let config =
        StreamableHttpClientTransportConfig::with_uri(Arc::<str>::from(url)).custom_headers(custom);
    Ok(StreamableHttpClientTransport::with_client(
        SessionHttpClient(client),
        config,
    ))
}
