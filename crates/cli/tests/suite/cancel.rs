//! Cancel: a queued run leaves the queue at once; a running run stops its model call in
//! flight or its tool call, its environment's processes are killed, and only then does it
//! report `cancelled`. Bulk cancel by filter.

use super::common::{RUN_TIMEOUT, binary, fake_options, server_with_fake};
use rollout_testkit::{FakeModelServer, FakeReply, ServerOptions, TestServer};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

/// A "provider" that accepts connections and never answers: a model call in flight.
pub(super) async fn black_hole() -> String {
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

fn stuck_options(url: &str) -> ServerOptions {
    ServerOptions {
        env: vec![
            ("ANTHROPIC_BASE_URL".into(), url.into()),
            ("ANTHROPIC_API_KEY".into(), "sk-test".into()),
        ],
        ..ServerOptions::default()
    }
}

fn run_body(model: &str) -> Value {
    json!({
        "env_name": "my-assistant",
        "scenario_name": "answer_question",
        "scenario_args": {"query": "What is 17 * 23?"},
        "model": model,
        "validation": [{"answer": "391"}]
    })
}

/// Environment processes of the server on `dir` whose command line contains one of
/// `needles`: started in its data directory's work directories (a sandbox shows one, as
/// its mount table says), or there (without a sandbox).
fn processes_in(dir: &Path, needles: &[&str]) -> Vec<(u32, String)> {
    let dir = std::fs::canonicalize(dir).unwrap();
    let marker = dir.join("work").display().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let in_dir = std::fs::read_link(entry.path().join("cwd"))
            .is_ok_and(|cwd| cwd.starts_with(&dir))
            || std::fs::read_to_string(entry.path().join("mountinfo"))
                .is_ok_and(|mounts| mounts.contains(&marker));
        if !in_dir {
            continue;
        }
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if needles.iter().any(|needle| cmdline.contains(needle)) {
            found.push((pid, cmdline));
        }
    }
    found
}

/// Waits (bounded) until no such process is left.
async fn assert_processes_gone(server: &TestServer, needles: &[&str]) {
    let gone = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if processes_in(&server.data_dir, needles).is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(
        gone.is_ok(),
        "environment processes survived the cancel: {:?}",
        processes_in(&server.data_dir, needles)
    );
}

/// Waits until the trace has an event matching `ready` while still running.
pub(super) async fn wait_for_event(
    server: &TestServer,
    trace_id: &str,
    ready: impl Fn(&[Value]) -> bool,
) {
    let waited = tokio::time::timeout(RUN_TIMEOUT, async {
        loop {
            let (_, trace) = server.get(&format!("/v1/traces/{trace_id}")).await;
            let events = trace["events"].as_array().cloned().unwrap_or_default();
            if trace["status"] == "running" && ready(&events) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "the run never got there:\n{}", server.log());
}

async fn cancel(server: &TestServer, trace_id: &str) -> (u16, Value) {
    server
        .post(&format!("/v1/traces/{trace_id}/cancel"), &json!({}))
        .await
}

#[tokio::test]
async fn cancelling_during_a_model_call_stops_it_and_kills_the_environment() {
    let hole = black_hole().await;
    let server = TestServer::start(binary(), stuck_options(&hole))
        .await
        .unwrap();
    let (status, accepted) = server
        .post("/v1/agent/run", &run_body("claude-opus-4-5"))
        .await;
    assert_eq!(status, 202, "{accepted}");
    let trace_id = accepted["trace_id"].as_str().unwrap().to_string();
    wait_for_event(&server, &trace_id, |events| {
        events.iter().any(|e| e["type"] == "setup")
    })
    .await;
    let needles = ["example-env"];
    let running = processes_in(&server.data_dir, &needles);
    // The environment, and the guard process that may wrap it.
    assert!(!running.is_empty(), "the environment should be running");

    let (status, cancelled) = cancel(&server, &trace_id).await;
    assert_eq!(status, 200, "{cancelled}\n{}", server.log());
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["cancel_requested"], false);
    assert_processes_gone(&server, &needles).await;

    let (_, trace) = server.get(&format!("/v1/traces/{trace_id}")).await;
    assert_eq!(trace["status"], "cancelled");
    assert_eq!(trace["error"], "cancelled by request");
    let last = trace["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["type"], "finished");
    assert_eq!(last["status"], "cancelled");
    // No model call was recorded: it never answered and was dropped.
    assert!(
        !trace["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "model_call")
    );
    // Cancelling again is harmless and reports the same state.
    let (status, again) = cancel(&server, &trace_id).await;
    assert_eq!(status, 200);
    assert_eq!(again["status"], "cancelled");
}

#[tokio::test]
async fn cancelling_a_queued_run_removes_it_from_the_queue() {
    let fake = FakeModelServer::start().await.unwrap();
    let mut options = fake_options(&fake);
    options.args = vec!["--max-concurrent-runs".into(), "0".into()];
    let server = TestServer::start(binary(), options).await.unwrap();
    let (_, first) = server.post("/v1/agent/run", &run_body("replay")).await;
    let (_, second) = server.post("/v1/agent/run", &run_body("replay")).await;
    let first = first["trace_id"].as_str().unwrap().to_string();
    let second = second["trace_id"].as_str().unwrap().to_string();

    let (status, cancelled) = cancel(&server, &first).await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    let (_, trace) = server.get(&format!("/v1/traces/{second}")).await;
    assert_eq!(
        trace["queue_position"], 1,
        "the cancelled run left the queue"
    );
    let (_, trace) = server.get(&format!("/v1/traces/{first}")).await;
    assert_eq!(trace["queue_position"], Value::Null);
    assert_eq!(trace["events"][0]["type"], "finished");

    let (status, missing) = cancel(&server, "no-such-trace").await;
    assert_eq!(status, 404, "{missing}");
    assert_eq!(missing["error"]["code"], "trace_not_found");
}

#[tokio::test]
async fn a_finished_run_cannot_be_cancelled() {
    let fake = FakeModelServer::start().await.unwrap();
    let server = server_with_fake(&fake).await;
    let mut body = run_body("replay");
    body["sync"] = json!(true);
    let (status, summary) = server.post("/v1/agent/run", &body).await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["status"], "completed");
    let (status, refused) = cancel(&server, summary["trace_id"].as_str().unwrap()).await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"]["code"], "run_finished");
    assert_eq!(refused["error"]["details"]["status"], "completed");
}

#[tokio::test]
async fn bulk_cancel_takes_the_queued_runs_matching_the_filter() {
    let fake = FakeModelServer::start().await.unwrap();
    let mut options = fake_options(&fake);
    options.args = vec!["--max-concurrent-runs".into(), "0".into()];
    let server = TestServer::start(binary(), options).await.unwrap();
    let mut replays = Vec::new();
    for _ in 0..3 {
        let (_, accepted) = server.post("/v1/agent/run", &run_body("replay")).await;
        replays.push(accepted["trace_id"].as_str().unwrap().to_string());
    }
    let (_, other) = server
        .post("/v1/agent/run", &run_body("claude-opus-4-5"))
        .await;
    let other = other["trace_id"].as_str().unwrap().to_string();

    let (status, result) = server
        .post("/v1/traces/cancel", &json!({"model": "replay"}))
        .await;
    assert_eq!(status, 200, "{result}");
    let mut cancelled: Vec<String> = result["cancelled"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap().to_string())
        .collect();
    cancelled.sort();
    replays.sort();
    assert_eq!(cancelled, replays);
    assert_eq!(result["cancel_requested"], json!([]));
    let (_, trace) = server.get(&format!("/v1/traces/{other}")).await;
    assert_eq!(trace["status"], "queued");

    let (status, invalid) = server
        .post("/v1/traces/cancel", &json!({"status": "completed"}))
        .await;
    assert_eq!(status, 422, "{invalid}");
    let (status, result) = server.post("/v1/traces/cancel", &json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(result["cancelled"], json!([other]));
}

/// A hud-python environment whose tool starts a subprocess and waits for it: cancel kills
/// the whole process group, the subprocess included.
#[tokio::test]
async fn cancelling_during_a_long_tool_call_kills_the_environment_and_its_children() {
    let Ok(python) = std::env::var("ROLLOUT_TEST_PYTHON") else {
        eprintln!("skipping: hud-python not installed (run scripts/test)");
        return;
    };
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testkit/fixtures/slow_env.py"
    );
    let fake = FakeModelServer::start().await.unwrap();
    fake.push([FakeReply::tool_call("wait", json!({"seconds": 600}))]);
    let server = server_with_fake(&fake).await;
    let (status, env) = server
        .post(
            "/v1/environments",
            &json!({"name": "slow-env", "command": [python, fixture]}),
        )
        .await;
    assert_eq!(status, 201, "{env}\n{}", server.log());
    let (status, accepted) = server
        .post(
            "/v1/agent/run",
            &json!({"env_name": "slow-env", "scenario_name": "stall", "model": "claude-opus-4-5"}),
        )
        .await;
    assert_eq!(status, 202, "{accepted}");
    let trace_id = accepted["trace_id"].as_str().unwrap().to_string();
    let needles = ["slow_env.py", "sleep 600"];
    // The tool is in flight once its subprocess exists.
    let started = tokio::time::timeout(RUN_TIMEOUT, async {
        loop {
            let found = processes_in(&server.data_dir, &needles);
            if found.iter().any(|(_, cmd)| cmd.starts_with("sleep 600")) {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let Ok(started) = started else {
        panic!("the tool never started:\n{}", server.log())
    };
    assert!(started.len() >= 2, "{started:?}");

    let (status, cancelled) = cancel(&server, &trace_id).await;
    assert_eq!(status, 200, "{cancelled}\n{}", server.log());
    assert_eq!(cancelled["status"], "cancelled");
    assert_processes_gone(&server, &needles).await;
    let (_, trace) = server.get(&format!("/v1/traces/{trace_id}")).await;
    let types: Vec<&str> = trace["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert!(types.contains(&"model_call"), "{types:?}");
    assert!(
        !types.contains(&"tool_call"),
        "the tool call never completed: {types:?}"
    );
    assert_eq!(types.last(), Some(&"finished"));
}

/// The API process and the worker process are different: the worker sees the request by
/// polling the store, and the API still answers with the final state.
#[tokio::test]
async fn a_cancel_reaches_a_worker_in_another_process() {
    let hole = black_hole().await;
    let mut api_options = stuck_options(&hole);
    api_options.args = vec!["--max-concurrent-runs".into(), "0".into()];
    let api = TestServer::start(binary(), api_options).await.unwrap();
    let mut worker_options = stuck_options(&hole);
    worker_options.data_dir = Some(api.data_dir.clone());
    let worker = TestServer::start(binary(), worker_options).await.unwrap();
    let (status, accepted) = api
        .post("/v1/agent/run", &run_body("claude-opus-4-5"))
        .await;
    assert_eq!(status, 202, "{accepted}");
    let trace_id = accepted["trace_id"].as_str().unwrap().to_string();
    wait_for_event(&api, &trace_id, |events| {
        events.iter().any(|e| e["type"] == "setup")
    })
    .await;
    let (status, cancelled) = cancel(&api, &trace_id).await;
    assert_eq!(status, 200, "{cancelled}\n{}", worker.log());
    assert_eq!(cancelled["status"], "cancelled");
    assert_processes_gone(&api, &["example-env"]).await;
}
