//! Every input mistake gets a precise error with the right status, and nothing is queued.

use super::common::plain_server;
use rollout_testkit::TestServer;
use serde_json::{Value, json};

fn valid() -> Value {
    json!({
        "env_name": "my-assistant",
        "scenario_name": "answer_question",
        "scenario_args": {"query": "What is 2 + 2?"},
        "model": "replay",
        "validation": [{"answer": "4"}]
    })
}

/// Posts a body and checks status and error code; returns the error object.
async fn expect_error(server: &TestServer, body: &Value, status: u16, code: &str) -> Value {
    let (got, response) = server.post("/v1/agent/run", body).await;
    assert_eq!(got, status, "{response}");
    assert_eq!(response["error"]["code"], code, "{response}");
    assert!(
        response["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    response["error"].clone()
}

async fn assert_nothing_queued(server: &TestServer) {
    let (_, list) = server.get("/v1/traces").await;
    assert_eq!(list["traces"], json!([]), "a rejected request queued a run");
}

#[tokio::test]
async fn unknown_environment_is_404_naming_the_available_ones() {
    let server = plain_server().await;
    let mut body = valid();
    body["env_name"] = json!("nope");
    let error = expect_error(&server, &body, 404, "environment_not_found").await;
    assert!(error["message"].as_str().unwrap().contains("my-assistant"));
    assert_eq!(
        error["details"]["available"],
        json!(["inbox", "my-assistant"])
    );
    assert_nothing_queued(&server).await;
}

#[tokio::test]
async fn unknown_scenario_is_404_naming_the_available_ones() {
    let server = plain_server().await;
    let mut body = valid();
    body["scenario_name"] = json!("nope");
    let error = expect_error(&server, &body, 404, "scenario_not_found").await;
    assert_eq!(error["details"]["available"], json!(["answer_question"]));
    // The env:scenario form is accepted too.
    body["scenario_name"] = json!("my-assistant:answer_question");
    let (status, _) = server.post("/v1/agent/run", &body).await;
    assert_eq!(status, 202);
}

#[tokio::test]
async fn bad_arguments_are_422_listing_every_problem() {
    let server = plain_server().await;
    let mut body = valid();
    body["scenario_args"] = json!({"q": "typo"});
    let error = expect_error(&server, &body, 422, "invalid_request").await;
    let messages = error["details"]["errors"].to_string();
    assert!(
        messages.contains("\\\"query\\\" is a required property") || messages.contains("query"),
        "{messages}"
    );
    assert!(
        messages.contains("'q' was unexpected") || messages.contains("\\\"q\\\""),
        "{messages}"
    );
    assert_eq!(
        error["details"]["errors"].as_array().unwrap().len(),
        2,
        "{messages}"
    );

    body["scenario_args"] = json!({"query": 17});
    let error = expect_error(&server, &body, 422, "invalid_request").await;
    assert!(
        error["details"]["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("string"),
        "{error}"
    );
    assert_eq!(
        error["details"]["errors"][0]["field"],
        "scenario_args.query"
    );
    assert_nothing_queued(&server).await;
}

#[tokio::test]
async fn max_steps_and_timeout_out_of_range_are_422() {
    let server = plain_server().await;
    for steps in [0, 501, -3] {
        let mut body = valid();
        body["max_steps"] = json!(steps);
        let error = expect_error(&server, &body, 422, "invalid_request").await;
        assert_eq!(error["details"]["errors"][0]["field"], "max_steps");
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains("between 1 and 500")
        );
    }
    for timeout in [0, 601] {
        let mut body = valid();
        body["sync"] = json!(true);
        body["timeout"] = json!(timeout);
        let error = expect_error(&server, &body, 422, "invalid_request").await;
        assert_eq!(error["details"]["errors"][0]["field"], "timeout");
    }
    // Several problems at once are all reported.
    let mut body = valid();
    body["max_steps"] = json!(0);
    body["scenario_args"] = json!({});
    let error = expect_error(&server, &body, 422, "invalid_request").await;
    assert_eq!(
        error["details"]["errors"].as_array().unwrap().len(),
        2,
        "{error}"
    );
    assert_nothing_queued(&server).await;
}

#[tokio::test]
async fn a_model_without_its_key_is_422_naming_the_variable() {
    let server = plain_server().await;
    let mut body = valid();
    body["model"] = json!("claude-opus-4-5");
    let error = expect_error(&server, &body, 422, "invalid_request").await;
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("ANTHROPIC_API_KEY"),
        "{error}"
    );
    body["model"] = json!("gpt-5");
    let error = expect_error(&server, &body, 422, "invalid_request").await;
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("OPENAI_API_KEY"),
        "{error}"
    );
    body["model"] = json!("no-such-model");
    expect_error(&server, &body, 422, "invalid_request").await;
    body["model"] = json!("replay");
    body["validation"] = json!([]);
    let error = expect_error(&server, &body, 422, "invalid_request").await;
    assert!(
        error["message"].as_str().unwrap().contains("validation"),
        "{error}"
    );
    body.as_object_mut().unwrap().remove("model");
    let error = expect_error(&server, &body, 422, "invalid_request").await;
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("model is required"),
        "{error}"
    );
    assert_nothing_queued(&server).await;
}

#[tokio::test]
async fn malformed_json_is_400_and_wrong_shapes_are_422() {
    let server = plain_server().await;
    let request = server
        .client()
        .post(format!("{}/v1/agent/run", server.base_url))
        .bearer_auth(&server.admin_key)
        .header("content-type", "application/json")
        .body("{\"env_name\": ");
    let (status, body) = server.send(request).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "bad_request");

    let mut wrong = valid();
    wrong["scenario_args"] = json!("not an object");
    expect_error(&server, &wrong, 422, "invalid_request").await;
    let mut unknown = valid();
    unknown["max_stpes"] = json!(3);
    let error = expect_error(&server, &unknown, 422, "invalid_request").await;
    assert!(
        error["message"].as_str().unwrap().contains("max_stpes"),
        "{error}"
    );
    let mut missing = valid();
    missing.as_object_mut().unwrap().remove("env_name");
    let error = expect_error(&server, &missing, 422, "invalid_request").await;
    assert!(
        error["message"].as_str().unwrap().contains("env_name"),
        "{error}"
    );

    let request = server
        .client()
        .post(format!("{}/v1/agent/run", server.base_url))
        .bearer_auth(&server.admin_key)
        .body(valid().to_string());
    let (status, body) = server.send(request).await;
    assert_eq!(status, 415, "{body}");
    assert_nothing_queued(&server).await;
}

#[tokio::test]
async fn missing_or_bad_keys_are_401_and_health_needs_none() {
    let server = plain_server().await;
    let url = format!("{}/v1/agent/run", server.base_url);
    let (status, body) = server.send(server.client().post(&url).json(&valid())).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "unauthorized");
    let (status, _) = server
        .send(
            server
                .client()
                .post(&url)
                .bearer_auth("ro_wrong")
                .json(&valid()),
        )
        .await;
    assert_eq!(status, 401);
    let (status, _) = server
        .send(
            server
                .client()
                .get(format!("{}/v1/traces", server.base_url)),
        )
        .await;
    assert_eq!(status, 401);
    let (status, body) = server
        .send(server.client().get(format!("{}/healthz", server.base_url)))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn an_oversized_body_is_413() {
    let server = plain_server().await;
    let mut body = valid();
    body["metadata"] = json!({"blob": "x".repeat(2 * 1024 * 1024)});
    let (status, response) = server.post("/v1/agent/run", &body).await;
    assert_eq!(status, 413, "{response}");
    assert_eq!(response["error"]["code"], "payload_too_large");
}

#[tokio::test]
async fn unknown_traces_and_routes_are_404() {
    let server = plain_server().await;
    let (status, body) = server.get("/v1/traces/does-not-exist").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "trace_not_found");
    let (status, body) = server.get("/v1/nothing-here").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "not_found");
    let (status, _) = server.get("/v1/traces?status=bogus").await;
    assert_eq!(status, 422);
}

#[tokio::test]
async fn environment_registration_is_validated() {
    let server = plain_server().await;
    let (status, body) = server.post("/v1/environments", &json!({"name": "x"})).await;
    assert_eq!(status, 422, "{body}");
    let (status, _) = server
        .post(
            "/v1/environments",
            &json!({"name": "Bad Name", "command": ["true"]}),
        )
        .await;
    assert_eq!(status, 422);
    let (status, _) = server
        .post(
            "/v1/environments",
            &json!({"name": "x", "command": ["a"], "url": "http://127.0.0.1:1/mcp"}),
        )
        .await;
    assert_eq!(status, 422);
    let (status, body) = server
        .post(
            "/v1/environments",
            &json!({"name": "broken", "command": ["/nonexistent/program"]}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "environment_unusable");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/program")
    );
    // The failed version is kept, and a run against it is refused.
    let mut run = valid();
    run["env_name"] = json!("broken");
    let (status, body) = server.post("/v1/agent/run", &run).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "environment_not_ready");
}
