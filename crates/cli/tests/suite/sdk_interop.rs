//! The Rust SDK speaks hud 0.5 for real: the unmodified hud-python 0.5.41 client runs a
//! scenario of the bundled Rust environment over streamable HTTP and reads the reward the
//! Rust scenario computed; rollout's own runner runs the same HTTP environment.

use super::common::{binary, plain_server};
use serde_json::{Value, json};
use std::time::Duration;

const CLIENT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../testkit/fixtures/hud_client.py"
);

/// `rollout example-env my-assistant --http` on a free port, killed on drop.
struct RustHttpEnv {
    child: tokio::process::Child,
    url: String,
}

impl RustHttpEnv {
    async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = tokio::process::Command::new(binary())
            .args([
                "example-env",
                "my-assistant",
                "--http",
                &format!("127.0.0.1:{port}"),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let ready = tokio::time::timeout(Duration::from_secs(30), async {
            while tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_err()
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        assert!(ready.is_ok(), "the Rust HTTP environment did not start");
        Self {
            child,
            url: format!("http://127.0.0.1:{port}/mcp"),
        }
    }
}

impl Drop for RustHttpEnv {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// Runs the hud client script; returns its JSON line.
async fn hud_client(python: &str, args: &[&str]) -> Value {
    let output = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new(python)
            .arg(CLIENT)
            .args(args)
            .output(),
    )
    .await
    .expect("the hud client finished")
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|_| {
        panic!(
            "hud client output: {stdout}\nstderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

#[tokio::test]
async fn the_hud_python_client_runs_a_rust_sdk_scenario_and_reads_its_reward() {
    let Ok(python) = std::env::var("ROLLOUT_TEST_PYTHON") else {
        assert!(
            std::env::var("ROLLOUT_REQUIRE_PYTHON").is_err(),
            "ROLLOUT_TEST_PYTHON is not set"
        );
        return;
    };
    let env = RustHttpEnv::start().await;
    let query = r#"{"query": "What is 17 * 23?"}"#;
    let right = hud_client(
        &python,
        &[
            &env.url,
            "my-assistant",
            "answer_question",
            query,
            "It is 391.",
            "calculator",
            r#"{"expression": "17 * 23"}"#,
        ],
    )
    .await;
    assert_eq!(right["reward"], 1.0, "{right}");
    assert_eq!(right["error"], Value::Null);
    assert_eq!(right["tools"], json!(["calculator", "lookup", "respond"]));
    assert!(
        right["prompt"]
            .as_str()
            .unwrap()
            .starts_with("Answer this question: What is 17 * 23?")
    );
    assert!(
        right["tool_result"].as_str().unwrap().contains("391"),
        "{right}"
    );

    let wrong = hud_client(
        &python,
        &[
            &env.url,
            "my-assistant",
            "answer_question",
            query,
            "It is 400.",
        ],
    )
    .await;
    assert_eq!(wrong["reward"], 0.0, "{wrong}");

    // rollout's own runner, on the same HTTP environment.
    let server = plain_server().await;
    let (status, registered) = server
        .post(
            "/v1/environments",
            &json!({"name": "rust-http", "url": env.url}),
        )
        .await;
    assert_eq!(status, 201, "{registered}");
    let (status, summary) = server
        .post(
            "/v1/agent/run",
            &json!({
                "env_name": "rust-http",
                "scenario_name": "answer_question",
                "scenario_args": {"query": "What is the capital of France?"},
                "model": "replay",
                "validation": [{"name": "lookup", "arguments": {"topic": "capital of France"}}, {"answer": "Paris"}],
                "sync": true
            }),
        )
        .await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["reward"], 1.0, "{summary}\n{}", server.log());
}
