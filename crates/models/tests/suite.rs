//! Test modules and the helpers they share.

mod anthropic;
mod catalog;
mod checkpoints;
mod openai;
mod replay;
mod retry;

use rollout_domain::{
    Message, ModelClient, ModelError, ModelRequest, ModelResponse, ToolResult, ToolSpec,
};
use rollout_models::{AnthropicClient, ApiKey, ClientConfig, OpenAiChatClient, RetryPolicy};
use rollout_testkit::FakeModelServer;
use serde_json::json;
use std::time::Duration;

/// The longest any single test waits for a call.
pub(crate) const WAIT: Duration = Duration::from_secs(60);

/// Retries that keep tests fast: 10 ms backoff, waits of up to 5 s.
pub(crate) fn fast_retry(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_secs(5),
    }
}

pub(crate) fn anthropic(
    server: &FakeModelServer,
    key: Option<&str>,
    retry: RetryPolicy,
) -> AnthropicClient {
    AnthropicClient::new(config("anthropic", server.base_url(), key, retry))
}

pub(crate) fn openai(
    server: &FakeModelServer,
    key: Option<&str>,
    retry: RetryPolicy,
) -> OpenAiChatClient {
    OpenAiChatClient::new(config(
        "openai",
        format!("{}/v1", server.base_url()),
        key,
        retry,
    ))
}

fn config(provider: &str, base_url: String, key: Option<&str>, retry: RetryPolicy) -> ClientConfig {
    let config = ClientConfig::new(provider, base_url, "test-model").with_retry(retry);
    match key {
        Some(key) => config.with_api_key(ApiKey::new(key)),
        None => config,
    }
}

/// A first request: a system prompt, one user message and one tool.
pub(crate) fn first_request() -> ModelRequest {
    ModelRequest {
        system: Some("You add numbers.".into()),
        messages: vec![Message::user("What is 1+2 and 3+4?")],
        tools: vec![ToolSpec {
            name: "add".into(),
            description: "Adds two integers.".into(),
            input_schema: json!({"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}}),
        }],
    }
}

/// A successful tool result.
pub(crate) fn tool_result(call_id: &str, text: &str) -> ToolResult {
    ToolResult {
        call_id: call_id.into(),
        text: text.into(),
        content: Vec::new(),
        structured: None,
        is_error: false,
    }
}

/// One call, bounded by [`WAIT`].
pub(crate) async fn complete(
    client: &dyn ModelClient,
    request: &ModelRequest,
) -> Result<ModelResponse, ModelError> {
    tokio::time::timeout(WAIT, client.complete(request))
        .await
        .unwrap_or_else(|_| panic!("model call timed out after {WAIT:?}"))
}
