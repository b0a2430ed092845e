//! The OpenAI Chat Completions client (`POST {base_url}/chat/completions`), which also
//! speaks to every OpenAI-compatible server: vLLM, Ollama, llama.cpp, OpenRouter.

use crate::config::ClientConfig;
use crate::http::secret_header;
use async_trait::async_trait;
use reqwest::header::{AUTHORIZATION, HeaderMap};
use rollout_domain::{
    Message, ModelClient, ModelError, ModelErrorKind, ModelRequest, ModelResponse, Role,
    StopReason, ToolCall, Usage,
};
use serde::Serialize;
use serde_json::{Value, json};

/// A client for one model of an OpenAI-style server.
#[derive(Debug, Clone)]
pub struct OpenAiChatClient {
    config: ClientConfig,
}

impl OpenAiChatClient {
    /// A client for `config.model`; `config.base_url` includes `/v1`. No I/O happens until
    /// the first call. The key is optional (local servers need none).
    pub fn new(config: ClientConfig) -> Self {
        Self { config }
    }

    /// The JSON body sent for `request`; public so that traces and tests can see the exact
    /// wire. It borrows from `request`: only tool call arguments are encoded anew (the API
    /// wants them as a JSON string).
    pub fn request_body<'a>(&'a self, request: &'a ModelRequest) -> ChatBody<'a> {
        let mut messages = Vec::with_capacity(request.messages.len() + 1);
        if let Some(system) = request.system.as_deref().filter(|s| !s.is_empty()) {
            messages.push(ChatMessage::System { content: system });
        }
        messages.extend(request.messages.iter().map(wire_message));
        ChatBody {
            model: &self.config.model,
            messages,
            tools: request
                .tools
                .iter()
                .map(|tool| FunctionTool {
                    kind: "function",
                    function: FunctionDefinition {
                        name: &tool.name,
                        description: &tool.description,
                        parameters: &tool.input_schema,
                    },
                })
                .collect(),
            // `max_tokens` rather than `max_completion_tokens`: every compatible server reads
            // it, and it is only sent when a catalog entry sets a limit.
            max_tokens: self.config.max_tokens,
        }
    }

    fn headers(&self) -> Result<HeaderMap, ModelError> {
        let mut headers = HeaderMap::new();
        if let Some(key) = self
            .config
            .api_key
            .as_ref()
            .filter(|key| !key.expose().is_empty())
        {
            headers.insert(
                AUTHORIZATION,
                secret_header(&format!("Bearer {}", key.expose()))?,
            );
        }
        Ok(headers)
    }
}

#[async_trait]
impl ModelClient for OpenAiChatClient {
    async fn complete(&self, request: &ModelRequest) -> Result<ModelResponse, ModelError> {
        let body = self.request_body(request);
        let post = self
            .config
            .post("chat/completions", self.headers()?, &body)?;
        let response = post.send().await?;
        parse_response(&response, &self.config.model)
    }
}

/// A Chat Completions request body (`POST /chat/completions`).
#[derive(Debug, Serialize)]
pub struct ChatBody<'a> {
    model: &'a str,
    messages: Vec<ChatMessage<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<FunctionTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
}

/// A message of the conversation, tagged by its role.
#[derive(Debug, Serialize)]
#[serde(tag = "role", rename_all = "snake_case")]
enum ChatMessage<'a> {
    System {
        content: &'a str,
    },
    User {
        content: &'a str,
    },
    Assistant {
        /// `null` when the turn is only tool calls.
        content: Option<&'a str>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<FunctionCall<'a>>,
    },
    Tool {
        tool_call_id: &'a str,
        content: &'a str,
    },
}

/// A tool call of an assistant turn.
#[derive(Debug, Serialize)]
struct FunctionCall<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: CalledFunction<'a>,
}

#[derive(Debug, Serialize)]
struct CalledFunction<'a> {
    name: &'a str,
    /// The arguments as a JSON string, as the API has them.
    arguments: String,
}

/// A tool the model may call.
#[derive(Debug, Serialize)]
struct FunctionTool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: FunctionDefinition<'a>,
}

#[derive(Debug, Serialize)]
struct FunctionDefinition<'a> {
    name: &'a str,
    description: &'a str,
    parameters: &'a Value,
}

fn wire_message(message: &Message) -> ChatMessage<'_> {
    let content = message.content.as_str();
    match message.role {
        Role::System => ChatMessage::System { content },
        Role::User => ChatMessage::User { content },
        Role::Tool => ChatMessage::Tool {
            tool_call_id: message.tool_call_id.as_deref().unwrap_or_default(),
            content,
        },
        Role::Assistant => ChatMessage::Assistant {
            content: (message.tool_calls.is_empty() || !content.is_empty()).then_some(content),
            tool_calls: message
                .tool_calls
                .iter()
                .map(|call| FunctionCall {
                    id: &call.id,
                    kind: "function",
                    function: CalledFunction {
                        name: &call.name,
                        arguments: call.arguments.to_string(),
                    },
                })
                .collect(),
        },
    }
}

/// Reads a Chat Completions response into the domain shape.
fn parse_response(body: &Value, configured_model: &str) -> Result<ModelResponse, ModelError> {
    let Some(choice) = body
        .get("choices")
        .and_then(Value::as_array)
        .and_then(|c| c.first())
    else {
        // Some compatible servers answer 200 with an error object instead of a status code.
        let detail = crate::http::provider_message(body.to_string().as_bytes())
            .unwrap_or_else(|| "no choices".to_string());
        return Err(ModelError::new(
            ModelErrorKind::InvalidResponse,
            format!("chat completion response has no choices: {detail}"),
        ));
    };
    let message = choice.get("message").cloned().unwrap_or(Value::Null);
    let content = match message.get("content") {
        Some(Value::String(text)) => text.clone(),
        // Content given as parts: keep the text parts.
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|part| part.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    };
    let tool_calls: Vec<ToolCall> = message
        .get("tool_calls")
        .and_then(Value::as_array)
        .map(|calls| {
            calls
                .iter()
                .enumerate()
                .map(|(index, call)| tool_call(index, call))
                .collect()
        })
        .unwrap_or_default();
    let stop_reason = match choice.get("finish_reason").and_then(Value::as_str) {
        Some("stop") => StopReason::EndTurn,
        Some("tool_calls" | "function_call") => StopReason::ToolUse,
        Some("length") => StopReason::MaxTokens,
        _ => StopReason::Other,
    };
    let usage = body.get("usage").cloned().unwrap_or(Value::Null);
    let count = |pointer: &str| usage.pointer(pointer).and_then(Value::as_u64).unwrap_or(0);
    Ok(ModelResponse {
        message: Message::assistant(content, tool_calls),
        usage: Usage {
            input_tokens: count("/prompt_tokens"),
            output_tokens: count("/completion_tokens"),
            cache_read_tokens: count("/prompt_tokens_details/cached_tokens"),
            cache_write_tokens: 0,
        },
        stop_reason,
        upstream_model: body
            .get("model")
            .and_then(Value::as_str)
            .filter(|m| !m.is_empty())
            .unwrap_or(configured_model)
            .to_string(),
    })
}

fn tool_call(index: usize, call: &Value) -> ToolCall {
    let function = call.get("function").cloned().unwrap_or(Value::Null);
    let arguments = match function.get("arguments") {
        // Some servers send no-argument calls as an empty string.
        Some(Value::String(raw)) if raw.trim().is_empty() => json!({}),
        // Not JSON: keep the text so the tool call fails visibly instead of the whole run.
        Some(Value::String(raw)) => {
            serde_json::from_str(raw).unwrap_or_else(|_| json!({"_raw": raw}))
        }
        // A few servers send the arguments as an object already.
        Some(value @ Value::Object(_)) => value.clone(),
        _ => json!({}),
    };
    ToolCall {
        id: call
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
            .map_or_else(|| format!("call_{}", index + 1), str::to_string),
        name: function
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        arguments,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rollout_domain::ToolResult;

    #[test]
    fn builds_the_wire_body() {
        let client = OpenAiChatClient::new(ClientConfig::new("openai", "http://x/v1", "gpt-x"));
        let call = ToolCall {
            id: "c1".into(),
            name: "add".into(),
            arguments: json!({"a": 1}),
        };
        let result = ToolResult {
            call_id: "c1".into(),
            text: "1".into(),
            content: vec![],
            structured: None,
            is_error: false,
        };
        let request = ModelRequest {
            system: Some("sys".into()),
            messages: vec![
                Message::user("hi"),
                Message::assistant("", vec![call]),
                Message::tool(&result),
            ],
            tools: vec![],
        };
        let body = serde_json::to_value(client.request_body(&request)).unwrap();
        assert!(body.get("tools").is_none() && body.get("max_tokens").is_none());
        assert_eq!(
            body["messages"],
            json!([
                {"role": "system", "content": "sys"},
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "add", "arguments": "{\"a\":1}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "1"},
            ])
        );
    }

    #[test]
    fn keeps_unparsable_arguments_raw() {
        let body = json!({"choices": [{"message": {"content": null, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "add", "arguments": "{oops"}},
            {"type": "function", "function": {"name": "ping", "arguments": ""}},
        ]}, "finish_reason": "tool_calls"}]});
        let response = parse_response(&body, "m").unwrap();
        assert_eq!(
            response.message.tool_calls[0].arguments,
            json!({"_raw": "{oops"})
        );
        assert_eq!(response.message.tool_calls[1].arguments, json!({}));
        assert_eq!(response.message.tool_calls[1].id, "call_2");
        assert_eq!(response.upstream_model, "m");
        assert_eq!(response.stop_reason, StopReason::ToolUse);
    }

    #[test]
    fn an_error_object_in_a_success_body_is_invalid() {
        let error =
            parse_response(&json!({"error": {"message": "upstream down"}}), "m").unwrap_err();
        assert_eq!(error.kind, ModelErrorKind::InvalidResponse);
        assert!(error.message.contains("upstream down"), "{}", error.message);
    }
}
