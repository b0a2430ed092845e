//! In-process doubles of the ports, for unit tests of the loop.

use crate::error::{ModelError, RecordError, ToolError};
use crate::event::EventKind;
use crate::message::{Message, ToolCall, ToolResult, Usage};
use crate::ports::{EventSink, ModelClient, ModelRequest, ModelResponse, StopReason, ToolHost};
use async_trait::async_trait;
use serde_json::Value;
use std::collections::VecDeque;
use std::sync::Mutex;

/// A model that answers from a queue of canned responses and records every request.
#[derive(Default)]
pub struct ScriptedModel {
    responses: Mutex<VecDeque<Result<ModelResponse, ModelError>>>,
    requests: Mutex<Vec<ModelRequest>>,
}

impl ScriptedModel {
    /// A model that will give these responses, in order.
    pub fn new(responses: Vec<Result<ModelResponse, ModelError>>) -> Self {
        Self {
            responses: Mutex::new(responses.into()),
            requests: Mutex::default(),
        }
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<ModelRequest> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// How many canned responses are left.
    pub fn remaining(&self) -> usize {
        self.responses.lock().map(|r| r.len()).unwrap_or_default()
    }
}

/// A response that calls one tool.
pub fn tool_call(id: &str, name: &str, arguments: Value) -> Result<ModelResponse, ModelError> {
    let call = ToolCall {
        id: id.into(),
        name: name.into(),
        arguments,
    };
    Ok(response(
        Message::assistant("", vec![call]),
        StopReason::ToolUse,
    ))
}

/// A response with a final text answer.
pub fn final_text(text: &str) -> Result<ModelResponse, ModelError> {
    Ok(response(
        Message::assistant(text, Vec::new()),
        StopReason::EndTurn,
    ))
}

fn response(message: Message, stop_reason: StopReason) -> ModelResponse {
    ModelResponse {
        message,
        usage: Usage {
            input_tokens: 10,
            output_tokens: 5,
            ..Usage::default()
        },
        stop_reason,
        upstream_model: "scripted".into(),
    }
}

#[async_trait]
impl ModelClient for ScriptedModel {
    async fn complete(&self, request: &ModelRequest) -> Result<ModelResponse, ModelError> {
        if let Ok(mut requests) = self.requests.lock() {
            requests.push(request.clone());
        }
        let next = self.responses.lock().ok().and_then(|mut r| r.pop_front());
        next.unwrap_or_else(|| {
            Err(ModelError::new(
                crate::error::ModelErrorKind::InvalidResponse,
                "scripted model has no response left",
            ))
        })
    }
}

type ToolFn = Box<dyn Fn(&Value) -> Result<ToolResult, ToolError> + Send + Sync>;

/// A tool host whose tools are closures.
#[derive(Default)]
pub struct FakeToolHost {
    tools: Vec<(String, ToolFn)>,
    calls: Mutex<Vec<ToolCall>>,
}

impl FakeToolHost {
    /// Adds a tool that returns the closure's text, or an error result when it returns `Err`.
    pub fn with_tool(
        mut self,
        name: &str,
        f: impl Fn(&Value) -> Result<String, String> + Send + Sync + 'static,
    ) -> Self {
        self.tools.push((
            name.to_string(),
            Box::new(move |args| {
                Ok(match f(args) {
                    Ok(text) => ToolResult {
                        call_id: String::new(),
                        content: Vec::new(),
                        text,
                        structured: None,
                        is_error: false,
                    },
                    Err(text) => ToolResult::error("", text),
                })
            }),
        ));
        self
    }

    /// Adds a tool whose call fails as if the environment had crashed.
    pub fn with_crashing_tool(mut self, name: &str) -> Self {
        let tool = name.to_string();
        self.tools.push((
            name.to_string(),
            Box::new(move |_| {
                Err(ToolError {
                    tool: tool.clone(),
                    message: "crashed".into(),
                })
            }),
        ));
        self
    }

    /// Every call received so far.
    pub fn calls(&self) -> Vec<ToolCall> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl ToolHost for FakeToolHost {
    async fn call_tool(&self, call: &ToolCall) -> Result<ToolResult, ToolError> {
        if let Ok(mut calls) = self.calls.lock() {
            calls.push(call.clone());
        }
        match self.tools.iter().find(|(name, _)| name == &call.name) {
            Some((_, f)) => f(&call.arguments).map(|mut result| {
                result.call_id = call.id.clone();
                result
            }),
            None => Ok(ToolResult::error(
                &call.id,
                format!("unknown tool '{}'", call.name),
            )),
        }
    }
}

/// A sink that keeps events in memory.
#[derive(Default)]
pub struct RecordingSink {
    events: Mutex<Vec<EventKind>>,
}

impl RecordingSink {
    /// Every event recorded so far.
    pub fn events(&self) -> Vec<EventKind> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl EventSink for RecordingSink {
    async fn record(&self, event: EventKind) -> Result<(), RecordError> {
        self.events
            .lock()
            .map_err(|e| RecordError(e.to_string()))?
            .push(event);
        Ok(())
    }
}
