//! What runs cost: the price table, `cost_usd` on traces and usage, and `max_cost_usd`.

use super::common::{RUN_TIMEOUT, binary, fake_options, server_with_fake};
use rollout_testkit::{FakeModelServer, FakeReply, Policy, TestServer};
use serde_json::{Value, json};

fn question(model: &str) -> Value {
    json!({
        "env_name": "my-assistant",
        "scenario_name": "answer_question",
        "scenario_args": {"query": "What is 17 * 23?"},
        "model": model,
        "sync": true
    })
}

#[tokio::test]
async fn a_run_reports_its_cost_at_the_model_s_price() {
    let fake = FakeModelServer::start().await.unwrap();
    fake.push([
        FakeReply::tool_call("calculator", json!({"expression": "17 * 23"})),
        FakeReply::text("391"),
    ]);
    let server = server_with_fake(&fake).await;
    let (_, summary) = server
        .post("/v1/agent/run", &question("claude-opus-4-5"))
        .await;
    assert_eq!(summary["status"], "completed", "{summary}");
    let (input, output) = fake
        .requests()
        .iter()
        .map(|r| r.expected_usage())
        .fold((0, 0), |(i, o), (ri, ro)| (i + ri, o + ro));
    // claude-opus-4-5: $5 per million input tokens, $25 per million output tokens.
    let expected = (input as f64 * 5.0 + output as f64 * 25.0) / 1e6;
    let cost = summary["cost_usd"].as_f64().unwrap();
    assert!((cost - expected).abs() < 1e-6, "{cost} != {expected}");

    let (_, usage) = server.get("/v1/usage?group_by=model").await;
    let claude = usage["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group"] == "claude-opus-4-5")
        .unwrap()
        .clone();
    assert!(
        (claude["cost_usd"].as_f64().unwrap() - expected).abs() < 1e-6,
        "{usage}"
    );
    assert!((usage["total"]["cost_usd"].as_f64().unwrap() - expected).abs() < 1e-6);

    // Usage per API key: the run was started with the admin key.
    let (_, by_key) = server.get("/v1/usage?group_by=key").await;
    let groups = by_key["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 1, "{by_key}");
    assert_eq!(groups[0]["runs"], 1);
    assert_eq!(groups[0]["key_name"], "admin (ROLLOUT_ADMIN_KEY)");
    assert!((groups[0]["cost_usd"].as_f64().unwrap() - expected).abs() < 1e-6);

    let (_, models) = server.get("/v1/models").await;
    let opus = models["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "claude-opus-4-5")
        .unwrap()
        .clone();
    assert_eq!(opus["price"], json!({"input": 5.0, "output": 25.0}));
}

#[tokio::test]
async fn a_cost_budget_stops_the_agent_and_the_run_is_still_graded() {
    let fake = FakeModelServer::start_with_policy(Policy::ToolStepsThenAnswer {
        tool: "calculator".into(),
        arguments: json!({"expression": "17 * 23"}),
        steps: 50,
    })
    .await
    .unwrap();
    let server = server_with_fake(&fake).await;
    let mut body = question("claude-opus-4-5");
    // The first call alone costs about $0.001.
    body["max_cost_usd"] = json!(0.002);
    let (_, summary) = server.post("/v1/agent/run", &body).await;
    assert_eq!(summary["status"], "completed", "{summary}");
    assert_eq!(summary["outcome"], "cost_budget_exceeded");
    assert_eq!(summary["reward"], 0.0);
    assert!(summary["cost_usd"].as_f64().unwrap() > 0.002);
    assert!(summary["steps_taken"].as_i64().unwrap() < 10, "{summary}");
}

#[tokio::test]
async fn a_cost_budget_needs_a_positive_amount_and_a_priced_model() {
    let fake = FakeModelServer::start().await.unwrap();
    let mut options = fake_options(&fake);
    options.config_toml = Some(
        "[providers.local]\nbase_url = \"http://127.0.0.1:9/v1\"\n\n[[models]]\nname = \"llama\"\nprovider = \"local\"\n\n[prices.\"priced-llama\"]\ninput = 0.1\noutput = 0.2\n".into(),
    );
    let server = TestServer::start(binary(), options).await.unwrap();
    let mut body = question("llama");
    body["max_cost_usd"] = json!(1.0);
    let (status, error) = server.post("/v1/agent/run", &body).await;
    assert_eq!(status, 422, "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("[prices.\"llama\"]"),
        "{error}"
    );
    let mut body = question("claude-opus-4-5");
    body["max_cost_usd"] = json!(-1);
    let (status, _) = server.post("/v1/agent/run", &body).await;
    assert_eq!(status, 422);
    let (_, models) = server.get("/v1/models").await;
    let llama = models["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "llama")
        .unwrap()
        .clone();
    assert_eq!(llama["price"], Value::Null);
    let _ = RUN_TIMEOUT;
}
