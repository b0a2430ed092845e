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
use serde_json::{Map, Value, json};

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

    /// The JSON body sent for `request`; public so that traces and tests can see the exact wire.
    pub fn request_body(&self, request: &ModelRequest) -> Value {
        let mut body = Map::new();
        body.insert("model".into(), json!(self.config.model));
        let mut messages = Vec::with_capacity(request.messages.len() + 1);
        if let Some(system) = request.system.as_deref().filter(|s| !s.is_empty()) {
            messages.push(json!({"role": "system", "content": system}));
        }
        messages.extend(request.messages.iter().map(wire_message));
        body.insert("messages".into(), Value::Array(messages));
        if !request.tools.is_empty() {
            let tools: Vec<Value> = request
                .tools
                .iter()
                .map(|tool| {
                    json!({"type": "function", "function": {
                        "name": tool.name, "description": tool.description, "parameters": tool.input_schema,
                    }})
                })
                .collect();
            body.insert("tools".into(), Value::Array(tools));
        }
        // `max_tokens` rather than `max_completion_tokens`: every compatible server reads it,
        // and it is only sent when a catalog entry sets a limit.
        if let Some(max_tokens) = self.config.max_tokens {
            body.insert("max_tokens".into(), json!(max_tokens));
        }
        Value::Object(body)
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
        let post = self.config.post("chat/completions", self.headers()?, &body);
        let response = post.send().await?;
        parse_response(&response, &self.config.model)
    }
}

fn wire_message(message: &Message) -> Value {
    match message.role {
        Role::System => json!({"role": "system", "content": message.content}),
        Role::User => json!({"role": "user", "content": message.content}),
        Role::Tool => json!({
            "role": "tool",
            "tool_call_id": message.tool_call_id.clone().unwrap_or_default(),
            "content": message.content,
        }),
        Role::Assistant if message.tool_calls.is_empty() => {
            json!({"role": "assistant", "content": message.content})
        }
        Role::Assistant => {
            let calls: Vec<Value> = message
                .tool_calls
                .iter()
                .map(|call| {
                    json!({"id": call.id, "type": "function", "function": {
                        "name": call.name, "arguments": call.arguments.to_string(),
                    }})
                })
                .collect();
            let content = if message.content.is_empty() {
                Value::Null
            } else {
                json!(message.content)
            };
            json!({"role": "assistant", "content": content, "tool_calls": calls})
        }
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
        let body = client.request_body(&request);
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
