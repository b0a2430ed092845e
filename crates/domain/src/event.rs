//! Trace events: the append-only record of a run.
//!
//! A model call event stores only the messages that were new since the previous call
//! (`new_messages`) plus the response, so that a long run does not store its history
//! once per step. The exact request of step `n` is the concatenation of the
//! `new_messages` of steps `1..=n`.

use crate::evaluation::Evaluation;
use crate::message::{Message, ToolResult, ToolSpec, Usage};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One recorded event of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunEvent {
    /// Position in the run, from 1, without gaps.
    pub seq: i64,
    /// Unix time in milliseconds when the event was recorded.
    pub at_ms: i64,
    /// Which execution attempt of the run wrote it (runs re-queued after a crash retry).
    pub attempt: i64,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// A worker started executing the run.
    AttemptStarted { attempt: i64, worker: String },
    /// The environment session is up.
    EnvConnected {
        server_name: String,
        version: i64,
        duration_ms: u64,
    },
    /// The scenario was set up: the prompt the agent receives and the tools it sees.
    Setup {
        scenario_id: String,
        /// The prompt arguments as sent on the wire (strings).
        arguments: Map<String, Value>,
        prompt: String,
        tools: Vec<ToolSpec>,
        duration_ms: u64,
    },
    /// One step's model call.
    ModelCall {
        step: u32,
        model: String,
        upstream_model: String,
        /// Messages added to the conversation since the previous model call.
        new_messages: Vec<Message>,
        response: Message,
        stop_reason: String,
        usage: Usage,
        duration_ms: u64,
    },
    /// One tool call and its result.
    ToolCall {
        step: u32,
        call_id: String,
        name: String,
        arguments: Value,
        result: ToolResult,
        duration_ms: u64,
    },
    /// The final answer handed to the scenario.
    Answer { text: String, outcome: String },
    /// The scenario's evaluation.
    Evaluation {
        evaluation: Evaluation,
        duration_ms: u64,
    },
    /// Something went wrong; the run may still go on (e.g. a retried model call).
    Error { phase: String, message: String },
    /// The run ended (always the last event of an attempt that finished).
    Finished {
        status: String,
        error: Option<String>,
    },
}

impl EventKind {
    /// The event's `type` tag.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::AttemptStarted { .. } => "attempt_started",
            EventKind::EnvConnected { .. } => "env_connected",
            EventKind::Setup { .. } => "setup",
            EventKind::ModelCall { .. } => "model_call",
            EventKind::ToolCall { .. } => "tool_call",
            EventKind::Answer { .. } => "answer",
            EventKind::Evaluation { .. } => "evaluation",
            EventKind::Error { .. } => "error",
            EventKind::Finished { .. } => "finished",
        }
    }
}
