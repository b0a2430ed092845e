//! Per-project defaults, limits and quotas: set with `rollout projects set` or
//! `PATCH /v1/projects/{id}`, enforced on `POST /v1/agent/run` and `POST /v1/jobs` for every
//! key of the project, and only there.

use super::common::{RUN_TIMEOUT, binary, fake_options};
use rollout_testkit::{FakeModelServer, Policy, TestServer};
use serde_json::{Value, json};

async fn call(
    server: &TestServer,
    key: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value, Option<String>) {
    let mut request = server
        .client()
        .request(method, format!("{}{path}", server.base_url))
        .bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|value| value.to_str().unwrap().to_string());
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body, retry_after)
}

async fn get(server: &TestServer, key: &str, path: &str) -> (u16, Value) {
    let (status, body, _) = call(server, key, reqwest::Method::GET, path, None).await;
    (status, body)
}

async fn post(server: &TestServer, key: &str, path: &str, body: Value) -> (u16, Value) {
    let (status, body, _) = call(server, key, reqwest::Method::POST, path, Some(body)).await;
    (status, body)
}

async fn patch(server: &TestServer, key: &str, path: &str, body: Value) -> (u16, Value) {
    let (status, body, _) = call(server, key, reqwest::Method::PATCH, path, Some(body)).await;
    (status, body)
}

fn run_body(env: &str, model: &str) -> Value {
    json!({
        "env_name": env,
        "scenario_name": "answer_question",
        "scenario_args": {"query": "What is 17 * 23?"},
        "model": model,
        "validation": [{"answer": "391"}]
    })
}

/// A key of `project` with `role`, made by the server's admin.
async fn key_in(server: &TestServer, project: &str, role: &str) -> String {
    let (status, key) = post(
        server,
        &server.admin_key,
        "/v1/keys",
        json!({"name": format!("{project} {role}"), "role": role, "project": project}),
    )
    .await;
    assert_eq!(status, 201, "{key}");
    key["key"].as_str().unwrap().to_string()
}

/// Registers the bundled assistant as `name` in `project` (an operator action).
async fn register_env(server: &TestServer, project: &str, name: &str) {
    let (status, env) = post(
        server,
        &server.admin_key,
        "/v1/environments",
        json!({"name": name, "project": project,
               "command": [binary(), "example-env", "my-assistant"]}),
    )
    .await;
    assert_eq!(status, 201, "{env}");
}

fn rollout_projects(server: &TestServer, args: &[&str]) -> (bool, String, String) {
    let output = std::process::Command::new(binary())
        .arg("projects")
        .args(args)
        .env("ROLLOUT_URL", &server.base_url)
        .env("ROLLOUT_KEY", &server.admin_key)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).to_string(),
        String::from_utf8_lossy(&output.stderr).to_string(),
    )
}

#[tokio::test]
async fn limits_and_defaults_apply_to_a_projects_keys_only() {
    let fake = FakeModelServer::start().await.unwrap();
    let mut options = fake_options(&fake);
    // Nothing is claimed: runs stay queued, in flight.
    options.args = vec!["--max-concurrent-runs".into(), "0".into()];
    let server = TestServer::start(binary(), options).await.unwrap();
    let admin = server.admin_key.clone();
    let team_admin = key_in(&server, "team-a", "admin").await;
    let member = key_in(&server, "team-a", "member").await;
    register_env(&server, "team-a", "assistant").await;

    // Settings through the CLI (an admin key of the default project).
    let (ok, stdout, stderr) = rollout_projects(
        &server,
        &[
            "set",
            "team-a",
            "--max-runs-in-flight",
            "2",
            "--max-timeout-seconds",
            "60",
            "--default-max-steps",
            "7",
        ],
    );
    assert!(ok, "{stderr}");
    assert!(stdout.contains("max_runs_in_flight"), "{stdout}");
    let (ok, stdout, stderr) = rollout_projects(&server, &["show", "team-a", "--json"]);
    assert!(ok, "{stderr}");
    let shown: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        shown["settings"],
        json!({
            "max_runs_in_flight": 2,
            "default_timeout_seconds": null,
            "max_timeout_seconds": 60,
            "default_max_steps": 7,
            "max_runs_per_day": null,
            "max_tokens_per_day": null,
        })
    );
    let (ok, _, stderr) = rollout_projects(&server, &["set", "team-a"]);
    assert!(!ok);
    assert!(stderr.contains("at least one setting"), "{stderr}");

    // Over the project's max timeout: 422 naming the limit. Omitted: the server's default
    // (1800 s) is capped to the project's max, not refused.
    let mut body = run_body("assistant", "replay");
    body["timeout_seconds"] = json!(61);
    let (status, refused) = post(&server, &member, "/v1/agent/run", body).await;
    assert_eq!(status, 422, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_timeout_seconds"),
        "{refused}"
    );

    // Two runs are admitted, with the project's default max_steps and their queue position.
    let (status, first) = post(
        &server,
        &member,
        "/v1/agent/run",
        run_body("assistant", "replay"),
    )
    .await;
    assert_eq!(status, 202, "{first}");
    assert_eq!(first["queue_position"], 1, "{first}");
    let mut body = run_body("assistant", "replay");
    body["max_steps"] = json!(3);
    body["timeout_seconds"] = json!(60);
    let (status, second) = post(&server, &member, "/v1/agent/run", body).await;
    assert_eq!(status, 202, "{second}");
    assert_eq!(second["queue_position"], 2);
    let first_id = first["trace_id"].as_str().unwrap();
    let (_, trace) = get(&server, &member, &format!("/v1/traces/{first_id}")).await;
    assert_eq!(trace["max_steps"], 7, "{trace}");
    let second_id = second["trace_id"].as_str().unwrap();
    let (_, trace) = get(&server, &member, &format!("/v1/traces/{second_id}")).await;
    assert_eq!(trace["max_steps"], 3);

    // The third is refused: 429, Retry-After, the limit named.
    let (status, refused, retry_after) = call(
        &server,
        &member,
        reqwest::Method::POST,
        "/v1/agent/run",
        Some(run_body("assistant", "replay")),
    )
    .await;
    assert_eq!(status, 429, "{refused}");
    assert_eq!(refused["error"]["code"], "too_many_runs_in_flight");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(message.contains("max_runs_in_flight is 2"), "{message}");
    assert_eq!(refused["error"]["details"]["in_flight"], 2);
    let retry_after: u64 = retry_after.expect("Retry-After").parse().unwrap();
    assert!(retry_after >= 1);

    // Another project is not affected: the default project has no limit.
    for _ in 0..3 {
        let (status, accepted) = post(
            &server,
            &admin,
            "/v1/agent/run",
            run_body("my-assistant", "replay"),
        )
        .await;
        assert_eq!(status, 202, "{accepted}");
    }
    let mut body = run_body("my-assistant", "replay");
    body["timeout_seconds"] = json!(600);
    let (status, accepted) = post(&server, &admin, "/v1/agent/run", body).await;
    assert_eq!(status, 202, "{accepted}");
    let (status, default) = get(&server, &admin, "/v1/projects/default").await;
    assert_eq!(status, 200, "{default}");
    assert_eq!(default["settings"]["max_runs_in_flight"], Value::Null);
    assert_eq!(default["usage"]["runs_in_flight"], 4);

    // A run leaving the queue makes room.
    let (status, _) = post(
        &server,
        &member,
        &format!("/v1/traces/{first_id}/cancel"),
        json!({}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, third) = post(
        &server,
        &member,
        "/v1/agent/run",
        run_body("assistant", "replay"),
    )
    .await;
    assert_eq!(status, 202, "{third}");

    // Who may read and change settings.
    let (status, _) = get(&server, &member, "/v1/projects/team-a").await;
    assert_eq!(status, 403);
    let (status, own) = get(&server, &team_admin, "/v1/projects/team-a").await;
    assert_eq!(status, 200, "{own}");
    assert_eq!(own["usage"]["runs_in_flight"], 2);
    let (status, _) = get(&server, &team_admin, "/v1/projects/default").await;
    assert_eq!(status, 404);
    let (status, _) = patch(
        &server,
        &team_admin,
        "/v1/projects/team-a",
        json!({"max_runs_in_flight": 100}),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = get(&server, &admin, "/v1/projects/nope").await;
    assert_eq!(status, 404);

    // Bad settings: 422 listing every problem, nothing changed.
    let (status, invalid) = patch(
        &server,
        &admin,
        "/v1/projects/team-a",
        json!({"default_timeout_seconds": 100, "max_runs_in_flight": "ten", "colour": 1,
               "default_max_steps": 0}),
    )
    .await;
    assert_eq!(status, 422, "{invalid}");
    assert_eq!(
        invalid["error"]["details"]["errors"]
            .as_array()
            .unwrap()
            .len(),
        4,
        "{invalid}"
    );
    // `null` unsets a setting.
    let (status, changed) = patch(
        &server,
        &admin,
        "/v1/projects/team-a",
        json!({"max_runs_in_flight": null, "default_timeout_seconds": 30}),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["settings"]["max_runs_in_flight"], Value::Null);
    assert_eq!(changed["settings"]["default_timeout_seconds"], 30);
    assert_eq!(changed["settings"]["max_timeout_seconds"], 60);
    let (status, accepted) = post(
        &server,
        &member,
        "/v1/agent/run",
        run_body("assistant", "replay"),
    )
    .await;
    assert_eq!(status, 202, "{accepted}");
}

#[tokio::test]
async fn exhausted_quotas_are_429_with_usage_and_reset_time() {
    let fake = FakeModelServer::start_with_policy(Policy::ToolStepsThenAnswer {
        tool: "calculator".into(),
        arguments: json!({"expression": "17 * 23"}),
        steps: 0,
    })
    .await
    .unwrap();
    let server = TestServer::start(binary(), fake_options(&fake))
        .await
        .unwrap();
    let admin = server.admin_key.clone();
    let member = key_in(&server, "team-b", "member").await;
    register_env(&server, "team-b", "assistant").await;
    let (status, _) = patch(
        &server,
        &admin,
        "/v1/projects/team-b",
        json!({"max_runs_per_day": 2}),
    )
    .await;
    assert_eq!(status, 200);

    for _ in 0..2 {
        let mut body = run_body("assistant", "replay");
        body["sync"] = json!(true);
        let (status, summary) = post(&server, &member, "/v1/agent/run", body).await;
        assert_eq!(status, 200, "{summary}");
    }
    let (status, refused, retry_after) = call(
        &server,
        &member,
        reqwest::Method::POST,
        "/v1/agent/run",
        Some(run_body("assistant", "replay")),
    )
    .await;
    assert_eq!(status, 429, "{refused}");
    let error = &refused["error"];
    assert_eq!(error["code"], "quota_exceeded");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("max_runs_per_day: 2 runs in the last 24 hours (limit 2)"),
        "{message}"
    );
    assert!(message.contains("usage starts to fall at"), "{message}");
    assert_eq!(error["details"]["used"], 2);
    assert_eq!(error["details"]["period"], "24h");
    assert!(error["details"]["resets_at"].is_string(), "{refused}");
    let retry_after: u64 = retry_after.expect("Retry-After").parse().unwrap();
    assert!(
        retry_after > 86_000 && retry_after <= 86_400,
        "{retry_after}"
    );

    // The default project still runs.
    let mut body = run_body("my-assistant", "replay");
    body["sync"] = json!(true);
    let (status, summary) = post(&server, &admin, "/v1/agent/run", body).await;
    assert_eq!(status, 200, "{summary}");

    // A token quota: the first run is admitted, it uses tokens, the next is refused.
    let (status, _) = patch(
        &server,
        &admin,
        "/v1/projects/team-b",
        json!({"max_runs_per_day": null, "max_tokens_per_day": 1}),
    )
    .await;
    assert_eq!(status, 200);
    let mut body = run_body("assistant", "claude-opus-4-5");
    body["sync"] = json!(true);
    let (status, summary) = post(&server, &member, "/v1/agent/run", body).await;
    assert_eq!(status, 200, "{summary}");
    let (status, refused) = post(
        &server,
        &member,
        "/v1/agent/run",
        run_body("assistant", "claude-opus-4-5"),
    )
    .await;
    assert_eq!(status, 429, "{refused}");
    assert_eq!(refused["error"]["code"], "quota_exceeded");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_tokens_per_day"),
        "{refused}"
    );

    // A job counts all its runs against the quota.
    let (status, _) = patch(
        &server,
        &admin,
        "/v1/projects/default",
        json!({"max_runs_per_day": 3}),
    )
    .await;
    assert_eq!(status, 200);
    let task = json!({"id": "mul", "env": "my-assistant", "scenario": "answer_question",
                      "args": {"query": "What is 17 * 23?"}, "validation": [{"answer": "391"}]});
    let request = server
        .client()
        .post(format!("{}/v1/tasksets/arith/import", server.base_url))
        .bearer_auth(&admin)
        .header("content-type", "application/x-ndjson")
        .body(format!("{task}\n"));
    let (status, imported) = server.send(request).await;
    assert_eq!(status, 201, "{imported}");
    let (status, refused) = post(
        &server,
        &admin,
        "/v1/jobs",
        json!({"taskset": "arith", "models": ["replay"], "repeats": 3}),
    )
    .await;
    assert_eq!(status, 429, "{refused}");
    assert_eq!(refused["error"]["details"]["requested_runs"], 3);
    assert_eq!(refused["error"]["details"]["used"], 1);
    let (status, job) = post(
        &server,
        &admin,
        "/v1/jobs",
        json!({"taskset": "arith", "models": ["replay"], "repeats": 2}),
    )
    .await;
    assert_eq!(status, 201, "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    let finished = tokio::time::timeout(RUN_TIMEOUT, async {
        loop {
            let (_, job) = get(&server, &admin, &format!("/v1/jobs/{id}")).await;
            if job["status"] == "finished" {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(finished.is_ok(), "{}", server.log());
}
