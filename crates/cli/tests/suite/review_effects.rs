//! What review changes downstream, end to end: a reward override moves a job's metrics and
//! comparison (`?reward=override`, the default) but not `?reward=grader` nor the grader's
//! reward, and datasets select on labels, scores and the overridden reward.

use super::common::{RUN_TIMEOUT, fake_options};
use rollout_testkit::{FakeModelServer, Policy, TestServer};
use serde_json::{Value, json};
use std::time::Duration;

/// Three tasks: the replay model solves `mul` and `add`, the fake provider (answers 391)
/// only `mul`.
fn tasks() -> String {
    [
        json!({"id": "mul", "env": "my-assistant", "scenario": "answer_question",
               "args": {"query": "What is 17 * 23?"}, "validation": [{"answer": "391"}]}),
        json!({"id": "capital", "env": "my-assistant", "scenario": "answer_question",
               "args": {"query": "What is the capital of France?"},
               "validation": [{"answer": "Lyon"}]}),
        json!({"id": "add", "env": "my-assistant", "scenario": "answer_question",
               "args": {"query": "What is 2 + 2?"},
               "validation": [{"name": "calculator", "arguments": {"expression": "2 + 2"}},
                              {"answer": "4"}]}),
    ]
    .iter()
    .map(|task| format!("{task}\n"))
    .collect()
}

const PROVIDER: &str = "claude-opus-4-5";

fn close(actual: &Value, expected: f64) {
    let actual = actual
        .as_f64()
        .unwrap_or_else(|| panic!("not a number: {actual}"));
    assert!((actual - expected).abs() < 1e-9, "{actual} != {expected}");
}

async fn finished_job(server: &TestServer) -> String {
    let request = server
        .client()
        .post(format!("{}/v1/tasksets/arith/import", server.base_url))
        .bearer_auth(&server.admin_key)
        .header("content-type", "application/x-ndjson")
        .body(tasks());
    let (status, imported) = server.send(request).await;
    assert_eq!(status, 201, "{imported}");
    let (status, job) = server
        .post(
            "/v1/jobs",
            &json!({"taskset": "arith", "models": ["replay", PROVIDER]}),
        )
        .await;
    assert_eq!(status, 201, "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    tokio::time::timeout(RUN_TIMEOUT, async {
        loop {
            let (_, job) = server.get(&format!("/v1/jobs/{id}")).await;
            if job["status"] == "finished" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the job did not finish\n{}", server.log()));
    id
}

/// The trace id of `model`'s run of `task` in the job.
async fn run_of(server: &TestServer, job: &str, model: &str, task: &str) -> String {
    let (_, page) = server
        .get(&format!("/v1/traces?job_id={job}&model={model}"))
        .await;
    for line in page["traces"].as_array().unwrap() {
        let id = line["trace_id"].as_str().unwrap();
        let (_, trace) = server.get(&format!("/v1/traces/{id}?include=")).await;
        if trace["metadata"]["task_id"] == task {
            return id.to_string();
        }
    }
    panic!("no run of {model} on {task}: {page}");
}

#[tokio::test]
async fn overrides_move_job_metrics_and_datasets_select_on_reviews() {
    let fake = FakeModelServer::start_with_policy(Policy::ToolStepsThenAnswer {
        tool: "calculator".into(),
        arguments: json!({"expression": "17 * 23"}),
        steps: 1,
    })
    .await
    .unwrap();
    let server = TestServer::start(super::common::binary(), fake_options(&fake))
        .await
        .unwrap();
    let job = finished_job(&server).await;
    let capital = run_of(&server, &job, PROVIDER, "capital").await;
    let add = run_of(&server, &job, PROVIDER, "add").await;
    let mul = run_of(&server, &job, "replay", "mul").await;

    let metrics = |query: &'static str| {
        let server = &server;
        let job = job.clone();
        async move {
            let (status, metrics) = server.get(&format!("/v1/jobs/{job}/metrics{query}")).await;
            assert_eq!(status, 200, "{metrics}");
            metrics
        }
    };
    let before = metrics("").await;
    close(&before["metrics"]["models"][1]["mean_reward"], 1.0 / 3.0);

    // A person decides the provider's answer to "capital" deserved 1.
    let (status, overridden) = server
        .client()
        .put(format!(
            "{}/v1/traces/{capital}/reward-override",
            server.base_url
        ))
        .bearer_auth(&server.admin_key)
        .json(&json!({"reward": 1.0, "reason": "Lyon was a trick; Paris is right"}))
        .send()
        .await
        .map(|r| (r.status().as_u16(), r))
        .unwrap();
    assert_eq!(status, 200, "{:?}", overridden.text().await);

    let after = metrics("").await;
    assert_eq!(after["reward"], "override");
    assert_eq!(after["overridden_runs"], 1);
    assert_eq!(after["metrics"]["models"][1]["model"], PROVIDER);
    close(&after["metrics"]["models"][1]["mean_reward"], 2.0 / 3.0);
    close(&after["metrics"]["models"][0]["mean_reward"], 2.0 / 3.0);
    let grader = metrics("?reward=grader").await;
    assert_eq!(grader["reward"], "grader");
    close(&grader["metrics"]["models"][1]["mean_reward"], 1.0 / 3.0);
    let (status, refused) = server
        .get(&format!("/v1/jobs/{job}/metrics?reward=mine"))
        .await;
    assert_eq!(status, 422, "{refused}");
    let (_, trace) = server.get(&format!("/v1/traces/{capital}?include=")).await;
    assert_eq!(trace["reward"], 0.0, "the grader's reward stays");

    // replay − provider per task: (0, 0 − 1, 1) with the override, (0, 0, 1) without.
    let (_, compared) = server.get(&format!("/v1/jobs/{job}/compare")).await;
    assert_eq!(compared["reward"], "override");
    close(&compared["comparison"]["difference"], 0.0);
    let (_, compared) = server
        .get(&format!("/v1/jobs/{job}/compare?reward=grader"))
        .await;
    close(&compared["comparison"]["difference"], 1.0 / 3.0);

    // Labels and scores pick dataset traces.
    for (trace, label) in [
        (&capital, "grader-wrong"),
        (&mul, "golden"),
        (&add, "wrong-tool"),
    ] {
        let (status, body) = server
            .post(
                &format!("/v1/traces/{trace}/labels"),
                &json!({"label": label}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    for (trace, value) in [(&capital, 0.9), (&mul, 0.4)] {
        let (status, body) = server
            .post(
                &format!("/v1/traces/{trace}/scores"),
                &json!({"name": "quality", "value": value}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let dataset = |selection: Value| {
        let server = &server;
        let job = job.clone();
        async move {
            let mut body = selection;
            body["job"] = json!(job);
            let (status, dataset) = server.post("/v1/datasets", &body).await;
            (status, dataset)
        }
    };
    let ids = |dataset: &Value| -> Vec<String> {
        let mut ids: Vec<String> = dataset["trace_ids"]
            .as_array()
            .unwrap_or_else(|| panic!("{dataset}"))
            .iter()
            .map(|id| id.as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    };
    let sorted = |mut ids: Vec<String>| {
        ids.sort();
        ids
    };
    let (status, picked) = dataset(json!({"labels_any": ["grader-wrong", "golden"]})).await;
    assert_eq!(status, 201, "{picked}");
    assert_eq!(ids(&picked), sorted(vec![capital.clone(), mul.clone()]));
    let (_, picked) =
        dataset(json!({"labels_none": ["wrong-tool", "golden", "grader-wrong"]})).await;
    assert_eq!(ids(&picked).len(), 3, "{picked}");
    let (_, picked) = dataset(json!({"score_min": {"quality": 0.5}})).await;
    assert_eq!(ids(&picked), [capital.as_str()]);
    // The overridden reward selects, and the records carry it.
    let (_, picked) = dataset(json!({"model": PROVIDER, "reward_min": 1.0})).await;
    assert_eq!(
        ids(&picked),
        sorted(vec![
            capital.clone(),
            run_of(&server, &job, PROVIDER, "mul").await
        ])
    );
    let (_, picked) = dataset(json!({"trace_ids": [capital, add], "reward_min": 1.0})).await;
    assert_eq!(
        ids(&picked),
        [capital.as_str()],
        "explicit ids go through the same filters"
    );
    let request = server
        .client()
        .get(format!(
            "{}/v1/datasets/{}/download?format=trajectory",
            server.base_url,
            picked["id"].as_str().unwrap()
        ))
        .bearer_auth(&server.admin_key);
    let text = request.send().await.unwrap().text().await.unwrap();
    let record: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(record["trace_id"], capital.as_str());
    assert_eq!(record["reward"], 1.0);
    let (status, refused) = dataset(json!({"score_min": {"quality": "high"}})).await;
    assert_eq!(status, 422, "{refused}");
    let (status, none) = dataset(json!({"labels_any": ["nobody-uses-this"]})).await;
    assert_eq!(status, 422, "{none}");
}
