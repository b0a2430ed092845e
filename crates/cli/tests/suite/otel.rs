//! Runs exported as OpenTelemetry spans: read back from a real receiver (Arize Phoenix,
//! installed by `scripts/setup-phoenix`), and an exporter that is dead, stalled or full
//! changing nothing about the runs.

use super::common::{RUN_TIMEOUT, binary, fake_options};
use rollout_testkit::{FakeModelServer, FakeReply, TestServer};
use serde_json::{Value, json};
use std::time::Duration;

/// Phoenix's `phoenix` command, when the test command installed it (`scripts/test`);
/// missing while it should have is a failure, not a skip.
fn phoenix_command() -> Option<String> {
    match std::env::var("ROLLOUT_TEST_PHOENIX") {
        Ok(path) if !path.is_empty() => Some(path),
        _ => {
            assert!(
                std::env::var("ROLLOUT_REQUIRE_PHOENIX").is_err(),
                "ROLLOUT_TEST_PHOENIX is not set; run the tests with scripts/test (scripts/setup-phoenix)"
            );
            eprintln!("skipping: Phoenix not installed (run scripts/test)");
            None
        }
    }
}

/// A Phoenix server on loopback, offline, with its own working directory. Killed on drop.
struct Phoenix {
    base_url: String,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
    _child: tokio::process::Child,
}

async fn free_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

impl Phoenix {
    async fn start(command: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (port, grpc_port) = (free_port().await, free_port().await);
        let log = std::fs::File::create(dir.path().join("phoenix.log")).unwrap();
        let child = tokio::process::Command::new(command)
            .arg("serve")
            .env("PHOENIX_WORKING_DIR", dir.path())
            .env("PHOENIX_HOST", "127.0.0.1")
            .env("PHOENIX_PORT", port.to_string())
            .env("PHOENIX_GRPC_PORT", grpc_port.to_string())
            .env("PHOENIX_TELEMETRY_ENABLED", "false")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("phoenix starts");
        let _ = rustls::crypto::ring::default_provider().install_default();
        let phoenix = Self {
            base_url: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
            _dir: dir,
            _child: child,
        };
        // Phoenix takes a while to start (migrations, the UI) on a busy machine.
        let up = tokio::time::timeout(Duration::from_secs(300), async {
            loop {
                let health = phoenix
                    .client
                    .get(format!("{}/healthz", phoenix.base_url))
                    .send()
                    .await;
                if health.is_ok_and(|response| response.status().is_success()) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
        .await;
        assert!(up.is_ok(), "phoenix did not start:\n{}", phoenix.log());
        phoenix
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("phoenix.log")).unwrap_or_default()
    }

    /// Every span of the default project.
    async fn spans(&self) -> Vec<Value> {
        let mut spans = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut url = format!("{}/v1/projects/default/spans?limit=1000", self.base_url);
            if let Some(cursor) = &cursor {
                url.push_str(&format!("&cursor={cursor}"));
            }
            let page: Value = self
                .client
                .get(url)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            spans.extend(page["data"].as_array().cloned().unwrap_or_default());
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_string()),
                None => return spans,
            }
        }
    }

    /// The spans of trace `trace_id` (hex), once its root `invoke_agent` span and `count`
    /// spans in all have arrived.
    async fn trace(&self, trace_id: &str, count: usize) -> Vec<Value> {
        let waited = tokio::time::timeout(RUN_TIMEOUT, async {
            loop {
                let spans: Vec<Value> = self
                    .spans()
                    .await
                    .into_iter()
                    .filter(|span| span["context"]["trace_id"] == trace_id)
                    .collect();
                if spans.len() >= count {
                    return spans;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
        .await;
        waited.unwrap_or_else(|_| panic!("trace {trace_id} never had {count} spans"))
    }
}

fn question() -> Value {
    json!({
        "env_name": "my-assistant",
        "scenario_name": "answer_question",
        "scenario_args": {"query": "What is 17 * 23?"},
        "model": "claude-sonnet-4-5",
        "sync": true
    })
}

/// Spans per run of `question`: root, environment start, setup, two chats, one tool call,
/// evaluation.
const SPANS_PER_RUN: usize = 7;

fn named<'a>(spans: &'a [Value], name: &str) -> Vec<&'a Value> {
    spans.iter().filter(|span| span["name"] == name).collect()
}

#[tokio::test]
async fn runs_are_read_back_from_phoenix_as_span_trees_with_tokens_and_reward() {
    let Some(command) = phoenix_command() else {
        return;
    };
    let phoenix = Phoenix::start(&command).await;
    let fake = FakeModelServer::start().await.unwrap();
    for _ in 0..2 {
        fake.push([
            FakeReply::tool_call("calculator", json!({"expression": "17 * 23"})),
            FakeReply::text("17 * 23 = 391"),
        ]);
    }
    let mut options = fake_options(&fake);
    options.env.push((
        "OTEL_EXPORTER_OTLP_ENDPOINT".into(),
        phoenix.base_url.clone(),
    ));
    options.args.extend(["--log-format".into(), "json".into()]);
    let server = TestServer::start(binary(), options).await.unwrap();

    // A run of its own: its trace id is its rollout id, its root has no parent.
    let (status, summary) = server.post("/v1/agent/run", &question()).await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["status"], "completed", "{summary}");
    let run_id = summary["trace_id"].as_str().unwrap().to_string();
    let trace_id = run_id.replace('-', "");
    let spans = phoenix.trace(&trace_id, SPANS_PER_RUN).await;
    assert_eq!(spans.len(), SPANS_PER_RUN, "{spans:#?}");
    let root = named(&spans, "invoke_agent answer_question");
    assert_eq!(root.len(), 1, "{spans:#?}");
    let root = root[0];
    assert_eq!(root["parent_id"], Value::Null, "{root:#}");
    let root_id = &root["context"]["span_id"];
    let attributes = &root["attributes"];
    assert_eq!(attributes["gen_ai.operation.name"], "invoke_agent");
    assert_eq!(attributes["gen_ai.request.model"], "claude-sonnet-4-5");
    assert_eq!(attributes["rollout.trace_id"], run_id.as_str());
    assert_eq!(attributes["rollout.environment"], "my-assistant");
    assert_eq!(attributes["rollout.scenario"], "answer_question");
    assert_eq!(attributes["rollout.status"], "completed");
    assert_eq!(attributes["rollout.outcome"], "answered");
    assert_eq!(attributes["rollout.reward"], summary["reward"]);
    assert_eq!(attributes["rollout.reward"], 1.0);
    assert_eq!(attributes["rollout.subscore.correct"], 1.0);
    // Every other span is a child of the root.
    for span in &spans {
        if span != root {
            assert_eq!(&span["parent_id"], root_id, "{span:#}");
        }
    }
    let mut names: Vec<&str> = spans.iter().map(|s| s["name"].as_str().unwrap()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "chat claude-sonnet-4-5",
            "chat claude-sonnet-4-5",
            "environment_start",
            "evaluation",
            "execute_tool calculator",
            "invoke_agent answer_question",
            "setup",
        ]
    );
    // Token counts on the chat spans: what the provider reported for each call, in order.
    let mut chats = named(&spans, "chat claude-sonnet-4-5");
    chats.sort_by_key(|span| span["attributes"]["rollout.step"].as_i64());
    let reported: Vec<(u64, u64)> = fake
        .requests()
        .iter()
        .map(|request| request.expected_usage())
        .collect();
    let exported: Vec<(u64, u64)> = chats
        .iter()
        .map(|span| {
            (
                span["attributes"]["gen_ai.usage.input_tokens"]
                    .as_u64()
                    .unwrap(),
                span["attributes"]["gen_ai.usage.output_tokens"]
                    .as_u64()
                    .unwrap(),
            )
        })
        .collect();
    assert_eq!(exported, reported);
    assert_eq!(chats[0]["attributes"]["gen_ai.provider.name"], "anthropic");
    // Content is off by default: no prompt or response left rollout.
    assert_eq!(chats[0]["attributes"]["gen_ai.input.messages"], Value::Null);
    let tool = named(&spans, "execute_tool calculator")[0];
    assert_eq!(tool["attributes"]["gen_ai.tool.name"], "calculator");
    assert_eq!(tool["attributes"]["rollout.tool.result_bytes"], 3);
    assert_eq!(
        tool["attributes"]["gen_ai.tool.call.arguments"],
        Value::Null
    );

    // A caller's traceparent: the run's spans continue the caller's trace.
    let caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let request = server
        .client()
        .post(format!("{}/v1/agent/run", server.base_url))
        .bearer_auth(&server.admin_key)
        .header("traceparent", format!("00-{caller_trace}-{caller_span}-01"))
        .json(&question());
    let (status, summary) = server.send(request).await;
    assert_eq!(status, 200, "{summary}");
    let spans = phoenix.trace(caller_trace, SPANS_PER_RUN).await;
    let root = named(&spans, "invoke_agent answer_question")[0];
    assert_eq!(root["parent_id"], caller_span, "{root:#}");
    assert_eq!(root["attributes"]["rollout.trace_id"], summary["trace_id"]);

    // The run's log lines carry both ids.
    let log = server.log();
    let line = log
        .lines()
        .find(|line| line.contains("run finished") && line.contains(caller_trace))
        .unwrap_or_else(|| panic!("no log line of the run with its trace ids:\n{log}"));
    let line: Value = serde_json::from_str(line).unwrap();
    assert_eq!(line["span"]["trace_id"], summary["trace_id"]);
    assert_eq!(line["span"]["otel_trace_id"], caller_trace);

    // An MCP gateway session (hud-python plays the agent) is exported too.
    let Some(python) = super::common::python() else {
        return;
    };
    let url = super::gateway::mcp_url(&server, "my-assistant").await;
    let out = super::gateway::run_client(super::gateway::client_command(
        &python,
        &[
            "hud",
            &url,
            &server.admin_key,
            "my-assistant",
            "answer_question",
            r#"{"query": "What is 17 * 23?"}"#,
            "The answer is 391",
            "calculator",
            r#"{"expression": "17 * 23"}"#,
        ],
    ))
    .await;
    assert_eq!(out["reward"], 1.0, "{out}");
    let traces = super::gateway::finished_traces(&server, 1).await;
    let gateway_trace = traces[0]["trace_id"].as_str().unwrap().replace('-', "");
    // Root, environment start, setup, the tool call, evaluation: no model call of rollout's.
    let spans = phoenix.trace(&gateway_trace, 5).await;
    let mut names: Vec<&str> = spans.iter().map(|s| s["name"].as_str().unwrap()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "environment_start",
            "evaluation",
            "execute_tool calculator",
            "invoke_agent answer_question",
            "setup",
        ]
    );
    let root = named(&spans, "invoke_agent answer_question")[0];
    assert_eq!(root["attributes"]["gen_ai.request.model"], "external");
    assert_eq!(root["attributes"]["rollout.reward"], 1.0);
}

/// A receiver that accepts connections and never answers.
async fn stalled_receiver() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    url
}

/// What a run of `question` left in its summary and trace, without ids and times.
async fn run_result(server: &TestServer) -> (Value, Vec<String>) {
    let (status, summary) = server.post("/v1/agent/run", &question()).await;
    assert_eq!(status, 200, "{summary}\n{}", server.log());
    let (_, trace) = server
        .get(&format!(
            "/v1/traces/{}",
            summary["trace_id"].as_str().unwrap()
        ))
        .await;
    let kept = json!({
        "status": summary["status"],
        "outcome": summary["outcome"],
        "reward": summary["reward"],
        "final_response": summary["final_response"],
        "steps_taken": summary["steps_taken"],
        "error": summary["error"],
    });
    (kept, super::common::event_types(&trace))
}

async fn metric(server: &TestServer, name: &str) -> f64 {
    let text = server
        .client()
        .get(format!("{}/metrics", server.base_url))
        .bearer_auth(&server.admin_key)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .map_or(0.0, |value| value.trim().parse().unwrap())
}

#[tokio::test]
async fn a_dead_stalled_or_full_exporter_changes_nothing_about_the_runs() {
    let fake = FakeModelServer::start().await.unwrap();
    let script = || {
        [
            FakeReply::tool_call("calculator", json!({"expression": "17 * 23"})),
            FakeReply::text("17 * 23 = 391"),
        ]
    };
    // The reference: no exporter.
    fake.push(script());
    let plain = TestServer::start(binary(), fake_options(&fake))
        .await
        .unwrap();
    let expected = run_result(&plain).await;
    assert_eq!(expected.0["status"], "completed");
    drop(plain);

    // Dead: nothing listens at the endpoint.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    fake.push(script());
    let mut options = fake_options(&fake);
    options
        .env
        .push(("OTEL_EXPORTER_OTLP_ENDPOINT".into(), dead_url));
    let dead = TestServer::start(binary(), options).await.unwrap();
    assert_eq!(run_result(&dead).await, expected);
    let failures = tokio::time::timeout(RUN_TIMEOUT, async {
        loop {
            let failures = metric(&dead, "rollout_otel_export_failures_total").await;
            if failures >= 1.0 {
                return failures;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(
        failures.is_ok(),
        "the failed export was not counted:\n{}",
        dead.log()
    );
    assert!(
        dead.log().contains("could not export spans"),
        "{}",
        dead.log()
    );

    // Stalled and full: the receiver never answers (the exporter waits on it for ten
    // minutes) and the queue holds one span: the next runs' spans are dropped and counted.
    let stalled_url = stalled_receiver().await;
    let mut options = fake_options(&fake);
    options
        .env
        .push(("OTEL_EXPORTER_OTLP_ENDPOINT".into(), stalled_url));
    options.config_toml = Some("[otel]\nmax_queue_spans = 1\ntimeout_seconds = 600\n".into());
    let stalled = TestServer::start(binary(), options).await.unwrap();
    for _ in 0..2 {
        fake.push(script());
        assert_eq!(run_result(&stalled).await, expected);
    }
    // Two runs of seven spans: the exporter holds at most one batch in flight and one span
    // queued.
    let dropped = metric(&stalled, "rollout_otel_spans_dropped_total").await;
    assert!(dropped >= 1.0, "{dropped}\n{}", stalled.log());
    assert!(
        stalled.log().contains("the span export queue is full"),
        "{}",
        stalled.log()
    );
}
