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

/// The virtualenv python with hud-python 0.5.41 (and `requests`), or `None` to skip, which
/// only happens outside `scripts/test`: under it (`ROLLOUT_REQUIRE_PYTHON`) a missing
/// interpreter fails the test.
pub(super) fn test_python() -> Option<String> {
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
