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

/// The virtualenv python with hud-python 0.5, or `None` to skip when the test command did
/// not promise it (`scripts/test` sets `ROLLOUT_REQUIRE_PYTHON=1`: then it must be there).
pub(super) fn test_python() -> Option<String> {
    match std::env::var("ROLLOUT_TEST_PYTHON") {
        Ok(python) if !python.is_empty() => Some(python),
        _ => {
            assert!(
                std::env::var("ROLLOUT_REQUIRE_PYTHON").is_err(),
                "ROLLOUT_TEST_PYTHON is not set; run the tests with scripts/test"
            );
            None
        }
    }
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
