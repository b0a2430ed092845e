//! A panic in the execution of a run fails that run, and nothing else: its heartbeat and
//! cancel watch end with it, its environment is killed, and the worker serves the next run.
//! Needs the `failpoints` feature (`scripts/test` builds with it).

use super::common::{
    RUN_TIMEOUT, binary, fake_options, marked_binary, processes_with, wait_processes,
};
use rollout_testkit::{FakeModelServer, FakeReply, TestServer};
use serde_json::{Value, json};

fn run_body(env: &str) -> Value {
    json!({
        "env_name": env,
        "scenario_name": "answer_question",
        "scenario_args": {"query": "What is 17 * 23?"},
        "model": "claude-opus-4-5"
    })
}

#[tokio::test]
#[cfg_attr(
    not(feature = "failpoints"),
    ignore = "needs the failpoints feature (scripts/test enables it)"
)]
async fn a_panic_in_a_tool_call_fails_the_run_and_nothing_else() {
    let fake = FakeModelServer::start().await.unwrap();
    let tool_call = FakeReply::tool_call("calculator", json!({"expression": "17 * 23"}));
    fake.push([
        tool_call.clone(),
        tool_call,
        FakeReply::text("17 * 23 = 391"),
    ]);
    let mut options = fake_options(&fake);
    // The first tool call of the server's life panics; the next ones work.
    options.env.push((
        "FAILPOINTS".into(),
        "agent::tool_call=1*panic(a bug in a tool call)".into(),
    ));
    let server = TestServer::start(binary(), options).await.unwrap();
    let (_dir, marked) = marked_binary("panics");
    let (status, env) = server
        .post(
            "/v1/environments",
            &json!({"name": "marked", "command": [marked, "example-env", "my-assistant"]}),
        )
        .await;
    assert_eq!(status, 201, "{env}");

    let (_, accepted) = server.post("/v1/agent/run", &run_body("marked")).await;
    let trace_id = accepted["trace_id"].as_str().unwrap().to_string();
    let trace = server.wait_for_trace(&trace_id, RUN_TIMEOUT).await;
    assert_eq!(trace["status"], "failed", "{trace}\n{}", server.log());
    assert_eq!(trace["error"], "internal error");
    let events = trace["events"].as_array().unwrap();
    let internal = events
        .iter()
        .find(|e| e["type"] == "error" && e["phase"] == "internal")
        .unwrap_or_else(|| panic!("no internal error event in {trace}"));
    assert!(
        internal["message"]
            .as_str()
            .unwrap()
            .contains("a bug in a tool call"),
        "{internal}"
    );
    let finished: Vec<&Value> = events.iter().filter(|e| e["type"] == "finished").collect();
    assert_eq!(finished.len(), 1, "{trace}");
    assert_eq!(finished[0]["status"], "failed");

    // The environment died with the execution.
    assert!(
        wait_processes(&marked, false).await,
        "environment processes left: {:?}",
        processes_with(&marked)
    );
    // Nothing keeps the run alive: cancel finds it ended, and its lease is not renewed.
    let (status, refused) = server
        .post(&format!("/v1/traces/{trace_id}/cancel"), &json!({}))
        .await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"]["code"], "run_finished");

    // The worker goes on serving runs.
    let (_, accepted) = server.post("/v1/agent/run", &run_body("marked")).await;
    let next = server
        .wait_for_trace(accepted["trace_id"].as_str().unwrap(), RUN_TIMEOUT)
        .await;
    assert_eq!(next["status"], "completed", "{next}\n{}", server.log());
    assert_eq!(next["reward"], 1.0);
}
