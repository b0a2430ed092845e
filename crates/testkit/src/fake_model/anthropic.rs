//! The Anthropic Messages side of the fake: request checks, replies and error bodies in
//! the shapes the real API uses.

use super::{Answer, OUTPUT_TOKENS, ReplyContext, content_text};
use serde_json::{Value, json};

/// Checks a request like the real API does, returning its error message on the first problem.
pub(super) fn validate(body: &Value) -> Result<(), String> {
    if body
        .get("model")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err("model: Field required".into());
    }
    if body
        .get("max_tokens")
        .and_then(Value::as_u64)
        .is_none_or(|n| n == 0)
    {
        return Err("max_tokens: Field required".into());
    }
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .ok_or("messages: Field required")?;
    if messages.is_empty() {
        return Err("messages: at least one message is required".into());
    }
    for (index, message) in messages.iter().enumerate() {
        let role = message
            .get("role")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if role != "user" && role != "assistant" {
            return Err(format!(
                "messages.{index}.role: Input should be 'user' or 'assistant'"
            ));
        }
        check_content(index, role, message.get("content"))?;
        let previous_uses = index
            .checked_sub(1)
            .and_then(|previous| messages.get(previous))
            .map(tool_use_ids)
            .unwrap_or_default();
        for result_id in tool_result_ids(message) {
            if !previous_uses.contains(&result_id) {
                return Err(format!(
                    "messages.{index}: unexpected `tool_use_id` found in `tool_result` blocks: \
                     {result_id}. Each `tool_result` block must have a corresponding `tool_use` \
                     block in the previous message."
                ));
            }
        }
        let uses = tool_use_ids(message);
        if !uses.is_empty() {
            let answered = messages
                .get(index + 1)
                .map(tool_result_ids)
                .unwrap_or_default();
            let missing: Vec<&str> = uses
                .iter()
                .filter(|id| !answered.contains(id))
                .map(String::as_str)
                .collect();
            if !missing.is_empty() {
                return Err(format!(
                    "messages.{}: `tool_use` ids were found without `tool_result` blocks \
                     immediately after: {}. Each `tool_use` block must have a corresponding \
                     `tool_result` block in the next message.",
                    index + 1,
                    missing.join(", ")
                ));
            }
        }
    }
    for (index, tool) in body
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        if tool
            .get("name")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(format!("tools.{index}.name: Field required"));
        }
        if !tool.get("input_schema").is_some_and(Value::is_object) {
            return Err(format!("tools.{index}.input_schema: Field required"));
        }
    }
    Ok(())
}

fn check_content(index: usize, role: &str, content: Option<&Value>) -> Result<(), String> {
    match content {
        Some(Value::String(text)) if !text.is_empty() => Ok(()),
        Some(Value::Array(blocks)) if !blocks.is_empty() => {
            for block in blocks {
                let kind = block
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let empty_text = kind == "text"
                    && block
                        .get("text")
                        .and_then(Value::as_str)
                        .is_none_or(|t| t.trim().is_empty());
                if empty_text {
                    return Err(
                        "messages: text content blocks must contain non-whitespace text".into(),
                    );
                }
                if kind == "tool_result" && role != "user" {
                    return Err(format!(
                        "messages.{index}: `tool_result` blocks can only be in user messages"
                    ));
                }
                if kind == "tool_use" && role != "assistant" {
                    return Err(format!(
                        "messages.{index}: `tool_use` blocks can only be in assistant messages"
                    ));
                }
            }
            Ok(())
        }
        _ => Err(format!(
            "messages.{index}: all messages must have non-empty content"
        )),
    }
}

fn blocks_of<'a>(message: &'a Value, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    message
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(move |block| block.get("type").and_then(Value::as_str) == Some(kind))
}

fn tool_use_ids(message: &Value) -> Vec<String> {
    if message.get("role").and_then(Value::as_str) != Some("assistant") {
        return Vec::new();
    }
    blocks_of(message, "tool_use")
        .filter_map(|block| block.get("id").and_then(Value::as_str).map(str::to_string))
        .collect()
}

fn tool_result_ids(message: &Value) -> Vec<String> {
    blocks_of(message, "tool_result")
        .filter_map(|block| {
            block
                .get("tool_use_id")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .collect()
}

/// The text of every tool result in the request, in order.
pub(super) fn tool_results(body: &Value) -> Vec<String> {
    body.get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(|message| blocks_of(message, "tool_result"))
        .map(|block| content_text(block.get("content")))
        .collect()
}

/// A Messages API response.
pub(super) fn render(answer: &Answer<'_>, context: &ReplyContext<'_>) -> Value {
    let (content, stop_reason) = match answer {
        Answer::ToolCalls(calls) => {
            let blocks: Vec<Value> = calls
                .iter()
                .map(|(name, arguments)| {
                    json!({"type": "tool_use", "id": format!("toolu_{}", context.next_tool_call()),
                           "name": name, "input": arguments})
                })
                .collect();
            (blocks, "tool_use")
        }
        Answer::Text { text, truncated } => (
            vec![json!({"type": "text", "text": text})],
            if *truncated { "max_tokens" } else { "end_turn" },
        ),
    };
    json!({
        "id": format!("msg_fake{}", context.response_id),
        "type": "message",
        "role": "assistant",
        "model": context.model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": null,
        "usage": {
            "input_tokens": context.input_tokens,
            "output_tokens": OUTPUT_TOKENS,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    })
}

/// Anthropic's error body: `{"type":"error","error":{"type","message"},"request_id"}`.
pub(super) fn error_body(status: u16, message: &str) -> Value {
    let kind = match status {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        500..=599 => "api_error",
        _ => "invalid_request_error",
    };
    json!({"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_fake"})
}
