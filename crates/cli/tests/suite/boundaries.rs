//! Projects as boundaries, attacked: a project's admin cannot make the server run a
//! program of its choosing (command environments, git deploys) or reach an address of its
//! choosing (URL environments), though it deploys bundles; scheduled ticks and job
//! retries are admitted like new runs (quotas, runs in flight).

use super::common::{RUN_TIMEOUT, binary, call_as as as_key, plain_server};
use rollout_testkit::{ServerOptions, TestServer};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

/// A key of `project` with `role`, made by the operator.
async fn key_in(server: &TestServer, project: &str, role: &str) -> String {
    let (status, key) = server
        .post(
            "/v1/keys",
            &json!({"name": format!("{project} {role}"), "role": role, "project": project}),
        )
        .await;
    assert_eq!(status, 201, "{key}");
    key["key"].as_str().unwrap().to_string()
}

/// A tar.gz of a bundle that serves the bundled example environment.
fn bundle(dir: &Path) -> Vec<u8> {
    std::fs::create_dir_all(dir).unwrap();
    let manifest = format!(
        "name = \"bundled\"\n\n[run]\ncommand = [{:?}, \"example-env\", \"my-assistant\"]\n",
        binary()
    );
    std::fs::write(dir.join("rollout.toml"), manifest).unwrap();
    let output = std::process::Command::new("tar")
        .arg("-czf")
        .arg("-")
        .arg("-C")
        .arg(dir)
        .arg(".")
        .output()
        .unwrap();
    assert!(output.status.success());
    output.stdout
}

#[tokio::test]
async fn project_admins_deploy_bundles_but_only_operators_register_commands_urls_and_git() {
    let server = plain_server().await;
    let acme = key_in(&server, "acme", "admin").await;
    let post = reqwest::Method::POST;

    // The attack: a command environment runs any program as the server (it could read
    // the database and write an admin key of the operator's project into it).
    let attempts = [
        json!({"name": "shell", "command": ["sh", "-c", "id > /tmp/owned"]}),
        json!({"name": "internal", "url": "http://169.254.169.254/mcp"}),
        json!({"name": "repo", "git": {"url": "file:///etc"}}),
    ];
    for body in attempts {
        let (status, refused) = as_key(
            &server,
            &acme,
            post.clone(),
            "/v1/environments",
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, 403, "{body}: {refused}");
        let message = refused["error"]["message"].as_str().unwrap();
        assert!(message.contains("operator action"), "{message}");
    }
    let (_, listed) = as_key(
        &server,
        &acme,
        reqwest::Method::GET,
        "/v1/environments",
        None,
    )
    .await;
    assert_eq!(listed["environments"], json!([]), "nothing was registered");

    // Its bundles deploy (and run sandboxed).
    let work = tempfile::tempdir().unwrap();
    let request = server
        .client()
        .post(format!(
            "{}/v1/environments/bundled/deploy",
            server.base_url
        ))
        .bearer_auth(&acme)
        .header("content-type", "application/gzip")
        .body(bundle(&work.path().join("bundle")));
    let (status, deployed) = server.send(request).await;
    assert_eq!(status, 201, "{deployed}\n{}", server.log());

    // The operator registers a command environment for the project, which then uses it.
    let (status, registered) = server
        .post(
            "/v1/environments",
            &json!({"name": "assistant", "project": "acme",
                    "command": [binary(), "example-env", "my-assistant"]}),
        )
        .await;
    assert_eq!(status, 201, "{registered}");
    let run = json!({"env_name": "assistant", "scenario_name": "answer_question",
                     "scenario_args": {"query": "What is 17 * 23?"}, "model": "replay",
                     "validation": [{"answer": "391"}], "sync": true});
    let (status, summary) = as_key(&server, &acme, post.clone(), "/v1/agent/run", Some(run)).await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["status"], "completed", "{summary}");
    let (status, _) = server.get("/v1/environments/assistant").await;
    assert_eq!(
        status, 404,
        "registered in acme, not in the operator's project"
    );
    let (status, missing) = server
        .post(
            "/v1/environments",
            &json!({"name": "x", "project": "nope", "command": ["true"]}),
        )
        .await;
    assert_eq!(status, 404, "{missing}");
    // A project's admin names no other project.
    let (status, _) = as_key(
        &server,
        &acme,
        post,
        "/v1/environments",
        Some(json!({"name": "x", "project": "default", "command": ["true"]})),
    )
    .await;
    assert_eq!(status, 403);
}

async fn wait_until(
    server: &TestServer,
    path: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    tokio::time::timeout(RUN_TIMEOUT, async {
        loop {
            let (status, value) = server.get(path).await;
            assert_eq!(status, 200, "{value}");
            if done(&value) {
                return value;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}\n{}", server.log()))
}

#[tokio::test]
async fn scheduled_ticks_and_job_retries_are_admitted_like_new_runs() {
    // The environment below reads a file of the test's temp dir to decide when to break: the
    // operator's opt-out shows it the host (the sandbox is not what this test is about).
    let server = TestServer::start(
        binary(),
        ServerOptions {
            config_toml: Some("[environments.flaky]\nsandbox = false\n".into()),
            ..ServerOptions::default()
        },
    )
    .await
    .unwrap();
    let work = tempfile::tempdir().unwrap();
    let broken = work.path().join("broken");
    // An environment that starts fine at registration, then fails once `broken` exists:
    // the job's runs fail and can be retried.
    let script = format!(
        "test -e {broken:?} && exit 3; exec {:?} example-env my-assistant",
        binary()
    );
    let (status, env) = server
        .post(
            "/v1/environments",
            &json!({"name": "flaky", "command": ["sh", "-c", script]}),
        )
        .await;
    assert_eq!(status, 201, "{env}");
    std::fs::write(&broken, "").unwrap();
    let tasks: String = ["a", "b"]
        .iter()
        .map(|id| {
            format!(
                "{}\n",
                json!({"id": id, "env": "flaky", "scenario": "answer_question",
                       "args": {"query": "q"}, "validation": [{"answer": "391"}]})
            )
        })
        .collect();
    let request = server
        .client()
        .post(format!("{}/v1/tasksets/flaky/import", server.base_url))
        .bearer_auth(&server.admin_key)
        .header("content-type", "application/x-ndjson")
        .body(tasks);
    let (status, imported) = server.send(request).await;
    assert_eq!(status, 201, "{imported}");
    let (status, job) = server
        .post(
            "/v1/jobs",
            &json!({"taskset": "flaky", "models": ["replay"]}),
        )
        .await;
    assert_eq!(status, 201, "{job}");
    let job_path = format!("/v1/jobs/{}", job["id"].as_str().unwrap());
    let job = wait_until(&server, &job_path, "the job to end", |job| {
        job["status"] == "finished"
    })
    .await;
    assert_eq!(job["counts"]["failed"], 2, "{job}");

    // Two runs today; a quota of three refuses a retry of both, and retries nothing.
    std::fs::remove_file(&broken).unwrap();
    let quota = |max: Value| {
        let server = &server;
        async move {
            let body = json!({ "max_runs_per_day": max });
            let patch = reqwest::Method::PATCH;
            let (status, project) = server
                .request(patch, "/v1/projects/default", Some(&body))
                .await;
            assert_eq!(status, 200, "{project}");
        }
    };
    quota(json!(3)).await;
    let (status, refused) = server.post(&format!("{job_path}/retry"), &json!({})).await;
    assert_eq!(status, 429, "{refused}");
    assert_eq!(refused["error"]["code"], "quota_exceeded", "{refused}");
    let (_, job) = server.get(&job_path).await;
    assert_eq!(job["counts"]["failed"], 2, "nothing was retried: {job}");
    quota(Value::Null).await;
    let (status, retried) = server.post(&format!("{job_path}/retry"), &json!({})).await;
    assert_eq!(status, 200, "{retried}");
    assert_eq!(retried["retried"], 2);
    wait_until(&server, &job_path, "the retried runs", |job| {
        job["status"] == "finished" && job["counts"]["done"] == 2
    })
    .await;

    // A schedule firing every second in a project with one run left today: one tick
    // queues a run, the next ones are skipped and say why.
    quota(json!(3)).await;
    let (status, schedule) = server
        .post(
            "/v1/schedules",
            &json!({"cron": "* * * * * *", "run": {
                "env_name": "flaky", "scenario_name": "answer_question",
                "scenario_args": {"query": "q"}, "model": "replay",
                "validation": [{"answer": "391"}]}}),
        )
        .await;
    assert_eq!(status, 201, "{schedule}");
    let path = format!("/v1/schedules/{}", schedule["id"].as_str().unwrap());
    let skipped = wait_until(&server, &path, "a skipped tick", |s| {
        s["last_skip_reason"].is_string()
    })
    .await;
    let reason = skipped["last_skip_reason"].as_str().unwrap();
    assert!(reason.contains("max_runs_per_day"), "{reason}");
    // Further ticks stay skipped: the schedule made exactly the one run the quota allowed.
    let first_skip = skipped["last_skipped_at"].clone();
    wait_until(&server, &path, "another skipped tick", |s| {
        s["last_skipped_at"] != first_skip
    })
    .await;
    let (_, runs) = server.get(&format!("{path}/runs")).await;
    assert_eq!(runs["runs"].as_array().unwrap().len(), 1, "{runs}");
    let (_, traces) = server.get("/v1/traces?limit=100").await;
    assert_eq!(traces["traces"].as_array().unwrap().len(), 3, "{traces}");
}
