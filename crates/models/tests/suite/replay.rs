//! The replay model plays validation items back in order.

use super::{complete, first_request};
use rollout_domain::{StopReason, ToolCall, Usage, ValidationItem};
use rollout_models::ReplayModel;
use serde_json::json;

#[tokio::test]
async fn plays_tool_calls_then_the_answer_then_empty_answers() {
    let model = ReplayModel::new(vec![
        ValidationItem::ToolCall {
            name: "add".into(),
            arguments: json!({"a": 1}),
        },
        ValidationItem::ToolCall {
            name: "ping".into(),
            arguments: json!({}),
        },
        ValidationItem::Answer {
            answer: "42".into(),
        },
    ]);
    let request = first_request();

    let mut responses = Vec::new();
    for _ in 0..5 {
        responses.push(complete(&model, &request).await.unwrap());
    }
    assert_eq!(
        responses[0].message.tool_calls,
        vec![ToolCall {
            id: "replay_1".into(),
            name: "add".into(),
            arguments: json!({"a": 1})
        }]
    );
    assert_eq!(
        responses[1].message.tool_calls,
        vec![ToolCall {
            id: "replay_2".into(),
            name: "ping".into(),
            arguments: json!({})
        }]
    );
    assert_eq!(responses[2].message.content, "42");
    for response in &responses[2..] {
        assert!(response.message.tool_calls.is_empty());
        assert_eq!(response.stop_reason, StopReason::EndTurn);
    }
    assert_eq!(responses[3].message.content, "");
    assert_eq!(responses[4].message.content, "");
    for response in &responses {
        assert_eq!(response.usage, Usage::default());
        assert_eq!(response.upstream_model, "replay");
    }
    assert_eq!(responses[0].stop_reason, StopReason::ToolUse);
}
