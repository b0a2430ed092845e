//! A dataset of 2,000 traces is built while 20 runs go on: the traces are read a page at a
//! time and the records written in short batches, so the runs' own writes (SQLite's single
//! writer) never wait long enough to fail.

use super::common::{RUN_TIMEOUT, binary, fake_options};
use rollout_domain::{
    Evaluation, EventKind, Message, RunId, RunSpec, RunStatus, ToolCall, ToolResult, Usage,
};
use rollout_store::{FinishRun, Store};
use rollout_testkit::{FakeModelServer, Policy, TestServer};
use serde_json::{Value, json};
use std::time::Duration;

const TRACES: usize = 2_000;
const RUNS: usize = 20;

fn seeded_spec(index: usize) -> RunSpec {
    serde_json::from_value(json!({
        "env_name": "seeded",
        "env_version": 1,
        "scenario_name": "answer_question",
        "scenario_args": {"query": format!("seeded trace {index}")},
        "model": "claude-sonnet-4-5",
        "max_steps": 10,
        "agent_timeout_seconds": 60,
        "grading_timeout_seconds": 60
    }))
    .unwrap()
}

/// Finished traces written straight into the server's database before it starts: each a
/// tool call and an answer, with a prompt of about 1 KB.
async fn seed(data_dir: &std::path::Path) {
    let url = format!("sqlite://{}", data_dir.join("rollout.db").display());
    let store = Store::connect(&url).await.unwrap();
    store
        .ensure_project("default", "Default project")
        .await
        .unwrap();
    let prompt = format!("Answer this question. {}", "Some context. ".repeat(70));
    for index in 0..TRACES {
        store
            .insert_run(&RunId::generate(), "default", &seeded_spec(index))
            .await
            .unwrap();
        let lease = store
            .claim_next_run("seeder", Duration::from_secs(600))
            .await
            .unwrap()
            .unwrap()
            .lease;
        let call = ToolCall {
            id: format!("call_{index}"),
            name: "calculator".into(),
            arguments: json!({"expression": "2 + 2"}),
        };
        let result = ToolResult {
            call_id: call.id.clone(),
            text: "4".into(),
            content: Vec::new(),
            structured: None,
            is_error: false,
        };
        let model_call = |step, new_messages, response| EventKind::ModelCall {
            step,
            model: "claude-sonnet-4-5".into(),
            upstream_model: "claude-sonnet-4-5".into(),
            new_messages,
            response,
            stop_reason: "end_turn".into(),
            usage: Usage::default(),
            duration_ms: 1,
        };
        let events = [
            EventKind::AttemptStarted {
                attempt: 1,
                worker: "seeder".into(),
            },
            EventKind::Setup {
                scenario_id: "seeded:answer_question".into(),
                arguments: Default::default(),
                prompt: prompt.clone(),
                tools: Vec::new(),
                duration_ms: 1,
            },
            model_call(
                1,
                vec![Message::user(prompt.clone())],
                Message::assistant("", vec![call.clone()]),
            ),
            EventKind::ToolCall {
                step: 1,
                call_id: call.id.clone(),
                name: call.name.clone(),
                arguments: call.arguments.clone(),
                result: result.clone(),
                duration_ms: 1,
            },
            model_call(
                2,
                vec![Message::tool(&result)],
                Message::assistant("4", Vec::new()),
            ),
        ];
        for event in &events {
            store
                .append_leased_event(&lease, event)
                .await
                .unwrap()
                .unwrap();
        }
        let finish = FinishRun {
            status: RunStatus::Completed,
            outcome: Some("answered".into()),
            reward: Some(1.0),
            evaluation: Some(Evaluation::reward(1.0)),
            final_response: Some("4".into()),
            steps: 2,
            usage: Usage::default(),
            error: None,
        };
        assert!(store.finish_run(&lease, &finish).await.unwrap());
    }
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dataset_of_2000_traces_is_built_while_20_runs_go_on() {
    let data = tempfile::tempdir().unwrap();
    seed(data.path()).await;
    let fake = FakeModelServer::start_with_policy(Policy::ToolStepsThenAnswer {
        tool: "calculator".into(),
        arguments: json!({"expression": "2 + 2"}),
        steps: 1,
    })
    .await
    .unwrap();
    fake.set_delay(Duration::from_millis(500));
    let mut options = fake_options(&fake);
    options.data_dir = Some(data.path().to_path_buf());
    options.args = vec!["--max-concurrent-runs".into(), RUNS.to_string()];
    let server = TestServer::start(binary(), options).await.unwrap();

    let mut runs = Vec::new();
    for index in 0..RUNS {
        let (status, accepted) = server
            .post(
                "/v1/agent/run",
                &json!({
                    "env_name": "my-assistant",
                    "scenario_name": "answer_question",
                    "scenario_args": {"query": format!("run {index}: what is 2 + 2?")},
                    "model": "claude-sonnet-4-5"
                }),
            )
            .await;
        assert_eq!(status, 202, "{accepted}");
        runs.push(accepted["trace_id"].as_str().unwrap().to_string());
    }
    let asked = std::time::Instant::now();
    let (status, dataset) = server
        .post(
            "/v1/datasets",
            &json!({"name": "big", "env": "seeded", "limit": TRACES}),
        )
        .await;
    eprintln!("a dataset of {TRACES} traces took {:?}", asked.elapsed());
    assert_eq!(status, 201, "{dataset}\n{}", server.log());
    assert_eq!(dataset["stats"]["count"], TRACES, "{dataset}");
    let id = dataset["id"].as_str().unwrap();
    let response = server
        .client()
        .get(format!(
            "{}/v1/datasets/{id}/download?format=chat",
            server.base_url
        ))
        .bearer_auth(&server.admin_key)
        .send()
        .await
        .unwrap();
    let body = response.text().await.unwrap();
    let records: Vec<Value> = body
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(records.len(), TRACES);
    assert_eq!(records[0]["messages"].as_array().unwrap().len(), 4);

    for trace_id in &runs {
        let trace = server.wait_for_trace(trace_id, RUN_TIMEOUT).await;
        assert_eq!(trace["status"], "completed", "{trace}\n{}", server.log());
    }
}
