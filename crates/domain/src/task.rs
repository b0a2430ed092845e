//! Tasks and tasksets: a task is one scenario call with its arguments (hud's task format),
//! a taskset is a named, ordered list of tasks that jobs evaluate models on.

use crate::run::ValidationItem;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One task in hud's format: `{env, scenario, args, validation, agent_config: {system_prompt},
/// metadata}`. `env` may be a name or `{"name": ...}`; it is written back as a name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Task {
    /// A stable id within its taskset; generated on import when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The environment's name.
    #[serde(with = "env_ref")]
    pub env: String,
    /// The scenario, bare or as `env:scenario`.
    pub scenario: String,
    #[serde(default)]
    pub args: Map<String, Value>,
    /// Actions for the `replay` model.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub validation: Vec<ValidationItem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_config: Option<AgentConfig>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub metadata: Map<String, Value>,
}

impl Task {
    /// The task's own system prompt, if its `agent_config` has one.
    pub fn system_prompt(&self) -> Option<&str> {
        self.agent_config
            .as_ref()
            .and_then(|config| config.system_prompt.as_deref())
    }
}

/// hud's `agent_config` of a task. Only the system prompt is read; other keys are kept.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_prompt: Option<String>,
    /// Other agent settings, kept as they came.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `env` as a bare name or an object with a `name`.
mod env_ref {
    use serde::{Deserialize, Deserializer, Serializer};
    use serde_json::Value;

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum EnvRef {
        Name(String),
        Object { name: String },
    }

    pub(super) fn serialize<S: Serializer>(name: &str, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(name)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<String, D::Error> {
        let value = Value::deserialize(deserializer)?;
        match serde_json::from_value::<EnvRef>(value) {
            Ok(EnvRef::Name(name) | EnvRef::Object { name }) => Ok(name),
            Err(_) => Err(serde::de::Error::custom(
                "env must be a name or an object with a \"name\"",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn env_is_a_name_or_an_object_and_is_written_as_a_name() {
        let task: Task = serde_json::from_value(json!({
            "env": {"name": "my-assistant"},
            "scenario": "answer_question",
            "args": {"query": "What is 2 + 2?"},
            "validation": [{"answer": "4"}],
            "agent_config": {"system_prompt": "be brief", "temperature": 0},
            "metadata": {"level": 1}
        }))
        .unwrap();
        assert_eq!(task.env, "my-assistant");
        assert_eq!(task.system_prompt(), Some("be brief"));
        let back = serde_json::to_value(&task).unwrap();
        assert_eq!(back["env"], "my-assistant");
        assert_eq!(back["agent_config"]["temperature"], 0);
        let named: Task =
            serde_json::from_value(json!({"env": "my-assistant", "scenario": "s"})).unwrap();
        assert_eq!(named.env, "my-assistant");
        assert!(serde_json::from_value::<Task>(json!({"env": 3, "scenario": "s"})).is_err());
        assert!(
            serde_json::from_value::<Task>(json!({"env": "e", "scenario": "s", "argz": {}}))
                .is_err()
        );
    }
}
