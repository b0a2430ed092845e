//! The `replay` model: plays a task's validation actions back without any LLM, so that an
//! environment can be checked for solvability and tests and demos run offline.

use async_trait::async_trait;
use rollout_domain::{
    Message, ModelClient, ModelError, ModelRequest, ModelResponse, StopReason, ToolCall, Usage,
    ValidationItem,
};
use std::sync::Mutex;

/// The upstream model name replay responses report.
pub const REPLAY_MODEL: &str = "replay";

/// Answers each call with the next validation item: a tool call item becomes one tool call
/// (ids `replay_1`, `replay_2`, ...), an answer item becomes the final text. Once the list is
/// exhausted it answers `""`. It holds per-run state: make one per run.
#[derive(Debug)]
pub struct ReplayModel {
    validation: Vec<ValidationItem>,
    state: Mutex<ReplayState>,
}

#[derive(Debug, Default)]
struct ReplayState {
    next_item: usize,
    tool_calls_made: usize,
}

impl ReplayModel {
    /// A replay of `validation`, from its first item.
    pub fn new(validation: Vec<ValidationItem>) -> Self {
        Self {
            validation,
            state: Mutex::default(),
        }
    }
}

#[async_trait]
impl ModelClient for ReplayModel {
    async fn complete(&self, _request: &ModelRequest) -> Result<ModelResponse, ModelError> {
        // A poisoned lock only means another call panicked; the counters are still valid.
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let item = self.validation.get(state.next_item);
        state.next_item += 1;
        let (message, stop_reason) = match item {
            Some(ValidationItem::ToolCall { name, arguments }) => {
                state.tool_calls_made += 1;
                let call = ToolCall {
                    id: format!("replay_{}", state.tool_calls_made),
                    name: name.clone(),
                    arguments: arguments.clone(),
                };
                (Message::assistant("", vec![call]), StopReason::ToolUse)
            }
            Some(ValidationItem::Answer { answer }) => (
                Message::assistant(answer.clone(), Vec::new()),
                StopReason::EndTurn,
            ),
            None => (Message::assistant("", Vec::new()), StopReason::EndTurn),
        };
        Ok(ModelResponse {
            message,
            usage: Usage::default(),
            stop_reason,
            upstream_model: REPLAY_MODEL.to_string(),
        })
    }
}
