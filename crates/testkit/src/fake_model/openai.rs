//! The OpenAI Chat Completions side of the fake: request checks, replies and error bodies
//! in the shapes the real API uses.

use super::{Answer, OUTPUT_TOKENS, ReplyContext, content_text};
use serde_json::{Value, json};
use std::time::{SystemTime, UNIX_EPOCH};

const ROLES: [&str; 5] = ["system", "developer", "user", "assistant", "tool"];

/// Checks a request like the real API does, returning its error message on the first problem.
pub(super) fn validate(body: &Value) -> Result<(), String> {
    if body
        .get("model")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err("you must provide a model parameter".into());
    }
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .ok_or("Missing required parameter: 'messages'.")?;
    if messages.is_empty() {
        return Err(
            "Invalid 'messages': empty array. Expected an array with minimum length 1.".into(),
        );
    }
    // Tool call ids of the latest assistant message still waiting for their tool messages.
    let mut pending: Vec<String> = Vec::new();
    let mut answerable: Vec<String> = Vec::new();
    for (index, message) in messages.iter().enumerate() {
        let role = message
            .get("role")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !ROLES.contains(&role) {
            return Err(format!(
                "Invalid value: '{role}'. Supported values are: {}.",
                ROLES.join(", ")
            ));
        }
        if role != "tool" && !pending.is_empty() {
            return Err(unanswered(&pending));
        }
        match role {
            "tool" => {
                let id = message
                    .get("tool_call_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if !answerable.iter().any(|known| known == id) {
                    return Err(format!(
                        "Invalid parameter: messages with role 'tool' must be a response to a \
                         preceeding message with 'tool_calls' (messages[{index}], tool_call_id '{id}')."
                    ));
                }
                pending.retain(|pending_id| pending_id != id);
            }
            "assistant" => {
                let calls = message
                    .get("tool_calls")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let content = message.get("content");
                if calls.is_empty() && !content.is_some_and(|c| c.is_string() || c.is_array()) {
                    return Err(format!(
                        "Invalid value for 'content': expected a string, got null (messages[{index}])."
                    ));
                }
                answerable.clear();
                for (call_index, call) in calls.iter().enumerate() {
                    let id = call.get("id").and_then(Value::as_str).unwrap_or_default();
                    let arguments = call.pointer("/function/arguments");
                    if id.is_empty() || !arguments.is_some_and(Value::is_string) {
                        return Err(format!(
                            "Invalid 'messages[{index}].tool_calls[{call_index}]': needs an 'id' and \
                             'function.arguments' as a string."
                        ));
                    }
                    answerable.push(id.to_string());
                    pending.push(id.to_string());
                }
            }
            _ => answerable.clear(),
        }
    }
    if !pending.is_empty() {
        return Err(unanswered(&pending));
    }
    for (index, tool) in body
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        if tool.get("type").and_then(Value::as_str) != Some("function")
            || tool
                .pointer("/function/name")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
        {
            return Err(format!(
                "Missing required parameter: 'tools[{index}].function.name'."
            ));
        }
    }
    Ok(())
}

fn unanswered(pending: &[String]) -> String {
    format!(
        "An assistant message with 'tool_calls' must be followed by tool messages responding to \
         each 'tool_call_id'. The following tool_call_ids did not have response messages: {}",
        pending.join(", ")
    )
}

/// The text of every tool message in the request, in order.
pub(super) fn tool_results(body: &Value) -> Vec<String> {
    body.get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|message| message.get("role").and_then(Value::as_str) == Some("tool"))
        .map(|message| content_text(message.get("content")))
        .collect()
}

/// A Chat Completions response.
pub(super) fn render(answer: &Answer<'_>, context: &ReplyContext<'_>) -> Value {
    let (message, finish_reason) = match answer {
        Answer::ToolCalls(calls) => {
            let calls: Vec<Value> = calls
                .iter()
                .map(|(name, arguments)| {
                    json!({"id": format!("call_{}", context.next_tool_call()), "type": "function",
                           "function": {"name": name, "arguments": arguments.to_string()}})
                })
                .collect();
            (
                json!({"role": "assistant", "content": null, "tool_calls": calls, "refusal": null}),
                "tool_calls",
            )
        }
        Answer::Text { text, truncated } => (
            json!({"role": "assistant", "content": text, "refusal": null}),
            if *truncated { "length" } else { "stop" },
        ),
    };
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    json!({
        "id": format!("chatcmpl-fake{}", context.response_id),
        "object": "chat.completion",
        "created": created,
        "model": context.model,
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish_reason}],
        "usage": {
            "prompt_tokens": context.input_tokens,
            "completion_tokens": OUTPUT_TOKENS,
            "total_tokens": context.input_tokens + OUTPUT_TOKENS,
            "prompt_tokens_details": {"cached_tokens": 0},
        },
    })
}

/// OpenAI's error body: `{"error":{"message","type","param","code"}}`.
pub(super) fn error_body(status: u16, message: &str) -> Value {
    let (kind, code) = match status {
        401 => ("invalid_request_error", json!("invalid_api_key")),
        404 => ("invalid_request_error", json!("model_not_found")),
        429 => ("requests", json!("rate_limit_exceeded")),
        500..=599 => ("server_error", Value::Null),
        _ => ("invalid_request_error", Value::Null),
    };
    json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
}
