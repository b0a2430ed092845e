//! A real, unmodified hud-python 0.5.41 environment, over stdio and streamable HTTP.
//! `scripts/test` installs hud-python into a virtualenv and sets ROLLOUT_TEST_PYTHON.

use super::common::{RUN_TIMEOUT, plain_server, server_with_fake};
use rollout_testkit::{FakeModelServer, FakeReply, TestServer};
use serde_json::{Value, json};
use std::time::Duration;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../testkit/fixtures/hud_env.py"
);

/// The virtualenv python with hud-python, or None to skip (only outside scripts/test).
fn python() -> Option<String> {
    super::common::test_python()
}

async fn register_stdio(server: &TestServer, python: &str) -> Value {
    let (status, env) = server
        .post(
            "/v1/environments",
            &json!({"name": "hud-assistant", "command": [python, FIXTURE]}),
        )
        .await;
    assert_eq!(status, 201, "{env}\n{}", server.log());
    env
}

#[tokio::test]
async fn a_hud_environment_is_introspected_from_its_prompts() {
    let Some(python) = python() else { return };
    let server = plain_server().await;
    let env = register_stdio(&server, &python).await;
    assert_eq!(env["status"], "ready");
    assert_eq!(env["server_name"], "hud-assistant");
    let tools: Vec<&str> = env["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(tools, ["add", "shout", "fail", "crash", "sleep"]);
    let sum = env["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "sum_numbers")
        .unwrap();
    assert_eq!(sum["id"], "hud-assistant:sum_numbers");
    assert_eq!(
        sum["args_schema"],
        json!({
            "type": "object",
            "properties": {"numbers": {"type": "array"}, "strict": {"type": "boolean", "default": false}},
            "required": ["numbers"],
            "additionalProperties": false
        })
    );
    // Registering the same source again changes nothing.
    let (status, again) = server
        .post(
            "/v1/environments",
            &json!({"name": "hud-assistant", "command": [python, FIXTURE]}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(again["versions"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn an_llm_run_on_a_hud_environment_over_stdio() {
    let Some(python) = python() else { return };
    let fake = FakeModelServer::start().await.unwrap();
    fake.push([
        FakeReply::tool_call("add", json!({"a": 2, "b": 3})),
        FakeReply::tool_call("fail", json!({})),
        FakeReply::text("The capital of France is Paris."),
    ]);
    let server = server_with_fake(&fake).await;
    register_stdio(&server, &python).await;
    let (status, summary) = server
        .post(
            "/v1/agent/run",
            &json!({
                "env_name": "hud-assistant",
                "scenario_name": "answer_question",
                "scenario_args": {"query": "What is the capital of France?"},
                "model": "claude-sonnet-4-5",
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
    assert_eq!(summary["reward"], 1.0);
    let (_, trace) = server
        .get(&format!(
            "/v1/traces/{}",
            summary["trace_id"].as_str().unwrap()
        ))
        .await;
    let events = trace["events"].as_array().unwrap();
    let setup = events.iter().find(|e| e["type"] == "setup").unwrap();
    assert_eq!(
        setup["prompt"],
        "Answer this question: What is the capital of France?"
    );
    let calls: Vec<&Value> = events.iter().filter(|e| e["type"] == "tool_call").collect();
    assert_eq!(calls[0]["result"]["text"], "5");
    assert_eq!(calls[0]["result"]["structured"], json!({"result": 5}));
    assert_eq!(calls[1]["result"]["is_error"], true);
    assert!(
        calls[1]["result"]["text"]
            .as_str()
            .unwrap()
            .contains("this tool always fails")
    );
    assert_eq!(trace["evaluation"]["subscores"][0]["value"], 1.0);
    assert_eq!(
        trace["evaluation"]["info"]["answer"],
        "The capital of France is Paris."
    );
    // The model never saw the hidden submit tool.
    let first = serde_json::to_string(&fake.requests()[0].body).unwrap();
    assert!(!first.contains("_hud_submit"));
}

#[tokio::test]
async fn typed_scenario_arguments_are_sent_as_json_strings_and_checked() {
    let Some(python) = python() else { return };
    let server = plain_server().await;
    register_stdio(&server, &python).await;
    let run = |args: Value, answer: &str| {
        json!({
            "env_name": "hud-assistant",
            "scenario_name": "sum_numbers",
            "scenario_args": args,
            "model": "replay",
            "validation": [{"answer": answer}],
            "sync": true
        })
    };
    let (status, summary) = server
        .post(
            "/v1/agent/run",
            &run(json!({"numbers": [1, 2, 3], "strict": true}), "6"),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(summary["reward"], 1.0, "{summary}\n{}", server.log());
    let (_, trace) = server
        .get(&format!(
            "/v1/traces/{}",
            summary["trace_id"].as_str().unwrap()
        ))
        .await;
    let setup = trace["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "setup")
        .unwrap()
        .clone();
    assert_eq!(
        setup["arguments"],
        json!({"numbers": "[1,2,3]", "strict": "true"})
    );
    assert!(setup["prompt"].as_str().unwrap().contains("[1, 2, 3]"));

    let (status, body) = server
        .post("/v1/agent/run", &run(json!({"numbers": "1,2,3"}), "6"))
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        body["error"]["details"]["errors"][0]["field"],
        "scenario_args.numbers"
    );
}

/// A hud environment served over streamable HTTP by hud itself, killed on drop.
pub(super) struct HttpEnv {
    child: tokio::process::Child,
    pub(super) url: String,
}

impl HttpEnv {
    pub(super) async fn start(python: &str) -> Self {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let child = tokio::process::Command::new(python)
            .arg(FIXTURE)
            .arg("--http")
            .arg(port.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let ready = tokio::time::timeout(Duration::from_secs(60), async {
            while tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_err()
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await;
        assert!(ready.is_ok(), "the hud HTTP environment did not start");
        Self {
            child,
            url: format!("http://127.0.0.1:{port}/mcp"),
        }
    }
}

impl Drop for HttpEnv {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

#[tokio::test]
async fn concurrent_runs_on_a_hud_environment_over_http_keep_their_own_sessions() {
    let Some(python) = python() else { return };
    let http = HttpEnv::start(&python).await;
    let server = plain_server().await;
    let (status, env) = server
        .post(
            "/v1/environments",
            &json!({"name": "hud-http", "url": http.url}),
        )
        .await;
    assert_eq!(status, 201, "{env}\n{}", server.log());
    let run = |answer: &str| {
        json!({
            "env_name": "hud-http",
            "scenario_name": "answer_question",
            "scenario_args": {"query": "capital of France?"},
            "model": "replay",
            "validation": [{"name": "shout", "arguments": {"text": answer}}, {"answer": answer}],
            "sync": true
        })
    };
    let (paris, lyon) = (run("Paris"), run("Lyon"));
    let (right, wrong) = tokio::join!(
        server.post("/v1/agent/run", &paris),
        server.post("/v1/agent/run", &lyon)
    );
    assert_eq!(right.1["reward"], 1.0, "{}\n{}", right.1, server.log());
    assert_eq!(wrong.1["reward"], 0.0, "{}", wrong.1);
    assert_eq!(right.1["status"], "completed");
    assert_eq!(wrong.1["status"], "completed");
    let (_, trace) = server
        .get(&format!(
            "/v1/traces/{}",
            right.1["trace_id"].as_str().unwrap()
        ))
        .await;
    let shout = trace["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "tool_call")
        .unwrap()
        .clone();
    assert_eq!(shout["result"]["text"], "PARIS");
    let _ = RUN_TIMEOUT;
}

#[tokio::test]
async fn an_environment_that_crashes_fails_only_its_run_with_its_stderr() {
    let Some(python) = python() else { return };
    let server = plain_server().await;
    register_stdio(&server, &python).await;
    let body = |validation: Value| {
        json!({
            "env_name": "hud-assistant",
            "scenario_name": "answer_question",
            "scenario_args": {"query": "capital of France?"},
            "model": "replay",
            "validation": validation,
            "sync": true
        })
    };
    let (_, crashed) = server
        .post(
            "/v1/agent/run",
            &body(json!([{"name": "crash"}, {"answer": "Paris"}])),
        )
        .await;
    assert_eq!(crashed["status"], "failed", "{crashed}");
    let error = crashed["error"].as_str().unwrap();
    assert!(
        error.contains("crashing on purpose"),
        "the error lacks the stderr tail: {error}"
    );
    assert_eq!(crashed["reward"], Value::Null);
    // The next run gets a healthy process.
    let (_, healthy) = server
        .post("/v1/agent/run", &body(json!([{"answer": "Paris"}])))
        .await;
    assert_eq!(healthy["status"], "completed", "{healthy}");
    assert_eq!(healthy["reward"], 1.0);
}

#[tokio::test]
async fn a_tool_that_sleeps_past_the_deadline_times_out_and_is_still_graded() {
    let Some(python) = python() else { return };
    let server = plain_server().await;
    register_stdio(&server, &python).await;
    let (status, summary) = server
        .post(
            "/v1/agent/run",
            &json!({
                "env_name": "hud-assistant",
                "scenario_name": "answer_question",
                "scenario_args": {"query": "capital of France?"},
                "model": "replay",
                "validation": [{"name": "sleep", "arguments": {"seconds": 600}}, {"answer": "Paris"}],
                "timeout_seconds": 2,
                "sync": true
            }),
        )
        .await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(
        summary["status"],
        "timed_out",
        "{summary}\n{}",
        server.log()
    );
    assert_eq!(summary["outcome"], "agent_timeout");
    // Graded with an empty answer, in a fresh scenario session of the same environment.
    assert_eq!(summary["reward"], 0.0);
    let (_, trace) = server
        .get(&format!(
            "/v1/traces/{}",
            summary["trace_id"].as_str().unwrap()
        ))
        .await;
    assert!(
        trace["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "evaluation")
    );
}
