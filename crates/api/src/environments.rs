//! Environments: registration, bundles, versions.

use rollout_domain::ToolSpec;
use rollout_domain::scenario::ScenarioArg;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

/// The body of `POST /v1/environments`: a name and exactly one of `command`, `url` or `git`;
/// or, with `protocol: "hud-0.6"`, one of `command` or `address` (`tcp://host:port`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "my-assistant", "command": ["python3", "env.py"]}))]
pub struct RegisterRequest {
    pub name: String,
    /// A program and its arguments, speaking MCP over stdio.
    pub command: Option<Vec<String>>,
    /// A streamable-HTTP MCP server.
    pub url: Option<String>,
    /// The protocol the environment speaks: `hud-0.5-mcp` (the default) or `hud-0.6`.
    pub protocol: Option<String>,
    /// Where a running hud 0.6 environment listens (`tcp://host:port`).
    pub address: Option<String>,
    /// Request headers for `url` (shown redacted).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub headers: Map<String, Value>,
    /// Environment variables for `command` (shown redacted).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub env: Map<String, Value>,
    pub cwd: Option<String>,
    /// A git repository to clone and build like a bundle.
    pub git: Option<GitRequest>,
    /// The project to register in (operators only; default: the caller's). It must exist.
    pub project: Option<String>,
}

/// The `git` member of `POST /v1/environments`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GitRequest {
    /// An https or ssh URL (`file://` and local paths when the operator allows them).
    pub url: String,
    /// A branch, tag or commit (default: the default branch).
    #[serde(rename = "ref")]
    pub reference: Option<String>,
}

/// One version of an environment. Header and environment-variable values of the source
/// are redacted (`***`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EnvVersion {
    pub version: i64,
    /// `ready` or `failed`.
    pub status: String,
    /// How it was registered (`command`, `url`, `bundle`, `git`, ...).
    #[schema(value_type = Object)]
    pub source: Value,
    pub error: Option<String>,
    pub created_at: String,
}

/// A scenario an environment offers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Scenario {
    pub name: String,
    /// `env:scenario`.
    pub id: String,
    pub description: String,
    /// `[{"name", "required", "schema", "default"}]`.
    #[schema(value_type = Vec<Object>)]
    pub arguments: Vec<ScenarioArg>,
    /// A JSON Schema (object) of the arguments.
    #[schema(value_type = Object)]
    pub args_schema: Value,
    /// The JSON Schema of the structured answer (hud's `returns=`), when the scenario has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub returns_schema: Option<Value>,
}

/// An environment: its serving version's offer and every version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Environment {
    pub name: String,
    /// `ready` when a version serves, else `failed`.
    pub status: String,
    pub serving_version: Option<i64>,
    pub server_name: String,
    /// `[{"name", "description", "input_schema"}]`.
    #[schema(value_type = Vec<Object>)]
    pub tools: Vec<ToolSpec>,
    pub scenarios: Vec<Scenario>,
    pub versions: Vec<EnvVersion>,
}

/// `GET /v1/environments/{name}`: the environment and its MCP gateway URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EnvironmentDetail {
    #[serde(flatten)]
    pub environment: Environment,
    pub mcp_url: String,
}

/// The answer of a deploy: the environment, the version deployed, and its build log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Deployed {
    #[serde(flatten)]
    pub environment: Environment,
    pub deployed_version: i64,
    /// True when the bundle matched an existing version (200 rather than 201).
    pub unchanged: bool,
    pub build_log: String,
}

/// A line of the environment list: its newest version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EnvironmentLine {
    pub name: String,
    pub latest_version: i64,
    pub status: String,
    /// Tool names.
    pub tools: Vec<String>,
    /// Scenario names.
    pub scenarios: Vec<String>,
    pub error: Option<String>,
    pub created_at: String,
}

/// `GET /v1/environments`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EnvironmentList {
    pub environments: Vec<EnvironmentLine>,
}

/// `?force=` of `DELETE /v1/environments/{name}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeleteQuery {
    /// `true` cancels the environment's queued and running runs first; without it, such
    /// runs answer 409.
    pub force: Option<String>,
}

/// The answer of `DELETE /v1/environments/{name}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Deleted {
    pub name: String,
    pub deleted_versions: u64,
    pub cancelled_runs: Vec<String>,
}

/// `GET /v1/models`: the models a run may name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ModelList {
    pub models: Vec<Model>,
}

/// A model of the catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Model {
    pub name: String,
    pub provider: String,
    pub upstream: String,
    /// False when a call would fail at once (for example, the key is missing).
    pub available: bool,
    /// Why the model is not available.
    pub reason: Option<String>,
    pub description: Option<String>,
    /// Set when the model is a checkpoint: `{"base_model", "backend", ...}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub checkpoint: Option<Value>,
    /// USD per million tokens, when known.
    pub price: Option<Price>,
}

/// USD per million input and output tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Price {
    pub input: f64,
    pub output: f64,
}
