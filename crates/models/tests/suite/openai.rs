//! The OpenAI Chat Completions client against the fake server.

use super::{complete, fast_retry, first_request, tool_result};
use rollout_domain::{Message, StopReason, ToolCall, Usage};
use rollout_testkit::{FakeModelServer, FakeReply};
use serde_json::json;

#[tokio::test]
async fn tool_call_round_trip_matches_ids() {
    let server = FakeModelServer::start().await.unwrap();
    server.push([
        FakeReply::ToolCalls(vec![
            ("add".into(), json!({"a": 1, "b": 2})),
            ("add".into(), json!({"a": 3, "b": 4})),
        ]),
        FakeReply::text("3 and 7"),
    ]);
    let client = super::openai(&server, Some("sk-test"), fast_retry(1));

    let mut request = first_request();
    let first = complete(&client, &request).await.unwrap();
    assert_eq!(first.stop_reason, StopReason::ToolUse);
    assert_eq!(
        first.message.tool_calls,
        vec![
            ToolCall {
                id: "call_1".into(),
                name: "add".into(),
                arguments: json!({"a": 1, "b": 2})
            },
            ToolCall {
                id: "call_2".into(),
                name: "add".into(),
                arguments: json!({"a": 3, "b": 4})
            },
        ]
    );
    assert_eq!(first.message.content, "");

    request.messages.push(first.message.clone());
    request
        .messages
        .push(Message::tool(&tool_result("call_1", "3")));
    request
        .messages
        .push(Message::tool(&tool_result("call_2", "7")));
    let second = complete(&client, &request).await.unwrap();
    assert_eq!(second.stop_reason, StopReason::EndTurn);
    assert_eq!(second.message.content, "3 and 7");

    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    let sent = &requests[1];
    assert_eq!(sent.wire, "openai");
    assert_eq!(sent.header("authorization"), Some("Bearer sk-test"));
    assert_eq!(sent.body["model"], "test-model");
    assert!(sent.body.get("max_tokens").is_none());
    assert_eq!(
        sent.body["tools"][0],
        json!({"type": "function", "function": {"name": "add", "description": "Adds two integers.", "parameters": request.tools[0].input_schema}})
    );
    assert_eq!(
        sent.messages(),
        [
            json!({"role": "system", "content": "You add numbers."}),
            json!({"role": "user", "content": "What is 1+2 and 3+4?"}),
            json!({"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "add", "arguments": "{\"a\":1,\"b\":2}"}},
                {"id": "call_2", "type": "function", "function": {"name": "add", "arguments": "{\"a\":3,\"b\":4}"}},
            ]}),
            json!({"role": "tool", "tool_call_id": "call_1", "content": "3"}),
            json!({"role": "tool", "tool_call_id": "call_2", "content": "7"}),
        ]
    );

    for (response, captured) in [(&first, &requests[0]), (&second, &requests[1])] {
        let (input, output) = captured.expected_usage();
        assert_eq!(
            response.usage,
            Usage {
                input_tokens: input,
                output_tokens: output,
                ..Usage::default()
            }
        );
    }
    assert_eq!(second.usage.input_tokens, 150);
}

#[tokio::test]
async fn local_servers_need_no_key() {
    let server = FakeModelServer::start().await.unwrap();
    server.push([FakeReply::text("hello")]);
    let client = super::openai(&server, None, fast_retry(1));
    let response = complete(&client, &first_request()).await.unwrap();
    assert_eq!(response.message.content, "hello");
    assert_eq!(server.requests()[0].header("authorization"), None);
}

#[tokio::test]
async fn length_cached_tokens_and_unparsable_arguments() {
    let server = FakeModelServer::start().await.unwrap();
    server.push([
        FakeReply::Truncated("cut".into()),
        FakeReply::Raw(json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "served-model",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": null,
                "tool_calls": [{"id": "call_x", "type": "function", "function": {"name": "add", "arguments": "{\"a\": 1"}}]}}],
            "usage": {"prompt_tokens": 50, "completion_tokens": 9, "prompt_tokens_details": {"cached_tokens": 30}}
        })),
    ]);
    let client = super::openai(&server, Some("k"), fast_retry(1));
    let truncated = complete(&client, &first_request()).await.unwrap();
    assert_eq!(truncated.stop_reason, StopReason::MaxTokens);
    assert_eq!(truncated.message.content, "cut");

    let raw = complete(&client, &first_request()).await.unwrap();
    assert_eq!(
        raw.message.tool_calls[0].arguments,
        json!({"_raw": "{\"a\": 1"})
    );
    assert_eq!(
        raw.usage,
        Usage {
            input_tokens: 50,
            output_tokens: 9,
            cache_read_tokens: 30,
            cache_write_tokens: 0
        }
    );
    assert_eq!(raw.upstream_model, "served-model");
}

#[tokio::test]
async fn an_orphan_tool_message_is_refused_like_the_real_api() {
    let server = FakeModelServer::start().await.unwrap();
    let client = super::openai(&server, Some("k"), fast_retry(3));
    let mut request = first_request();
    request
        .messages
        .push(Message::tool(&tool_result("call_404", "x")));
    let error = complete(&client, &request).await.unwrap_err();
    assert_eq!(error.status, Some(400));
    assert!(
        error
            .message
            .contains("must be a response to a preceeding message"),
        "{}",
        error.message
    );
    assert_eq!(server.requests().len(), 1);
}
