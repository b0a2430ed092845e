//! Real, unmodified hud 0.6.21 environments over their control channel
//! (`fixtures/hud06_env.py`, served by `python -m hud.environment.server`).
//! `scripts/test` installs hud 0.6.21 into a virtualenv and sets ROLLOUT_TEST_PYTHON06.

use super::common::{RUN_TIMEOUT, processes_with, python06, server_with_fake};
use rollout_testkit::{FakeModelServer, FakeReply, TestServer};
use serde_json::{Value, json};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../testkit/fixtures");

/// A copy of a fixture under a name of its own, so that its processes can be found (and
/// shown gone) by that name. Keep the directory.
fn marked_fixture(fixture: &str, mark: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let name = format!("{mark}_{}.py", std::process::id());
    let path = dir.path().join(&name);
    std::fs::copy(format!("{FIXTURES}/{fixture}"), &path).unwrap();
    (dir, path.display().to_string())
}

/// The command that serves a 0.6 environment file.
fn serve_command(python: &str, file: &str) -> Value {
    json!([
        python,
        "-m",
        "hud.environment.server",
        file,
        "--host",
        "127.0.0.1",
        "--port",
        "0"
    ])
}

async fn register(server: &TestServer, name: &str, python: &str, file: &str) -> (u16, Value) {
    server
        .post(
            "/v1/environments",
            &json!({"name": name, "protocol": "hud-0.6", "command": serve_command(python, file)}),
        )
        .await
}

/// A replayed run: `actions` are the validation items (tool calls, then the answer).
async fn replay(server: &TestServer, scenario: &str, args: Value, actions: Value) -> (u16, Value) {
    server
        .post(
            "/v1/agent/run",
            &json!({
                "env_name": "hud06", "scenario_name": scenario, "scenario_args": args,
                "model": "replay", "validation": actions, "sync": true
            }),
        )
        .await
}

async fn trace(server: &TestServer, summary: &Value) -> Value {
    let id = summary["trace_id"].as_str().unwrap();
    server.get(&format!("/v1/traces/{id}")).await.1
}

#[tokio::test]
async fn a_hud06_environment_is_registered_run_and_graded_over_its_control_channel() {
    let Some(python) = python06() else { return };
    let fake = FakeModelServer::start().await.unwrap();
    let server = server_with_fake(&fake).await;
    let (dir, file) = marked_fixture("hud06_env.py", "graded06");
    let (status, env) = register(&server, "hud06", &python, &file).await;
    assert_eq!(status, 201, "{env}\n{}", server.log());
    assert_eq!(env["status"], "ready", "{env}");
    assert_eq!(env["server_name"], "hud06-assistant");
    let (_, env) = server.get("/v1/environments/hud06").await;
    let tools: Vec<&str> = env["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(tools, ["add", "crash", "sleep"], "{env}");
    let scenarios = env["scenarios"].as_array().unwrap();
    let add = scenarios.iter().find(|s| s["name"] == "add").unwrap();
    assert_eq!(add["args_schema"]["required"], json!(["a"]), "{add}");
    assert_eq!(add["args_schema"]["properties"]["b"]["default"], 2);
    let structured = scenarios
        .iter()
        .find(|s| s["name"] == "add_struct")
        .unwrap();
    assert_eq!(
        structured["returns_schema"]["required"],
        json!(["total"]),
        "{structured}"
    );
    // Registration's process is gone once introspected.
    assert!(super::common::wait_processes(&file, false).await);

    // A run with a tool call through the tunnelled MCP capability, graded 1.0.
    let call = json!({"name": "add", "arguments": {"a": 3, "b": 4}});
    let (status, right) = replay(
        &server,
        "add",
        json!({"a": 3, "b": 4}),
        json!([call, {"answer": "7"}]),
    )
    .await;
    assert_eq!(status, 200, "{right}");
    assert_eq!(right["status"], "completed", "{right}\n{}", server.log());
    assert_eq!(right["reward"], 1.0, "{right}");
    let trace_right = trace(&server, &right).await;
    let events = trace_right["events"].as_array().unwrap();
    let tool_call = events.iter().find(|e| e["type"] == "tool_call").unwrap();
    assert_eq!(tool_call["result"]["text"], "7", "{tool_call}");
    let setup = events.iter().find(|e| e["type"] == "setup").unwrap();
    assert_eq!(setup["arguments"], json!({"a": 3, "b": 4}));
    assert!(setup["prompt"].as_str().unwrap().contains("3 + 4"));
    let evaluation = &trace_right["evaluation"];
    assert_eq!(
        evaluation["subscores"][0]["name"], "correct",
        "{evaluation}"
    );
    assert_eq!(evaluation["content"], "expected=7 got='7'");
    // Typed arguments arrive as JSON values.
    assert_eq!(evaluation["info"]["a_type"], "int");

    // A wrong answer, 0.0; the default of `b` applies.
    let (_, wrong) = replay(&server, "add", json!({"a": 3}), json!([{"answer": "6"}])).await;
    assert_eq!(wrong["status"], "completed", "{wrong}");
    assert_eq!(wrong["reward"], 0.0, "{wrong}");

    // Arguments are checked against the template's schema before any run.
    let (status, refused) = replay(&server, "add", json!({"a": "x"}), json!([])).await;
    assert_eq!(status, 422, "{refused}");

    // A `returns=` template parses the answer into its type.
    let (_, typed) = replay(
        &server,
        "add_struct",
        json!({"a": 5, "b": 6}),
        json!([{"answer": "{\"total\": 11}"}]),
    )
    .await;
    assert_eq!(typed["reward"], 1.0, "{typed}\n{}", server.log());
    let (_, mistyped) = replay(
        &server,
        "add_struct",
        json!({"a": 5, "b": 6}),
        json!([{"answer": "{\"total\": 12}"}]),
    )
    .await;
    assert_eq!(mistyped["reward"], 0.0, "{mistyped}");
    let typed_trace = trace(&server, &typed).await;
    let setup = typed_trace["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "setup")
        .unwrap()
        .clone();
    assert_eq!(
        setup["prompt"],
        "You are a calculator.\n\nCompute 5 + 6; answer as JSON {\"total\": n}."
    );

    // A grade that raises fails the run with the environment's message.
    let (_, raised) = replay(&server, "grade_raises", json!({}), json!([{"answer": "x"}])).await;
    assert_eq!(raised["status"], "failed", "{raised}");
    assert!(
        raised["error"]
            .as_str()
            .unwrap()
            .contains("grader exploded"),
        "{raised}"
    );

    // Every run's environment process is gone.
    assert!(
        super::common::wait_processes(&file, false).await,
        "{:?}",
        processes_with(&file)
    );
    drop(dir);
}

#[tokio::test]
async fn an_environment_without_an_mcp_tools_capability_is_refused_with_422() {
    let Some(python) = python06() else { return };
    let fake = FakeModelServer::start().await.unwrap();
    let server = server_with_fake(&fake).await;
    let file = format!("{FIXTURES}/hud06_screen_env.py");
    let (status, body) = register(&server, "screen", &python, &file).await;
    assert_eq!(status, 422, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("'screen' (rfb/3.8)"), "{message}");
    assert!(message.contains("MCP `tools` capability"), "{message}");

    // Bad registrations are 422 with the field.
    let (status, body) = server
        .post(
            "/v1/environments",
            &json!({"name": "x", "protocol": "hud-0.6", "address": "nowhere"}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["details"]["errors"][0]["field"], "address");
    let (status, body) = server
        .post(
            "/v1/environments",
            &json!({"name": "x", "protocol": "hud-9", "command": ["true"]}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
}

#[tokio::test]
async fn cancelling_a_hud06_run_mid_tool_call_kills_its_environment() {
    let Some(python) = python06() else { return };
    let fake = FakeModelServer::start().await.unwrap();
    fake.push([FakeReply::tool_call("sleep", json!({"seconds": 600}))]);
    let server = server_with_fake(&fake).await;
    let (_dir, file) = marked_fixture("hud06_env.py", "cancel06");
    let (status, env) = register(&server, "hud06", &python, &file).await;
    assert_eq!(status, 201, "{env}\n{}", server.log());
    assert!(super::common::wait_processes(&file, false).await);
    let (status, accepted) = server
        .post(
            "/v1/agent/run",
            &json!({"env_name": "hud06", "scenario_name": "add", "scenario_args": {"a": 1}, "model": "claude-opus-4-5"}),
        )
        .await;
    assert_eq!(status, 202, "{accepted}");
    let trace_id = accepted["trace_id"].as_str().unwrap().to_string();
    super::cancel::wait_for_event(&server, &trace_id, |events| {
        events.iter().any(|e| e["type"] == "model_call")
    })
    .await;
    assert!(!processes_with(&file).is_empty(), "the environment runs");
    let (status, cancelled) = server
        .post(&format!("/v1/traces/{trace_id}/cancel"), &json!({}))
        .await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    assert!(
        super::common::wait_processes(&file, false).await,
        "the environment survived the cancel: {:?}",
        processes_with(&file)
    );
}

#[tokio::test]
async fn a_hud06_environment_killed_mid_run_fails_the_run_with_its_stderr() {
    let Some(python) = python06() else { return };
    let fake = FakeModelServer::start().await.unwrap();
    let server = server_with_fake(&fake).await;
    let (_dir, file) = marked_fixture("hud06_env.py", "crash06");
    let (status, env) = register(&server, "hud06", &python, &file).await;
    assert_eq!(status, 201, "{env}\n{}", server.log());
    let crash = json!({"name": "crash", "arguments": {}});
    let (status, summary) = tokio::time::timeout(
        RUN_TIMEOUT,
        replay(
            &server,
            "add",
            json!({"a": 1}),
            json!([crash, {"answer": "2"}]),
        ),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["status"], "failed", "{summary}");
    let error = summary["error"].as_str().unwrap();
    assert!(
        error.contains("crashing on purpose"),
        "{error}\n{}",
        server.log()
    );
    assert!(super::common::wait_processes(&file, false).await);
}

/// Waits (bounded) until the job has finished.
async fn finished_job(server: &TestServer, id: &str) -> Value {
    let waited = tokio::time::timeout(RUN_TIMEOUT, async {
        loop {
            let (status, job) = server.get(&format!("/v1/jobs/{id}")).await;
            assert_eq!(status, 200, "{job}");
            if job["status"] == "finished" {
                return job;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await;
    waited.unwrap_or_else(|_| panic!("job {id} did not finish\n{}", server.log()))
}

#[tokio::test]
async fn hud05_and_hud06_environments_side_by_side_in_one_taskset_and_one_job() {
    let Some(python06) = python06() else { return };
    let Some(python05) = super::common::python() else {
        return;
    };
    let fake = FakeModelServer::start().await.unwrap();
    let server = server_with_fake(&fake).await;
    let (status, env) = register(
        &server,
        "hud06",
        &python06,
        &format!("{FIXTURES}/hud06_env.py"),
    )
    .await;
    assert_eq!(status, 201, "{env}\n{}", server.log());
    let (status, env) = server
        .post(
            "/v1/environments",
            &json!({"name": "hud-assistant", "command": [python05, format!("{FIXTURES}/hud_env.py")]}),
        )
        .await;
    assert_eq!(status, 201, "{env}\n{}", server.log());
    let tasks = [
        json!({"id": "capital", "env": "hud-assistant", "scenario": "answer_question",
               "args": {"query": "What is the capital of France?"}, "validation": [{"answer": "Paris"}]}),
        json!({"id": "sum", "env": "hud06", "scenario": "add", "args": {"a": 2, "b": 3},
               "validation": [{"name": "add", "arguments": {"a": 2, "b": 3}}, {"answer": "5"}]}),
        json!({"id": "typed", "env": "hud06", "scenario": "add_struct", "args": {"a": 1, "b": 1},
               "validation": [{"answer": "{\"total\": 2}"}]}),
    ];
    let body: String = tasks.iter().map(|t| format!("{t}\n")).collect();
    let request = server
        .client()
        .post(format!("{}/v1/tasksets/mixed/import", server.base_url))
        .bearer_auth(&server.admin_key)
        .header("content-type", "application/x-ndjson")
        .body(body);
    let (status, imported) = server.send(request).await;
    assert_eq!(status, 201, "{imported}");
    // A task whose arguments do not fit the 0.6 template's schema is refused at import.
    let bad = json!({"id": "bad", "env": "hud06", "scenario": "add", "args": {"a": "x"}});
    let request = server
        .client()
        .post(format!("{}/v1/tasksets/bad/import", server.base_url))
        .bearer_auth(&server.admin_key)
        .header("content-type", "application/x-ndjson")
        .body(format!("{bad}\n"));
    let (status, refused) = server.send(request).await;
    assert_eq!(status, 422, "{refused}");

    let (status, job) = server
        .post(
            "/v1/jobs",
            &json!({"taskset": "mixed", "models": ["replay"], "repeats": 1}),
        )
        .await;
    assert_eq!(status, 201, "{job}");
    let job = finished_job(&server, job["id"].as_str().unwrap()).await;
    assert_eq!(job["counts"]["done"], 3, "{job}\n{}", server.log());
    assert_eq!(job["progress"][0]["mean_reward"], 1.0, "{job}");
}

#[tokio::test]
async fn a_hud06_bundle_is_deployed_and_run() {
    let Some(python) = python06() else { return };
    let server = super::deploy::bundle_server().await;
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("bundle06");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(format!("{FIXTURES}/hud06_env.py"), dir.join("env.py")).unwrap();
    let manifest = format!(
        "name = \"b06\"\n\n[run]\nprotocol = \"hud-0.6\"\ncommand = [{python:?}, \"-m\", \"hud.environment.server\", \"env.py\", \"--host\", \"127.0.0.1\", \"--port\", \"0\"]\n"
    );
    std::fs::write(dir.join("rollout.toml"), manifest).unwrap();
    let (status, deployed) =
        super::deploy::upload(&server, "b06", super::deploy::tarball(&dir)).await;
    assert!(
        status == 200 || status == 201,
        "{status} {deployed}\n{}",
        server.log()
    );
    let (_, env) = server.get("/v1/environments/b06").await;
    assert_eq!(env["status"], "ready", "{env}\n{}", server.log());
    let (status, summary) = server
        .post(
            "/v1/agent/run",
            &json!({
                "env_name": "b06", "scenario_name": "add", "scenario_args": {"a": 20, "b": 22},
                "model": "replay", "sync": true,
                "validation": [{"name": "add", "arguments": {"a": 20, "b": 22}}, {"answer": "42"}]
            }),
        )
        .await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["reward"], 1.0, "{summary}\n{}", server.log());
}

#[tokio::test]
async fn a_running_hud06_environment_is_registered_by_address() {
    let Some(python) = python06() else { return };
    let mut child = tokio::process::Command::new(&python)
        .args([
            "-m",
            "hud.environment.server",
            &format!("{FIXTURES}/hud06_env.py"),
        ])
        .args(["--host", "127.0.0.1", "--port", "0"])
        .env("HUD_TELEMETRY_ENABLED", "false")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    let port = tokio::time::timeout(RUN_TIMEOUT, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(port) = line.strip_prefix("HUD_SERVE_PORT=") {
                return port.trim().to_string();
            }
        }
        panic!("the environment exited before announcing its port")
    })
    .await
    .unwrap();
    let fake = FakeModelServer::start().await.unwrap();
    let server = server_with_fake(&fake).await;
    let (status, env) = server
        .post(
            "/v1/environments",
            &json!({"name": "hud06", "protocol": "hud-0.6", "address": format!("tcp://127.0.0.1:{port}")}),
        )
        .await;
    assert_eq!(status, 201, "{env}\n{}", server.log());
    for (answer, reward) in [("7", 1.0), ("8", 0.0)] {
        let call = json!({"name": "add", "arguments": {"a": 3, "b": 4}});
        let (_, summary) = replay(
            &server,
            "add",
            json!({"a": 3, "b": 4}),
            json!([call, {"answer": answer}]),
        )
        .await;
        assert_eq!(summary["reward"], reward, "{summary}\n{}", server.log());
    }
    // The environment is not the server's: it keeps running.
    assert!(child.try_wait().unwrap().is_none());
}

/// A hud 0.6 client (the real SDK, `HUDRuntime`) plays a task of a hosted 0.6 environment
/// through `/runtime/sessions` and its WebSocket tunnels, reads its reward, and the session
/// is recorded as a trace with `model: "external"`.
#[tokio::test]
async fn a_hud06_client_plays_a_hosted_task_through_the_runtime_endpoints() {
    let Some(python) = python06() else { return };
    let fake = FakeModelServer::start().await.unwrap();
    let server = server_with_fake(&fake).await;
    let (dir, file) = marked_fixture("hud06_env.py", "runtime06");
    let (status, env) = register(&server, "hud06", &python, &file).await;
    assert_eq!(status, 201, "{env}\n{}", server.log());
    let client = format!("{FIXTURES}/hud06_client.py");
    let output = tokio::time::timeout(
        RUN_TIMEOUT,
        tokio::process::Command::new(&python)
            .args([client.as_str(), "hud06", "3", "4"])
            .env("HUD_RUNTIME_URL", &server.base_url)
            .env("HUD_API_KEY", &server.admin_key)
            .env("HUD_API_URL", "http://127.0.0.1:9")
            .env("HUD_TELEMETRY_URL", "http://127.0.0.1:9")
            .env("HUD_TELEMETRY_ENABLED", "false")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap()
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or("");
    let out: Value = serde_json::from_str(line)
        .unwrap_or_else(|_| panic!("{stdout}\n{stderr}\n{}", server.log()));
    assert_eq!(out["reward"], 1.0, "{out}\n{stderr}");

    // The session is a trace of the external agent, finished with the same reward.
    let traces = tokio::time::timeout(RUN_TIMEOUT, async {
        loop {
            let (_, list) = server.get("/v1/traces?model=external").await;
            let traces = list["traces"].as_array().cloned().unwrap_or_default();
            if traces.len() == 1 && traces[0]["status"] != "running" {
                return traces;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no finished trace\n{}", server.log()));
    assert_eq!(traces[0]["reward"], 1.0, "{:?}", traces[0]);
    assert_eq!(traces[0]["env_name"], "hud06");
    assert_eq!(traces[0]["final_response"], "7", "{:?}", traces[0]);
    // The client deleted its session: the environment process is gone.
    assert!(
        super::common::wait_processes(&file, false).await,
        "{:?}",
        processes_with(&file)
    );

    // A 0.5 environment cannot be driven by a 0.6 client: a clear 409.
    let (status, refused) = server
        .post("/runtime/sessions", &json!({"environment": "my-assistant"}))
        .await;
    assert_eq!(status, 409, "{refused}");
    let (status, _) = server
        .request(reqwest::Method::DELETE, "/runtime/sessions/nope", None)
        .await;
    assert_eq!(status, 404);
    drop(dir);
}

/// Runtime sessions are environment processes: capped per key (`[gateway]
/// max_sessions_per_key`), another project cannot reach them, and `DELETE` kills the process.
#[tokio::test]
async fn runtime_sessions_are_capped_per_key_and_deleted_with_their_process() {
    let Some(python) = python06() else { return };
    let fake = FakeModelServer::start().await.unwrap();
    let mut options = super::common::fake_options(&fake);
    options.config_toml = Some("[gateway]\nmax_sessions_per_key = 1\n".into());
    let server = TestServer::start(super::common::binary(), options)
        .await
        .unwrap();
    let (_dir, file) = marked_fixture("hud06_env.py", "capped06");
    let (status, env) = register(&server, "hud06", &python, &file).await;
    assert_eq!(status, 201, "{env}\n{}", server.log());
    assert!(super::common::wait_processes(&file, false).await);
    let (status, missing) = server
        .post("/runtime/sessions", &json!({"environment": "nope"}))
        .await;
    assert_eq!(status, 404, "{missing}");
    let body = json!({"environment": "hud06"});
    let (status, first) = server.post("/runtime/sessions", &body).await;
    assert_eq!(status, 200, "{first}\n{}", server.log());
    assert!(
        !processes_with(&file).is_empty(),
        "the session's environment runs"
    );
    let (status, refused) = server.post("/runtime/sessions", &body).await;
    assert_eq!(status, 429, "{refused}");
    let id = first["id"].as_str().unwrap();
    let (status, _) = server
        .request(
            reqwest::Method::DELETE,
            &format!("/runtime/sessions/{id}"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert!(
        super::common::wait_processes(&file, false).await,
        "{:?}",
        processes_with(&file)
    );
    let (status, again) = server.post("/runtime/sessions", &body).await;
    assert_eq!(status, 200, "{again}");
}
