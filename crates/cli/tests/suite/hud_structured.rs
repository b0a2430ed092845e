//! Structured answers to a real hud-python 0.5.41 environment (`fixtures/structured_env.py`):
//! rollout submits the final text as hud's client submits structured answers, so a
//! `returns=` scenario parses it into its type and a plain scenario receives it unchanged.

use super::common::{plain_server, python};
use rollout_testkit::TestServer;
use serde_json::{Value, json};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../testkit/fixtures/structured_env.py"
);

/// A replayed run of `scenario` whose final answer is `answer`: the run's summary and trace.
async fn run(server: &TestServer, scenario: &str, args: Value, answer: &str) -> (Value, Value) {
    let (status, summary) = server
        .post(
            "/v1/agent/run",
            &json!({
                "env_name": "structured",
                "scenario_name": scenario,
                "scenario_args": args,
                "model": "replay",
                "validation": [{"answer": answer}],
                "sync": true
            }),
        )
        .await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(
        summary["status"],
        "completed",
        "{summary}\n{}",
        server.log()
    );
    let id = summary["trace_id"].as_str().unwrap();
    let (_, trace) = server.get(&format!("/v1/traces/{id}")).await;
    (summary, trace)
}

#[tokio::test]
async fn a_returns_scenario_grades_the_typed_answer_and_plain_json_text_arrives_unchanged() {
    let Some(python) = python() else { return };
    let server = plain_server().await;
    let (status, env) = server
        .post(
            "/v1/environments",
            &json!({"name": "structured", "command": [python, FIXTURE]}),
        )
        .await;
    assert_eq!(status, 201, "{env}\n{}", server.log());

    let numbers = json!({"numbers": [1, 2, 3]});
    let (right, trace) = run(&server, "sum_struct", numbers.clone(), r#"{"total": 6}"#).await;
    assert_eq!(right["reward"], 1.0, "{trace}");
    assert_eq!(trace["evaluation"]["info"]["parsed"], true);
    let (wrong, trace) = run(&server, "sum_struct", numbers, r#"{"total": 7}"#).await;
    assert_eq!(wrong["reward"], 0.0, "{trace}");
    assert_eq!(trace["evaluation"]["info"]["parsed"], true);

    for text in [r#"{"total": 6}"#, "[1, 2]", "plain words"] {
        let (_, trace) = run(&server, "echo", json!({}), text).await;
        assert_eq!(trace["evaluation"]["info"]["answer"], text, "{trace}");
    }
}
