//! The loop's behaviour with scripted models and fake tool hosts.

use rollout_agent::{AgentConfig, AgentError, run_agent};
use rollout_domain::testing::{FakeToolHost, RecordingSink, ScriptedModel, final_text, tool_call};
use rollout_domain::{EventKind, ModelError, ModelErrorKind, Role, RunOutcome, ToolSpec};
use serde_json::json;

fn config(max_steps: u32) -> AgentConfig {
    AgentConfig {
        model: "scripted".into(),
        max_steps,
        system_prompt: None,
    }
}

fn tool(name: &str) -> ToolSpec {
    ToolSpec {
        name: name.into(),
        description: String::new(),
        input_schema: json!({"type": "object"}),
    }
}

fn calculator() -> FakeToolHost {
    FakeToolHost::default().with_tool("calculator", |args| {
        if args["expression"] == "17 * 23" {
            Ok("391".into())
        } else {
            Err("bad expression".into())
        }
    })
}

#[tokio::test]
async fn tool_call_then_final_answer() {
    let model = ScriptedModel::new(vec![
        tool_call("c1", "calculator", json!({"expression": "17 * 23"})),
        final_text("It is 391."),
    ]);
    let host = calculator();
    let sink = RecordingSink::default();
    let result = run_agent(
        &config(10),
        "What is 17 * 23?",
        vec![tool("calculator")],
        &model,
        &host,
        &sink,
    )
    .await
    .unwrap();
    assert_eq!(result.final_answer, "It is 391.");
    assert_eq!(result.outcome, RunOutcome::Answered);
    assert_eq!(result.steps, 2);
    assert_eq!(result.usage.input_tokens, 20);
    assert_eq!(result.usage.output_tokens, 10);

    // The second request carries the tool result under the same call id.
    let requests = model.requests();
    assert_eq!(requests.len(), 2);
    let last = requests[1].messages.last().unwrap();
    assert_eq!(last.role, Role::Tool);
    assert_eq!(last.tool_call_id.as_deref(), Some("c1"));
    assert_eq!(last.content, "391");

    let names: Vec<&str> = sink
        .events()
        .iter()
        .map(EventKind::name)
        .collect::<Vec<_>>();
    assert_eq!(names, ["model_call", "tool_call", "model_call"]);
    // Each model call records only the messages new since the previous one.
    let events = sink.events();
    let EventKind::ModelCall { new_messages, .. } = &events[2] else {
        panic!("not a model call")
    };
    assert_eq!(new_messages.len(), 1);
    assert_eq!(new_messages[0].role, Role::Tool);
}

#[tokio::test]
async fn running_out_of_steps_is_an_outcome_with_an_empty_answer() {
    let model = ScriptedModel::new(vec![
        tool_call("c1", "calculator", json!({"expression": "17 * 23"})),
        tool_call("c2", "calculator", json!({"expression": "17 * 23"})),
    ]);
    let host = calculator();
    let sink = RecordingSink::default();
    let result = run_agent(
        &config(2),
        "q",
        vec![tool("calculator")],
        &model,
        &host,
        &sink,
    )
    .await
    .unwrap();
    assert_eq!(result.outcome, RunOutcome::MaxStepsReached);
    assert_eq!(result.final_answer, "");
    assert_eq!(result.steps, 2);
    assert_eq!(host.calls().len(), 2);
}

#[tokio::test]
async fn tool_errors_go_back_to_the_model() {
    let model = ScriptedModel::new(vec![
        tool_call("c1", "calculator", json!({"expression": "nope"})),
        final_text("sorry"),
    ]);
    let sink = RecordingSink::default();
    let result = run_agent(
        &config(5),
        "q",
        vec![tool("calculator")],
        &model,
        &calculator(),
        &sink,
    )
    .await
    .unwrap();
    assert_eq!(result.outcome, RunOutcome::Answered);
    let tool_message = &model.requests()[1].messages[2];
    assert!(tool_message.is_error);
    assert_eq!(tool_message.content, "bad expression");
}

#[tokio::test]
async fn hidden_and_unknown_tools_never_reach_the_environment() {
    let model = ScriptedModel::new(vec![
        tool_call("c1", "_hud_submit", json!({"scenario": "s", "answer": "x"})),
        final_text("done"),
    ]);
    let host = FakeToolHost::default().with_tool("_hud_submit", |_| Ok("submitted".into()));
    let sink = RecordingSink::default();
    run_agent(
        &config(5),
        "q",
        vec![tool("calculator")],
        &model,
        &host,
        &sink,
    )
    .await
    .unwrap();
    assert!(host.calls().is_empty());
    let tool_message = &model.requests()[1].messages[2];
    assert!(tool_message.is_error);
    assert!(tool_message.content.contains("not available"));
}

#[tokio::test]
async fn model_failure_is_an_error() {
    let model = ScriptedModel::new(vec![Err(ModelError::new(ModelErrorKind::Server, "down"))]);
    let sink = RecordingSink::default();
    let error = run_agent(&config(5), "q", vec![], &model, &calculator(), &sink)
        .await
        .unwrap_err();
    assert!(matches!(error, AgentError::Model(_)));
}

#[tokio::test]
async fn environment_crash_during_a_tool_call_is_an_error() {
    let model = ScriptedModel::new(vec![tool_call("c1", "boom", json!({}))]);
    let host = FakeToolHost::default().with_crashing_tool("boom");
    let sink = RecordingSink::default();
    let error = run_agent(&config(5), "q", vec![tool("boom")], &model, &host, &sink)
        .await
        .unwrap_err();
    assert!(matches!(error, AgentError::Tool(_)));
}

#[tokio::test]
async fn the_system_prompt_is_sent_and_recorded_once() {
    let model = ScriptedModel::new(vec![final_text("ok")]);
    let sink = RecordingSink::default();
    let config = AgentConfig {
        system_prompt: Some("be brief".into()),
        ..config(3)
    };
    run_agent(&config, "q", vec![], &model, &calculator(), &sink)
        .await
        .unwrap();
    assert_eq!(model.requests()[0].system.as_deref(), Some("be brief"));
    let events = sink.events();
    let EventKind::ModelCall { new_messages, .. } = &events[0] else {
        panic!("not a model call")
    };
    assert_eq!(new_messages[0].role, Role::System);
    assert_eq!(new_messages[1].role, Role::User);
}
