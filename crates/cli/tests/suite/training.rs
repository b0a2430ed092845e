//! Training end to end: a job's traces become a dataset (both formats, lineage, no
//! secrets), a `fewshot` training job registers a checkpoint listed by `GET /v1/models`,
//! a run with the checkpoint sends the demonstrations to the provider, and a job compares
//! the checkpoint with its base model.

use super::common::{RUN_TIMEOUT, SECRET_KEY, binary, fake_options};
use rollout_testkit::{FakeModelServer, Policy, TestServer};
use serde_json::{Value, json};
use std::time::Duration;

const BASE: &str = "claude-opus-4-5";
const CHECKPOINT: &str = "arith-fewshot";

/// The fake provider computes 17 * 23 with the calculator and answers with the result:
/// it solves `mul` only.
fn tasks() -> String {
    [
        json!({"id": "mul", "env": "my-assistant", "scenario": "answer_question",
               "args": {"query": "What is 17 * 23?"}, "validation": [{"answer": "391"}]}),
        json!({"id": "capital", "env": "my-assistant", "scenario": "answer_question",
               "args": {"query": "What is the capital of France?"},
               "validation": [{"answer": "Paris"}]}),
    ]
    .iter()
    .map(|t| format!("{t}\n"))
    .collect()
}

async fn wait_for(server: &TestServer, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let waited = tokio::time::timeout(RUN_TIMEOUT, async {
        loop {
            let (status, value) = server.get(path).await;
            assert_eq!(status, 200, "{value}");
            if done(&value) {
                return value;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    waited.unwrap_or_else(|_| panic!("{path} did not finish\n{}", server.log()))
}

async fn download(server: &TestServer, id: &str, format: &str) -> (u16, String) {
    let response = server
        .client()
        .get(format!(
            "{}/v1/datasets/{id}/download?format={format}",
            server.base_url
        ))
        .bearer_auth(&server.admin_key)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

fn lines(body: &str) -> Vec<Value> {
    body.lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[tokio::test]
async fn traces_become_a_dataset_then_a_fewshot_checkpoint_callable_by_name() {
    let fake = FakeModelServer::start_with_policy(Policy::ToolStepsThenAnswer {
        tool: "calculator".into(),
        arguments: json!({"expression": "17 * 23"}),
        steps: 1,
    })
    .await
    .unwrap();
    let server = TestServer::start(binary(), fake_options(&fake))
        .await
        .unwrap();
    let request = server
        .client()
        .post(format!("{}/v1/tasksets/arith/import", server.base_url))
        .bearer_auth(&server.admin_key)
        .header("content-type", "application/x-ndjson")
        .body(tasks());
    let (status, created) = server.send(request).await;
    assert_eq!(status, 201, "{created}");
    let (status, job) = server
        .post(
            "/v1/jobs",
            &json!({"taskset": "arith", "models": [BASE], "repeats": 2}),
        )
        .await;
    assert_eq!(status, 201, "{job}");
    let job_id = job["id"].as_str().unwrap().to_string();
    wait_for(&server, &format!("/v1/jobs/{job_id}"), |j| {
        j["status"] == "finished"
    })
    .await;

    // Selection problems are 422s.
    let (status, error) = server
        .post("/v1/datasets", &json!({"job": job_id, "reward_min": 2.0}))
        .await;
    assert_eq!(status, 422, "{error}");
    let (status, error) = server
        .post("/v1/datasets", &json!({"from": "yesterday", "limit": 0}))
        .await;
    assert_eq!(status, 422, "{error}");
    assert_eq!(
        error["error"]["details"]["errors"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "{error}"
    );

    // The successful runs of the job: both repeats of `mul`.
    let (status, dataset) = server
        .post(
            "/v1/datasets",
            &json!({"name": "good", "taskset": "arith", "reward_min": 1.0}),
        )
        .await;
    assert_eq!(status, 201, "{dataset}");
    let dataset_id = dataset["id"].as_str().unwrap().to_string();
    assert_eq!(dataset["trace_count"], 2, "{dataset}");
    assert_eq!(dataset["stats"]["count"], 2);
    assert_eq!(dataset["stats"]["groups"], 1);
    assert_eq!(dataset["stats"]["reward"]["mean"], 1.0);
    assert_eq!(dataset["stats"]["reward"]["histogram"][9]["count"], 2);
    assert!(dataset["stats"]["total_tokens"].as_u64().unwrap() > 0);
    assert_eq!(dataset["selection"]["reward_min"], 1.0);
    let (status, same) = server.get(&format!("/v1/datasets/{dataset_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(same, dataset);
    let (status, _) = server.get("/v1/datasets/nope").await;
    assert_eq!(status, 404);

    let (status, chat) = download(&server, &dataset_id, "chat").await;
    assert_eq!(status, 200, "{chat}");
    assert!(!chat.contains(SECRET_KEY));
    let chat = lines(&chat);
    assert_eq!(chat.len(), 2);
    let messages = chat[0]["messages"].as_array().unwrap();
    let roles: Vec<&str> = messages
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(
        roles,
        ["user", "assistant", "tool", "assistant"],
        "{}",
        chat[0]
    );
    let call = &messages[1]["tool_calls"][0];
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "calculator");
    let arguments: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(arguments, json!({"expression": "17 * 23"}));
    assert_eq!(messages[2]["tool_call_id"], call["id"]);
    assert_eq!(messages[2]["content"], "391");
    assert_eq!(chat[0]["tools"][0]["function"]["name"], "calculator");

    let (status, trajectories) = download(&server, &dataset_id, "trajectory").await;
    assert_eq!(status, 200);
    assert!(!trajectories.contains(SECRET_KEY));
    let trajectories = lines(&trajectories);
    assert_eq!(trajectories[0]["reward"], 1.0);
    assert!(
        trajectories[0]["prompt"]
            .as_str()
            .unwrap()
            .contains("What is 17 * 23?")
    );
    assert_eq!(trajectories[0]["subscores"], json!({"correct": 1.0}));
    assert_eq!(trajectories[0]["group_id"], trajectories[1]["group_id"]);
    assert_eq!(trajectories[0]["group_id"], format!("{job_id}/mul"));
    let (status, _) = download(&server, &dataset_id, "parquet").await;
    assert_eq!(status, 422);

    // Explicit trace ids, still narrowed by the reward threshold.
    let first = trajectories[0]["trace_id"].as_str().unwrap().to_string();
    let (status, picked) = server
        .post(
            "/v1/datasets",
            &json!({"trace_ids": [first, "no-such-trace"], "reward_min": 1.0}),
        )
        .await;
    assert_eq!(status, 201, "{picked}");
    assert_eq!(picked["trace_ids"], json!([first]));

    // The CLI creates the same selection and writes the same records.
    let output = tokio::time::timeout(
        RUN_TIMEOUT,
        tokio::process::Command::new(binary())
            .args([
                "dataset",
                "export",
                "--url",
                &server.base_url,
                "--key",
                &server.admin_key,
                "--job",
                &job_id,
                "--reward-min",
                "1",
                "--format",
                "trajectory",
            ])
            .env_remove("ROLLOUT_URL")
            .env_remove("ROLLOUT_KEY")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap()
    .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains(": 2 traces, 1 tasks"), "{stderr}");
    assert!(stderr.contains("[0.9, 1.0] 2"), "{stderr}");
    assert_eq!(lines(&stdout), trajectories);

    // Training: problems first, then a fewshot job that registers the checkpoint.
    let (status, error) = server
        .post(
            "/v1/training",
            &json!({"dataset": "nope", "base_model": "nope", "backend": "magic",
                    "name": "gpt-5", "params": {}}),
        )
        .await;
    assert_eq!(status, 422, "{error}");
    let fields: Vec<&str> = error["error"]["details"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        ["dataset", "backend", "base_model", "name"],
        "{error}"
    );
    let (status, training) = server
        .post(
            "/v1/training",
            &json!({"dataset": dataset_id, "base_model": BASE, "backend": "fewshot",
                    "name": CHECKPOINT, "params": {"k": 1}}),
        )
        .await;
    assert_eq!(status, 201, "{training}");
    let training_id = training["id"].as_str().unwrap().to_string();
    let training = wait_for(&server, &format!("/v1/training/{training_id}"), |t| {
        t["status"] != "queued" && t["status"] != "running"
    })
    .await;
    assert_eq!(training["status"], "succeeded", "{training}");
    assert_eq!(training["checkpoint"], CHECKPOINT);
    assert!(
        training["log"]
            .as_str()
            .unwrap()
            .contains("kept 2 demonstrations"),
        "{training}"
    );
    let (status, again) = server
        .post(
            "/v1/training",
            &json!({"dataset": dataset_id, "base_model": BASE, "name": CHECKPOINT}),
        )
        .await;
    assert_eq!(status, 422, "{again}");
    let (status, _) = server
        .post(&format!("/v1/training/{training_id}/cancel"), &json!({}))
        .await;
    assert_eq!(status, 409);

    let (_, models) = server.get("/v1/models").await;
    let listed = models["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == CHECKPOINT)
        .unwrap_or_else(|| panic!("{models}"));
    assert_eq!(listed["available"], true);
    assert_eq!(listed["checkpoint"]["base_model"], BASE);
    assert_eq!(listed["checkpoint"]["backend"], "fewshot");
    assert_eq!(listed["checkpoint"]["dataset_id"], dataset_id.as_str());
    assert_eq!(
        listed["checkpoint"]["training_job_id"],
        training_id.as_str()
    );

    // A run with the checkpoint: the provider sees the demonstrations.
    let before = fake.requests().len();
    let (status, summary) = server
        .post(
            "/v1/agent/run",
            &json!({"env_name": "my-assistant", "scenario_name": "answer_question",
                    "scenario_args": {"query": "What is 17 * 23?"}, "model": CHECKPOINT,
                    "sync": true}),
        )
        .await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(
        summary["status"],
        "completed",
        "{summary}\n{}",
        server.log()
    );
    let requests = fake.requests();
    let sent = &requests[before..];
    assert!(!sent.is_empty());
    for request in sent {
        assert_eq!(request.body["model"], BASE);
        let system = request.body["system"].to_string();
        assert!(system.contains("### Example 1"), "{system}");
        assert!(
            system.contains("Assistant calls tool calculator"),
            "{system}"
        );
        assert!(system.contains("Tool result: 391"), "{system}");
        assert!(!system.contains("### Example 2"), "k = 1: {system}");
    }
    let trace_id = summary["trace_id"].as_str().unwrap();
    let trace = server.wait_for_trace(trace_id, RUN_TIMEOUT).await;
    assert_eq!(trace["model"], CHECKPOINT, "{trace}");

    // A job comparing the base model and the checkpoint.
    let (status, job) = server
        .post(
            "/v1/jobs",
            &json!({"taskset": "arith", "models": [BASE, CHECKPOINT]}),
        )
        .await;
    assert_eq!(status, 201, "{job}");
    let compare_id = job["id"].as_str().unwrap().to_string();
    wait_for(&server, &format!("/v1/jobs/{compare_id}"), |j| {
        j["status"] == "finished"
    })
    .await;
    let (status, comparison) = server
        .get(&format!(
            "/v1/jobs/{compare_id}/compare?a={CHECKPOINT}&b={BASE}"
        ))
        .await;
    assert_eq!(status, 200, "{comparison}");
    // The fake provider ignores the demonstrations: same scores, measured side by side.
    assert_eq!(comparison["comparison"]["paired_tasks"], 2, "{comparison}");
    assert_eq!(comparison["a"]["model"], CHECKPOINT);
    assert_eq!(comparison["a"]["scored"], 2);
    assert_eq!(comparison["b"]["mean_reward"], 0.5);
}
