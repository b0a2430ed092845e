//! The MCP gateway: hosted environments for any MCP client. The Python tests drive the real
//! hud-python 0.5.41 SDK and the official `mcp` client (`fixtures/gateway_client.py`); they
//! skip, like `hud_python.rs`, when ROLLOUT_TEST_PYTHON is unset.

use super::common::{binary, plain_server, processes_with, python};
use rollout_testkit::{ServerOptions, TestServer};
use serde_json::{Value, json};
use std::time::Duration;

const CLIENT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../testkit/fixtures/gateway_client.py"
);
const HUD_ENV: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../testkit/fixtures/hud_env.py"
);
const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);

/// The client fixture as a command; hud's own services point at a closed port so that the
/// SDK's telemetry fails at once instead of waiting on the network.
pub(super) fn client_command(python: &str, args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(python);
    command
        .arg(CLIENT)
        .args(args)
        .env("HUD_API_URL", "http://127.0.0.1:9")
        .env("HUD_TELEMETRY_URL", "http://127.0.0.1:9")
        .env("HUD_TELEMETRY_ENABLED", "false")
        .env_remove("HUD_API_KEY")
        .env_remove("HUD_MCP_URL")
        .kill_on_drop(true);
    command
}

/// Runs the client to the end and returns its JSON line.
pub(super) async fn run_client(mut command: tokio::process::Command) -> Value {
    let output = tokio::time::timeout(CLIENT_TIMEOUT, command.output())
        .await
        .expect("the client finishes in time")
        .expect("the client starts");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "client failed:\n{stdout}\n{stderr}"
    );
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or("");
    serde_json::from_str(line).unwrap_or_else(|_| panic!("no JSON line:\n{stdout}\n{stderr}"))
}

pub(super) async fn mcp_url(server: &TestServer, env: &str) -> String {
    let (status, env) = server.get(&format!("/v1/environments/{env}")).await;
    assert_eq!(status, 200, "{env}");
    let url = env["mcp_url"].as_str().expect("mcp_url").to_string();
    assert_eq!(
        url,
        format!(
            "{}/v1/environments/{}/mcp",
            server.base_url,
            env["name"].as_str().unwrap()
        )
    );
    url
}

async fn gateway_traces(server: &TestServer) -> Vec<Value> {
    let (status, list) = server.get("/v1/traces?model=external").await;
    assert_eq!(status, 200, "{list}");
    list["traces"].as_array().unwrap().clone()
}

/// Waits until the gateway's traces are all finished, `count` of them.
pub(super) async fn finished_traces(server: &TestServer, count: usize) -> Vec<Value> {
    let result = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let traces = gateway_traces(server).await;
            if traces.len() == count && traces.iter().all(|t| t["status"] != "running") {
                return traces;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    result.unwrap_or_else(|_| panic!("the gateway's traces did not finish\n{}", server.log()))
}

#[tokio::test]
async fn the_seed_python_flow_runs_through_the_gateway_and_is_recorded_as_a_trace() {
    let Some(python) = python() else { return };
    let server = plain_server().await;
    let url = mcp_url(&server, "my-assistant").await;
    let out = run_client(client_command(
        &python,
        &[
            "hud",
            &url,
            &server.admin_key,
            "my-assistant",
            "answer_question",
            r#"{"query": "What is 17 * 23?"}"#,
            "The answer is 391",
            "calculator",
            r#"{"expression": "17 * 23"}"#,
        ],
    ))
    .await;
    assert_eq!(out["reward"], 1.0, "{out}");
    assert_eq!(out["error"], Value::Null, "{out}");
    assert_eq!(out["tools"], json!(["calculator", "lookup", "respond"]));
    assert!(out["prompt"].as_str().unwrap().contains("What is 17 * 23?"));
    assert!(
        out["tool_result"].as_str().unwrap().contains("391"),
        "{out}"
    );

    let traces = finished_traces(&server, 1).await;
    let trace = &traces[0];
    assert_eq!(trace["status"], "completed");
    assert_eq!(trace["reward"], 1.0);
    assert_eq!(trace["env_name"], "my-assistant");
    assert_eq!(trace["scenario_name"], "answer_question");
    assert_eq!(trace["final_response"], "The answer is 391");
    let id = trace["trace_id"].as_str().unwrap();
    let (status, full) = server.get(&format!("/v1/traces/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(full["scenario_args"], json!({"query": "What is 17 * 23?"}));
    assert_eq!(full["evaluation"]["reward"], 1.0);
    assert_eq!(full["metadata"]["source"], "mcp_gateway");
    let events = full["events"].as_array().unwrap();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "attempt_started",
            "env_connected",
            "setup",
            "tool_call",
            "answer",
            "evaluation",
            "finished"
        ]
    );
    assert!(events[2]["prompt"].as_str().unwrap().contains("17 * 23"));
    assert_eq!(events[3]["name"], "calculator");
    assert_eq!(events[3]["arguments"], json!({"expression": "17 * 23"}));
    assert_eq!(events[3]["result"]["text"], "391");
    assert_eq!(events[4]["text"], "The answer is 391");
}

#[tokio::test]
async fn an_environment_registered_by_url_is_proxied_too() {
    let Some(python) = python() else { return };
    let upstream = super::hud_python::HttpEnv::start(&python).await;
    let server = plain_server().await;
    let (status, env) = server
        .post(
            "/v1/environments",
            &json!({"name": "remote", "url": upstream.url}),
        )
        .await;
    assert_eq!(status, 201, "{env}");
    let url = mcp_url(&server, "remote").await;
    let out = run_client(client_command(
        &python,
        &[
            "hud",
            &url,
            &server.admin_key,
            "hud-assistant",
            "answer_question",
            r#"{"query": "What is the capital of France?"}"#,
            "Paris",
            "shout",
            r#"{"text": "paris"}"#,
        ],
    ))
    .await;
    assert_eq!(out["reward"], 1.0, "{out}");
    assert!(
        out["tool_result"].as_str().unwrap().contains("PARIS"),
        "{out}"
    );
    let traces = finished_traces(&server, 1).await;
    assert_eq!(traces[0]["env_name"], "remote");
    assert_eq!(traces[0]["reward"], 1.0);
}

#[tokio::test]
async fn connect_hub_with_hud_mcp_url_pointing_at_rollout_works() {
    let Some(python) = python() else { return };
    let server = plain_server().await;
    let mut command = client_command(
        &python,
        &[
            "hub",
            "my-assistant",
            "answer_question",
            r#"{"query": "What is the capital of France?"}"#,
            "It is Paris.",
            "lookup",
            r#"{"topic": "capital of France"}"#,
        ],
    );
    command
        .env("HUD_MCP_URL", format!("{}/v1/mcp", server.base_url))
        .env("HUD_API_KEY", &server.admin_key);
    let out = run_client(command).await;
    assert_eq!(out["reward"], 1.0, "{out}");
    assert!(out["tool_result"].as_str().unwrap().contains("Paris"));
    let traces = finished_traces(&server, 1).await;
    assert_eq!(traces[0]["reward"], 1.0);
    assert_eq!(traces[0]["env_name"], "my-assistant");
}

/// HUD's documented client flow for this endpoint, with the real hud-python 0.5.41 SDK:
/// `connect_hub("my-assistant")`, then only the tool `respond` inside `hud.eval` (no submit).
#[tokio::test]
async fn hud_documented_flow_answers_with_respond_through_connect_hub() {
    let Some(python) = python() else { return };
    let server = plain_server().await;
    let hub = |answer: &str| {
        let mut command = client_command(&python, &["docs", "What is 17 * 23?", answer]);
        command
            .env("HUD_MCP_URL", format!("{}/v1/mcp", server.base_url))
            .env("HUD_API_KEY", &server.admin_key);
        command
    };
    let right = run_client(hub("391")).await;
    assert_eq!(right["reward"], 1.0, "{right}");
    assert_eq!(right["error"], Value::Null, "{right}");
    let wrong = run_client(hub("392")).await;
    assert_eq!(wrong["reward"], 0.0, "{wrong}");
    let traces = finished_traces(&server, 2).await;
    let mut rewards: Vec<f64> = traces
        .iter()
        .map(|t| t["reward"].as_f64().unwrap())
        .collect();
    rewards.sort_by(f64::total_cmp);
    assert_eq!(rewards, [0.0, 1.0]);
}

#[tokio::test]
async fn two_concurrent_sessions_get_their_own_rewards() {
    let Some(python) = python() else { return };
    let server = plain_server().await;
    let url = mcp_url(&server, "my-assistant").await;
    let client = |answer: &str| {
        client_command(
            &python,
            &[
                "hud",
                &url,
                &server.admin_key,
                "my-assistant",
                "answer_question",
                r#"{"query": "What is 12 * 12?"}"#,
                answer,
            ],
        )
    };
    let (right, wrong) = tokio::join!(run_client(client("144")), run_client(client("145")));
    assert_eq!(right["reward"], 1.0, "{right}");
    assert_eq!(wrong["reward"], 0.0, "{wrong}");
    let traces = finished_traces(&server, 2).await;
    let mut rewards: Vec<(String, f64)> = traces
        .iter()
        .map(|t| {
            (
                t["final_response"].as_str().unwrap().to_string(),
                t["reward"].as_f64().unwrap(),
            )
        })
        .collect();
    rewards.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        rewards,
        [("144".to_string(), 1.0), ("145".to_string(), 0.0)]
    );
}

/// Starts the `abandon` client: it sets up `hud-assistant:answer_question` and holds its
/// session until told (a line on stdin) to vanish.
async fn hold_session(python: &str, server: &TestServer, url: &str) -> tokio::process::Child {
    let mut command = client_command(
        python,
        &[
            "abandon",
            url,
            &server.admin_key,
            "hud-assistant:answer_question",
            r#"{"query": "capital of France?"}"#,
        ],
    );
    command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut client = command.spawn().unwrap();
    let mut stdout = tokio::io::BufReader::new(client.stdout.take().unwrap());
    let mut line = String::new();
    tokio::time::timeout(CLIENT_TIMEOUT, async {
        use tokio::io::AsyncBufReadExt;
        while !line.contains("ready") {
            line.clear();
            assert!(
                stdout.read_line(&mut line).await.unwrap() > 0,
                "client ended"
            );
        }
    })
    .await
    .expect("the client sets up the scenario");
    client
}

/// Registers the hud fixture under `name`, tagged so that its processes can be found.
async fn register_tagged(server: &TestServer, python: &str, name: &str, tag: &str) -> String {
    let (status, env) = server
        .post(
            "/v1/environments",
            &json!({"name": name, "command": [python, HUD_ENV, "--tag", tag]}),
        )
        .await;
    assert_eq!(status, 201, "{env}");
    mcp_url(server, name).await
}

async fn wait_gone(tag: &str, server: &TestServer) {
    let gone = tokio::time::timeout(Duration::from_secs(60), async {
        while !processes_with(tag).is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(
        gone.is_ok(),
        "environment processes left behind: {:?}\n{}",
        processes_with(tag),
        server.log()
    );
}

#[tokio::test]
async fn a_graceful_shutdown_closes_open_sessions_without_waiting_for_clients() {
    let Some(python) = python() else { return };
    let mut server = plain_server().await;
    let tag = format!("gateway-shutdown-{}", std::process::id());
    let url = register_tagged(&server, &python, "held", &tag).await;
    let _client = hold_session(&python, &server, &url).await;
    assert!(!processes_with(&tag).is_empty());
    // The client keeps its session (and its event stream) open; the server still stops.
    server
        .terminate(Duration::from_secs(60))
        .await
        .expect("the server stops although a client holds a session");
    wait_gone(&tag, &server).await;
}

#[tokio::test]
async fn a_client_that_vanishes_mid_scenario_leaves_no_environment_process() {
    let Some(python) = python() else { return };
    let server = TestServer::start(
        binary(),
        ServerOptions {
            config_toml: Some("[gateway]\nidle_timeout_seconds = 5\n".into()),
            ..ServerOptions::default()
        },
    )
    .await
    .unwrap();
    let tag = format!("gateway-orphan-{}", std::process::id());
    let url = register_tagged(&server, &python, "vanish", &tag).await;
    let mut client = hold_session(&python, &server, &url).await;
    assert!(
        !processes_with(&tag).is_empty(),
        "the session's environment is not running"
    );
    // The recorder inserts the run as the scenario starts, beside the proxied setup reply:
    // on a loaded machine it may land a moment after the client has its prompt.
    let running = tokio::time::timeout(CLIENT_TIMEOUT, async {
        loop {
            let (status, running) = server.get("/v1/traces?model=external").await;
            assert_eq!(status, 200);
            if !running["traces"][0].is_null() {
                return running;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the gateway session is recorded as a run");
    assert_eq!(running["traces"][0]["status"], "running", "{running}");
    // Let the client vanish, without closing its session.
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = client.stdin.take().unwrap();
        stdin.write_all(b"go\n").await.unwrap();
    }
    let status = tokio::time::timeout(CLIENT_TIMEOUT, client.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
    // The client is gone without closing its session; the environment lives until the
    // session's idle timeout, then its whole process group is killed.
    wait_gone(&tag, &server).await;
    let traces = finished_traces(&server, 1).await;
    assert_eq!(traces[0]["status"], "cancelled");
    assert_eq!(traces[0]["reward"], Value::Null);
}

#[tokio::test]
async fn the_official_mcp_client_lists_tools_and_calls_one() {
    let Some(python) = python() else { return };
    let server = plain_server().await;
    let url = mcp_url(&server, "my-assistant").await;
    let out = run_client(client_command(
        &python,
        &[
            "mcp",
            &url,
            &server.admin_key,
            "calculator",
            r#"{"expression": "(2 + 3) ^ 2"}"#,
        ],
    ))
    .await;
    assert_eq!(out["server"], "my-assistant");
    assert_eq!(out["tools"], json!(["calculator", "lookup", "respond"]));
    assert_eq!(out["is_error"], false);
    assert_eq!(out["text"], "25");
}

/// A raw `initialize` POST.
fn initialize(server: &TestServer, path: &str, key: &str) -> reqwest::RequestBuilder {
    server
        .client()
        .post(format!("{}{path}", server.base_url))
        .bearer_auth(key)
        .header("accept", "application/json, text/event-stream")
        .json(&json!({
            "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18", "capabilities": {},
                "clientInfo": {"name": "raw-test", "version": "1"}
            }
        }))
}

#[tokio::test]
async fn the_gateway_checks_keys_environments_hosts_and_session_limits() {
    let server = TestServer::start(
        binary(),
        ServerOptions {
            config_toml: Some("[gateway]\nmax_sessions_per_key = 1\n".into()),
            ..ServerOptions::default()
        },
    )
    .await
    .unwrap();
    let path = "/v1/environments/my-assistant/mcp";

    let response = initialize(&server, path, "not-a-key").send().await.unwrap();
    assert_eq!(response.status(), 401);

    let response = initialize(&server, "/v1/environments/nope/mcp", &server.admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "environment_not_found");

    let response = initialize(&server, "/v1/mcp", &server.admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        400,
        "the hub endpoint needs Environment-Name"
    );

    // DNS rebinding: a foreign Host is refused.
    let response = initialize(&server, path, &server.admin_key)
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);

    // An unknown session is not found.
    let response = server
        .client()
        .post(format!("{}{path}", server.base_url))
        .bearer_auth(&server.admin_key)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", "not-a-session")
        .json(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);

    let first = initialize(&server, path, &server.admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 200, "{}", server.log());
    let session = first.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_string();
    let _ = first.bytes().await;

    // The session belongs to its project: another project's key cannot reach it.
    let (status, other) = server
        .post(
            "/v1/keys",
            &json!({"name": "other", "project": "other-project"}),
        )
        .await;
    assert_eq!(status, 201, "{other}");
    let stranger = server
        .client()
        .post(format!("{}{path}", server.base_url))
        .bearer_auth(other["key"].as_str().unwrap())
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", &session)
        .json(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(stranger.status(), 404);

    let second = initialize(&server, path, &server.admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), 429);

    // Closing the session frees the slot.
    let closed = server
        .client()
        .delete(format!("{}{path}", server.base_url))
        .bearer_auth(&server.admin_key)
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(closed.status(), 200);
    let reopened = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let response = initialize(&server, path, &server.admin_key)
                .send()
                .await
                .unwrap();
            if response.status() == 200 {
                return;
            }
            assert_eq!(response.status(), 429);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(reopened.is_ok(), "the slot was not released");
}
