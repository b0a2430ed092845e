//! `GET /metrics`: who may scrape it, and counts that match what happened, read with a
//! Prometheus text parser.

use super::common::{RUN_TIMEOUT, binary, call_as, fake_options};
use rollout_testkit::{FakeModelServer, FakeReply, TestServer};
use serde_json::{Value, json};
use std::time::Duration;

type Exposition = openmetrics_parser::MetricsExposition<
    openmetrics_parser::OpenMetricsType,
    openmetrics_parser::OpenMetricsValue,
>;

/// The value of the series of `family` whose labels include all of `labels` (for a
/// histogram, its count); 0 when absent: a series appears with its first count.
fn sample(scrape: &Exposition, family: &str, labels: &[(&str, &str)]) -> f64 {
    let Some(family) = scrape.families.get(family) else {
        return 0.0;
    };
    let values: Vec<f64> = family
        .iter_samples()
        .filter(|sample| {
            let set = sample.get_labelset().unwrap();
            labels
                .iter()
                .all(|(name, value)| set.get_label_value(name) == Some(*value))
        })
        .map(|sample| match &sample.value {
            openmetrics_parser::OpenMetricsValue::Counter(counter) => counter.value.as_f64(),
            openmetrics_parser::OpenMetricsValue::Gauge(gauge) => gauge.as_f64(),
            openmetrics_parser::OpenMetricsValue::Histogram(histogram) => {
                histogram.count.unwrap_or_default() as f64
            }
            other => panic!("unexpected value {other:?}"),
        })
        .collect();
    assert!(values.len() <= 1, "{labels:?} matches {values:?}");
    values.first().copied().unwrap_or(0.0)
}

async fn scrape(server: &TestServer, key: Option<&str>) -> (u16, String, String) {
    let mut request = server.client().get(format!("{}/metrics", server.base_url));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, content_type, response.text().await.unwrap())
}

fn parse(text: &str) -> Exposition {
    openmetrics_parser::openmetrics::parse_openmetrics(text)
        .unwrap_or_else(|error| panic!("{error:?}\n{text}"))
}

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
async fn metrics_need_an_operator_key_unless_public() {
    let fake = FakeModelServer::start().await.unwrap();
    let server = TestServer::start(binary(), fake_options(&fake))
        .await
        .unwrap();
    let (status, _, body) = scrape(&server, None).await;
    assert_eq!(status, 401, "{body}");
    let (_, member) = server
        .post("/v1/keys", &json!({"name": "member", "role": "member"}))
        .await;
    let member_key = member["key"].as_str().unwrap();
    let (status, _, body) = scrape(&server, Some(member_key)).await;
    assert_eq!(status, 403, "{body}");
    let (status, content_type, body) = scrape(&server, Some(&server.admin_key)).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    assert!(body.ends_with("# EOF\n"));

    let mut options = fake_options(&fake);
    options.config_toml = Some("[metrics]\npublic = true\n".into());
    let public = TestServer::start(binary(), options).await.unwrap();
    let (status, _, body) = scrape(&public, None).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("# TYPE rollout_runs_queued gauge"), "{body}");
}

#[tokio::test]
async fn the_scrape_counts_what_the_runs_did() {
    let fake = FakeModelServer::start().await.unwrap();
    for _ in 0..2 {
        fake.push([
            FakeReply::tool_call("calculator", json!({"expression": "17 * 23"})),
            FakeReply::text("391"),
        ]);
    }
    let mut options = fake_options(&fake);
    options.config_toml = Some("[callbacks]\nallow_private = true\nfirst_backoff_ms = 10\n".into());
    let server = TestServer::start(binary(), options).await.unwrap();

    // Two runs of a provider model, each a tool call and an answer.
    for _ in 0..2 {
        let (status, summary) = server
            .post("/v1/agent/run", &question("claude-sonnet-4-5"))
            .await;
        assert_eq!(status, 200, "{summary}");
        assert_eq!(summary["status"], "completed", "{summary}");
    }
    // A run whose provider refuses the request (400, not retried): failed by its model.
    fake.push([FakeReply::error(400, "bad request")]);
    let (status, summary) = server
        .post("/v1/agent/run", &question("claude-sonnet-4-5"))
        .await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["status"], "failed", "{summary}");
    // One replay run with a wrong answer, whose callback goes to a closed port (2 attempts).
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed_url = format!("http://{}/hook", closed.local_addr().unwrap());
    drop(closed);
    let mut body = question("replay");
    body["validation"] = json!([
        {"name": "calculator", "arguments": {"expression": "17 * 23"}},
        {"answer": "about 400"}
    ]);
    body["callback"] = json!({"url": closed_url, "retry_count": 1});
    let (status, summary) = server.post("/v1/agent/run", &body).await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["reward"], 0.0, "{summary}");
    let trace_id = summary["trace_id"].as_str().unwrap();
    tokio::time::timeout(RUN_TIMEOUT, async {
        loop {
            let (_, log) = server
                .get(&format!("/v1/traces/{trace_id}/deliveries"))
                .await;
            if log["deliveries"].as_array().map_or(0, Vec::len) >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("two delivery attempts");
    let (status, _) = call_as(
        &server,
        &server.admin_key,
        reqwest::Method::GET,
        "/v1/traces/not-a-trace",
        None,
    )
    .await;
    assert_eq!(status, 404);

    let (status, _, text) = scrape(&server, Some(&server.admin_key)).await;
    assert_eq!(status, 200, "{text}");
    let scrape = parse(&text);
    let env = ("environment", "my-assistant");
    let claude = ("model", "claude-sonnet-4-5");
    assert_eq!(
        sample(&scrape, "rollout_runs_started", &[env, claude]),
        3.0,
        "{text}"
    );
    assert_eq!(
        sample(&scrape, "rollout_runs_started", &[env, ("model", "replay")]),
        1.0
    );
    assert_eq!(
        sample(
            &scrape,
            "rollout_runs_finished",
            &[
                env,
                claude,
                ("status", "completed"),
                ("outcome", "answered")
            ]
        ),
        2.0,
        "{text}"
    );
    assert_eq!(
        sample(
            &scrape,
            "rollout_runs_finished",
            &[env, claude, ("status", "failed"), ("outcome", "none")]
        ),
        1.0,
        "{text}"
    );
    assert_eq!(sample(&scrape, "rollout_run_duration_seconds", &[env]), 4.0);
    assert_eq!(
        sample(&scrape, "rollout_run_queue_wait_seconds", &[env]),
        4.0
    );
    assert_eq!(sample(&scrape, "rollout_runs_queued", &[]), 0.0);
    assert_eq!(sample(&scrape, "rollout_runs_in_flight", &[]), 0.0);

    // Model calls: two per completed provider run (the first four requests), tokens as the
    // fake provider reported them; the refused call failed its run.
    let anthropic = [("provider", "anthropic"), claude];
    assert_eq!(
        sample(&scrape, "rollout_model_call_duration_seconds", &anthropic),
        4.0,
        "{text}"
    );
    let (input, output) = fake
        .requests()
        .iter()
        .take(4)
        .map(|r| r.expected_usage())
        .fold((0, 0), |(i, o), (ri, ro)| (i + ri, o + ro));
    let tokens = |kind| {
        sample(
            &scrape,
            "rollout_model_tokens",
            &[anthropic[0], anthropic[1], ("kind", kind)],
        )
    };
    assert_eq!(tokens("input"), input as f64);
    assert_eq!(tokens("output"), output as f64);
    assert_eq!(
        sample(&scrape, "rollout_model_call_errors", &anthropic),
        1.0
    );

    // Tool calls and environment sessions, per environment.
    assert_eq!(
        sample(&scrape, "rollout_tool_call_duration_seconds", &[env]),
        3.0
    );
    assert_eq!(sample(&scrape, "rollout_tool_call_errors", &[env]), 0.0);
    assert_eq!(sample(&scrape, "rollout_env_process_starts", &[env]), 4.0);
    assert_eq!(
        sample(&scrape, "rollout_env_process_start_failures", &[env]),
        0.0
    );

    // Callbacks and HTTP requests.
    assert_eq!(
        sample(
            &scrape,
            "rollout_callback_deliveries",
            &[("result", "failed")]
        ),
        2.0,
        "{text}"
    );
    assert_eq!(
        sample(
            &scrape,
            "rollout_http_requests",
            &[
                ("route", "/v1/agent/run"),
                ("method", "POST"),
                ("status", "200")
            ]
        ),
        4.0,
        "{text}"
    );
    assert_eq!(
        sample(
            &scrape,
            "rollout_http_requests",
            &[
                ("route", "/v1/traces/{id}"),
                ("method", "GET"),
                ("status", "404")
            ]
        ),
        1.0,
        "{text}"
    );
}
