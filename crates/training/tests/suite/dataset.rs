//! Golden files of both dataset formats for a job's traces: a multi-step run with tool
//! calls, a run whose tool call failed, and a repeat of the first task (same group).
//! Set `ROLLOUT_UPDATE_GOLDEN=1` to rewrite the files after an intended change.

use rollout_domain::{
    Evaluation, EventKind, Message, RunEvent, RunSpec, ToolCall, ToolResult, ToolSpec, Usage,
};
use rollout_training::{DatasetTrace, build_stats, chat_example, trajectory_example};
use serde_json::{Map, Value, json};
use std::path::PathBuf;

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn spec(query: &str) -> RunSpec {
    RunSpec {
        env_name: "my-assistant".into(),
        env_version: 1,
        scenario_name: "answer_question".into(),
        scenario_args: object(json!({ "query": query })),
        model: "claude-opus-4-5".into(),
        max_steps: 10,
        system_prompt: Some("Answer briefly.".into()),
        validation: Vec::new(),
        metadata: Map::new(),
        agent_timeout_seconds: 60,
        grading_timeout_seconds: 60,
        max_total_tokens: None,
        max_cost_usd: None,
        key_id: None,
        traceparent: None,
        callback: None,
    }
}

fn tools() -> Vec<ToolSpec> {
    vec![ToolSpec {
        name: "calculator".into(),
        description: "Evaluates an arithmetic expression.".into(),
        input_schema: json!({"type": "object", "properties": {"expression": {"type": "string"}}, "required": ["expression"]}),
    }]
}

fn event(seq: i64, kind: EventKind) -> RunEvent {
    RunEvent {
        seq,
        at_ms: 1_700_000_000_000 + seq,
        attempt: 1,
        kind,
    }
}

fn usage(input: u64, output: u64) -> Usage {
    Usage {
        input_tokens: input,
        output_tokens: output,
        ..Usage::default()
    }
}

fn setup(query: &str) -> EventKind {
    EventKind::Setup {
        scenario_id: "my-assistant:answer_question".into(),
        arguments: object(json!({ "query": query })),
        prompt: query.into(),
        tools: tools(),
        duration_ms: 1,
    }
}

fn call(step: u32, new_messages: Vec<Message>, response: Message) -> EventKind {
    EventKind::ModelCall {
        step,
        model: "claude-opus-4-5".into(),
        upstream_model: "claude-opus-4-5".into(),
        new_messages,
        response,
        stop_reason: "tool_use".into(),
        usage: usage(100, 10),
        duration_ms: 1,
    }
}

fn tool_call(id: &str, expression: &str) -> ToolCall {
    ToolCall {
        id: id.into(),
        name: "calculator".into(),
        arguments: json!({ "expression": expression }),
    }
}

fn result(id: &str, text: &str, is_error: bool) -> ToolResult {
    ToolResult {
        call_id: id.into(),
        text: text.into(),
        content: Vec::new(),
        structured: None,
        is_error,
    }
}

/// Two tool steps, then the answer.
fn multi_step(trace_id: &str, repeat_usage: u64) -> DatasetTrace {
    let query = "What is 17 * 23 + 1?";
    let r1 = result("call_1", "391", false);
    let r2 = result("call_2", "392", false);
    let events = vec![
        event(1, setup(query)),
        event(
            2,
            call(
                1,
                vec![Message::system("Answer briefly."), Message::user(query)],
                Message::assistant("Let me compute.", vec![tool_call("call_1", "17 * 23")]),
            ),
        ),
        event(
            3,
            EventKind::ToolCall {
                step: 1,
                call_id: "call_1".into(),
                name: "calculator".into(),
                arguments: json!({"expression": "17 * 23"}),
                result: r1.clone(),
                duration_ms: 1,
            },
        ),
        event(
            4,
            call(
                2,
                vec![Message::tool(&r1)],
                Message::assistant("", vec![tool_call("call_2", "391 + 1")]),
            ),
        ),
        event(
            5,
            call(
                3,
                vec![Message::tool(&r2)],
                Message::assistant("392", vec![]),
            ),
        ),
        event(
            6,
            EventKind::Evaluation {
                evaluation: Evaluation::reward(1.0).with_subscore("correct", 1.0, 1.0),
                duration_ms: 1,
            },
        ),
    ];
    DatasetTrace {
        trace_id: trace_id.into(),
        spec: spec(query),
        reward: Some(1.0),
        evaluation: Some(Evaluation::reward(1.0).with_subscore("correct", 1.0, 1.0)),
        usage: usage(300, 30 + repeat_usage),
        job_id: Some("job-1".into()),
        task_id: Some("mul".into()),
        events,
    }
}

/// A tool call that fails, and an answer after it.
fn tool_error(trace_id: &str) -> DatasetTrace {
    let query = "What is 1 / 0?";
    let failed = result("call_9", "division by zero", true);
    let events = vec![
        event(1, setup(query)),
        event(
            2,
            call(
                1,
                vec![Message::system("Answer briefly."), Message::user(query)],
                Message::assistant("", vec![tool_call("call_9", "1 / 0")]),
            ),
        ),
        event(
            3,
            call(
                2,
                vec![Message::tool(&failed)],
                Message::assistant("It is undefined.", vec![]),
            ),
        ),
    ];
    DatasetTrace {
        trace_id: trace_id.into(),
        spec: spec(query),
        reward: Some(0.5),
        evaluation: Some(Evaluation::reward(0.5)),
        usage: usage(200, 20),
        job_id: Some("job-1".into()),
        task_id: Some("div".into()),
        events,
    }
}

fn traces() -> Vec<DatasetTrace> {
    vec![
        multi_step("trace-a", 0),
        tool_error("trace-b"),
        multi_step("trace-c", 5),
    ]
}

fn check_golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("ROLLOUT_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    assert_eq!(
        actual, expected,
        "{name} differs from its golden file; rerun with ROLLOUT_UPDATE_GOLDEN=1 if intended"
    );
}

fn jsonl<T: serde::Serialize>(records: &[T]) -> String {
    records
        .iter()
        .map(|r| format!("{}\n", serde_json::to_string(r).unwrap()))
        .collect()
}

#[test]
fn chat_format_matches_golden_file() {
    let records: Vec<_> = traces().iter().map(chat_example).collect();
    check_golden("chat.jsonl", &jsonl(&records));
}

#[test]
fn trajectory_format_matches_golden_file() {
    let records: Vec<_> = traces().iter().map(trajectory_example).collect();
    check_golden("trajectory.jsonl", &jsonl(&records));
}

/// The rules of OpenAI's chat fine-tuning format with tools, checked on every record.
#[test]
fn chat_records_follow_the_fine_tuning_rules() {
    for trace in traces() {
        let record = serde_json::to_value(chat_example(&trace)).unwrap();
        let messages = record["messages"].as_array().unwrap();
        assert_eq!(messages.last().unwrap()["role"], "assistant");
        let mut open_calls: Vec<String> = Vec::new();
        for message in messages {
            let role = message["role"].as_str().unwrap();
            assert!(["system", "user", "assistant", "tool"].contains(&role));
            if let Some(calls) = message["tool_calls"].as_array() {
                assert_eq!(role, "assistant");
                for call in calls {
                    assert_eq!(call["type"], "function");
                    let arguments = call["function"]["arguments"].as_str().unwrap();
                    assert!(
                        serde_json::from_str::<Value>(arguments)
                            .unwrap()
                            .is_object()
                    );
                    open_calls.push(call["id"].as_str().unwrap().to_string());
                }
            }
            if role == "tool" {
                let id = message["tool_call_id"].as_str().unwrap();
                assert!(open_calls.contains(&id.to_string()), "unanswered {id}");
                assert!(message["content"].is_string());
            }
        }
        for tool in record["tools"].as_array().unwrap() {
            assert_eq!(tool["type"], "function");
            assert!(tool["function"]["parameters"].is_object());
        }
    }
}

#[test]
fn stats_count_tokens_and_rewards() {
    let stats = build_stats(&traces());
    assert_eq!(stats.count, 3);
    assert_eq!(stats.groups, 2);
    assert_eq!(stats.input_tokens, 800);
    assert_eq!(stats.output_tokens, 85);
    assert_eq!(stats.steps, 8);
    assert_eq!(stats.reward.min, Some(0.5));
    assert_eq!(stats.reward.max, Some(1.0));
    assert_eq!(stats.reward.histogram[5].count, 1);
    assert_eq!(stats.reward.histogram[9].count, 2);
}

#[test]
fn repeats_of_a_task_share_a_group() {
    let records: Vec<_> = traces().iter().map(trajectory_example).collect();
    assert_eq!(records[0].group_id, records[2].group_id);
    assert_ne!(records[0].group_id, records[1].group_id);
    assert_eq!(records[0].steps, 3);
}

/// The same traces, for the fewshot tests.
pub(crate) fn traces_for_fewshot() -> Vec<DatasetTrace> {
    traces()
}

#[test]
fn only_the_events_after_the_last_attempt_started_count() {
    let query = "What is 17 * 23?";
    let started = |attempt| EventKind::AttemptStarted {
        attempt,
        worker: "w".into(),
    };
    let ask = || {
        call(
            1,
            vec![Message::user(query)],
            Message::assistant("Let me compute.", vec![tool_call("call_1", "17 * 23")]),
        )
    };
    let r1 = result("call_1", "391", false);
    // Attempt 1 got one answer from the model, then its server shut down; attempt 2 ran the
    // whole conversation again. Both attempts' model calls are step 1 and 2.
    let mut trace = multi_step("t-retried", 0);
    trace.events = vec![
        event(1, started(1)),
        event(2, setup("an older prompt")),
        event(3, ask()),
        event(4, started(2)),
        event(5, setup(query)),
        event(6, ask()),
        event(
            7,
            call(
                2,
                vec![Message::tool(&r1)],
                Message::assistant("17 * 23 = 391", Vec::new()),
            ),
        ),
    ];
    let record = chat_example(&trace);
    let roles: Vec<&str> = record
        .messages
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "assistant", "tool", "assistant"]);
    assert_eq!(trajectory_example(&trace).prompt, query);
    assert_eq!(trajectory_example(&trace).steps, 2);
}
