//! The automation recipes of `examples/automation/` work as written: the cron script and the
//! webhook handler, against a real server.

use super::common::{binary, fake_options};
use rollout_testkit::{FakeModelServer, TestServer};
use serde_json::{Value, json};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

const RECIPES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/automation");

async fn server() -> TestServer {
    let fake = FakeModelServer::start().await.unwrap();
    let server = TestServer::start(binary(), fake_options(&fake))
        .await
        .unwrap();
    // The fake is only needed for the catalog's keys; replay runs never call it.
    drop(fake);
    server
}

async fn run_count(server: &TestServer) -> usize {
    let (_, list) = server.get("/v1/traces").await;
    list["traces"].as_array().unwrap().len()
}

#[tokio::test]
async fn the_cron_script_runs_once_a_day() {
    let server = server().await;
    let run = || {
        std::process::Command::new("sh")
            .arg(format!("{RECIPES}/nightly.sh"))
            .env("ROLLOUT_URL", &server.base_url)
            .env("ROLLOUT_KEY", &server.admin_key)
            // A fixed day, so that the two starts cannot straddle midnight.
            .env("NIGHTLY_DAY", "2026-11-28")
            .output()
            .unwrap()
    };
    let first = run();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let summary: Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(summary["status"], "completed");
    assert_eq!(summary["reward"], 1.0);
    // Started again the same day (a retry, a second cron line): the same run.
    let second = run();
    assert!(second.status.success());
    let again: Value = serde_json::from_slice(&second.stdout).unwrap();
    assert_eq!(again["trace_id"], summary["trace_id"]);
    assert_eq!(run_count(&server).await, 1);
}

#[tokio::test]
async fn the_webhook_handler_starts_one_run_per_event() {
    if std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipping: python3 not found");
        return;
    }
    let server = server().await;
    let mut handler = tokio::process::Command::new("python3")
        .arg(format!("{RECIPES}/webhook_handler.py"))
        .arg("0")
        .env("ROLLOUT_URL", &server.base_url)
        .env("ROLLOUT_KEY", &server.admin_key)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(handler.stdout.take().unwrap()).lines();
    let port = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
        .trim_start_matches("listening on ")
        .to_string();
    let send = |event: Value| {
        server
            .client()
            .post(format!("http://127.0.0.1:{port}/events"))
            .json(&event)
            .send()
    };
    let event = json!({"id": "evt-1", "question": "What is 17 * 23?"});
    let first: Value = send(event.clone()).await.unwrap().json().await.unwrap();
    // The sender retries the same event: no second run.
    let retry: Value = send(event).await.unwrap().json().await.unwrap();
    assert_eq!(retry["trace_id"], first["trace_id"], "{first} {retry}");
    let other: Value = send(json!({"id": "evt-2", "question": "And 2 + 2?"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_ne!(other["trace_id"], first["trace_id"]);
    assert_eq!(run_count(&server).await, 2);
    let trace = server
        .wait_for_trace(
            first["trace_id"].as_str().unwrap(),
            super::common::RUN_TIMEOUT,
        )
        .await;
    assert_eq!(trace["metadata"]["event_id"], "evt-1");
    let _ = handler.kill().await;
}
