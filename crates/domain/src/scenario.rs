//! What an environment offers, as introspected from it: tools and scenarios.

use crate::message::ToolSpec;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// What an environment offers, read from the environment itself.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EnvDescription {
    /// `serverInfo.name` from `initialize` (hud's normalized environment name).
    pub server_name: String,
    #[serde(default)]
    pub server_version: String,
    /// Tools visible to a model (names starting with `_` are left out).
    pub tools: Vec<ToolSpec>,
    pub scenarios: Vec<ScenarioSpec>,
}

impl EnvDescription {
    /// Finds a scenario by bare name or by `env:scenario` id.
    pub fn scenario(&self, name: &str) -> Option<&ScenarioSpec> {
        let bare = name.rsplit(':').next().unwrap_or(name);
        self.scenarios
            .iter()
            .find(|scenario| scenario.id == name || scenario.name == bare)
    }
}

/// One scenario: an MCP prompt named `env:scenario` plus its evaluation resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioSpec {
    /// The bare scenario name.
    pub name: String,
    /// The prompt name / resource URI, `env:scenario`.
    pub id: String,
    #[serde(default)]
    pub description: String,
    pub arguments: Vec<ScenarioArg>,
    /// A JSON Schema (object) for the arguments, built from `_meta.arguments`.
    pub args_schema: Value,
    /// The prompt's raw `_meta` (exclude_tools, returns_schema, code, ...).
    #[serde(default)]
    pub meta: Map<String, Value>,
}

/// One argument of a scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioArg {
    pub name: String,
    pub required: bool,
    /// The JSON Schema of this argument (`{"type": ...}` or hud's `inputSchema`).
    pub schema: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
}
