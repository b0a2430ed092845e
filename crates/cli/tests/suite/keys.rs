//! API keys and projects: keys are created (secret shown once), listed and revoked by
//! admins, through the API and `rollout keys`; every object belongs to a project, and
//! another project's objects are 404 on every endpoint.

use super::common::{RUN_TIMEOUT, binary, fake_options};
use rollout_testkit::{FakeModelServer, TestServer};
use serde_json::{Value, json};

use super::common::call_as as call;

async fn get(server: &TestServer, key: &str, path: &str) -> (u16, Value) {
    call(server, key, reqwest::Method::GET, path, None).await
}

async fn post(server: &TestServer, key: &str, path: &str, body: Value) -> (u16, Value) {
    call(server, key, reqwest::Method::POST, path, Some(body)).await
}

fn run_body() -> Value {
    json!({
        "env_name": "my-assistant",
        "scenario_name": "answer_question",
        "scenario_args": {"query": "What is 17 * 23?"},
        "model": "replay",
        "validation": [{"answer": "391"}]
    })
}

#[tokio::test]
async fn admins_create_list_and_revoke_keys() {
    let fake = FakeModelServer::start().await.unwrap();
    let server = TestServer::start(binary(), fake_options(&fake))
        .await
        .unwrap();
    let admin = server.admin_key.clone();
    let (status, created) = post(&server, &admin, "/v1/keys", json!({"name": "ci"})).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["role"], "member");
    assert_eq!(created["project"], "default");
    let secret = created["key"].as_str().unwrap().to_string();
    assert!(secret.starts_with("ro_"));
    assert_eq!(created["prefix"], &secret[..8]);

    // The member key runs agents but cannot manage keys.
    let mut body = run_body();
    body["sync"] = json!(true);
    let (status, summary) = post(&server, &secret, "/v1/agent/run", body).await;
    assert_eq!(status, 200, "{summary}");
    let (status, refused) = get(&server, &secret, "/v1/keys").await;
    assert_eq!(status, 403, "{refused}");

    let (status, list) = get(&server, &admin, "/v1/keys").await;
    assert_eq!(status, 200);
    let keys = list["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert!(keys.iter().all(|k| k.get("key").is_none()), "{list}");
    assert!(!list.to_string().contains(&secret));

    let (status, invalid) = post(
        &server,
        &admin,
        "/v1/keys",
        json!({"name": "", "role": "owner"}),
    )
    .await;
    assert_eq!(status, 422, "{invalid}");
    assert_eq!(
        invalid["error"]["details"]["errors"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    let id = created["id"].as_str().unwrap();
    let (status, _) = call(
        &server,
        &admin,
        reqwest::Method::DELETE,
        &format!("/v1/keys/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = get(&server, &secret, "/v1/traces").await;
    assert_eq!(status, 401);
    let (status, again) = call(
        &server,
        &admin,
        reqwest::Method::DELETE,
        &format!("/v1/keys/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 404, "{again}");
}

#[tokio::test]
async fn another_projects_objects_are_not_found_on_every_endpoint() {
    let fake = FakeModelServer::start().await.unwrap();
    let mut options = fake_options(&fake);
    options.config_toml = Some("[callbacks]\nallow_private = true\n".into());
    let server = TestServer::start(binary(), options).await.unwrap();
    let admin = server.admin_key.clone();

    // A run of the default project, with a callback so that it has a delivery log.
    let mut body = run_body();
    body["sync"] = json!(true);
    body["callback"] = json!({"url": "http://127.0.0.1:9/hook", "retry_count": 0});
    let (_, summary) = post(&server, &admin, "/v1/agent/run", body).await;
    let theirs = summary["trace_id"].as_str().unwrap().to_string();

    let (status, acme) = post(
        &server,
        &admin,
        "/v1/keys",
        json!({"name": "acme admin", "role": "admin", "project": "acme"}),
    )
    .await;
    assert_eq!(status, 201, "{acme}");
    assert_eq!(acme["project"], "acme");
    let acme = acme["key"].as_str().unwrap().to_string();

    // Environments.
    let (_, envs) = get(&server, &acme, "/v1/environments").await;
    assert_eq!(envs["environments"], json!([]), "{envs}");
    let (status, _) = get(&server, &acme, "/v1/environments/my-assistant").await;
    assert_eq!(status, 404);
    let (status, refused) = post(&server, &acme, "/v1/agent/run", run_body()).await;
    assert_eq!(status, 404, "{refused}");
    assert_eq!(refused["error"]["code"], "environment_not_found");

    // Traces and everything under them.
    for path in [
        format!("/v1/traces/{theirs}"),
        format!("/v1/traces/{theirs}/deliveries"),
        format!("/v1/traces/{theirs}/events"),
    ] {
        let (status, body) = get(&server, &acme, &path).await;
        assert_eq!(status, 404, "GET {path}: {body}");
    }
    for path in [
        format!("/v1/traces/{theirs}/cancel"),
        format!("/v1/traces/{theirs}/deliveries"),
    ] {
        let (status, body) = post(&server, &acme, &path, json!({})).await;
        assert_eq!(status, 404, "POST {path}: {body}");
    }
    let (_, list) = get(&server, &acme, "/v1/traces").await;
    assert_eq!(list["traces"], json!([]));
    let (_, bulk) = post(&server, &acme, "/v1/traces/cancel", json!({})).await;
    assert_eq!(bulk["cancelled"], json!([]));

    // Tasksets.
    let (status, _) = post(&server, &admin, "/v1/tasksets", json!({"name": "small"})).await;
    assert_eq!(status, 201);
    let (status, _) = get(&server, &acme, "/v1/tasksets/small").await;
    assert_eq!(status, 404);
    let (_, tasksets) = get(&server, &acme, "/v1/tasksets").await;
    assert_eq!(tasksets["tasksets"], json!([]), "{tasksets}");

    // Keys: an admin of another project sees and revokes only its own.
    let (_, keys) = get(&server, &acme, "/v1/keys").await;
    assert_eq!(keys["project"], "acme");
    assert_eq!(keys["keys"].as_array().unwrap().len(), 1);
    let (status, _) = get(&server, &acme, "/v1/keys?project=default").await;
    assert_eq!(status, 403);
    let (_, default_keys) = get(&server, &admin, "/v1/keys").await;
    let admin_id = default_keys["keys"][0]["id"].as_str().unwrap().to_string();
    let (status, _) = call(
        &server,
        &acme,
        reqwest::Method::DELETE,
        &format!("/v1/keys/{admin_id}"),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = post(
        &server,
        &acme,
        "/v1/keys",
        json!({"name": "x", "project": "default"}),
    )
    .await;
    assert_eq!(status, 403);

    // The other direction: acme's own environment (registered for it by the operator)
    // and run are invisible to default.
    let (status, env) = post(
        &server,
        &admin,
        "/v1/environments",
        json!({"name": "acme-assistant", "project": "acme",
               "command": [binary(), "example-env", "my-assistant"]}),
    )
    .await;
    assert_eq!(status, 201, "{env}");
    let mut body = run_body();
    body["env_name"] = json!("acme-assistant");
    let (status, accepted) = post(&server, &acme, "/v1/agent/run", body).await;
    assert_eq!(status, 202, "{accepted}");
    let ours = accepted["trace_id"].as_str().unwrap().to_string();
    let (status, _) = get(&server, &admin, &format!("/v1/traces/{ours}")).await;
    assert_eq!(status, 404);
    let (status, _) = get(&server, &admin, "/v1/environments/acme-assistant").await;
    assert_eq!(status, 404);
    let finished = tokio::time::timeout(RUN_TIMEOUT, async {
        loop {
            let (_, trace) = get(&server, &acme, &format!("/v1/traces/{ours}")).await;
            if trace["status"] == "completed" {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(finished.is_ok(), "{}", server.log());
}

fn rollout_keys(server: &TestServer, args: &[&str]) -> (bool, String, String) {
    let output = std::process::Command::new(binary())
        .arg("keys")
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
async fn the_keys_command_manages_keys_of_a_running_server() {
    let fake = FakeModelServer::start().await.unwrap();
    let server = TestServer::start(binary(), fake_options(&fake))
        .await
        .unwrap();
    let (ok, out, err) = rollout_keys(
        &server,
        &["create", "--name", "nightly-cron", "--project", "team-a"],
    );
    assert!(ok, "{out}{err}");
    let secret = out
        .split_whitespace()
        .find(|word| word.starts_with("ro_"))
        .unwrap()
        .to_string();
    let (status, _) = get(&server, &secret, "/v1/traces").await;
    assert_eq!(status, 200);

    let (ok, out, err) = rollout_keys(&server, &["list", "--project", "team-a"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("nightly-cron"), "{out}");
    assert!(!out.contains(&secret));
    let id = out
        .lines()
        .find(|line| line.contains("nightly-cron"))
        .and_then(|line| line.split_whitespace().next())
        .unwrap()
        .to_string();

    let (ok, out, err) = rollout_keys(&server, &["revoke", &id, "--project", "team-a"]);
    assert!(ok, "{out}{err}");
    let (status, _) = get(&server, &secret, "/v1/traces").await;
    assert_eq!(status, 401);
    let (ok, _, err) = rollout_keys(&server, &["revoke", &id, "--project", "team-a"]);
    assert!(!ok);
    assert!(err.contains("404"), "{err}");
}
