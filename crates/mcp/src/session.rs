//! One episode with an environment, whatever its protocol: the worker's execute path and
//! registration speak to this trait, and each protocol implements it (hud 0.5 over MCP:
//! [`EnvSession`]; hud 0.6 over its control channel: [`Hud06Session`]).

use crate::client::{EnvSession, EnvTarget, Setup};
use crate::error::EnvError;
use crate::hud06::Hud06Session;
use crate::sandbox::EnvSandbox;
use async_trait::async_trait;
use rollout_domain::{
    EnvDescription, Evaluation, ScenarioSpec, ToolCall, ToolError, ToolHost, ToolResult, ToolSpec,
};
use serde_json::{Map, Value};

/// A session with one environment for one scenario (a run, an introspection). Dropping it
/// ends the session and stops what it started.
#[async_trait]
pub trait ScenarioSession: ToolHost + Send + Sync {
    /// The environment's own name (`serverInfo.name`, or the 0.6 `hello`'s `env.name`).
    fn server_name(&self) -> &str;
    /// What the environment offers: tools and scenarios.
    async fn describe(&self) -> Result<EnvDescription, EnvError>;
    /// Starts the scenario with its arguments and returns the prompt.
    async fn setup(
        &self,
        scenario: &ScenarioSpec,
        args: &Map<String, Value>,
    ) -> Result<Setup, EnvError>;
    /// The tools a model may see now.
    async fn visible_tools(&self) -> Result<Vec<ToolSpec>, EnvError>;
    /// Hands in the final answer and reads the evaluation; this ends the scenario.
    async fn grade(&self, scenario: &ScenarioSpec, answer: &str) -> Result<Evaluation, EnvError>;
}

/// Starts or reaches the environment at `target` with the protocol it speaks.
pub async fn connect_session(
    target: &EnvTarget,
    label: &str,
    sandbox: &EnvSandbox,
) -> Result<Box<dyn ScenarioSession>, EnvError> {
    if target.is_hud06() {
        Ok(Box::new(
            Hud06Session::connect(target, label, sandbox).await?,
        ))
    } else {
        Ok(Box::new(EnvSession::connect(target, label, sandbox).await?))
    }
}

#[async_trait]
impl ScenarioSession for EnvSession {
    fn server_name(&self) -> &str {
        EnvSession::server_name(self)
    }

    async fn describe(&self) -> Result<EnvDescription, EnvError> {
        EnvSession::describe(self).await
    }

    async fn setup(
        &self,
        scenario: &ScenarioSpec,
        args: &Map<String, Value>,
    ) -> Result<Setup, EnvError> {
        EnvSession::setup(self, scenario, args).await
    }

    async fn visible_tools(&self) -> Result<Vec<ToolSpec>, EnvError> {
        EnvSession::visible_tools(self).await
    }

    async fn grade(&self, scenario: &ScenarioSpec, answer: &str) -> Result<Evaluation, EnvError> {
        self.submit(&scenario.name, answer).await?;
        self.evaluate(&scenario.id).await
    }
}

#[async_trait]
impl ToolHost for Hud06Session {
    async fn call_tool(&self, call: &ToolCall) -> Result<ToolResult, ToolError> {
        self.call(call).await.map_err(|e| ToolError {
            tool: call.name.clone(),
            message: e.to_string(),
        })
    }
}

#[async_trait]
impl ScenarioSession for Hud06Session {
    fn server_name(&self) -> &str {
        Hud06Session::server_name(self)
    }

    async fn describe(&self) -> Result<EnvDescription, EnvError> {
        Hud06Session::describe(self).await
    }

    async fn setup(
        &self,
        scenario: &ScenarioSpec,
        args: &Map<String, Value>,
    ) -> Result<Setup, EnvError> {
        Hud06Session::setup(self, scenario, args).await
    }

    async fn visible_tools(&self) -> Result<Vec<ToolSpec>, EnvError> {
        Hud06Session::visible_tools(self).await
    }

    async fn grade(&self, _scenario: &ScenarioSpec, answer: &str) -> Result<Evaluation, EnvError> {
        Hud06Session::grade(self, answer).await
    }
}
