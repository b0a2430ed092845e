//! Tasksets: named lists of tasks (environment, scenario, arguments).

use rollout_domain::Task;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

/// The body of `POST /v1/tasksets`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "arith", "tasks": [{"env": "calc", "scenario": "add", "args": {"a": 1, "b": 2}}]}))]
pub struct CreateTaskset {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Tasks in hud's format: `{"id", "env", "scenario", "args", "validation"}`; each is
    /// checked against its environment's scenario.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub tasks: Vec<Value>,
}

/// The body of `POST /v1/tasksets/{name}/tasks`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddTasks {
    #[schema(value_type = Vec<Object>)]
    pub tasks: Vec<Value>,
}

/// Query of `POST /v1/tasksets/{name}/import`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// The description of a taskset the import creates.
    pub description: Option<String>,
}

/// A taskset; `tasks` only when one taskset is asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Taskset {
    pub name: String,
    pub description: String,
    pub task_count: i64,
    pub created_at: String,
    pub updated_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub tasks: Option<Vec<Task>>,
}

/// The answer of an import: the taskset and how many tasks the file added.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Imported {
    #[serde(flatten)]
    pub taskset: Taskset,
    pub imported: usize,
}

/// `GET /v1/tasksets`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TasksetList {
    pub tasksets: Vec<Taskset>,
}
