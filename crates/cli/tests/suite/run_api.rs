//! The run API for automations: idempotency keys, signed callbacks with retries and a
//! delivery log, and per-run budgets (agent deadline, tokens) that still grade the run.

use super::cancel::black_hole;
use super::common::{RUN_TIMEOUT, binary, fake_options};
use rollout_testkit::{FakeModelServer, FakeReply, ServerOptions, TestServer};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn replay_body(query: &str) -> Value {
    json!({
        "env_name": "my-assistant",
        "scenario_name": "answer_question",
        "scenario_args": {"query": query},
        "model": "replay",
        "validation": [{"name": "calculator", "arguments": {"expression": "17 * 23"}}, {"answer": "17 * 23 = 391"}]
    })
}

async fn post_with_key(server: &TestServer, key: &str, body: &Value) -> (u16, Value, bool) {
    let response = server
        .client()
        .post(format!("{}/v1/agent/run", server.base_url))
        .bearer_auth(&server.admin_key)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let replayed = response.headers().get("idempotent-replayed").is_some();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (status, body, replayed)
}

async fn count_runs(server: &TestServer) -> usize {
    let (_, list) = server.get("/v1/traces?limit=500").await;
    list["traces"].as_array().unwrap().len()
}

fn api_only(fake: &FakeModelServer) -> ServerOptions {
    let mut options = fake_options(fake);
    options.args = vec!["--max-concurrent-runs".into(), "0".into()];
    options
}

#[tokio::test]
async fn the_same_idempotency_key_and_body_give_the_same_run() {
    let fake = FakeModelServer::start().await.unwrap();
    let server = TestServer::start(binary(), api_only(&fake)).await.unwrap();
    let body = replay_body("What is 17 * 23?");
    let (status, first, replayed) = post_with_key(&server, "order-1", &body).await;
    assert_eq!(status, 202, "{first}");
    assert!(!replayed);
    let (status, again, replayed) = post_with_key(&server, "order-1", &body).await;
    assert_eq!(status, 202, "{again}");
    assert!(replayed);
    assert_eq!(again["trace_id"], first["trace_id"]);
    // `sync` and `timeout` shape the response, not the run: still the same request.
    let mut waiting = body.clone();
    waiting["sync"] = json!(true);
    waiting["timeout"] = json!(1);
    let (status, waited, _) = post_with_key(&server, "order-1", &waiting).await;
    assert_eq!(status, 202, "{waited}");
    assert_eq!(waited["trace_id"], first["trace_id"]);
    assert_eq!(count_runs(&server).await, 1);

    let (status, conflict, _) =
        post_with_key(&server, "order-1", &replay_body("What is 2 + 2?")).await;
    assert_eq!(status, 409, "{conflict}");
    assert_eq!(conflict["error"]["code"], "idempotency_key_reused");
    assert_eq!(conflict["error"]["details"]["trace_id"], first["trace_id"]);
    assert_eq!(count_runs(&server).await, 1);

    let (status, invalid, _) = post_with_key(&server, &"k".repeat(300), &body).await;
    assert_eq!(status, 422, "{invalid}");
    // Without a key, every request is a new run.
    server.post("/v1/agent/run", &body).await;
    assert_eq!(count_runs(&server).await, 2);
}

#[tokio::test]
async fn many_concurrent_duplicates_start_exactly_one_run() {
    let fake = FakeModelServer::start().await.unwrap();
    let server = Arc::new(
        TestServer::start(binary(), fake_options(&fake))
            .await
            .unwrap(),
    );
    let body = replay_body("What is 17 * 23?");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..32 {
        let server = server.clone();
        let body = body.clone();
        tasks.spawn(async move { post_with_key(&server, "webhook-delivery-7", &body).await });
    }
    let mut ids = Vec::new();
    let mut replays = 0;
    while let Some(result) = tasks.join_next().await {
        let (status, accepted, replayed) = result.unwrap();
        assert_eq!(status, 202, "{accepted}");
        ids.push(accepted["trace_id"].as_str().unwrap().to_string());
        replays += usize::from(replayed);
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(replays, 31);
    let trace = server.wait_for_trace(&ids[0], RUN_TIMEOUT).await;
    assert_eq!(trace["status"], "completed");
    assert_eq!(trace["attempts"], 1);
    assert_eq!(count_runs(&server).await, 1);
}

#[tokio::test]
async fn an_expired_idempotency_key_starts_a_new_run() {
    let fake = FakeModelServer::start().await.unwrap();
    let mut options = api_only(&fake);
    options.config_toml = Some("[runs]\nidempotency_ttl_seconds = 1\n".into());
    let server = TestServer::start(binary(), options).await.unwrap();
    let body = replay_body("What is 17 * 23?");
    let (_, first, _) = post_with_key(&server, "nightly", &body).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, second, replayed) = post_with_key(&server, "nightly", &body).await;
    assert_eq!(status, 202, "{second}");
    assert!(!replayed);
    assert_ne!(second["trace_id"], first["trace_id"]);
}

/// One request a receiver got.
#[derive(Debug, Clone)]
struct Received {
    headers: Vec<(String, String)>,
    body: String,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// A callback receiver on loopback that answers each request with the next status of
/// `statuses` (the last one repeats), recording every request.
async fn receiver(statuses: Vec<u16>) -> (String, Arc<Mutex<Vec<Received>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/run", listener.local_addr().unwrap());
    let received = Arc::new(Mutex::new(Vec::new()));
    let log = received.clone();
    tokio::spawn(async move {
        let mut count = 0;
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut data = Vec::new();
            let mut buffer = [0u8; 8192];
            let (head, body) = loop {
                let n = socket.read(&mut buffer).await.unwrap_or(0);
                if n == 0 {
                    break (String::new(), String::new());
                }
                data.extend_from_slice(&buffer[..n]);
                let text = String::from_utf8_lossy(&data).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .find_map(|line| {
                            let (name, value) = line.split_once(':')?;
                            name.eq_ignore_ascii_case("content-length")
                                .then(|| value.trim().parse::<usize>().ok())?
                        })
                        .unwrap_or(0);
                    if body.len() >= length {
                        break (head.to_string(), body.to_string());
                    }
                }
            };
            let headers = head
                .lines()
                .skip(1)
                .filter_map(|line| line.split_once(':'))
                .map(|(name, value)| (name.trim().to_string(), value.trim().to_string()))
                .collect();
            log.lock().unwrap().push(Received { headers, body });
            let status = statuses[count.min(statuses.len() - 1)];
            count += 1;
            let reply =
                format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            let _ = socket.write_all(reply.as_bytes()).await;
        }
    });
    (url, received)
}

fn callback_options(fake: &FakeModelServer) -> ServerOptions {
    let mut options = fake_options(fake);
    options.config_toml = Some("[callbacks]\nallow_private = true\nfirst_backoff_ms = 50\n".into());
    options
}

async fn wait_for_deliveries(server: &TestServer, trace_id: &str, count: usize) -> Value {
    let waited = tokio::time::timeout(RUN_TIMEOUT, async {
        loop {
            let (status, log) = server
                .get(&format!("/v1/traces/{trace_id}/deliveries"))
                .await;
            assert_eq!(status, 200, "{log}");
            if log["deliveries"].as_array().unwrap().len() >= count {
                return log;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    match waited {
        Ok(log) => log,
        Err(_) => panic!("no {count} deliveries:\n{}", server.log()),
    }
}

/// The verification recipe from the README, in Python: HMAC-SHA256 over "{timestamp}.{body}".
fn python_verifies(secret: &str, timestamp: &str, body: &str, signature: &str) -> Option<bool> {
    let script = "import hmac, hashlib, sys\n\
        secret, timestamp, body, signature = sys.argv[1:5]\n\
        expected = 'sha256=' + hmac.new(secret.encode(), f'{timestamp}.{body}'.encode(), hashlib.sha256).hexdigest()\n\
        print(hmac.compare_digest(expected, signature))\n";
    let output = std::process::Command::new("python3")
        .args(["-c", script, secret, timestamp, body, signature])
        .output()
        .ok()?;
    Some(String::from_utf8_lossy(&output.stdout).trim() == "True")
}

#[tokio::test]
async fn callbacks_are_signed_retried_logged_and_redelivered() {
    let (url, received) = receiver(vec![500, 500, 200]).await;
    let fake = FakeModelServer::start().await.unwrap();
    let server = TestServer::start(binary(), callback_options(&fake))
        .await
        .unwrap();
    let secret = "whsec-callback-secret-0042";
    let mut body = replay_body("What is 17 * 23?");
    body["sync"] = json!(true);
    body["callback"] = json!({
        "url": url,
        "secret": secret,
        "headers": {"Authorization": "Bearer receiver-token-0042"},
        "retry_count": 3
    });
    let (status, summary) = server.post("/v1/agent/run", &body).await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["status"], "completed");
    let trace_id = summary["trace_id"].as_str().unwrap().to_string();

    let log = wait_for_deliveries(&server, &trace_id, 3).await;
    let attempts: Vec<(i64, i64, bool)> = log["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["attempt"].as_i64().unwrap(),
                d["status_code"].as_i64().unwrap(),
                d["delivered"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(attempts, [(1, 500, false), (2, 500, false), (3, 200, true)]);
    assert_eq!(log["deliveries"][0]["kind"], "auto");
    assert!(
        log["deliveries"][0]["error"]
            .as_str()
            .unwrap()
            .contains("500")
    );

    let requests = received.lock().unwrap().clone();
    assert_eq!(requests.len(), 3);
    for request in &requests {
        let timestamp = request.header("x-rollout-timestamp").unwrap();
        let signature = request.header("x-rollout-signature").unwrap();
        let expected = rollout_worker::sign(secret, timestamp.parse().unwrap(), &request.body);
        assert_eq!(signature, format!("sha256={expected}"));
        if let Some(valid) = python_verifies(secret, timestamp, &request.body, signature) {
            assert!(valid, "the README recipe rejects the signature");
        }
        assert_eq!(
            request.header("authorization"),
            Some("Bearer receiver-token-0042")
        );
        let payload: Value = serde_json::from_str(&request.body).unwrap();
        assert_eq!(payload["event"], "run.finished");
        assert_eq!(payload["trace_id"], trace_id.as_str());
        assert_eq!(payload["status"], "completed");
        assert_eq!(payload["reward"], 1.0);
    }

    // Manual redelivery: one attempt, logged as such.
    let (status, redelivered) = server
        .post(&format!("/v1/traces/{trace_id}/deliveries"), &json!({}))
        .await;
    assert_eq!(status, 200, "{redelivered}");
    assert_eq!(redelivered["delivered"], true);
    assert_eq!(redelivered["delivery"]["kind"], "manual");
    assert_eq!(received.lock().unwrap().len(), 4);
    // The run the sync answer and the first delivery were made from (the one its finish
    // wrote, never read back) is the run a read returns: the redelivery reads it, and so
    // does the list.
    let manual = received.lock().unwrap()[3].body.clone();
    assert_eq!(requests[0].body, manual);
    let (_, list) = server.get("/v1/traces").await;
    let listed = list["traces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|run| run["trace_id"] == trace_id.as_str())
        .cloned()
        .unwrap();
    // The list adds the review's fields to the summary.
    for (field, value) in summary.as_object().unwrap() {
        assert_eq!(&listed[field], value, "{field}");
    }

    // Secrets never reach the trace or the log.
    let (_, trace) = server.get(&format!("/v1/traces/{trace_id}")).await;
    let trace_text = trace.to_string();
    for secret in [secret, "receiver-token-0042"] {
        assert!(
            !trace_text.contains(secret),
            "secret in trace: {trace_text}"
        );
        assert!(!server.log().contains(secret), "secret in the server log");
    }
}

#[tokio::test]
async fn a_failing_callback_never_affects_the_run() {
    // A port nobody listens on: every attempt fails to connect.
    let closed = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    };
    let fake = FakeModelServer::start().await.unwrap();
    let server = TestServer::start(binary(), callback_options(&fake))
        .await
        .unwrap();
    let mut body = replay_body("What is 17 * 23?");
    body["sync"] = json!(true);
    body["callback"] = json!({"url": format!("http://{closed}/hook"), "retry_count": 1});
    let (status, summary) = server.post("/v1/agent/run", &body).await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["status"], "completed");
    assert_eq!(summary["reward"], 1.0);
    let trace_id = summary["trace_id"].as_str().unwrap();
    let log = wait_for_deliveries(&server, trace_id, 2).await;
    for delivery in log["deliveries"].as_array().unwrap() {
        assert_eq!(delivery["status_code"], Value::Null);
        assert_eq!(delivery["delivered"], false);
        assert!(
            delivery["error"]
                .as_str()
                .unwrap()
                .contains("could not connect")
        );
    }
    let (_, trace) = server.get(&format!("/v1/traces/{trace_id}")).await;
    assert_eq!(trace["status"], "completed");
}

#[tokio::test]
async fn private_callback_destinations_are_refused_by_default() {
    let fake = FakeModelServer::start().await.unwrap();
    let server = TestServer::start(binary(), api_only(&fake)).await.unwrap();
    for url in [
        "http://127.0.0.1:9/hook",
        "http://localhost/hook",
        "http://169.254.169.254/latest",
        "ftp://example.com/hook",
    ] {
        let mut body = replay_body("What is 17 * 23?");
        body["callback"] = json!({ "url": url });
        let (status, refused) = server.post("/v1/agent/run", &body).await;
        assert_eq!(status, 422, "{url}: {refused}");
        assert_eq!(
            refused["error"]["details"]["errors"][0]["field"],
            "callback.url"
        );
    }
    let mut body = replay_body("What is 17 * 23?");
    body["callback"] = json!({"url": "http://127.0.0.1:9/hook", "retry_count": 99});
    let (status, refused) = server.post("/v1/agent/run", &body).await;
    assert_eq!(status, 422);
    assert_eq!(
        refused["error"]["details"]["errors"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(count_runs(&server).await, 0);
}

#[tokio::test]
async fn a_model_that_never_answers_times_out_and_is_still_graded() {
    let hole = black_hole().await;
    let options = ServerOptions {
        env: vec![
            ("ANTHROPIC_BASE_URL".into(), hole),
            ("ANTHROPIC_API_KEY".into(), "sk-test".into()),
        ],
        ..ServerOptions::default()
    };
    let server = TestServer::start(binary(), options).await.unwrap();
    let mut body = replay_body("What is 17 * 23?");
    body["model"] = json!("claude-opus-4-5");
    body["timeout_seconds"] = json!(1);
    body["grading_timeout_seconds"] = json!(30);
    let (status, accepted) = server.post("/v1/agent/run", &body).await;
    assert_eq!(status, 202, "{accepted}");
    let trace = server
        .wait_for_trace(accepted["trace_id"].as_str().unwrap(), RUN_TIMEOUT)
        .await;
    assert_eq!(trace["status"], "timed_out", "{trace}");
    assert_eq!(trace["outcome"], "agent_timeout");
    assert_eq!(trace["reward"], 0.0);
    let types: Vec<&str> = trace["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert!(types.contains(&"evaluation"), "not graded: {types:?}");
}

#[tokio::test]
async fn a_token_budget_stops_the_agent_and_the_run_is_graded() {
    let fake = FakeModelServer::start().await.unwrap();
    fake.push([
        FakeReply::tool_call("calculator", json!({"expression": "17 * 23"})),
        FakeReply::tool_call("calculator", json!({"expression": "17 * 23"})),
        FakeReply::text("391"),
    ]);
    let server = TestServer::start(binary(), fake_options(&fake))
        .await
        .unwrap();
    let mut body = replay_body("What is 17 * 23?");
    body["model"] = json!("claude-opus-4-5");
    body["max_total_tokens"] = json!(50);
    body["sync"] = json!(true);
    let (status, summary) = server.post("/v1/agent/run", &body).await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["status"], "completed", "{summary}");
    assert_eq!(summary["outcome"], "token_budget_exceeded");
    assert_eq!(summary["steps_taken"], 1);
    let (_, trace) = server
        .get(&format!(
            "/v1/traces/{}",
            summary["trace_id"].as_str().unwrap()
        ))
        .await;
    assert!(trace["usage"]["total_tokens"].as_u64().unwrap() > 50);
    assert_eq!(trace["evaluation"]["reward"], 0.0);
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn budgets_outside_the_limits_are_refused() {
    let fake = FakeModelServer::start().await.unwrap();
    let mut options = api_only(&fake);
    options.config_toml = Some("[runs]\nmax_timeout_seconds = 3600\n".into());
    let server = TestServer::start(binary(), options).await.unwrap();
    let mut body = replay_body("What is 17 * 23?");
    body["timeout_seconds"] = json!(0);
    body["grading_timeout_seconds"] = json!(3601);
    body["max_total_tokens"] = json!(0);
    let (status, refused) = server.post("/v1/agent/run", &body).await;
    assert_eq!(status, 422, "{refused}");
    let fields: Vec<&str> = refused["error"]["details"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "timeout_seconds",
            "grading_timeout_seconds",
            "max_total_tokens"
        ]
    );
}

#[tokio::test]
async fn a_key_over_its_rate_gets_429_with_retry_after() {
    let fake = FakeModelServer::start().await.unwrap();
    let mut options = api_only(&fake);
    options.config_toml = Some("[limits]\nrequests_per_minute = 3\n".into());
    let server = TestServer::start(binary(), options).await.unwrap();
    let (status, other) = server.post("/v1/keys", &json!({"name": "other"})).await;
    assert_eq!(status, 201, "{other}");
    for _ in 0..2 {
        let (status, _) = server.get("/v1/traces").await;
        assert_eq!(status, 200);
    }
    let response = server
        .client()
        .get(format!("{}/v1/traces", server.base_url))
        .bearer_auth(&server.admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 429);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=20).contains(&retry_after), "{retry_after}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    // Another key has a bucket of its own; health needs no key and is never limited.
    let request = server
        .client()
        .get(format!("{}/v1/traces", server.base_url))
        .bearer_auth(other["key"].as_str().unwrap());
    let (status, _) = server.send(request).await;
    assert_eq!(status, 200);
    let (status, _) = server.get("/healthz").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn configured_browser_origins_get_cors_headers() {
    let fake = FakeModelServer::start().await.unwrap();
    let mut options = api_only(&fake);
    options.config_toml = Some("cors_origins = [\"https://chat.example.com\"]\n".into());
    let server = TestServer::start(binary(), options).await.unwrap();
    let client = server.client();
    // The preflight needs no key.
    let preflight = client
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/v1/agent/run", server.base_url),
        )
        .header("Origin", "https://chat.example.com")
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization,content-type,idempotency-key",
        )
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    let headers = preflight.headers();
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://chat.example.com"
    );
    let allowed = headers["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(allowed.contains("authorization") && allowed.contains("idempotency-key"));

    let get = |origin: &str| {
        client
            .get(format!("{}/v1/traces", server.base_url))
            .bearer_auth(&server.admin_key)
            .header("Origin", origin)
            .send()
    };
    let allowed = get("https://chat.example.com").await.unwrap();
    assert_eq!(allowed.status().as_u16(), 200);
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://chat.example.com"
    );
    let other = get("https://elsewhere.example.com").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());

    // Without configuration there is no CORS at all.
    let plain = TestServer::start(binary(), api_only(&fake)).await.unwrap();
    let response = plain
        .client()
        .get(format!("{}/v1/traces", plain.base_url))
        .bearer_auth(&plain.admin_key)
        .header("Origin", "https://chat.example.com")
        .send()
        .await
        .unwrap();
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

#[tokio::test]
async fn concurrent_cancels_of_a_queued_run_deliver_its_callback_once() {
    let fake = FakeModelServer::start().await.unwrap();
    let (url, received) = receiver(vec![200]).await;
    let mut options = callback_options(&fake);
    options.args = vec!["--max-concurrent-runs".into(), "0".into()];
    let server = Arc::new(TestServer::start(binary(), options).await.unwrap());
    let mut body = replay_body("What is 2 + 2?");
    body["callback"] = json!({"url": url});
    let (status, accepted) = server.post("/v1/agent/run", &body).await;
    assert_eq!(status, 202, "{accepted}");
    let trace_id = accepted["trace_id"].as_str().unwrap().to_string();

    let mut cancels = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let server = server.clone();
        let path = format!("/v1/traces/{trace_id}/cancel");
        cancels.spawn(async move { server.post(&path, &json!({})).await });
    }
    while let Some(result) = cancels.join_next().await {
        let (status, cancelled) = result.unwrap();
        assert_eq!(status, 200, "{cancelled}");
        assert_eq!(cancelled["status"], "cancelled");
    }
    wait_for_deliveries(&server, &trace_id, 1).await;
    // A manual redelivery, sent after every cancel answered, lands after any automatic one.
    let (status, manual) = server
        .post(&format!("/v1/traces/{trace_id}/deliveries"), &json!({}))
        .await;
    assert_eq!(status, 200, "{manual}");
    let (_, log) = server
        .get(&format!("/v1/traces/{trace_id}/deliveries"))
        .await;
    let kinds: Vec<&str> = log["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["auto", "manual"], "{log}");
    assert_eq!(received.lock().unwrap().len(), 2);
    let (_, trace) = server.get(&format!("/v1/traces/{trace_id}")).await;
    let finished = trace["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "finished")
        .count();
    assert_eq!(finished, 1, "{trace}");
}
