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

    // Another project neither sees nor calls it.
    let (status, key) = server
        .post(
            "/v1/keys",
            &json!({"name": "other", "role": "admin", "project": "other"}),
        )
        .await;
    assert_eq!(status, 201, "{key}");
    let other = key["key"].as_str().unwrap().to_string();
    let request = server
        .client()
        .get(format!("{}/v1/models", server.base_url))
        .bearer_auth(&other);
    let (_, models) = server.send(request).await;
    assert!(!models.to_string().contains(CHECKPOINT), "{models}");
    let request = server
        .client()
        .post(format!("{}/v1/training", server.base_url))
        .bearer_auth(&other)
        .json(&json!({"dataset": "d", "base_model": CHECKPOINT, "name": "stacked"}));
    let (status, error) = server.send(request).await;
    assert_eq!(status, 422, "{error}");
    let problems = error["error"]["details"]["errors"].as_array().unwrap();
    assert!(
        problems
            .iter()
            .any(|p| p["field"] == "base_model" && p["message"].to_string().contains(CHECKPOINT)),
        "{error}"
    );
    other_project_cannot_reach_the_checkpoint(&server, &other).await;

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

/// Project `other` (admin key `other`) with the assistant of its own: it cannot name the
/// default project's checkpoint in a run, a schedule or a job, its model pickers do not
/// list it, and it trains a checkpoint of the same name that is its own.
async fn other_project_cannot_reach_the_checkpoint(server: &TestServer, other: &str) {
    let as_other = |method: reqwest::Method, path: &str, body: Option<Value>| {
        let mut request = server
            .client()
            .request(method, format!("{}{path}", server.base_url))
            .bearer_auth(other);
        if let Some(body) = body {
            request = request.json(&body);
        }
        server.send(request)
    };
    let (status, env) = server
        .post(
            "/v1/environments",
            &json!({"name": "my-assistant", "project": "other",
                    "command": [binary(), "example-env", "my-assistant"]}),
        )
        .await;
    assert_eq!(status, 201, "{env}");
    let run = json!({"env_name": "my-assistant", "scenario_name": "answer_question",
                     "scenario_args": {"query": "What is 17 * 23?"}, "model": CHECKPOINT});
    let (status, error) = as_other(reqwest::Method::POST, "/v1/agent/run", Some(run.clone())).await;
    assert_eq!(status, 422, "{error}");
    let schedule = json!({"cron": "* * * * * *", "run": run});
    let (status, error) = as_other(reqwest::Method::POST, "/v1/schedules", Some(schedule)).await;
    assert_eq!(
        status, 422,
        "a schedule naming another project's checkpoint: {error}"
    );
    assert_eq!(
        error["error"]["details"]["errors"][0]["field"], "model",
        "{error}"
    );
    let import = server
        .client()
        .post(format!("{}/v1/tasksets/mine/import", server.base_url))
        .bearer_auth(other)
        .header("content-type", "application/x-ndjson")
        .body(tasks());
    let (status, imported) = server.send(import).await;
    assert_eq!(status, 201, "{imported}");
    let job = json!({"taskset": "mine", "models": [CHECKPOINT]});
    let (status, error) = as_other(reqwest::Method::POST, "/v1/jobs", Some(job)).await;
    assert_eq!(status, 422, "{error}");

    // The environment page's model picker (a browser session of `other`) lists it not.
    let signed_in = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{}/login", server.base_url))
        .form(&[("key", other), ("next", "/environments/my-assistant")])
        .send()
        .await
        .unwrap();
    let cookie = signed_in.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_string();
    let page = server
        .client()
        .get(format!("{}/environments/my-assistant", server.base_url))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("scenario-answer_question"), "{page}");
    assert!(
        !page.contains(CHECKPOINT),
        "the picker lists another project's checkpoint"
    );

    // Names are per project: `other` trains a checkpoint of the same name, from its own
    // trace, and each project's name resolves to its own.
    let replay = json!({"env_name": "my-assistant", "scenario_name": "answer_question",
                        "scenario_args": {"query": "What is 17 * 23?"}, "model": "replay",
                        "validation": [{"answer": "391"}], "sync": true});
    let (status, summary) = as_other(reqwest::Method::POST, "/v1/agent/run", Some(replay)).await;
    assert_eq!(status, 200, "{summary}");
    let (status, dataset) = as_other(
        reqwest::Method::POST,
        "/v1/datasets",
        Some(json!({"trace_ids": [summary["trace_id"]]})),
    )
    .await;
    assert_eq!(status, 201, "{dataset}");
    let (status, training) = as_other(
        reqwest::Method::POST,
        "/v1/training",
        Some(
            json!({"dataset": dataset["id"], "base_model": BASE, "backend": "fewshot",
                    "name": CHECKPOINT}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{training}");
    let path = format!("/v1/training/{}", training["id"].as_str().unwrap());
    let done = tokio::time::timeout(RUN_TIMEOUT, async {
        loop {
            let (_, job) = as_other(reqwest::Method::GET, &path, None).await;
            if job["status"] != "queued" && job["status"] != "running" {
                return job;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .unwrap();
    assert_eq!(done["status"], "succeeded", "{done}");
    let lineage = |models: &Value| {
        models["models"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["name"] == CHECKPOINT)
            .map(|m| m["checkpoint"]["training_job_id"].clone())
            .collect::<Vec<_>>()
    };
    let (_, theirs) = as_other(reqwest::Method::GET, "/v1/models", None).await;
    assert_eq!(lineage(&theirs), [training["id"].clone()], "{theirs}");
    let (_, ours) = server.get("/v1/models").await;
    let ours = lineage(&ours);
    assert_eq!(ours.len(), 1);
    assert_ne!(ours[0], training["id"]);
}

/// A server whose `command` backend runs the fixture trainer.
async fn server_with_trainer(fake: &FakeModelServer) -> TestServer {
    TestServer::start(binary(), trainer_options(fake))
        .await
        .unwrap()
}

fn trainer_options(fake: &FakeModelServer) -> rollout_testkit::ServerOptions {
    let python = std::env::var("ROLLOUT_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let trainer = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testkit/fixtures/trainer.py"
    );
    let mut options = fake_options(fake);
    options.config_toml = Some(format!(
        "[training]\ncommand = [{}, {}, \"{{params}}\", \"{{dataset}}\", \"{{base_model}}\", \"{{manifest}}\"]\n",
        json!(python),
        json!(trainer)
    ));
    options
}

async fn train(server: &TestServer, body: Value) -> Value {
    let (status, created) = server.post("/v1/training", &body).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    wait_for(server, &format!("/v1/training/{id}"), |t| {
        t["status"] != "queued" && t["status"] != "running"
    })
    .await
}

#[tokio::test]
async fn the_command_backend_runs_the_trainer_and_registers_its_endpoint() {
    let fake = FakeModelServer::start().await.unwrap();
    let server = server_with_trainer(&fake).await;
    let (status, summary) = server
        .post(
            "/v1/agent/run",
            &json!({"env_name": "my-assistant", "scenario_name": "answer_question",
                    "scenario_args": {"query": "What is 2 + 2?"}, "model": "replay",
                    "validation": [{"name": "calculator", "arguments": {"expression": "2 + 2"}},
                                   {"answer": "4"}],
                    "sync": true}),
        )
        .await;
    assert_eq!(status, 200, "{summary}");
    let trace_id = summary["trace_id"].as_str().unwrap();
    let (status, dataset) = server
        .post("/v1/datasets", &json!({"trace_ids": [trace_id]}))
        .await;
    assert_eq!(status, 201, "{dataset}");
    let dataset_id = dataset["id"].as_str().unwrap();
    let serve_url = format!("{}/v1", fake.base_url());

    // Not configured here: openai.
    let (status, error) = server
        .post(
            "/v1/training",
            &json!({"dataset": dataset_id, "base_model": BASE, "backend": "openai", "name": "x"}),
        )
        .await;
    assert_eq!(status, 422, "{error}");
    assert_eq!(error["error"]["details"]["errors"][0]["field"], "backend");

    let done = train(
        &server,
        json!({"dataset": dataset_id, "base_model": BASE, "backend": "command",
               "name": "arith-lora", "params": {"serve_url": serve_url, "epochs": 3}}),
    )
    .await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let log = done["log"].as_str().unwrap();
    for expected in [
        "loaded 1 examples for claude-opus-4-5",
        "epoch 3: loss",
        "manifest: model 'ft-claude-opus-4-5'",
        "registering checkpoint 'arith-lora'",
    ] {
        assert!(log.contains(expected), "{expected} not in\n{log}");
    }
    let (_, models) = server.get("/v1/models").await;
    let listed = models["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "arith-lora")
        .unwrap_or_else(|| panic!("{models}"));
    assert_eq!(listed["upstream"], "ft-claude-opus-4-5");
    assert_eq!(listed["checkpoint"]["backend"], "command");

    fake.push([rollout_testkit::FakeReply::text("4")]);
    let (status, summary) = server
        .post(
            "/v1/agent/run",
            &json!({"env_name": "my-assistant", "scenario_name": "answer_question",
                    "scenario_args": {"query": "What is 2 + 2?"}, "model": "arith-lora",
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
    let request = fake.requests().pop().unwrap();
    assert_eq!(request.wire, "openai");
    assert_eq!(request.body["model"], "ft-claude-opus-4-5");

    // A trainer that fails: the job fails with its output in the log, nothing registered.
    let failed = train(
        &server,
        json!({"dataset": dataset_id, "base_model": BASE, "backend": "command",
               "name": "broken", "params": {"serve_url": serve_url, "fail": true}}),
    )
    .await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert!(
        failed["error"].as_str().unwrap().contains("exited"),
        "{failed}"
    );
    assert!(
        failed["log"]
            .as_str()
            .unwrap()
            .contains("CUDA out of memory")
    );

    // Cancel while the trainer runs: the job ends cancelled and registers nothing.
    let (status, slow) = server
        .post(
            "/v1/training",
            &json!({"dataset": dataset_id, "base_model": BASE, "backend": "command",
                    "name": "slow", "params": {"serve_url": serve_url, "sleep": 600}}),
        )
        .await;
    assert_eq!(status, 201, "{slow}");
    let slow_id = slow["id"].as_str().unwrap().to_string();
    wait_for(&server, &format!("/v1/training/{slow_id}"), |t| {
        t["log"].as_str().unwrap_or_default().contains("sleeping")
    })
    .await;
    let (status, cancelled) = server
        .post(&format!("/v1/training/{slow_id}/cancel"), &json!({}))
        .await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    let (_, models) = server.get("/v1/models").await;
    let names: Vec<&str> = models["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"arith-lora"));
    assert!(
        !names.contains(&"broken") && !names.contains(&"slow"),
        "{names:?}"
    );
    let (_, jobs) = server.get("/v1/training").await;
    assert_eq!(jobs["training_jobs"].as_array().unwrap().len(), 3);

    // After a restart the checkpoint is still callable: loaded from the store.
    let mut server = server;
    server.terminate(RUN_TIMEOUT).await.unwrap();
    let mut options = trainer_options(&fake);
    options.data_dir = Some(server.data_dir.clone());
    let restarted = TestServer::start(binary(), options).await.unwrap();
    let (_, models) = restarted.get("/v1/models").await;
    assert!(
        models.to_string().contains("ft-claude-opus-4-5"),
        "{models}"
    );
    let (_, slow) = restarted.get(&format!("/v1/training/{slow_id}")).await;
    assert_eq!(slow["status"], "cancelled");
}

#[tokio::test]
async fn the_openai_backend_uploads_creates_polls_and_registers_the_fine_tuned_model() {
    let fake = FakeModelServer::start().await.unwrap();
    let fine_tuning =
        rollout_testkit::FakeFineTuneServer::start(rollout_testkit::FineTuneOutcome::Succeed)
            .await
            .unwrap();
    let mut options = fake_options(&fake);
    options
        .env
        .push(("ROLLOUT_TEST_FT_KEY".into(), "ft-key-never-logged".into()));
    options.config_toml = Some(format!(
        "[training.openai]\nbase_url = \"{}/v1\"\napi_key_env = \"ROLLOUT_TEST_FT_KEY\"\n\
         inference_base_url = \"{}/v1\"\npoll_interval_ms = 20\n",
        fine_tuning.base_url(),
        fake.base_url()
    ));
    let server = TestServer::start(binary(), options).await.unwrap();
    let (status, summary) = server
        .post(
            "/v1/agent/run",
            &json!({"env_name": "my-assistant", "scenario_name": "answer_question",
                    "scenario_args": {"query": "What is 2 + 2?"}, "model": "replay",
                    "validation": [{"name": "calculator", "arguments": {"expression": "2 + 2"}},
                                   {"answer": "4"}],
                    "sync": true}),
        )
        .await;
    assert_eq!(status, 200, "{summary}");
    let (status, dataset) = server
        .post("/v1/datasets", &json!({"trace_ids": [summary["trace_id"]]}))
        .await;
    assert_eq!(status, 201, "{dataset}");
    let dataset_id = dataset["id"].as_str().unwrap();

    let done = train(
        &server,
        json!({"dataset": dataset_id, "base_model": "gpt-4.1", "backend": "openai",
               "name": "support-ft", "params": {"hyperparameters": {"n_epochs": 2}}}),
    )
    .await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let log = done["log"].as_str().unwrap();
    for expected in [
        "uploaded the dataset as file-1",
        "created fine-tuning job ftjob-1",
        "[info] Validating training file",
        "Step 1/10: training loss=0.90",
        "status: succeeded",
    ] {
        assert!(log.contains(expected), "{expected} not in\n{log}");
    }
    assert!(!log.contains("ft-key-never-logged"));
    let files = fine_tuning.files();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].purpose, "fine-tune");
    let (_, chat) = download(&server, dataset_id, "chat").await;
    assert_eq!(files[0].content.trim_end(), chat.trim_end());
    let created = &fine_tuning.job_requests()[0];
    assert_eq!(created["model"], "gpt-4.1");
    assert_eq!(created["training_file"], "file-1");
    assert_eq!(created["suffix"], "support-ft");
    assert_eq!(created["hyperparameters"]["n_epochs"], 2);
    assert!(
        fine_tuning
            .authorizations()
            .iter()
            .all(|auth| auth == "Bearer ft-key-never-logged")
    );

    let (_, models) = server.get("/v1/models").await;
    let listed = models["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "support-ft")
        .unwrap_or_else(|| panic!("{models}"));
    assert_eq!(listed["upstream"], "ft:gpt-4.1:support-ft");
    assert_eq!(listed["checkpoint"]["backend"], "openai");

    fake.push([rollout_testkit::FakeReply::text("4")]);
    let (status, summary) = server
        .post(
            "/v1/agent/run",
            &json!({"env_name": "my-assistant", "scenario_name": "answer_question",
                    "scenario_args": {"query": "What is 2 + 2?"}, "model": "support-ft",
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
    let request = fake.requests().pop().unwrap();
    assert_eq!(request.body["model"], "ft:gpt-4.1:support-ft");
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {SECRET_KEY}").as_str())
    );

    // A job that fails upstream: failed with the provider's reason, nothing registered.
    fine_tuning.set_outcome(rollout_testkit::FineTuneOutcome::Fail(
        "the training file has too few examples".into(),
    ));
    let failed = train(
        &server,
        json!({"dataset": dataset_id, "base_model": "gpt-4.1", "backend": "openai",
               "name": "support-ft-2"}),
    )
    .await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("failed: the training file has too few examples"),
        "{failed}"
    );
    assert!(
        failed["log"]
            .as_str()
            .unwrap()
            .contains("[error] the training file")
    );
    let (_, models) = server.get("/v1/models").await;
    assert!(!models.to_string().contains("support-ft-2"));
}
