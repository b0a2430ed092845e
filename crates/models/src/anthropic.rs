//! The Anthropic Messages API client (`POST {base_url}/v1/messages`).

use crate::config::{ClientConfig, DEFAULT_MAX_TOKENS};
use crate::http::secret_header;
use async_trait::async_trait;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use rollout_domain::{
    Message, ModelClient, ModelError, ModelErrorKind, ModelRequest, ModelResponse, Role,
    StopReason, ToolCall, Usage,
};
use serde::Serialize;
use serde_json::{Value, json};

/// The API version this client speaks.
const ANTHROPIC_VERSION: &str = "2023-06-01";

/// A client for one Anthropic model.
#[derive(Debug, Clone)]
pub struct AnthropicClient {
    config: ClientConfig,
}

impl AnthropicClient {
    /// A client for `config.model`. No I/O happens until the first call.
    pub fn new(config: ClientConfig) -> Self {
        Self { config }
    }

    /// The JSON body sent for `request`; public so that traces and tests can see the exact
    /// wire. It borrows from `request`: nothing is copied to build it.
    pub fn request_body<'a>(&'a self, request: &'a ModelRequest) -> MessagesBody<'a> {
        // Anthropic has no system role inside `messages`: every system text goes up top.
        let system: Vec<&str> = request
            .system
            .iter()
            .map(String::as_str)
            .chain(
                request
                    .messages
                    .iter()
                    .filter(|m| m.role == Role::System)
                    .map(|m| m.content.as_str()),
            )
            .filter(|text| !text.is_empty())
            .collect();
        MessagesBody {
            model: &self.config.model,
            max_tokens: self.config.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
            system: (!system.is_empty()).then(|| system.join("\n\n")),
            messages: wire_messages(&request.messages),
            tools: request
                .tools
                .iter()
                .map(|tool| ToolDefinition {
                    name: &tool.name,
                    description: &tool.description,
                    input_schema: &tool.input_schema,
                })
                .collect(),
        }
    }

    fn headers(&self) -> Result<HeaderMap, ModelError> {
        let mut headers = HeaderMap::new();
        headers.insert(
            HeaderName::from_static("anthropic-version"),
            HeaderValue::from_static(ANTHROPIC_VERSION),
        );
        if let Some(key) = &self.config.api_key {
            headers.insert(
                HeaderName::from_static("x-api-key"),
                secret_header(key.expose())?,
            );
        }
        Ok(headers)
    }
}

#[async_trait]
impl ModelClient for AnthropicClient {
    async fn complete(&self, request: &ModelRequest) -> Result<ModelResponse, ModelError> {
        let body = self.request_body(request);
        let post = self.config.post("v1/messages", self.headers()?, &body)?;
        let response = post.send().await?;
        parse_response(&response, &self.config.model)
    }
}

/// A Messages API request body (`POST /v1/messages`).
#[derive(Debug, Serialize)]
pub struct MessagesBody<'a> {
    model: &'a str,
    max_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<String>,
    messages: Vec<Turn<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<ToolDefinition<'a>>,
}

/// One turn of the conversation: a role and its content blocks.
#[derive(Debug, Serialize)]
struct Turn<'a> {
    role: &'static str,
    content: Vec<Block<'a>>,
}

/// A content block of a turn.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block<'a> {
    Text {
        text: &'a str,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: &'a Value,
    },
    ToolResult {
        tool_use_id: &'a str,
        /// Optional in the API: left out rather than sent empty.
        #[serde(skip_serializing_if = "str::is_empty")]
        content: &'a str,
        is_error: bool,
    },
}

/// A tool the model may call.
#[derive(Debug, Serialize)]
struct ToolDefinition<'a> {
    name: &'a str,
    description: &'a str,
    input_schema: &'a Value,
}

/// Domain messages as Anthropic turns. Tool results become `tool_result` blocks of a user
/// turn, and consecutive turns of the same role merge, so a batch of tool results is one
/// user message. Empty texts are left out because the API rejects empty text blocks.
fn wire_messages(messages: &[Message]) -> Vec<Turn<'_>> {
    let mut turns: Vec<Turn<'_>> = Vec::new();
    for message in messages {
        let (role, blocks) = match message.role {
            Role::System => continue,
            Role::User => ("user", text_block(&message.content).into_iter().collect()),
            Role::Tool => (
                "user",
                vec![Block::ToolResult {
                    tool_use_id: message.tool_call_id.as_deref().unwrap_or_default(),
                    content: &message.content,
                    is_error: message.is_error,
                }],
            ),
            Role::Assistant => {
                let mut blocks: Vec<Block<'_>> = text_block(&message.content).into_iter().collect();
                blocks.extend(message.tool_calls.iter().map(|call| Block::ToolUse {
                    id: &call.id,
                    name: &call.name,
                    input: &call.arguments,
                }));
                ("assistant", blocks)
            }
        };
        if blocks.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some(last) if last.role == role => last.content.extend(blocks),
            _ => turns.push(Turn {
                role,
                content: blocks,
            }),
        }
    }
    for turn in &mut turns {
        // The API wants tool results first in a user turn; the sort is stable.
        turn.content
            .sort_by_key(|block| !matches!(block, Block::ToolResult { .. }));
    }
    turns
}

fn text_block(text: &str) -> Option<Block<'_>> {
    (!text.trim().is_empty()).then_some(Block::Text { text })
}

/// Reads a Messages API response into the domain shape.
fn parse_response(body: &Value, configured_model: &str) -> Result<ModelResponse, ModelError> {
    let blocks = body
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            ModelError::new(
                ModelErrorKind::InvalidResponse,
                "anthropic response has no content array",
            )
        })?;
    let mut text = String::new();
    let mut tool_calls = Vec::new();
    for block in blocks {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => text.push_str(
                block
                    .get("text")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
            ),
            Some("tool_use") => tool_calls.push(ToolCall {
                id: string_field(block, "id"),
                name: string_field(block, "name"),
                arguments: block.get("input").cloned().unwrap_or_else(|| json!({})),
            }),
            // Thinking and other block kinds are not part of the conversation we keep.
            _ => {}
        }
    }
    let stop_reason = match body.get("stop_reason").and_then(Value::as_str) {
        Some("end_turn" | "stop_sequence") => StopReason::EndTurn,
        Some("tool_use") => StopReason::ToolUse,
        Some("max_tokens") => StopReason::MaxTokens,
        _ => StopReason::Other,
    };
    let usage = body.get("usage").cloned().unwrap_or(Value::Null);
    let count = |key: &str| usage.get(key).and_then(Value::as_u64).unwrap_or(0);
    let cache_read = count("cache_read_input_tokens");
    let cache_write = count("cache_creation_input_tokens");
    Ok(ModelResponse {
        message: Message::assistant(text, tool_calls),
        usage: Usage {
            // Anthropic's `input_tokens` excludes cached tokens; ours includes them.
            input_tokens: count("input_tokens") + cache_read + cache_write,
            output_tokens: count("output_tokens"),
            cache_read_tokens: cache_read,
            cache_write_tokens: cache_write,
        },
        stop_reason,
        upstream_model: body
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or(configured_model)
            .to_string(),
    })
}

fn string_field(value: &Value, key: &str) -> String {
    value
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rollout_domain::{ToolResult, ToolSpec};

    fn call(id: &str) -> ToolCall {
        ToolCall {
            id: id.into(),
            name: "add".into(),
            arguments: json!({"a": 1}),
        }
    }

    fn result(id: &str, text: &str, is_error: bool) -> Message {
        Message::tool(&ToolResult {
            call_id: id.into(),
            text: text.into(),
            content: Vec::new(),
            structured: None,
            is_error,
        })
    }

    #[test]
    fn builds_the_wire_body_and_merges_tool_results() {
        let client = AnthropicClient::new(ClientConfig::new("anthropic", "http://x", "claude-x"));
        let request = ModelRequest {
            system: Some("be brief".into()),
            messages: vec![
                Message::user("add things"),
                Message::assistant("", vec![call("t1"), call("t2")]),
                result("t1", "1", false),
                result("t2", "boom", true),
                Message::assistant("done", Vec::new()),
            ],
            tools: vec![ToolSpec {
                name: "add".into(),
                description: "adds".into(),
                input_schema: json!({"type": "object"}),
            }],
        };
        let body = serde_json::to_value(client.request_body(&request)).unwrap();
        assert_eq!(body["max_tokens"], 4096);
        assert_eq!(body["system"], "be brief");
        assert_eq!(body["tools"][0]["input_schema"], json!({"type": "object"}));
        let messages = body["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 4);
        assert_eq!(
            messages[1]["content"][0],
            json!({"type": "tool_use", "id": "t1", "name": "add", "input": {"a": 1}})
        );
        assert_eq!(
            messages[2],
            json!({"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": "1", "is_error": false},
                {"type": "tool_result", "tool_use_id": "t2", "content": "boom", "is_error": true},
            ]})
        );
        assert_eq!(messages[3]["content"][0]["text"], "done");
    }

    /// Empty texts are left out: a tool result without text has no `content`, and an
    /// assistant turn of only tool calls has no text block (the API refuses empty ones).
    #[test]
    fn empty_texts_are_left_out_of_the_wire() {
        let client = AnthropicClient::new(ClientConfig::new("anthropic", "http://x", "claude-x"));
        let request = ModelRequest {
            system: None,
            messages: vec![
                Message::user("go"),
                Message::assistant("", vec![call("t1")]),
                result("t1", "", false),
            ],
            tools: Vec::new(),
        };
        let body = serde_json::to_value(client.request_body(&request)).unwrap();
        assert!(body.get("system").is_none() && body.get("tools").is_none());
        assert_eq!(
            body["messages"][1]["content"],
            json!([{"type": "tool_use", "id": "t1", "name": "add", "input": {"a": 1}}])
        );
        assert_eq!(
            body["messages"][2]["content"],
            json!([{"type": "tool_result", "tool_use_id": "t1", "is_error": false}])
        );
    }

    #[test]
    fn parses_text_tool_use_and_usage() {
        let body = json!({
            "model": "claude-x-2025",
            "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"},
                        {"type": "tool_use", "id": "toolu_1", "name": "add", "input": {"a": 1}}],
            "stop_reason": "tool_use",
            "usage": {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 3, "cache_creation_input_tokens": 2}
        });
        let response = parse_response(&body, "claude-x").unwrap();
        assert_eq!(response.message.content, "ab");
        assert_eq!(
            response.message.tool_calls,
            vec![ToolCall {
                id: "toolu_1".into(),
                ..call("x")
            }]
        );
        assert_eq!(response.stop_reason, StopReason::ToolUse);
        assert_eq!(
            response.usage,
            Usage {
                input_tokens: 15,
                output_tokens: 5,
                cache_read_tokens: 3,
                cache_write_tokens: 2
            }
        );
        assert_eq!(response.upstream_model, "claude-x-2025");
    }
}
