//! The bundled `inbox` environment: state shared by tools and the scenario within one
//! session, and a reward made of weighted subscores.

use super::common::plain_server;
use serde_json::{Value, json};

fn run(validation: Value) -> Value {
    json!({
        "env_name": "inbox",
        "scenario_name": "triage_inbox",
        "scenario_args": {"owner": "Alex"},
        "model": "replay",
        "validation": validation,
        "sync": true
    })
}

#[tokio::test]
async fn tools_change_the_session_inbox_and_the_scenario_grades_it() {
    let server = plain_server().await;
    let good = run(json!([
        {"name": "list_messages", "arguments": {}},
        {"name": "archive_message", "arguments": {"id": 1}},
        {"name": "archive_message", "arguments": {"id": 3}},
        {"name": "reply", "arguments": {"id": 2, "text": "Yes, I will be there."}},
        {"answer": "Left: the VPN maintenance on Saturday."}
    ]));
    let partial = run(json!([
        {"name": "archive_message", "arguments": {"id": 1}},
        {"name": "archive_message", "arguments": {"id": 4}},
        {"answer": "Done."}
    ]));
    let (good, partial) = tokio::join!(
        server.post("/v1/agent/run", &good),
        server.post("/v1/agent/run", &partial)
    );
    assert_eq!(
        good.1["status"],
        "completed",
        "{}\n{}",
        good.1,
        server.log()
    );
    assert_eq!(good.1["reward"], 1.0, "{}", good.1);

    let (_, trace) = server
        .get(&format!(
            "/v1/traces/{}",
            partial.1["trace_id"].as_str().unwrap()
        ))
        .await;
    let subscores: Vec<(String, f64)> = trace["evaluation"]["subscores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["value"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        subscores,
        [
            ("spam_archived".to_string(), 0.5),
            ("question_answered".to_string(), 0.0),
            ("summary".to_string(), 0.0),
            ("real_mail_archived".to_string(), 1.0)
        ]
    );
    assert_eq!(trace["reward"], 0.0);
    // The listing reflects what earlier tool calls in the same session did.
    let (_, trace) = server
        .get(&format!(
            "/v1/traces/{}",
            good.1["trace_id"].as_str().unwrap()
        ))
        .await;
    let first = trace["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "tool_call")
        .unwrap()
        .clone();
    assert!(
        first["result"]["text"]
            .as_str()
            .unwrap()
            .contains("You WON a cruise")
    );
}

#[tokio::test]
async fn a_warm_pool_still_gives_every_run_a_fresh_session() {
    let options = rollout_testkit::ServerOptions {
        args: vec!["--warm-pool-size".into(), "2".into()],
        ..rollout_testkit::ServerOptions::default()
    };
    let server = rollout_testkit::TestServer::start(super::common::binary(), options)
        .await
        .unwrap();
    for _ in 0..3 {
        let (_, summary) = server
            .post(
                "/v1/agent/run",
                &run(json!([
                    {"name": "list_messages", "arguments": {}},
                    {"name": "archive_message", "arguments": {"id": 1}},
                    {"answer": "VPN maintenance"}
                ])),
            )
            .await;
        assert_eq!(
            summary["status"],
            "completed",
            "{summary}\n{}",
            server.log()
        );
        // Each run starts from the seeded inbox: message 1 is there although the previous
        // run archived it.
        let (_, trace) = server
            .get(&format!(
                "/v1/traces/{}",
                summary["trace_id"].as_str().unwrap()
            ))
            .await;
        let listing = trace["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["type"] == "tool_call")
            .unwrap()
            .clone();
        assert!(
            listing["result"]["text"]
                .as_str()
                .unwrap()
                .contains("You WON a cruise"),
            "{listing}"
        );
    }
}
