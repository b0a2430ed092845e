//! The ports the agent loop consumes. Implementations live elsewhere: model clients in
//! `rollout-models`, the MCP tool host in `rollout-mcp`, the event sink in `rollout-worker`.

use crate::error::{ModelError, RecordError, ToolError};
use crate::event::EventKind;
use crate::message::{Message, ToolCall, ToolResult, ToolSpec, Usage};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// One model call's input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRequest {
    /// The system prompt, if any (providers place it where their format wants it).
    pub system: Option<String>,
    pub messages: Vec<Message>,
    pub tools: Vec<ToolSpec>,
}

/// Why the model stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The model finished its turn.
    EndTurn,
    /// The model asked for tool calls.
    ToolUse,
    /// The output token limit was hit.
    MaxTokens,
    /// Anything else the provider reported.
    Other,
}

impl StopReason {
    /// A stable name for traces.
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::EndTurn => "end_turn",
            StopReason::ToolUse => "tool_use",
            StopReason::MaxTokens => "max_tokens",
            StopReason::Other => "other",
        }
    }
}

/// One model call's output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelResponse {
    /// The assistant message, with any tool calls it requests.
    pub message: Message,
    pub usage: Usage,
    pub stop_reason: StopReason,
    /// The model id the provider reports having used.
    pub upstream_model: String,
}

/// Something that answers model requests: a provider client, the replay model, a double.
#[async_trait]
pub trait ModelClient: Send + Sync {
    /// Sends one request. Retries are the implementation's business; an error here is final.
    async fn complete(&self, request: &ModelRequest) -> Result<ModelResponse, ModelError>;
}

/// Something that executes tool calls: an environment session, or a double.
#[async_trait]
pub trait ToolHost: Send + Sync {
    /// Executes one tool call. A tool that reports an error returns `Ok` with
    /// `is_error`; `Err` means the environment itself failed.
    async fn call_tool(&self, call: &ToolCall) -> Result<ToolResult, ToolError>;
}

/// Where the loop records what happens, as it happens.
#[async_trait]
pub trait EventSink: Send + Sync {
    /// Appends one event to the run's trace.
    async fn record(&self, event: EventKind) -> Result<(), RecordError>;
}
