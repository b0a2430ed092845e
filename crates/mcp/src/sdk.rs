//! The Rust SDK to write environments: tools and scenarios served over MCP with the hud 0.5
//! scenario protocol, so that rollout and the hud-python 0.5 client can both run them.
//!
//! An [`Environment`] has a name (normalized like hud's: `"My Assistant"` → `my-assistant`),
//! [`Tool`]s (typed async functions) and [`Scenario`]s. A scenario is one async function:
//! it gets its typed arguments and a [`ScenarioContext`], hands the prompt to the agent with
//! [`ScenarioContext::prompt`], gets the agent's [`Answer`] back, and returns the evaluation
//! (a reward `f64` or a full [`Evaluation`]).
//!
//! On the wire, scenario `S` of environment `E` is the prompt `E:S` (setup), the resource
//! `E:S` (evaluation) and the hidden tool `_hud_submit` (answer hand-in), with one active
//! scenario per MCP session. Argument schemas come from `schemars` and are enforced: a
//! prompt argument that does not fit is a JSON-RPC error, a tool argument that does not fit
//! is an `isError` result.
//!
//! ```no_run
//! use rollout_mcp::sdk::{Environment, Evaluation, Scenario, ScenarioContext, Tool, ToolFailure, ToolOutput};
//! use schemars::JsonSchema;
//! use serde::Deserialize;
//!
//! #[derive(Deserialize, JsonSchema)]
//! struct AddArgs {
//!     a: i64,
//!     b: i64,
//! }
//!
//! #[derive(Deserialize, JsonSchema)]
//! struct QuestionArgs {
//!     /// The question to answer.
//!     query: String,
//! }
//!
//! fn environment() -> Environment {
//!     Environment::new("My Assistant")
//!         .tool(Tool::new("add", "Add two integers.", |args: AddArgs| async move {
//!             let sum = args.a.checked_add(args.b).ok_or(ToolFailure::new("overflow"))?;
//!             Ok::<_, ToolFailure>(ToolOutput::text(sum.to_string()))
//!         }))
//!         .scenario(Scenario::new(
//!             "answer_question",
//!             "Answer a question.",
//!             |args: QuestionArgs, ctx: ScenarioContext| async move {
//!                 // Setup goes here; then hand out the prompt and wait for the answer.
//!                 let answer = ctx.prompt(format!("Answer this question: {}", args.query)).await;
//!                 let correct = answer.text().contains("391");
//!                 Evaluation::reward(if correct { 1.0 } else { 0.0 })
//!                     .with_content(format!("got '{}'", answer.text()))
//!                     .with_subscore("correct", 1.0, if correct { 1.0 } else { 0.0 })
//!             },
//!         ))
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), rollout_mcp::sdk::SdkError> {
//!     // stdio (what rollout and hud spawn); or `serve_http("127.0.0.1:8765".parse()?)`,
//!     // or mount `environment().http_service()` in your own axum router at `/mcp`.
//!     environment().serve_stdio().await
//! }
//! ```

mod error;
mod handler;
mod http;
mod names;
mod pyjson;
mod scenario;
mod schema;
mod session;
mod state;
mod tool;

pub use error::SdkError;
use http::HostCheck;
pub use http::HttpService;
pub use names::normalize_env_name;
pub use rollout_domain::{Evaluation, SubScore};
pub use scenario::{Answer, IntoEvaluation, Scenario, ScenarioContext};
pub use state::{SessionState, ToolContext};
pub use tool::{IntoToolOutput, NoArgs, Tool, ToolFailure, ToolOutput};

use handler::{EnvCore, EnvHandler, SUBMIT_TOOL};
use rmcp::ServiceExt;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

/// An environment: a named set of tools and scenarios, ready to serve over MCP.
///
/// Cheap to clone; every MCP session served from it gets its own scenario state.
#[derive(Debug, Clone)]
pub struct Environment {
    name: String,
    version: String,
    tools: Vec<Tool>,
    scenarios: Vec<Arc<Scenario>>,
    hosts: HostCheck,
}

impl Environment {
    /// A new environment; `name` is normalized like hud's (see [`normalize_env_name`]) and is
    /// the MCP `serverInfo.name` and the prefix of scenario ids.
    pub fn new(name: impl AsRef<str>) -> Self {
        Self {
            name: normalize_env_name(name.as_ref()),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            tools: Vec::new(),
            scenarios: Vec::new(),
            hosts: HostCheck::Loopback,
        }
    }

    /// Sets `serverInfo.version` (defaults to this SDK's version).
    pub fn with_version(mut self, version: impl Into<String>) -> Self {
        self.version = version.into();
        self
    }

    /// Adds a tool.
    ///
    /// # Panics
    /// If a tool with this name exists already, or the name is `_hud_submit` (reserved):
    /// both are programming errors, caught when the environment is built.
    pub fn tool(mut self, tool: Tool) -> Self {
        assert!(
            tool.name != SUBMIT_TOOL,
            "tool name '{SUBMIT_TOOL}' is reserved by the scenario protocol"
        );
        assert!(
            !self.tools.iter().any(|existing| existing.name == tool.name),
            "environment '{}' already has a tool named '{}'",
            self.name,
            tool.name
        );
        self.tools.push(tool);
        self
    }

    /// Adds a scenario.
    ///
    /// # Panics
    /// If the name contains `:` (hud refuses it too) or a scenario with this name exists.
    pub fn scenario(mut self, scenario: Scenario) -> Self {
        assert!(
            !scenario.name.contains(':'),
            "scenario name '{}' must not contain ':'",
            scenario.name
        );
        assert!(
            !self
                .scenarios
                .iter()
                .any(|existing| existing.name == scenario.name),
            "environment '{}' already has a scenario named '{}'",
            self.name,
            scenario.name
        );
        self.scenarios.push(Arc::new(scenario));
        self
    }

    /// Sets the `Host` header values the HTTP endpoint accepts (a DNS-rebinding guard).
    ///
    /// By default [`http_service`](Self::http_service) accepts loopback hosts only, and
    /// [`serve_http`](Self::serve_http) on a non-loopback address accepts any host.
    pub fn allow_hosts<I, S>(mut self, hosts: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.hosts = HostCheck::Only(hosts.into_iter().map(Into::into).collect());
        self
    }

    /// The normalized environment name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The tools, in the order they were added.
    pub fn tools(&self) -> &[Tool] {
        &self.tools
    }

    /// The scenarios, in the order they were added.
    pub fn scenarios(&self) -> impl Iterator<Item = &Scenario> {
        self.scenarios.iter().map(|scenario| scenario.as_ref())
    }

    fn core(&self) -> Arc<EnvCore> {
        Arc::new(EnvCore::new(
            self.name.clone(),
            self.version.clone(),
            self.tools.clone(),
            self.scenarios.clone(),
        ))
    }

    /// Serves one MCP session over stdin/stdout until the client closes it.
    pub async fn serve_stdio(self) -> Result<(), SdkError> {
        self.serve_io(tokio::io::join(tokio::io::stdin(), tokio::io::stdout()))
            .await
    }

    /// Serves one MCP session over any byte stream (newline-delimited JSON-RPC) until the
    /// client closes it. Tests use a `tokio::io::duplex` pipe.
    pub async fn serve_io<T>(self, io: T) -> Result<(), SdkError>
    where
        T: AsyncRead + AsyncWrite + Send + 'static,
    {
        let handler = EnvHandler::new(self.core());
        let running = handler
            .serve(io)
            .await
            .map_err(|error| SdkError::Initialize {
                env: self.name.clone(),
                message: error.to_string(),
            })?;
        running.waiting().await.map_err(|error| SdkError::Session {
            env: self.name.clone(),
            message: error.to_string(),
        })?;
        Ok(())
    }

    /// The MCP streamable-HTTP endpoint as a tower service, to mount at `/mcp` in an axum
    /// router. Sessions are stateful (`Mcp-Session-Id`), as hud's scenario state requires.
    pub fn http_service(&self) -> HttpService {
        HttpService::new(self.core(), self.hosts.clone())
    }

    /// Serves MCP over streamable HTTP at `http://addr/mcp` until the process ends.
    pub async fn serve_http(self, addr: SocketAddr) -> Result<(), SdkError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| SdkError::Io {
                env: self.name.clone(),
                source,
            })?;
        self.serve_http_listener(listener).await
    }

    /// Serves MCP over streamable HTTP at `/mcp` on an already bound listener (bind port 0
    /// and read `local_addr()` to pick a free port).
    pub async fn serve_http_listener(mut self, listener: TcpListener) -> Result<(), SdkError> {
        let local = listener.local_addr().map_err(|source| SdkError::Io {
            env: self.name.clone(),
            source,
        })?;
        if matches!(self.hosts, HostCheck::Loopback) && !local.ip().is_loopback() {
            // Bound for others to reach: accept any Host, like `hud dev` on 0.0.0.0.
            self.hosts = HostCheck::Any;
        }
        let router = axum::Router::new().nest_service("/mcp", self.http_service());
        tracing::info!(env = %self.name, %local, "serving mcp over streamable http at /mcp");
        // Without TCP_NODELAY a response written in two parts (headers, then an SSE event)
        // waits for the client's delayed ACK: about 40 ms per MCP request on loopback.
        use axum::serve::ListenerExt;
        let listener = listener.tap_io(|stream| {
            if let Err(error) = stream.set_nodelay(true) {
                tracing::debug!(%error, "could not set TCP_NODELAY");
            }
        });
        axum::serve(listener, router)
            .await
            .map_err(|source| SdkError::Io {
                env: self.name.clone(),
                source,
            })
    }
}
