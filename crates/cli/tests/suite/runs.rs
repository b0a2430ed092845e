//! Runs end to end: the bundled Rust environment with the replay model and with both
//! provider wire formats (fake provider on loopback).

use super::common::{RUN_TIMEOUT, SECRET_KEY, event_types, plain_server, server_with_fake};
use rollout_testkit::{FakeModelServer, FakeReply};
use serde_json::{Value, json};

fn question(model: &str) -> Value {
    json!({
        "env_name": "my-assistant",
        "scenario_name": "answer_question",
        "scenario_args": {"query": "What is 17 * 23?"},
        "model": model,
        "max_steps": 100
    })
}

#[tokio::test]
async fn the_first_curl_of_the_readme_works_with_the_replay_model() {
    let server = plain_server().await;
    let mut body = question("replay");
    body["validation"] = json!([
        {"name": "calculator", "arguments": {"expression": "17 * 23"}},
        {"answer": "17 * 23 = 391"}
    ]);
    body["sync"] = json!(true);
    let (status, summary) = server.post("/v1/agent/run", &body).await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(
        summary["status"],
        "completed",
        "{summary}\n{}",
        server.log()
    );
    assert_eq!(summary["reward"], 1.0);
    assert_eq!(summary["final_response"], "17 * 23 = 391");
    assert_eq!(summary["steps_taken"], 2);
    assert_eq!(summary["error"], Value::Null);
    assert!(summary["duration_seconds"].as_f64().unwrap() >= 0.0);
    let trace_id = summary["trace_id"].as_str().unwrap();
    assert_eq!(
        summary["trace_url"],
        format!("{}/traces/{trace_id}", server.base_url)
    );

    let (status, trace) = server.get(&format!("/v1/traces/{trace_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(
        event_types(&trace),
        [
            "attempt_started",
            "env_connected",
            "setup",
            "model_call",
            "tool_call",
            "model_call",
            "answer",
            "evaluation",
            "finished"
        ]
    );
    let events = trace["events"].as_array().unwrap();
    let seqs: Vec<i64> = events.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=9).collect::<Vec<_>>());
    assert!(
        events[2]["prompt"]
            .as_str()
            .unwrap()
            .contains("What is 17 * 23?")
    );
    let tools: Vec<&str> = events[2]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(tools, ["calculator", "lookup", "respond"]);
    assert_eq!(events[4]["name"], "calculator");
    assert_eq!(events[4]["result"]["text"], "391");
    assert_eq!(events[4]["result"]["is_error"], false);
    assert_eq!(trace["evaluation"]["reward"], 1.0);
    assert_eq!(trace["evaluation"]["subscores"][0]["name"], "correct");
    assert!(
        trace["evaluation"]["content"]
            .as_str()
            .unwrap()
            .contains("391")
    );
}

#[tokio::test]
async fn a_run_is_queued_then_executed_in_the_background() {
    let server = plain_server().await;
    let mut body = question("replay");
    body["scenario_args"] = json!({"query": "What is the capital of France?"});
    body["validation"] = json!([{"name": "lookup", "arguments": {"topic": "capital of France"}}, {"answer": "Paris"}]);
    let (status, accepted) = server.post("/v1/agent/run", &body).await;
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(accepted["status"], "queued");
    let keys: Vec<&String> = accepted.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["queue_position", "status", "trace_id", "trace_url"]);
    let trace = server
        .wait_for_trace(accepted["trace_id"].as_str().unwrap(), RUN_TIMEOUT)
        .await;
    assert_eq!(trace["status"], "completed");
    assert_eq!(trace["reward"], 1.0);
    assert_eq!(trace["outcome"], "answered");
}

#[tokio::test]
async fn a_wrong_answer_is_completed_with_reward_zero() {
    let server = plain_server().await;
    let mut body = question("replay");
    body["validation"] = json!([{"answer": "about 400"}]);
    body["sync"] = json!(true);
    let (status, summary) = server.post("/v1/agent/run", &body).await;
    assert_eq!(status, 200);
    assert_eq!(summary["status"], "completed");
    assert_eq!(summary["reward"], 0.0);
}

#[tokio::test]
async fn running_out_of_steps_is_graded_with_an_empty_answer() {
    let server = plain_server().await;
    let mut body = question("replay");
    body["max_steps"] = json!(1);
    body["validation"] = json!([
        {"name": "calculator", "arguments": {"expression": "17 * 23"}},
        {"answer": "391"}
    ]);
    body["sync"] = json!(true);
    let (_, summary) = server.post("/v1/agent/run", &body).await;
    assert_eq!(summary["status"], "completed", "{summary}");
    assert_eq!(summary["outcome"], "max_steps_reached");
    assert_eq!(summary["reward"], 0.0);
    assert_eq!(summary["final_response"], "");
}

/// The same scenario through each provider's wire format.
async fn run_with_provider(model: &str, wire: &str) {
    let fake = FakeModelServer::start().await.unwrap();
    fake.push([
        FakeReply::tool_call("calculator", json!({"expression": "17 * 23"})),
        FakeReply::tool_call("lookup", json!({"topic": "no such thing"})),
        FakeReply::text("It is 391."),
    ]);
    let server = server_with_fake(&fake).await;
    let mut body = question(model);
    body["sync"] = json!(true);
    let (status, summary) = server.post("/v1/agent/run", &body).await;
    assert_eq!(status, 200, "{summary}\n{}", server.log());
    assert_eq!(
        summary["status"],
        "completed",
        "{summary}\n{}",
        server.log()
    );
    assert_eq!(summary["reward"], 1.0);
    assert_eq!(summary["final_response"], "It is 391.");
    assert_eq!(summary["steps_taken"], 3);

    let requests = fake.requests();
    assert_eq!(requests.len(), 3);
    assert!(requests.iter().all(|r| r.wire == wire));
    // Usage on the run is the sum of what the provider reported.
    let (input, output) = requests
        .iter()
        .map(|r| r.expected_usage())
        .fold((0, 0), |(i, o), (ri, ro)| (i + ri, o + ro));
    let trace_id = summary["trace_id"].as_str().unwrap();
    let (_, trace) = server.get(&format!("/v1/traces/{trace_id}")).await;
    assert_eq!(trace["usage"]["input_tokens"], input);
    assert_eq!(trace["usage"]["output_tokens"], output);
    assert_eq!(trace["usage"]["total_tokens"], input + output);

    // Tool-call ids: the id the provider gave comes back with the tool's result.
    let events = trace["events"].as_array().unwrap();
    let tool_calls: Vec<&Value> = events.iter().filter(|e| e["type"] == "tool_call").collect();
    assert_eq!(tool_calls.len(), 2);
    let first_id = tool_calls[0]["call_id"].as_str().unwrap();
    let second = serde_json::to_string(&requests[1].body).unwrap();
    assert!(
        second.contains(first_id),
        "second request lacks call id {first_id}: {second}"
    );
    assert!(second.contains("391"));
    // A tool error goes back to the model as a result, not a failure.
    assert_eq!(tool_calls[1]["result"]["is_error"], true);

    // No secret in the trace or the log, and the key reached the provider.
    assert!(!trace.to_string().contains(SECRET_KEY));
    assert!(!server.log().contains(SECRET_KEY));
    let auth = requests[0]
        .header("x-api-key")
        .or(requests[0].header("authorization"))
        .unwrap();
    assert!(auth.contains(SECRET_KEY));
}

#[tokio::test]
async fn claude_models_speak_anthropic_messages() {
    run_with_provider("claude-opus-4-5", "anthropic").await;
}

#[tokio::test]
async fn gpt_models_speak_openai_chat_completions() {
    run_with_provider("gpt-5", "openai").await;
}

#[tokio::test]
async fn a_provider_that_keeps_failing_fails_the_run_with_a_clear_error() {
    let fake = FakeModelServer::start().await.unwrap();
    fake.push([FakeReply::error(400, "prompt is too long")]);
    let server = server_with_fake(&fake).await;
    let mut body = question("claude-opus-4-5");
    body["sync"] = json!(true);
    let (_, summary) = server.post("/v1/agent/run", &body).await;
    assert_eq!(summary["status"], "failed");
    let error = summary["error"].as_str().unwrap();
    assert!(error.contains("prompt is too long"), "{error}");
    assert_eq!(summary["reward"], Value::Null);
}

#[tokio::test]
async fn models_list_says_what_is_callable_and_why_not() {
    let server = plain_server().await;
    let (status, body) = server.get("/v1/models").await;
    assert_eq!(status, 200);
    let models = body["models"].as_array().unwrap();
    let replay = models.iter().find(|m| m["name"] == "replay").unwrap();
    assert_eq!(replay["available"], true);
    let claude = models
        .iter()
        .find(|m| m["name"] == "claude-opus-4-5")
        .unwrap();
    assert_eq!(claude["available"], false);
    assert!(
        claude["reason"]
            .as_str()
            .unwrap()
            .contains("ANTHROPIC_API_KEY")
    );
}

#[tokio::test]
async fn the_bundled_environment_is_listed_with_its_scenario_schema() {
    let server = plain_server().await;
    let (status, body) = server.get("/v1/environments").await;
    assert_eq!(status, 200);
    let names: Vec<&str> = body["environments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["inbox", "my-assistant"]);
    let (status, env) = server.get("/v1/environments/my-assistant").await;
    assert_eq!(status, 200);
    assert_eq!(env["status"], "ready");
    let scenario = &env["scenarios"][0];
    assert_eq!(scenario["name"], "answer_question");
    assert_eq!(scenario["args_schema"]["required"], json!(["query"]));
    assert_eq!(
        scenario["args_schema"]["properties"]["query"]["type"],
        "string"
    );
    let tools: Vec<&str> = env["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(tools, ["calculator", "lookup", "respond"]);
}
