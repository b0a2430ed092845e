//! A run accepted with 202 is never lost: not when the server is killed mid-run, not
//! when it shuts down gracefully.

use super::cancel::wait_for_event;
use super::common::{RUN_TIMEOUT, binary, fake_options, processes_with, wait_processes};
use rollout_testkit::{FakeModelServer, FakeReply, ServerOptions, TestServer};
use serde_json::{Value, json};
use std::time::Duration;

/// A "provider" that accepts connections and never answers: a model call in flight.
async fn black_hole() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    format!("http://{address}")
}

fn stuck_options(url: &str, data_dir: Option<std::path::PathBuf>) -> ServerOptions {
    ServerOptions {
        env: vec![
            ("ANTHROPIC_BASE_URL".into(), url.into()),
            ("ANTHROPIC_API_KEY".into(), "sk-test".into()),
        ],
        args: vec!["--lease-seconds".into(), "2".into()],
        data_dir,
        ..ServerOptions::default()
    }
}

fn run_body() -> Value {
    json!({
        "env_name": "my-assistant",
        "scenario_name": "answer_question",
        "scenario_args": {"query": "What is 17 * 23?"},
        "model": "claude-opus-4-5"
    })
}

async fn wait_running(server: &TestServer, trace_id: &str) {
    let running = tokio::time::timeout(RUN_TIMEOUT, async {
        loop {
            let (_, trace) = server.get(&format!("/v1/traces/{trace_id}")).await;
            let in_flight = trace["events"]
                .as_array()
                .is_some_and(|e| e.iter().any(|e| e["type"] == "setup"));
            if trace["status"] == "running" && in_flight {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(running.is_ok(), "the run never started:\n{}", server.log());
}

/// A server (shutdown grace 1 s) whose one run is stuck in a model call, and the run's id.
async fn server_with_a_stuck_run() -> (TestServer, String) {
    let hole = black_hole().await;
    let mut options = stuck_options(&hole, None);
    options
        .args
        .extend(["--shutdown-grace-seconds".into(), "1".into()]);
    let server = TestServer::start(binary(), options).await.unwrap();
    let (_, accepted) = server.post("/v1/agent/run", &run_body()).await;
    let trace_id = accepted["trace_id"].as_str().unwrap().to_string();
    wait_running(&server, &trace_id).await;
    (server, trace_id)
}

async fn restart_and_finish(data_dir: std::path::PathBuf, trace_id: &str) -> Value {
    let fake = FakeModelServer::start().await.unwrap();
    fake.push([FakeReply::text("391")]);
    let mut options = fake_options(&fake);
    options.data_dir = Some(data_dir);
    options.args = vec!["--lease-seconds".into(), "2".into()];
    let server = TestServer::start(binary(), options).await.unwrap();
    let trace = server.wait_for_trace(trace_id, RUN_TIMEOUT).await;
    assert_eq!(trace["status"], "completed", "{trace}\n{}", server.log());
    assert_eq!(trace["reward"], 1.0);
    trace
}

#[tokio::test]
async fn a_run_in_flight_survives_a_server_crash() {
    let hole = black_hole().await;
    let mut server = TestServer::start(binary(), stuck_options(&hole, None))
        .await
        .unwrap();
    let (status, accepted) = server.post("/v1/agent/run", &run_body()).await;
    assert_eq!(status, 202);
    let trace_id = accepted["trace_id"].as_str().unwrap().to_string();
    wait_running(&server, &trace_id).await;
    let data_dir = server.data_dir.clone();
    server.kill().await;

    let trace = restart_and_finish(data_dir, &trace_id).await;
    assert_eq!(trace["attempts"], 2);
    let lost = trace["events"].as_array().unwrap().iter().any(|e| {
        e["type"] == "error"
            && e["message"]
                .as_str()
                .unwrap_or_default()
                .contains("re-queued")
    });
    assert!(lost, "no recovery event in {trace}");
}

#[tokio::test]
async fn a_graceful_shutdown_releases_runs_in_flight_to_the_queue() {
    let (mut server, trace_id) = server_with_a_stuck_run().await;
    let data_dir = server.data_dir.clone();
    if let Err(error) = server.terminate(Duration::from_secs(60)).await {
        panic!("{error}\n{}", server.log());
    }

    let trace = restart_and_finish(data_dir, &trace_id).await;
    let released = trace["events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["phase"] == "shutdown");
    assert!(released, "no shutdown event in {trace}");
}

#[tokio::test]
async fn queued_runs_survive_a_restart() {
    let fake = FakeModelServer::start().await.unwrap();
    let mut options = fake_options(&fake);
    options.args = vec!["--max-concurrent-runs".into(), "0".into()];
    let mut server = TestServer::start(binary(), options).await.unwrap();
    let (_, accepted) = server.post("/v1/agent/run", &run_body()).await;
    let trace_id = accepted["trace_id"].as_str().unwrap().to_string();
    let (_, trace) = server.get(&format!("/v1/traces/{trace_id}")).await;
    assert_eq!(trace["status"], "queued");
    assert_eq!(trace["queue_position"], 1);
    let data_dir = server.data_dir.clone();
    server.kill().await;
    restart_and_finish(data_dir, &trace_id).await;
}

#[tokio::test]
async fn a_killed_server_leaves_no_environment_process_behind() {
    let Ok(python) = std::env::var("ROLLOUT_TEST_PYTHON") else {
        assert!(
            std::env::var("ROLLOUT_REQUIRE_PYTHON").is_err(),
            "ROLLOUT_TEST_PYTHON is not set"
        );
        return;
    };
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testkit/fixtures/hud_env.py"
    );
    let tag = format!("orphan-check-{}", std::process::id());
    let hole = black_hole().await;
    let mut server = TestServer::start(binary(), stuck_options(&hole, None))
        .await
        .unwrap();
    let (status, env) = server
        .post(
            "/v1/environments",
            &json!({"name": "guarded", "command": [python, fixture, "--tag", tag]}),
        )
        .await;
    assert_eq!(status, 201, "{env}");
    let mut body = run_body();
    body["env_name"] = json!("guarded");
    body["scenario_args"] = json!({"query": "capital of France?"});
    let (_, accepted) = server.post("/v1/agent/run", &body).await;
    wait_running(&server, accepted["trace_id"].as_str().unwrap()).await;
    assert!(
        !processes_with(&tag).is_empty(),
        "the environment is not running"
    );

    server.kill().await;
    assert!(
        wait_processes(&tag, false).await,
        "environment processes left behind: {:?}",
        processes_with(&tag)
    );
}

/// A run released at shutdown after the model answered once is started again as a new
/// attempt (attempts only increase), and its dataset record is that attempt's conversation
/// only, not the two spliced together.
#[tokio::test]
async fn a_released_run_is_a_new_attempt_and_its_dataset_record_is_that_attempt_only() {
    let fake = FakeModelServer::start().await.unwrap();
    let compute = FakeReply::tool_call("calculator", json!({"expression": "17 * 23"}));
    // Attempt 1: the model asks for the calculator, then its next call is still in flight
    // at shutdown. Attempt 2: the whole conversation.
    fake.push([
        compute.clone(),
        FakeReply::delayed(Duration::from_secs(600), FakeReply::text("too late")),
        compute,
        FakeReply::text("17 * 23 = 391"),
    ]);
    let mut options = fake_options(&fake);
    options.args = vec!["--shutdown-grace-seconds".into(), "1".into()];
    let mut server = TestServer::start(binary(), options.clone()).await.unwrap();
    let (_, accepted) = server.post("/v1/agent/run", &run_body()).await;
    let trace_id = accepted["trace_id"].as_str().unwrap().to_string();
    wait_for_event(&server, &trace_id, |events| {
        events.iter().any(|e| e["type"] == "tool_call")
    })
    .await;
    if let Err(error) = server.terminate(Duration::from_secs(60)).await {
        panic!("{error}\n{}", server.log());
    }

    options.data_dir = Some(server.data_dir.clone());
    let server = TestServer::start(binary(), options).await.unwrap();
    let trace = server.wait_for_trace(&trace_id, RUN_TIMEOUT).await;
    assert_eq!(trace["status"], "completed", "{trace}\n{}", server.log());
    assert_eq!(trace["attempts"], 2);
    let attempts_of = |kind: &str| -> Vec<i64> {
        trace["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == kind)
            .map(|e| e["attempt"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(attempts_of("attempt_started"), [1, 2]);
    assert_eq!(attempts_of("model_call"), [1, 2, 2]);
    assert_eq!(attempts_of("finished"), [2]);

    let (status, dataset) = server
        .post("/v1/datasets", &json!({"trace_ids": [trace_id]}))
        .await;
    assert_eq!(status, 201, "{dataset}");
    let response = server
        .client()
        .get(format!(
            "{}/v1/datasets/{}/download?format=chat",
            server.base_url,
            dataset["id"].as_str().unwrap()
        ))
        .bearer_auth(&server.admin_key)
        .send()
        .await
        .unwrap();
    let record: Value = serde_json::from_str(response.text().await.unwrap().trim()).unwrap();
    let roles: Vec<&str> = record["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(
        roles,
        ["user", "assistant", "tool", "assistant"],
        "{record}"
    );
}

/// SIGTERM with an event stream open and a `sync` request waiting: neither holds the
/// shutdown up. The stream ends with a `retry:` hint, `sync` answers 202 with the run's
/// status, and the process exits within its grace period (bounded generously here).
#[tokio::test]
async fn a_shutdown_ends_open_event_streams_and_sync_waits() {
    let (mut server, streamed) = server_with_a_stuck_run().await;
    let stream = server
        .client()
        .get(format!("{}/v1/traces/{streamed}/events", server.base_url))
        .bearer_auth(&server.admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let mut sync_body = run_body();
    sync_body["sync"] = json!(true);
    let sync = server
        .client()
        .post(format!("{}/v1/agent/run", server.base_url))
        .bearer_auth(&server.admin_key)
        .json(&sync_body)
        .send();
    let sync = tokio::spawn(async move {
        let response = sync.await.unwrap();
        let status = response.status().as_u16();
        (status, response.json::<Value>().await.unwrap())
    });
    // Both requests are in: the stream sent the run's first events, the sync run started.
    let running = tokio::time::timeout(RUN_TIMEOUT, async {
        loop {
            let (_, page) = server.get("/v1/traces?status=running").await;
            if page["traces"]
                .as_array()
                .is_some_and(|runs| runs.len() == 2)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(
        running.is_ok(),
        "the sync run never started:\n{}",
        server.log()
    );

    if let Err(error) = server.terminate(Duration::from_secs(30)).await {
        panic!("the server did not exit: {error}\n{}", server.log());
    }
    let (status, summary) = sync.await.unwrap();
    assert_eq!(status, 202, "{summary}");
    assert!(
        matches!(summary["status"].as_str(), Some("running" | "queued")),
        "{summary}"
    );
    let text = stream.text().await.unwrap();
    assert!(text.contains("event: attempt_started"), "{text}");
    assert!(text.contains("retry: 1000"), "{text}");
}
