//! The Anthropic client against the fake server's Messages API.

use super::{complete, fast_retry, first_request, tool_result};
use rollout_domain::{Message, ModelRequest, StopReason, ToolCall, Usage};
use rollout_testkit::{FakeModelServer, FakeReply};
use serde_json::json;

#[tokio::test]
async fn tool_call_round_trip_matches_ids_and_merges_tool_results() {
    let server = FakeModelServer::start().await.unwrap();
    server.push([
        FakeReply::ToolCalls(vec![
            ("add".into(), json!({"a": 1, "b": 2})),
            ("add".into(), json!({"a": 3, "b": 4})),
        ]),
        FakeReply::text("3 and 7"),
    ]);
    let client = super::anthropic(&server, Some("sk-ant-test"), fast_retry(1));

    let mut request = first_request();
    let first = complete(&client, &request).await.unwrap();
    assert_eq!(first.stop_reason, StopReason::ToolUse);
    assert_eq!(
        first.message.tool_calls,
        vec![
            ToolCall {
                id: "toolu_1".into(),
                name: "add".into(),
                arguments: json!({"a": 1, "b": 2})
            },
            ToolCall {
                id: "toolu_2".into(),
                name: "add".into(),
                arguments: json!({"a": 3, "b": 4})
            },
        ]
    );
    assert_eq!(first.upstream_model, "test-model");

    request.messages.push(first.message.clone());
    request
        .messages
        .push(Message::tool(&tool_result("toolu_1", "3")));
    request
        .messages
        .push(Message::tool(&tool_result("toolu_2", "7")));
    let second = complete(&client, &request).await.unwrap();
    assert_eq!(second.stop_reason, StopReason::EndTurn);
    assert_eq!(second.message.content, "3 and 7");
    assert!(second.message.tool_calls.is_empty());

    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    let sent = &requests[1];
    assert_eq!(sent.wire, "anthropic");
    assert_eq!(sent.header("x-api-key"), Some("sk-ant-test"));
    assert_eq!(sent.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(sent.header("content-type"), Some("application/json"));
    assert_eq!(sent.body["model"], "test-model");
    assert_eq!(sent.body["max_tokens"], 4096);
    assert_eq!(sent.body["system"], "You add numbers.");
    assert_eq!(
        sent.body["tools"][0],
        json!({"name": "add", "description": "Adds two integers.", "input_schema": request.tools[0].input_schema})
    );
    // Three turns: the question, the assistant's two tool_use blocks, ONE user turn of results.
    assert_eq!(sent.messages().len(), 3);
    assert_eq!(sent.messages()[1]["content"][1]["id"], "toolu_2");
    assert_eq!(
        sent.messages()[2],
        json!({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "3", "is_error": false},
            {"type": "tool_result", "tool_use_id": "toolu_2", "content": "7", "is_error": false},
        ]})
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
    assert_eq!(first.usage.input_tokens, 110);
    assert_eq!(second.usage.input_tokens, 130);
}

#[tokio::test]
async fn max_tokens_is_reported_as_its_own_stop_reason() {
    let server = FakeModelServer::start().await.unwrap();
    server.push([FakeReply::Truncated("partial".into())]);
    let client = super::anthropic(&server, Some("k"), fast_retry(1));
    let response = complete(&client, &first_request()).await.unwrap();
    assert_eq!(response.stop_reason, StopReason::MaxTokens);
    assert_eq!(response.message.content, "partial");
}

#[tokio::test]
async fn cache_tokens_count_as_input_tokens() {
    let server = FakeModelServer::start().await.unwrap();
    server.push([FakeReply::Raw(json!({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-test-20250101",
        "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": 5, "output_tokens": 7, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 20}
    }))]);
    let client = super::anthropic(&server, Some("k"), fast_retry(1));
    let response = complete(&client, &first_request()).await.unwrap();
    assert_eq!(
        response.usage,
        Usage {
            input_tokens: 125,
            output_tokens: 7,
            cache_read_tokens: 100,
            cache_write_tokens: 20
        }
    );
    assert_eq!(response.upstream_model, "claude-test-20250101");
}

#[tokio::test]
async fn an_unanswered_tool_call_is_refused_like_the_real_api() {
    let server = FakeModelServer::start().await.unwrap();
    server.push([FakeReply::text("never sent")]);
    let client = super::anthropic(&server, Some("k"), fast_retry(3));
    let call = ToolCall {
        id: "toolu_9".into(),
        name: "add".into(),
        arguments: json!({}),
    };
    let request = ModelRequest {
        system: None,
        messages: vec![
            Message::user("hi"),
            Message::assistant("", vec![call]),
            Message::user("go on"),
        ],
        tools: Vec::new(),
    };
    let error = complete(&client, &request).await.unwrap_err();
    assert_eq!(error.status, Some(400));
    assert!(error.message.contains("toolu_9"), "{}", error.message);
    assert_eq!(server.requests().len(), 1, "a 400 is not retried");
}
