//! The ways users really call the API work as they write them: HUD's documented cron line
//! (`curl -d` with no Content-Type, which curl sends as a form), a webhook handler posting
//! with Python `requests` (`json=`), and the server's own logs read by a log pipeline.
//! (A browser `fetch` with `Content-Type: application/json` is `chat_recipe.rs`.)

use super::common::{RUN_TIMEOUT, binary, plain_server, python};
use rollout_testkit::{ServerOptions, TestServer};
use serde_json::{Value, json};

/// The body HUD's documentation posts, with rollout's offline `replay` model.
fn run_body() -> Value {
    json!({
        "env_name": "my-assistant",
        "scenario_name": "answer_question",
        "scenario_args": {"query": "What is 17 * 23?"},
        "model": "replay",
        "validation": [
            {"name": "calculator", "arguments": {"expression": "17 * 23"}},
            {"answer": "17 * 23 = 391"}
        ]
    })
}

/// `curl -X POST URL -H "Authorization: Bearer $KEY" -d '{...}'`, as in a crontab.
fn curl(server: &TestServer, extra: &[&str], body: &str) -> (u16, Value) {
    let output = std::process::Command::new("curl")
        .args(["-sS", "-X", "POST", "-w", "\n%{http_code}"])
        .arg(format!("{}/v1/agent/run", server.base_url))
        .args(["-H", &format!("Authorization: Bearer {}", server.admin_key)])
        .args(extra)
        .args(["-d", body])
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    let (body, status) = text.rsplit_once('\n').expect("a status line");
    (
        status.trim().parse().expect("a status code"),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn hud_documented_cron_curl_without_content_type_starts_a_run() {
    let server = plain_server().await;
    let (status, accepted) = curl(&server, &[], &run_body().to_string());
    assert_eq!(status, 202, "{accepted}");
    let trace_id = accepted["trace_id"].as_str().expect("a trace id");
    let trace = server.wait_for_trace(trace_id, RUN_TIMEOUT).await;
    assert_eq!(trace["status"], "completed", "{trace}");
    assert_eq!(trace["reward"], 1.0);
}

#[tokio::test]
async fn a_real_form_or_another_type_is_still_refused_with_415() {
    let server = plain_server().await;
    let (status, error) = curl(&server, &[], "env_name=my-assistant&model=replay");
    assert_eq!(status, 415, "{error}");
    assert_eq!(error["error"]["code"], "unsupported_media_type");
    let body = run_body().to_string();
    let (status, error) = curl(&server, &["-H", "Content-Type: text/plain"], &body);
    assert_eq!(status, 415, "{error}");
    // JSON of the wrong shape under the form type is a 422 like under application/json.
    let (status, error) = curl(&server, &[], r#"{"env_name": 7}"#);
    assert_eq!(status, 422, "{error}");
}

#[tokio::test]
async fn a_python_requests_webhook_handler_starts_a_run() {
    let Some(python) = python() else { return };
    let server = plain_server().await;
    let script = r#"
import json, os, sys, requests
response = requests.post(os.environ["URL"] + "/v1/agent/run",
                         headers={"Authorization": "Bearer " + os.environ["KEY"]},
                         json=json.loads(os.environ["BODY"]))
print(response.status_code)
print(response.text)
"#;
    let output = std::process::Command::new(python)
        .args(["-c", script])
        .env("URL", &server.base_url)
        .env("KEY", &server.admin_key)
        .env("BODY", run_body().to_string())
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (status, body) = stdout.split_once('\n').expect("status and body");
    assert_eq!(status, "202", "{body}");
    let accepted: Value = serde_json::from_str(body).expect("JSON");
    let trace_id = accepted["trace_id"].as_str().expect("a trace id");
    let trace = server.wait_for_trace(trace_id, RUN_TIMEOUT).await;
    assert_eq!(trace["reward"], 1.0, "{trace}");
}

#[tokio::test]
async fn json_logs_are_one_object_per_line_and_dependencies_stay_quiet() {
    let server = TestServer::start(
        binary(),
        ServerOptions {
            env: vec![("ROLLOUT_LOG".into(), "info".into())],
            args: vec!["--log-format".into(), "json".into()],
            ..ServerOptions::default()
        },
    )
    .await
    .expect("server starts");
    let (status, accepted) = server
        .post("/v1/agent/run", &{
            let mut body = run_body();
            body["sync"] = json!(true);
            body
        })
        .await;
    assert_eq!(status, 200, "{accepted}");
    let log = server.log();
    let lines: Vec<Value> = log
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    assert!(!lines.is_empty());
    for line in &lines {
        assert!(
            line["level"].is_string() && line["fields"].is_object(),
            "{line}"
        );
        let target = line["target"].as_str().unwrap_or_default();
        // rmcp's per-session INFO chatter (peer info structs, "Child exited gracefully")
        // stays below the default level of dependencies.
        assert!(target.starts_with("rollout"), "a dependency logged: {line}");
    }
    let ready: Vec<&Value> = lines
        .iter()
        .filter(|line| line["fields"]["message"] == "environment ready")
        .collect();
    // One line per environment registered (the two bundled ones).
    assert_eq!(ready.len(), 2, "{log}");
}
