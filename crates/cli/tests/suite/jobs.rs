//! Tasksets, evaluation jobs and metrics, from the API and the CLI: import with validation,
//! a job of 3 tasks × 2 models × 3 repeats with exact metrics, `rollout eval` embedded and
//! against a server, and a job that survives a server crash.

use super::common::{RUN_TIMEOUT, binary, fake_options};
use rollout_testkit::{FakeModelServer, Policy, TestServer};
use serde_json::{Value, json};
use std::time::Duration;

/// Three tasks. The replay model solves the first and the third (its `validation`) and fails
/// the second; the fake provider's policy computes 17*23 and answers 391 to everything, so
/// it solves only the first.
fn tasks() -> Vec<Value> {
    vec![
        json!({
            "id": "mul",
            "env": {"name": "my-assistant"},
            "scenario": "answer_question",
            "args": {"query": "What is 17 * 23?"},
            "validation": [{"answer": "391"}],
            "agent_config": {"system_prompt": "Answer briefly."},
            "metadata": {"kind": "arithmetic"}
        }),
        json!({
            "id": "capital",
            "env": "my-assistant",
            "scenario": "my-assistant:answer_question",
            "args": {"query": "What is the capital of France?"},
            "validation": [{"answer": "Lyon"}]
        }),
        json!({
            "id": "add",
            "env": "my-assistant",
            "scenario": "answer_question",
            "args": {"query": "What is 2 + 2?"},
            "validation": [
                {"name": "calculator", "arguments": {"expression": "2 + 2"}},
                {"answer": "4"}
            ]
        }),
    ]
}

fn jsonl(tasks: &[Value]) -> String {
    tasks.iter().map(|t| format!("{t}\n")).collect()
}

const PROVIDER_MODEL: &str = "claude-opus-4-5";

async fn fake_provider() -> FakeModelServer {
    FakeModelServer::start_with_policy(Policy::ToolStepsThenAnswer {
        tool: "calculator".into(),
        arguments: json!({"expression": "17 * 23"}),
        steps: 1,
    })
    .await
    .unwrap()
}

async fn import(server: &TestServer, name: &str, body: String) -> (u16, Value) {
    let request = server
        .client()
        .post(format!("{}/v1/tasksets/{name}/import", server.base_url))
        .bearer_auth(&server.admin_key)
        .header("content-type", "application/x-ndjson")
        .body(body);
    server.send(request).await
}

async fn wait_for_job(server: &TestServer, id: &str, timeout: Duration) -> Value {
    let waited = tokio::time::timeout(timeout, async {
        loop {
            let (status, job) = server.get(&format!("/v1/jobs/{id}")).await;
            assert_eq!(status, 200, "{job}");
            if job["status"] == "finished" {
                return job;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    waited.unwrap_or_else(|_| panic!("job {id} did not finish\n{}", server.log()))
}

fn close(actual: &Value, expected: f64) {
    let actual = actual
        .as_f64()
        .unwrap_or_else(|| panic!("not a number: {actual}"));
    assert!((actual - expected).abs() < 1e-9, "{actual} != {expected}");
}

/// The exact metrics of the job of `tasks()` × [replay, provider] × 3 repeats.
fn assert_exact_metrics(metrics: &Value) {
    let models = metrics["models"].as_array().unwrap();
    assert_eq!(models.len(), 2, "{metrics}");
    let replay = &models[0];
    let provider = &models[1];
    assert_eq!(replay["model"], "replay");
    assert_eq!(provider["model"], PROVIDER_MODEL);
    for model in [replay, provider] {
        assert_eq!(model["scored"], 9, "{model}");
        assert_eq!(model["failed"], 0);
        // Six rewards of one value and three of the other: s² = 0.25, se = sqrt(0.25 / 9).
        close(&model["reward_stderr"], 1.0 / 6.0);
        assert_eq!(model["tasks"].as_array().unwrap().len(), 3);
    }
    close(&replay["mean_reward"], 2.0 / 3.0);
    close(&replay["success_rate"], 2.0 / 3.0);
    close(&provider["mean_reward"], 1.0 / 3.0);
    for k in ["1", "2", "3"] {
        close(&replay["pass_at_k"][k], 2.0 / 3.0);
        close(&provider["pass_at_k"][k], 1.0 / 3.0);
    }
    assert_eq!(replay["tasks"][0]["task"], "mul");
    close(&replay["tasks"][1]["mean_reward"], 0.0);
    close(&provider["tasks"][2]["mean_reward"], 0.0);
    assert_eq!(metrics["overall"]["scored"], 18);
    close(&metrics["overall"]["mean_reward"], 0.5);
}

/// replay − provider per task: (0, 0, 1); mean 1/3, s² = 1/3, se = sqrt(1/9).
fn assert_exact_comparison(comparison: &Value) {
    assert_eq!(comparison["a"], "replay");
    assert_eq!(comparison["b"], PROVIDER_MODEL);
    assert_eq!(comparison["paired_tasks"], 3);
    close(&comparison["difference"], 1.0 / 3.0);
    close(&comparison["difference_stderr"], 1.0 / 3.0);
    close(&comparison["mean_a"], 2.0 / 3.0);
    close(&comparison["mean_b"], 1.0 / 3.0);
    close(&comparison["tasks"][2]["difference"], 1.0);
}

#[tokio::test]
async fn import_checks_every_line_and_stores_all_or_nothing() {
    let server = TestServer::start(binary(), Default::default())
        .await
        .unwrap();
    let (status, created) = import(&server, "arith", jsonl(&tasks())).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["task_count"], 3);
    assert_eq!(created["imported"], 3);

    let mut bad = tasks()[..1].to_vec();
    bad[0]["id"] = json!("fine");
    let lines = [
        bad[0].to_string(),
        json!({"env": "my-assistant", "scenario": "no_such", "args": {}}).to_string(),
        String::new(),
        json!({"env": "my-assistant", "scenario": "answer_question", "args": {"query": 7}})
            .to_string(),
        "{not json".to_string(),
        json!({"env": {"name": "nowhere"}, "scenario": "s"}).to_string(),
        json!({"env": "my-assistant", "scenario": "answer_question", "args": {"query": "q"}, "id": "mul"}).to_string(),
    ];
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let (status, error) = import(&server, "arith", body.clone()).await;
    assert_eq!(status, 422, "{error}");
    // A line that is not JSON is reported before any task is checked.
    let problems = error["error"]["details"]["errors"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{error}");
    assert_eq!(problems[0]["line"], 5);

    let body: String = lines
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 4)
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    let (status, error) = import(&server, "arith", body).await;
    assert_eq!(status, 422, "{error}");
    let problems = error["error"]["details"]["errors"].as_array().unwrap();
    let lines: Vec<i64> = problems
        .iter()
        .map(|p| p["line"].as_i64().unwrap())
        .collect();
    // Line numbers count blank lines (line 3 is blank).
    assert_eq!(lines, [2, 4, 5, 6], "{error}");
    assert!(problems[0]["message"].as_str().unwrap().contains("no_such"));
    assert_eq!(problems[1]["field"], "args.query", "{error}");
    assert!(problems[2]["message"].as_str().unwrap().contains("nowhere"));
    assert!(
        problems[3]["message"]
            .as_str()
            .unwrap()
            .contains("'mul' is used twice")
    );

    // Nothing of the bad file was kept.
    let (_, taskset) = server.get("/v1/tasksets/arith").await;
    assert_eq!(taskset["task_count"], 3);
    assert_eq!(taskset["tasks"][0]["env"], "my-assistant");
    assert_eq!(
        taskset["tasks"][0]["agent_config"]["system_prompt"],
        "Answer briefly."
    );

    // Export is JSONL in hud's format, and imports again as the same tasks.
    let response = server
        .client()
        .get(format!("{}/v1/tasksets/arith/export", server.base_url))
        .bearer_auth(&server.admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let exported = response.text().await.unwrap();
    let (status, copy) = import(&server, "copy", exported.clone()).await;
    assert_eq!(status, 201, "{copy}");
    let (_, copy) = server.get("/v1/tasksets/copy").await;
    assert_eq!(copy["tasks"], taskset["tasks"]);
    assert_eq!(exported.lines().count(), 3);

    // A JSON array imports too; add, remove, list, delete.
    let (status, created) = server
        .post(
            "/v1/tasksets",
            &json!({"name": "small", "description": "d", "tasks": [tasks()[1]]}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let (status, _) = server.post("/v1/tasksets", &json!({"name": "small"})).await;
    assert_eq!(status, 409);
    let (status, added) = server
        .post("/v1/tasksets/small/tasks", &json!({"tasks": [tasks()[0]]}))
        .await;
    assert_eq!(status, 200, "{added}");
    assert_eq!(added["task_count"], 2);
    let (status, _) = server
        .request(
            reqwest::Method::DELETE,
            "/v1/tasksets/small/tasks/capital",
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (_, list) = server.get("/v1/tasksets").await;
    let names: Vec<&str> = list["tasksets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["arith", "copy", "small"]);
    let array = serde_json::to_string(&tasks()).unwrap();
    let (status, _) = import(&server, "array", array).await;
    assert_eq!(status, 201);
    let (status, _) = server
        .request(reqwest::Method::DELETE, "/v1/tasksets/small", None)
        .await;
    assert_eq!(status, 204);
    let (status, _) = server.get("/v1/tasksets/small").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_job_of_two_models_has_exact_counts_metrics_and_comparison() {
    let fake = fake_provider().await;
    let server = TestServer::start(binary(), fake_options(&fake))
        .await
        .unwrap();
    let (status, _) = import(&server, "arith", jsonl(&tasks())).await;
    assert_eq!(status, 201);

    let (status, error) = server
        .post(
            "/v1/jobs",
            &json!({"taskset": "arith", "models": ["replay", "nope-9"], "repeats": 0}),
        )
        .await;
    assert_eq!(status, 422, "{error}");
    let fields: Vec<&str> = error["error"]["details"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["repeats", "models"], "{error}");

    let (status, job) = server
        .post(
            "/v1/jobs",
            &json!({
                "taskset": "arith",
                "models": ["replay", PROVIDER_MODEL],
                "repeats": 3,
                "max_concurrency": 2,
                "metadata": {"experiment": "e1"}
            }),
        )
        .await;
    assert_eq!(status, 201, "{job}");
    assert_eq!(job["counts"]["total"], 18);
    let id = job["id"].as_str().unwrap();
    let job = wait_for_job(&server, id, RUN_TIMEOUT).await;
    assert_eq!(
        job["counts"],
        json!({"total": 18, "queued": 0, "running": 0, "done": 18, "failed": 0, "cancelled": 0})
    );
    assert_eq!(job["progress"][0]["done"], 9);
    close(&job["progress"][0]["mean_reward"], 2.0 / 3.0);

    let (status, metrics) = server.get(&format!("/v1/jobs/{id}/metrics")).await;
    assert_eq!(status, 200, "{metrics}");
    assert_exact_metrics(&metrics["metrics"]);
    let (status, compared) = server.get(&format!("/v1/jobs/{id}/compare")).await;
    assert_eq!(status, 200, "{compared}");
    assert_exact_comparison(&compared["comparison"]);
    let (status, _) = server
        .get(&format!("/v1/jobs/{id}/compare?a=replay&b=gpt-x"))
        .await;
    assert_eq!(status, 422);

    // Every run is an ordinary trace, tagged with its job and task.
    let (_, traces) = server.get("/v1/traces?limit=500").await;
    let traces = traces["traces"].as_array().unwrap();
    assert_eq!(traces.len(), 18);
    let trace_id = traces[0]["trace_id"].as_str().unwrap();
    let (_, trace) = server.get(&format!("/v1/traces/{trace_id}")).await;
    assert_eq!(trace["metadata"]["job_id"], id);
    assert_eq!(trace["metadata"]["experiment"], "e1");

    let (status, retried) = server
        .post(&format!("/v1/jobs/{id}/retry"), &json!({}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(retried["retried"], 0);
    let (_, list) = server.get("/v1/jobs").await;
    assert_eq!(list["jobs"][0]["id"], id);
    assert_eq!(list["jobs"][0]["status"], "finished");
}

#[tokio::test]
async fn cancelling_a_job_cancels_its_queued_runs() {
    let fake = fake_provider().await;
    let mut options = fake_options(&fake);
    options.args = vec!["--max-concurrent-runs".into(), "0".into()];
    let server = TestServer::start(binary(), options).await.unwrap();
    import(&server, "arith", jsonl(&tasks())).await;
    let (_, job) = server
        .post(
            "/v1/jobs",
            &json!({"taskset": "arith", "models": ["replay"], "repeats": 2}),
        )
        .await;
    let id = job["id"].as_str().unwrap();
    assert_eq!(job["counts"]["queued"], 6);
    let (status, job) = server
        .post(&format!("/v1/jobs/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(status, 200, "{job}");
    assert_eq!(job["status"], "cancelled");
    assert_eq!(job["counts"]["cancelled"], 6);
    let (status, _) = server.post("/v1/jobs/nope/cancel", &json!({})).await;
    assert_eq!(status, 404);
}

fn cli_env(fake: &FakeModelServer) -> Vec<(String, String)> {
    fake_options(fake).env
}

async fn rollout(args: &[&str], env: &[(String, String)], dir: &std::path::Path) -> Value {
    let mut command = tokio::process::Command::new(binary());
    command
        .args(args)
        .current_dir(dir)
        .env_remove("ROLLOUT_URL")
        .env_remove("ROLLOUT_KEY")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .kill_on_drop(true);
    let output = tokio::time::timeout(RUN_TIMEOUT, command.output())
        .await
        .expect("rollout finished in time")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "rollout {args:?} failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    serde_json::from_str(&stdout)
        .unwrap_or_else(|error| panic!("{error}: not JSON:\n{stdout}\nstderr:\n{stderr}"))
}

#[tokio::test]
async fn rollout_eval_runs_embedded_without_a_server() {
    let fake = fake_provider().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("arith.jsonl");
    std::fs::write(&file, jsonl(&tasks())).unwrap();
    let data = dir.path().join("data");
    let file = file.display().to_string();
    let data = data.display().to_string();
    let args = [
        "eval",
        &file,
        "--model",
        "replay",
        "--model",
        PROVIDER_MODEL,
        "--repeats",
        "3",
        "--concurrency",
        "4",
        "--data-dir",
        &data,
        "--json",
    ];
    let output = rollout(&args, &cli_env(&fake), dir.path()).await;
    assert_eq!(output["job"]["counts"]["done"], 18, "{output}");
    assert_exact_metrics(&output["job"]["metrics"]);
    assert_exact_comparison(&output["comparison"]);

    // The data directory keeps the job: `rollout job` reads it back in-process.
    let id = output["job"]["id"].as_str().unwrap().to_string();
    let shown = rollout(
        &["job", "show", &id, "--data-dir", &data, "--json"],
        &[],
        dir.path(),
    )
    .await;
    assert_exact_metrics(&shown["job"]["metrics"]);
}

#[tokio::test]
async fn rollout_eval_drives_a_running_server() {
    let fake = fake_provider().await;
    let server = TestServer::start(binary(), fake_options(&fake))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("arith.jsonl");
    std::fs::write(&file, jsonl(&tasks())).unwrap();
    let file = file.display().to_string();
    let env = vec![
        ("ROLLOUT_URL".to_string(), server.base_url.clone()),
        ("ROLLOUT_KEY".to_string(), server.admin_key.clone()),
    ];
    let args = [
        "eval",
        &file,
        "--model",
        "replay",
        "--model",
        PROVIDER_MODEL,
        "--repeats",
        "3",
        "--json",
    ];
    let output = rollout(&args, &env, dir.path()).await;
    assert_exact_metrics(&output["job"]["metrics"]);
    assert_exact_comparison(&output["comparison"]);
    let id = output["job"]["id"].as_str().unwrap().to_string();

    // The same file again reuses its taskset (same name, no duplicate import).
    let (_, list) = server.get("/v1/tasksets").await;
    assert_eq!(list["tasksets"].as_array().unwrap().len(), 1);
    assert_eq!(list["tasksets"][0]["task_count"], 3);

    let compared = rollout(&["job", "compare", &id, "--json"], &env, dir.path()).await;
    assert_exact_comparison(&compared["comparison"]);
    let shown = rollout(&["job", "show", &id, "--json"], &env, dir.path()).await;
    assert_exact_metrics(&shown["job"]["metrics"]);
}

#[tokio::test]
async fn a_job_survives_a_server_crash_with_no_run_lost_or_duplicated() {
    let fake = fake_provider().await;
    let mut options = fake_options(&fake);
    options.args = vec!["--lease-seconds".into(), "2".into()];
    let mut server = TestServer::start(binary(), options.clone()).await.unwrap();
    import(&server, "arith", jsonl(&tasks())).await;
    let (status, job) = server
        .post(
            "/v1/jobs",
            &json!({
                "taskset": "arith",
                "models": ["replay", PROVIDER_MODEL],
                "repeats": 3,
                "max_concurrency": 1
            }),
        )
        .await;
    assert_eq!(status, 201, "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    let started = tokio::time::timeout(RUN_TIMEOUT, async {
        loop {
            let (_, job) = server.get(&format!("/v1/jobs/{id}")).await;
            if job["counts"]["done"].as_i64().unwrap() >= 2 {
                return job;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the job made progress");
    assert!(
        started["counts"]["queued"].as_i64().unwrap() > 0,
        "{started}"
    );
    let data_dir = server.data_dir.clone();
    server.kill().await;

    options.data_dir = Some(data_dir);
    let server = TestServer::start(binary(), options).await.unwrap();
    let job = wait_for_job(&server, &id, RUN_TIMEOUT).await;
    assert_eq!(job["counts"]["total"], 18, "{job}");
    assert_eq!(job["counts"]["done"], 18, "{job}");
    let (_, metrics) = server.get(&format!("/v1/jobs/{id}/metrics")).await;
    assert_exact_metrics(&metrics["metrics"]);
    for model in metrics["metrics"]["models"].as_array().unwrap() {
        for task in model["tasks"].as_array().unwrap() {
            assert_eq!(task["scored"], 3, "{task}");
        }
    }
}

/// A job checks each task's run with the run route's own validation: the same request made
/// as a job and as `POST /v1/agent/run` is refused with the same status and message, and a
/// task whose environment is gone carries the run route's exact message and code.
#[tokio::test]
async fn a_job_refuses_an_invalid_task_with_the_run_routes_error() {
    let server = TestServer::start(binary(), Default::default())
        .await
        .unwrap();
    let (status, _) = import(&server, "arith", jsonl(&tasks()[..1])).await;
    assert_eq!(status, 201);
    let run = json!({
        "env_name": "my-assistant",
        "scenario_name": "answer_question",
        "scenario_args": {"query": "What is 17 * 23?"},
        "validation": [{"answer": "391"}],
        "model": "replay",
        "max_steps": 0
    });
    let (run_status, run_error) = server.post("/v1/agent/run", &run).await;
    assert_eq!(run_status, 422, "{run_error}");
    let (job_status, job_error) = server
        .post(
            "/v1/jobs",
            &json!({"taskset": "arith", "models": ["replay"], "max_steps": 0}),
        )
        .await;
    assert_eq!(job_status, run_status, "{job_error}");
    assert_eq!(job_error["error"]["message"], run_error["error"]["message"]);
    assert_eq!(job_error["error"]["details"]["errors"][0]["task"], "mul");

    let (status, deleted) = server
        .request(
            reqwest::Method::DELETE,
            "/v1/environments/my-assistant",
            None,
        )
        .await;
    assert_eq!(status, 200, "{deleted}");
    let mut run = run;
    run["max_steps"] = json!(5);
    let (run_status, run_error) = server.post("/v1/agent/run", &run).await;
    assert_eq!(run_status, 404, "{run_error}");
    let (job_status, job_error) = server
        .post(
            "/v1/jobs",
            &json!({"taskset": "arith", "models": ["replay"]}),
        )
        .await;
    assert_eq!(job_status, 422, "{job_error}");
    let task_problem = &job_error["error"]["details"]["errors"][0];
    assert_eq!(task_problem["task"], "mul", "{job_error}");
    assert_eq!(task_problem["code"], run_error["error"]["code"]);
    assert_eq!(task_problem["message"], run_error["error"]["message"]);
}
