//! What a run is asked to do, and where it stands.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;
use std::str::FromStr;

/// The default step budget of a run.
pub const DEFAULT_MAX_STEPS: u32 = 100;
/// The largest step budget a run may ask for.
pub const MAX_MAX_STEPS: u32 = 500;

/// Everything needed to execute one run, as accepted by the API and stored with the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    pub env_name: String,
    /// The environment version the run uses; set when the run is accepted.
    pub env_version: i64,
    /// The bare scenario name (without the `env:` prefix).
    pub scenario_name: String,
    #[serde(default)]
    pub scenario_args: Map<String, Value>,
    pub model: String,
    pub max_steps: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_prompt: Option<String>,
    /// Actions for the `replay` model (hud's Task `validation` field).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub validation: Vec<ValidationItem>,
    #[serde(default)]
    pub metadata: Map<String, Value>,
    /// Wall-clock budget of the agent phase, in seconds.
    pub agent_timeout_seconds: u64,
    /// Wall-clock budget of grading (submit + evaluation), in seconds.
    pub grading_timeout_seconds: u64,
    /// Tokens (input + output, summed over model calls) after which the agent is stopped;
    /// the run is still graded, with outcome `token_budget_exceeded`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_total_tokens: Option<u64>,
    /// Cost in USD (the model's price times the tokens used) after which the agent is
    /// stopped; the run is still graded, with outcome `cost_budget_exceeded`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cost_usd: Option<f64>,
    /// Where to POST the run's summary when it ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback: Option<crate::CallbackSpec>,
    /// The id of the API key that started the run (usage per key), when a key did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// The W3C `traceparent` of the request that created the run: its exported spans are
    /// children of the caller's trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

/// One action of a `validation` list: a tool call, or (rollout's extension) the final answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ValidationItem {
    Answer {
        answer: String,
    },
    ToolCall {
        name: String,
        #[serde(default = "empty_object")]
        arguments: Value,
    },
}

fn empty_object() -> Value {
    Value::Object(Map::new())
}

/// Where a run stands. The last four are terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Queued,
    Running,
    Completed,
    Failed,
    Cancelled,
    TimedOut,
}

impl RunStatus {
    /// The stable string used on the API and in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
            RunStatus::TimedOut => "timed_out",
        }
    }

    /// True once the run can no longer change.
    pub fn is_terminal(self) -> bool {
        match self {
            RunStatus::Queued | RunStatus::Running => false,
            RunStatus::Completed
            | RunStatus::Failed
            | RunStatus::Cancelled
            | RunStatus::TimedOut => true,
        }
    }

    /// Every status, in lifecycle order.
    pub const ALL: [RunStatus; 6] = [
        RunStatus::Queued,
        RunStatus::Running,
        RunStatus::Completed,
        RunStatus::Failed,
        RunStatus::Cancelled,
        RunStatus::TimedOut,
    ];
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RunStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RunStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| format!("unknown run status '{s}'"))
    }
}

/// How the agent phase of a run ended. Both are outcomes, not failures: the run is
/// evaluated either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// The model gave a final answer (a response without tool calls).
    Answered,
    /// The step budget ran out; the run is evaluated with an empty answer.
    MaxStepsReached,
    /// The agent-time budget ran out; the run is evaluated with an empty answer.
    AgentTimeout,
    /// The token budget (`max_total_tokens`) ran out; the run is evaluated with an empty
    /// answer.
    TokenBudgetExceeded,
    /// The cost budget (`max_cost_usd`) ran out; the run is evaluated with an empty answer.
    CostBudgetExceeded,
}

impl RunOutcome {
    /// The stable string used on the API and in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Answered => "answered",
            RunOutcome::MaxStepsReached => "max_steps_reached",
            RunOutcome::AgentTimeout => "agent_timeout",
            RunOutcome::TokenBudgetExceeded => "token_budget_exceeded",
            RunOutcome::CostBudgetExceeded => "cost_budget_exceeded",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_items_parse_tool_calls_and_answers() {
        let items: Vec<ValidationItem> = serde_json::from_str(
            r#"[{"name": "calculator", "arguments": {"expression": "1+1"}}, {"answer": "2"}, {"name": "ping"}]"#,
        )
        .unwrap();
        assert_eq!(items.len(), 3);
        assert!(matches!(&items[1], ValidationItem::Answer { answer } if answer == "2"));
        assert!(
            matches!(&items[2], ValidationItem::ToolCall { arguments, .. } if arguments.is_object())
        );
    }

    #[test]
    fn status_round_trips_through_its_string() {
        for status in RunStatus::ALL {
            assert_eq!(status.as_str().parse::<RunStatus>().unwrap(), status);
        }
        assert!("nope".parse::<RunStatus>().is_err());
    }
}
