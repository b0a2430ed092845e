//! The scenario's verdict, as hud 0.5's `EvaluationResult` puts it on the wire.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The evaluation of a run: what `resources/read` of the scenario returned.
///
/// Field names follow hud's JSON (`isError`), and unknown keys are kept in `extra`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    #[serde(default)]
    pub reward: f64,
    #[serde(default = "default_true")]
    pub done: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(default)]
    pub info: Map<String, Value>,
    #[serde(default, rename = "isError")]
    pub is_error: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscores: Option<Vec<SubScore>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn default_true() -> bool {
    true
}

impl Evaluation {
    /// An evaluation with only a reward.
    pub fn reward(reward: f64) -> Self {
        Self {
            reward,
            done: true,
            content: None,
            info: Map::new(),
            is_error: false,
            subscores: None,
            extra: Map::new(),
        }
    }

    /// Sets the explanation.
    pub fn with_content(mut self, content: impl Into<String>) -> Self {
        self.content = Some(content.into());
        self
    }

    /// Adds an `info` entry.
    pub fn with_info(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.info.insert(key.into(), value.into());
        self
    }

    /// Adds a weighted subscore.
    pub fn with_subscore(mut self, name: impl Into<String>, weight: f64, value: f64) -> Self {
        self.subscores.get_or_insert_with(Vec::new).push(SubScore {
            name: name.into(),
            weight,
            value,
        });
        self
    }
}

/// One weighted component of a reward.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubScore {
    pub name: String,
    #[serde(default = "default_weight")]
    pub weight: f64,
    pub value: f64,
}

fn default_weight() -> f64 {
    1.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_hud_wire_json_and_keeps_unknown_keys() {
        let text = r#"{"reward": 1.0, "done": true, "content": "ok", "info": {"a": 1}, "isError": false, "subscores": [{"name": "correct", "weight": 1.0, "value": 1.0}], "extra_field": 7}"#;
        let evaluation: Evaluation = serde_json::from_str(text).unwrap();
        assert_eq!(evaluation.reward, 1.0);
        assert_eq!(evaluation.extra.get("extra_field"), Some(&Value::from(7)));
        assert_eq!(evaluation.subscores.as_ref().map(Vec::len), Some(1));
        let back = serde_json::to_value(&evaluation).unwrap();
        assert_eq!(back["isError"], Value::Bool(false));
        assert_eq!(back["extra_field"], Value::from(7));
    }

    #[test]
    fn a_bare_reward_is_a_valid_evaluation() {
        let evaluation: Evaluation = serde_json::from_str(r#"{"reward": 0.5}"#).unwrap();
        assert!(evaluation.done);
        assert!(!evaluation.is_error);
    }
}
