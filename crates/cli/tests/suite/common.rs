//! Helpers shared by the end-to-end tests.

use rollout_testkit::{FakeModelServer, ServerOptions, TestServer};
use std::time::Duration;

/// The binary under test, built by cargo for this test target.
pub(super) fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_rollout")
}

/// A provider key the tests use; it must never show up in a trace or a log.
pub(super) const SECRET_KEY: &str = "sk-test-secret-never-in-traces-0042";

/// A server whose built-in providers both point at `fake`.
pub(super) async fn server_with_fake(fake: &FakeModelServer) -> TestServer {
    TestServer::start(binary(), fake_options(fake))
        .await
        .expect("server starts")
}

/// Options that point both built-in providers at `fake`, with keys set.
pub(super) fn fake_options(fake: &FakeModelServer) -> ServerOptions {
    ServerOptions {
        env: vec![
            ("ANTHROPIC_BASE_URL".into(), fake.base_url()),
            ("ANTHROPIC_API_KEY".into(), SECRET_KEY.into()),
            ("OPENAI_BASE_URL".into(), format!("{}/v1", fake.base_url())),
            ("OPENAI_API_KEY".into(), SECRET_KEY.into()),
        ],
        ..ServerOptions::default()
    }
}

/// A request to `server` with `key`; status and JSON body (Null if none).
pub(super) async fn call_as(
    server: &TestServer,
    key: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let mut request = server
        .client()
        .request(method, format!("{}{path}", server.base_url))
        .bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    server.send(request).await
}

/// A server with no provider keys at all.
pub(super) async fn plain_server() -> TestServer {
    TestServer::start(binary(), ServerOptions::default())
        .await
        .expect("server starts")
}

/// Generous bound for a run to finish in a debug build on a busy machine.
pub(super) const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// The `type` of every event of a trace, in order.
pub(super) fn event_types(trace: &serde_json::Value) -> Vec<String> {
    trace["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["type"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// hud-python's interpreter, when the test command installed it (`scripts/test`); missing
/// while it should have is a failure, not a skip.
pub(super) fn python() -> Option<String> {
    match std::env::var("ROLLOUT_TEST_PYTHON") {
        Ok(python) if !python.is_empty() => Some(python),
        _ => {
            assert!(
                std::env::var("ROLLOUT_REQUIRE_PYTHON").is_err(),
                "ROLLOUT_TEST_PYTHON is not set; run the tests with scripts/test"
            );
            eprintln!("skipping: hud-python not installed (run scripts/test)");
            None
        }
    }
}

/// hud 0.6.21's interpreter (`scripts/setup-hud06-env`), when the test command installed
/// it; missing while it should have is a failure, not a skip.
pub(super) fn python06() -> Option<String> {
    match std::env::var("ROLLOUT_TEST_PYTHON06") {
        Ok(python) if !python.is_empty() => Some(python),
        _ => {
            assert!(
                std::env::var("ROLLOUT_REQUIRE_PYTHON06").is_err(),
                "ROLLOUT_TEST_PYTHON06 is not set; run the tests with scripts/test"
            );
            eprintln!("skipping: hud 0.6 not installed (run scripts/test)");
            None
        }
    }
}

/// Calls `tool` of environment `env` through the MCP gateway with the official `mcp`
/// client (`fixtures/gateway_client.py mcp`); returns its JSON line.
pub(super) async fn gateway_tool_call(
    python: &str,
    server: &TestServer,
    env: &str,
    tool: &str,
    arguments: &serde_json::Value,
) -> serde_json::Value {
    let client = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testkit/fixtures/gateway_client.py"
    );
    let url = format!("{}/v1/environments/{env}/mcp", server.base_url);
    let output = tokio::process::Command::new(python)
        .args([
            client,
            "mcp",
            &url,
            &server.admin_key,
            tool,
            &arguments.to_string(),
        ])
        .env("HUD_TELEMETRY_ENABLED", "false")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_default();
    serde_json::from_str(line)
        .unwrap_or_else(|_| panic!("{stdout}\n{}", String::from_utf8_lossy(&output.stderr)))
}

/// True when the test command provides bubblewrap (`scripts/test` installs it): then every
/// test server must sandbox its environments, and the sandbox tests must run.
pub(super) fn sandbox_expected() -> bool {
    std::env::var("ROLLOUT_REQUIRE_SANDBOX").is_ok()
}

/// Whether the sandbox tests can run: bubblewrap is installed. Missing while the test
/// command should have installed it is a failure, not a skip.
pub(super) fn sandbox_available() -> bool {
    let installed = std::process::Command::new("bwrap")
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success());
    assert!(
        installed || !sandbox_expected(),
        "bwrap is not installed, but ROLLOUT_REQUIRE_SANDBOX is set (scripts/test installs bubblewrap)"
    );
    if !installed {
        eprintln!("skipping: bubblewrap not installed (run scripts/test)");
    }
    installed
}

/// Pids of the `rollout env-guard` processes whose command line contains `needle` (one per
/// environment process: the sandbox's own processes repeat the needle).
pub(super) fn guards_with(needle: &str) -> Vec<u32> {
    processes_with(needle)
        .into_iter()
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            String::from_utf8_lossy(&cmdline).contains("env-guard")
        })
        .collect()
}

/// Pids of the processes whose command line contains `needle` (tests mark the processes
/// they start with a unique path or argument, then check that none is left behind).
pub(super) fn processes_with(needle: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(needle) {
            pids.push(pid);
        }
    }
    pids
}

/// A link to the binary under test at a path of its own, so that the processes started
/// from it (environments registered with this command) can be found with
/// [`processes_with`] and told apart from other tests' processes. Keep the directory.
pub(super) fn marked_binary(name: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir
        .path()
        .join(format!("{name}-{}-rollout", std::process::id()));
    std::os::unix::fs::symlink(binary(), &path).expect("symlink the binary");
    (dir, path.display().to_string())
}

/// Waits (bounded) until processes whose command line contains `needle` are there
/// (`present`) or all gone; false if they never were.
pub(super) async fn wait_processes(needle: &str, present: bool) -> bool {
    tokio::time::timeout(Duration::from_secs(60), async {
        while processes_with(needle).is_empty() == present {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .is_ok()
}

/// Starts a run of the bundled `my-assistant` asking "What is 17 * 23?" of
/// `claude-opus-4-5`: its trace id.
pub(super) async fn start_assistant_run(server: &TestServer) -> String {
    let (status, accepted) = server
        .post(
            "/v1/agent/run",
            &serde_json::json!({
                "env_name": "my-assistant",
                "scenario_name": "answer_question",
                "scenario_args": {"query": "What is 17 * 23?"},
                "model": "claude-opus-4-5"
            }),
        )
        .await;
    assert_eq!(status, 202, "{accepted}");
    accepted["trace_id"]
        .as_str()
        .expect("a trace id")
        .to_string()
}
