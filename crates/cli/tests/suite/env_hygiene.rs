//! What an untrusted environment cannot do to the server: stderr that is not UTF-8 or has a
//! 10 MB line (it is read on, not choked on), a huge tool result (stored cut to the event
//! limit, with its size and SHA-256), and warm processes of a superseded version (the
//! version's pool is drained once a newer one runs).

use super::common::{
    RUN_TIMEOUT, binary, fake_options, marked_binary, processes_with, python, wait_processes,
};
use rollout_testkit::{FakeModelServer, FakeReply, ServerOptions, TestServer};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const NOISY_ENV: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../testkit/fixtures/noisy_env.py"
);

/// A server whose model is `fake`, with the noisy environment registered.
async fn noisy_server(fake: &FakeModelServer, python: &str) -> TestServer {
    let server = TestServer::start(binary(), fake_options(fake))
        .await
        .unwrap();
    let (status, env) = server
        .post(
            "/v1/environments",
            &json!({"name": "noisy", "command": [python, NOISY_ENV]}),
        )
        .await;
    assert_eq!(status, 201, "{env}\n{}", server.log());
    server
}

async fn run_echo(server: &TestServer) -> Value {
    let (status, accepted) = server
        .post(
            "/v1/agent/run",
            &json!({"env_name": "noisy", "scenario_name": "echo", "model": "claude-sonnet-4-5"}),
        )
        .await;
    assert_eq!(status, 202, "{accepted}");
    server
        .wait_for_trace(accepted["trace_id"].as_str().unwrap(), RUN_TIMEOUT)
        .await
}

fn tool_results(trace: &Value) -> Vec<Value> {
    trace["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "tool_call")
        .map(|e| e["result"].clone())
        .collect()
}

#[tokio::test]
async fn stderr_that_is_not_utf8_or_has_a_10_mb_line_does_not_stop_the_environment() {
    let Some(python) = python() else { return };
    let fake = FakeModelServer::start().await.unwrap();
    let noisy = FakeReply::tool_call("noisy", json!({}));
    fake.push([noisy.clone(), noisy, FakeReply::text("done")]);
    let server = noisy_server(&fake, &python).await;
    let trace = run_echo(&server).await;
    assert_eq!(trace["status"], "completed", "{trace}\n{}", server.log());
    let results = tool_results(&trace);
    assert_eq!(results.len(), 2, "{trace}");
    for result in results {
        assert_eq!(result["text"], "still here", "{result}");
        assert_eq!(result["is_error"], false);
    }
    // The log has the line that is not UTF-8 (replaced), and the long line cut.
    let log = server.log();
    assert!(log.contains("not utf-8: \u{fffd}\u{fffd}\u{fffd}"), "{log}");
    assert!(log.contains("more bytes not kept]"));
}

fn sha256(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The stored form of a text over the default limit of 256 KiB.
fn cut(whole: &str) -> String {
    format!(
        "{}\n[truncated by rollout: {} bytes, sha256 {}]",
        &whole[..256 * 1024],
        whole.len(),
        sha256(whole)
    )
}

/// A tool result of 6 MiB (sent twice in one MCP message, as text and as structured
/// content; the stdio transport carries messages of up to 16 MiB) and a model answer of
/// 5 MiB are stored cut to the limit, with their size and digest; the model and the
/// environment still got them whole.
#[tokio::test]
async fn a_huge_tool_result_and_model_answer_are_stored_cut_with_their_size_and_digest() {
    let Some(python) = python() else { return };
    let fake = FakeModelServer::start().await.unwrap();
    let answer = format!("done {}", "z".repeat(5 * 1024 * 1024));
    fake.push([
        FakeReply::tool_call("big", json!({"mib": 6})),
        FakeReply::text(answer.clone()),
    ]);
    let server = noisy_server(&fake, &python).await;
    let trace = run_echo(&server).await;
    assert_eq!(trace["status"], "completed", "{}", server.log());
    let result = "y".repeat(6 * 1024 * 1024);
    assert_eq!(tool_results(&trace)[0]["text"], json!(cut(&result)));
    let events = trace["events"].as_array().unwrap();
    let calls: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "model_call")
        .collect();
    // The tool message of the next model call, and the model's answer, are cut too.
    assert_eq!(calls[1]["new_messages"][0]["content"], json!(cut(&result)));
    assert_eq!(calls[1]["response"]["content"], json!(cut(&answer)));
    let answered = events.iter().find(|e| e["type"] == "answer").unwrap();
    assert_eq!(answered["text"], json!(cut(&answer)));
    assert_eq!(trace["final_response"], json!(cut(&answer)));
    assert_eq!(trace["reward"], 1.0);
    // The model itself got the whole result.
    assert!(fake.requests()[1].body.to_string().len() > 6 * 1024 * 1024);
}

fn pooled_options() -> ServerOptions {
    ServerOptions {
        args: vec!["--warm-pool-size".into(), "1".into()],
        ..ServerOptions::default()
    }
}

async fn replay_run(server: &TestServer) {
    let (status, accepted) = server
        .post(
            "/v1/agent/run",
            &json!({
                "env_name": "pooled",
                "scenario_name": "answer_question",
                "scenario_args": {"query": "What is 2 + 2?"},
                "model": "replay",
                "validation": [{"answer": "4"}]
            }),
        )
        .await;
    assert_eq!(status, 202, "{accepted}");
    let trace = server
        .wait_for_trace(accepted["trace_id"].as_str().unwrap(), RUN_TIMEOUT)
        .await;
    assert_eq!(trace["status"], "completed", "{trace}\n{}", server.log());
}

#[tokio::test]
async fn the_warm_pool_of_a_superseded_version_is_drained() {
    let server = TestServer::start(binary(), pooled_options()).await.unwrap();
    let (_first_dir, first) = marked_binary("pool-v1");
    let (_second_dir, second) = marked_binary("pool-v2");
    for (version, program) in [(1, &first), (2, &second)] {
        let (status, env) = server
            .post(
                "/v1/environments",
                &json!({"name": "pooled", "command": [program, "example-env", "my-assistant"]}),
            )
            .await;
        assert_eq!(status, 201, "{env}");
        replay_run(&server).await;
        // After the run, the pool keeps one process of this version started.
        assert!(
            wait_processes(program, true).await,
            "no warm process of version {version}:\n{}",
            server.log()
        );
    }
    // Version 2 ran: version 1's warm process is gone.
    assert!(
        wait_processes(&first, false).await,
        "version 1 still has warm processes: {:?}",
        processes_with(&first)
    );
}
