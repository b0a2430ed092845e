//! Schedules: cron ticks start runs, exactly once per tick even with two servers on one
//! database; pause, resume, delete; validation; `rollout schedule`.

use super::common::{RUN_TIMEOUT, binary, fake_options};
use rollout_testkit::{FakeModelServer, ServerOptions, TestSchema, TestServer};
use serde_json::{Value, json};
use std::time::Duration;

fn run_body() -> Value {
    json!({
        "env_name": "my-assistant",
        "scenario_name": "answer_question",
        "scenario_args": {"query": "What is 17 * 23?"},
        "model": "replay",
        "validation": [{"answer": "391"}]
    })
}

fn api_only(fake: &FakeModelServer, data_dir: Option<std::path::PathBuf>) -> ServerOptions {
    let mut options = fake_options(fake);
    options.args = vec!["--max-concurrent-runs".into(), "0".into()];
    options.data_dir = data_dir;
    options
}

fn unix_ms(rfc3339: &Value) -> i64 {
    let text = rfc3339.as_str().unwrap();
    // "2026-11-28T16:40:01.000Z": the seconds since midnight are enough to compare ticks.
    let time = &text[11..23];
    let (h, rest) = time.split_once(':').unwrap();
    let (m, s) = rest.split_once(':').unwrap();
    let seconds: f64 = s.parse().unwrap();
    (h.parse::<i64>().unwrap() * 3600 + m.parse::<i64>().unwrap() * 60) * 1000
        + (seconds * 1000.0).round() as i64
}

#[tokio::test]
async fn two_servers_on_one_database_fire_each_tick_exactly_once() {
    let fake = FakeModelServer::start().await.unwrap();
    let first = TestServer::start(binary(), api_only(&fake, None))
        .await
        .unwrap();
    let second = TestServer::start(binary(), api_only(&fake, Some(first.data_dir.clone())))
        .await
        .unwrap();
    each_tick_fires_once(&first, &second).await;
}

/// The same on PostgreSQL (a schema of its own): runs when `TEST_DATABASE_URL` is set, and
/// fails without it under `scripts/test`.
#[tokio::test]
async fn two_servers_on_postgres_fire_each_tick_exactly_once() {
    let Some(schema) = TestSchema::create().await.unwrap() else {
        return;
    };
    let fake = FakeModelServer::start().await.unwrap();
    let with_url = |mut options: ServerOptions| {
        options
            .args
            .extend(["--database-url".to_string(), schema.url.clone()]);
        options
    };
    let first = TestServer::start(binary(), with_url(api_only(&fake, None)))
        .await
        .unwrap();
    let second = TestServer::start(binary(), with_url(api_only(&fake, None)))
        .await
        .unwrap();
    each_tick_fires_once(&first, &second).await;
    drop((first, second));
    schema.drop().await.unwrap();
}

async fn each_tick_fires_once(first: &TestServer, second: &TestServer) {
    let (status, schedule) = first
        .post(
            "/v1/schedules",
            &json!({"name": "every second", "cron": "* * * * * *", "timezone": "UTC", "run": run_body()}),
        )
        .await;
    assert_eq!(status, 201, "{schedule}");
    let id = schedule["id"].as_str().unwrap().to_string();
    assert_eq!(schedule["paused"], false);

    let fired = tokio::time::timeout(RUN_TIMEOUT, async {
        loop {
            let (_, runs) = second.get(&format!("/v1/schedules/{id}/runs")).await;
            if runs["runs"].as_array().unwrap().len() >= 4 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(fired.is_ok(), "{}\n{}", first.log(), second.log());
    let (status, paused) = second
        .post(&format!("/v1/schedules/{id}/pause"), &json!({}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(paused["paused"], true);

    let (_, runs) = first.get(&format!("/v1/schedules/{id}/runs")).await;
    let runs = runs["runs"].as_array().unwrap().clone();
    let mut ticks: Vec<i64> = runs.iter().map(|r| unix_ms(&r["tick_at"])).collect();
    ticks.reverse();
    for pair in ticks.windows(2) {
        assert_eq!(pair[1] - pair[0], 1000, "ticks {ticks:?}");
    }
    let (_, traces) = first.get("/v1/traces?limit=500").await;
    let traces = traces["traces"].as_array().unwrap();
    assert_eq!(traces.len(), runs.len(), "one run per tick, never two");
    let (_, trace) = first
        .get(&format!(
            "/v1/traces/{}",
            runs[0]["trace_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(trace["metadata"]["schedule_id"], id.as_str());
    assert_eq!(trace["status"], "queued");

    // Resume continues from the next tick; delete keeps the runs.
    let (status, resumed) = first
        .post(&format!("/v1/schedules/{id}/resume"), &json!({}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(resumed["paused"], false);
    let (status, _) = first
        .request(
            reqwest::Method::DELETE,
            &format!("/v1/schedules/{id}"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = first.get(&format!("/v1/schedules/{id}")).await;
    assert_eq!(status, 404);
    let (_, traces) = first.get("/v1/traces?limit=500").await;
    assert!(traces["traces"].as_array().unwrap().len() >= runs.len());
}

#[tokio::test]
async fn schedules_are_validated_listed_and_kept_per_project() {
    let fake = FakeModelServer::start().await.unwrap();
    let server = TestServer::start(binary(), api_only(&fake, None))
        .await
        .unwrap();
    let (status, refused) = server
        .post(
            "/v1/schedules",
            &json!({"cron": "61 * * * *", "timezone": "Mars/Olympus", "run": run_body()}),
        )
        .await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(
        refused["error"]["details"]["errors"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let mut waiting = run_body();
    waiting["sync"] = json!(true);
    let (status, refused) = server
        .post(
            "/v1/schedules",
            &json!({"cron": "0 9 * * *", "run": waiting}),
        )
        .await;
    assert_eq!(status, 422, "{refused}");
    let mut bad_args = run_body();
    bad_args["scenario_args"] = json!({"query": 7});
    let (status, refused) = server
        .post(
            "/v1/schedules",
            &json!({"cron": "0 9 * * *", "run": bad_args}),
        )
        .await;
    assert_eq!(status, 422, "{refused}");

    let mut with_secret = run_body();
    with_secret["callback"] = json!({"url": "https://93.184.215.14/x", "secret": "shh-0042"});
    let (status, schedule) = server
        .post(
            "/v1/schedules",
            &json!({"cron": "0 9 * * MON-FRI", "timezone": "Europe/Paris", "run": with_secret}),
        )
        .await;
    assert_eq!(status, 201, "{schedule}");
    assert!(!schedule.to_string().contains("shh-0042"));
    assert_eq!(schedule["run"]["callback_url"], "https://93.184.215.14/x");
    let next = schedule["next_run_at"].as_str().unwrap();
    assert!(next.ends_with(":00:00.000Z"), "{next}");
    let (_, list) = server.get("/v1/schedules").await;
    assert_eq!(list["schedules"].as_array().unwrap().len(), 1);

    // Another project sees none of it.
    let (_, other) = server
        .post("/v1/keys", &json!({"name": "o", "project": "other"}))
        .await;
    let key = other["key"].as_str().unwrap();
    let id = schedule["id"].as_str().unwrap();
    let get = |path: String| {
        server
            .client()
            .get(format!("{}{path}", server.base_url))
            .bearer_auth(key)
    };
    let (status, _) = server.send(get(format!("/v1/schedules/{id}"))).await;
    assert_eq!(status, 404);
    let (status, _) = server.send(get(format!("/v1/schedules/{id}/runs"))).await;
    assert_eq!(status, 404);
    let (_, list) = server.send(get("/v1/schedules".into())).await;
    assert_eq!(list["schedules"], json!([]));
}

#[tokio::test]
async fn the_schedule_command_manages_schedules() {
    let fake = FakeModelServer::start().await.unwrap();
    let server = TestServer::start(binary(), api_only(&fake, None))
        .await
        .unwrap();
    let command = |args: &[&str]| {
        let output = std::process::Command::new(binary())
            .arg("schedule")
            .args(args)
            .env("ROLLOUT_URL", &server.base_url)
            .env("ROLLOUT_KEY", &server.admin_key)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).to_string()
    };
    let created: Value = serde_json::from_str(&command(&[
        "create",
        "--cron",
        "0 9 * * *",
        "--timezone",
        "Europe/Paris",
        "--name",
        "morning",
        "--run",
        &run_body().to_string(),
    ]))
    .unwrap();
    let id = created["id"].as_str().unwrap();
    assert!(command(&["list"]).contains("morning"));
    let paused: Value = serde_json::from_str(&command(&["pause", id])).unwrap();
    assert_eq!(paused["paused"], true);
    command(&["delete", id]);
    assert!(!command(&["list"]).contains("morning"));
}
