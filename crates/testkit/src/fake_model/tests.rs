//! Unit tests of the fake: policy, request checks and error shapes.

use super::*;
use serde_json::json;

fn state(policy: Option<Policy>) -> ServerState {
    ServerState {
        policy,
        delay_ms: AtomicU64::new(0),
        abandoned: AtomicU64::new(0),
        script: Mutex::default(),
        requests: Mutex::default(),
        tool_call_ids: AtomicU64::new(0),
        response_ids: AtomicU64::new(0),
    }
}

#[test]
fn policy_calls_the_tool_until_enough_results_then_answers() {
    let policy = Policy::ToolStepsThenAnswer {
        tool: "add".into(),
        arguments: json!({"a": 1}),
        steps: 2,
    };
    let state = state(Some(policy));
    let one_result = json!({"messages": [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "add", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "1"},
    ]});
    assert_eq!(
        next_reply(&state, Wire::OpenAi, &one_result),
        Some(FakeReply::tool_call("add", json!({"a": 1})))
    );
    let two_results = json!({"messages": [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "add", "input": {}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "t1", "content": "1"},
            {"type": "tool_result", "tool_use_id": "t2", "content": [{"type": "text", "text": "2"}]},
        ]},
    ]});
    assert_eq!(
        next_reply(&state, Wire::Anthropic, &two_results),
        Some(FakeReply::text("The answer is 2."))
    );
    // A scripted reply takes precedence over the policy.
    lock(&state.script).push_back(FakeReply::text("scripted"));
    assert_eq!(
        next_reply(&state, Wire::Anthropic, &two_results),
        Some(FakeReply::text("scripted"))
    );
}

#[test]
fn anthropic_checks_tool_result_pairing_and_empty_text() {
    let ok = json!({"model": "m", "max_tokens": 10, "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "x", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "r"}]},
    ]});
    assert_eq!(anthropic::validate(&ok), Ok(()));
    let mut orphan = ok.clone();
    orphan["messages"][2]["content"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "tool_result", "tool_use_id": "t9", "content": "r"}));
    assert!(
        anthropic::validate(&orphan)
            .unwrap_err()
            .contains("unexpected `tool_use_id`")
    );
    let mut empty = ok.clone();
    empty["messages"][0]["content"] = json!([{"type": "text", "text": ""}]);
    assert!(
        anthropic::validate(&empty)
            .unwrap_err()
            .contains("non-whitespace")
    );
    let mut no_max = ok;
    no_max.as_object_mut().unwrap().remove("max_tokens");
    assert!(anthropic::validate(&no_max).is_err());
}

#[test]
fn openai_checks_that_every_tool_call_is_answered() {
    let unanswered = json!({"model": "m", "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "x", "arguments": "{}"}}]},
        {"role": "user", "content": "well?"},
    ]});
    assert!(openai::validate(&unanswered).unwrap_err().contains("c1"));
    let null_content = json!({"model": "m", "messages": [{"role": "assistant", "content": null}]});
    assert!(openai::validate(&null_content).is_err());
}

#[test]
fn error_bodies_follow_each_provider_shape() {
    assert_eq!(
        anthropic::error_body(529, "Overloaded"),
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}, "request_id": "req_fake"})
    );
    assert_eq!(
        openai::error_body(429, "slow down"),
        json!({"error": {"message": "slow down", "type": "requests", "param": null, "code": "rate_limit_exceeded"}})
    );
}

#[tokio::test]
async fn a_delayed_reply_dropped_by_its_client_counts_as_abandoned() {
    let fake = FakeModelServer::start().await.unwrap();
    fake.push([
        FakeReply::delayed(Duration::from_secs(60), FakeReply::text("too late")),
        FakeReply::delayed(Duration::from_millis(10), FakeReply::text("in time")),
    ]);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let body =
        json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]});
    let url = format!("{}/v1/messages", fake.base_url());
    let gave_up = tokio::time::timeout(
        Duration::from_millis(300),
        client.post(&url).json(&body).send(),
    )
    .await;
    assert!(gave_up.is_err(), "the first reply is delayed");
    let answered = client.post(&url).json(&body).send().await.unwrap();
    let answered: Value = answered.json().await.unwrap();
    assert_eq!(answered["content"][0]["text"], "in time");
    let counted = tokio::time::timeout(Duration::from_secs(30), async {
        while fake.abandoned() == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(counted.is_ok(), "the dropped request was never counted");
    assert_eq!(fake.abandoned(), 1);
}
