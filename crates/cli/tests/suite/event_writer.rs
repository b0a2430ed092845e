//! A run's events are stored by a writer of its own while the run goes on: the agent does not
//! wait for each commit before its next model or tool call, every event still lands in
//! order before the run's end, and a store that refuses them fails the run with the reason.
//! Needs the `failpoints` feature (`scripts/test` builds with it).

use super::common::{RUN_TIMEOUT, binary, fake_options, start_assistant_run};
use rollout_testkit::{FakeModelServer, FakeReply, TestServer};
use serde_json::{Value, json};
use std::time::Duration;

/// The types of a trace's events, in order.
fn kinds(trace: &Value) -> Vec<String> {
    trace["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|event| event["type"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// A server (started with `args`) whose runs' event appends go through `failpoint`, with a
/// run of three tool steps started on it; the server, the model and the run's trace id.
async fn start_run(failpoint: &str, args: &[&str]) -> (TestServer, FakeModelServer, String) {
    let fake = FakeModelServer::start().await.unwrap();
    fake.push([
        FakeReply::tool_call("calculator", json!({"expression": "1 + 1"})),
        FakeReply::tool_call("calculator", json!({"expression": "2 + 2"})),
        FakeReply::tool_call("calculator", json!({"expression": "17 * 23"})),
        FakeReply::text("17 * 23 = 391"),
    ]);
    let mut options = fake_options(&fake);
    options
        .env
        .push(("FAILPOINTS".into(), format!("worker::append={failpoint}")));
    options.args = args.iter().map(|arg| arg.to_string()).collect();
    let server = TestServer::start(binary(), options).await.unwrap();
    let trace_id = start_assistant_run(&server).await;
    (server, fake, trace_id)
}

#[tokio::test]
#[cfg_attr(
    not(feature = "failpoints"),
    ignore = "needs the failpoints feature (scripts/test enables it)"
)]
async fn a_run_goes_on_while_its_events_are_stored_and_all_land_in_order() {
    // Every event takes 700 ms to store: a run that waited for each would have stored its
    // first three model calls before the model saw its fourth request.
    let (server, fake, trace_id) = start_run("return(700)", &[]).await;
    let reached = tokio::time::timeout(RUN_TIMEOUT, async {
        while fake.requests().len() < 4 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(reached.is_ok(), "the model never got its fourth request");
    let (status, trace) = server.get(&format!("/v1/traces/{trace_id}")).await;
    assert_eq!(status, 200, "{trace}");
    let stored_calls = kinds(&trace).iter().filter(|k| *k == "model_call").count();
    assert!(
        stored_calls < 3,
        "the run waited for its events: {:?}",
        kinds(&trace)
    );

    let trace = server.wait_for_trace(&trace_id, RUN_TIMEOUT).await;
    assert_eq!(trace["status"], "completed", "{trace}\n{}", server.log());
    assert_eq!(trace["reward"], 1.0);
    let kinds = kinds(&trace);
    let calls: Vec<&str> = kinds
        .iter()
        .map(String::as_str)
        .filter(|k| matches!(*k, "model_call" | "tool_call"))
        .collect();
    assert_eq!(
        calls,
        [
            "model_call",
            "tool_call",
            "model_call",
            "tool_call",
            "model_call",
            "tool_call",
            "model_call"
        ],
        "{kinds:?}"
    );
    assert_eq!(kinds.first().map(String::as_str), Some("attempt_started"));
    assert_eq!(
        kinds.last().map(String::as_str),
        Some("finished"),
        "{kinds:?}"
    );
    let seqs: Vec<i64> = trace["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>());
    assert_eq!(trace["steps_taken"], 4, "{trace}");
    // Each event keeps the time it happened, not the time it was stored: stamped when stored,
    // the agent phase's seven events would span at least six stores (6 x 700 ms).
    let times: Vec<i64> = trace["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| matches!(event["type"].as_str(), Some("model_call" | "tool_call")))
        .map(|event| event["at_ms"].as_i64().unwrap())
        .collect();
    assert_eq!(times.len(), 7);
    assert!(
        times[6] - times[0] < 6 * 700,
        "event times are when they were stored: {times:?}"
    );
}

#[tokio::test]
#[cfg_attr(
    not(feature = "failpoints"),
    ignore = "needs the failpoints feature (scripts/test enables it)"
)]
async fn a_run_whose_events_cannot_be_stored_fails_with_the_reason() {
    let (server, fake, trace_id) = start_run("return(fail)", &[]).await;
    let trace = server.wait_for_trace(&trace_id, RUN_TIMEOUT).await;
    assert_eq!(trace["status"], "failed", "{trace}\n{}", server.log());
    let error = trace["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("could not record event") && error.contains("failpoint worker::append"),
        "{trace}"
    );
    // Nothing was stored but the attempt's start (stored with its claim) and the run's end,
    // and the run stopped at one of its next events (the environment's connection, its
    // setup), before its agent went further than one model call.
    assert_eq!(kinds(&trace), ["attempt_started", "finished"], "{trace}");
    assert!(fake.requests().len() <= 1, "{:?}", fake.requests().len());
}

#[tokio::test]
#[cfg_attr(
    not(feature = "failpoints"),
    ignore = "needs the failpoints feature (scripts/test enables it)"
)]
async fn an_attempt_is_in_its_trace_before_it_calls_the_model_however_soon_its_server_dies() {
    // Every event takes 700 ms to store, and the server is killed as the model gets the run's
    // first request: an attempt whose start went through the run's writer like its other
    // events would have left nothing in the trace.
    let (mut server, fake, trace_id) = start_run("return(700)", &["--lease-seconds", "2"]).await;
    let reached = tokio::time::timeout(RUN_TIMEOUT, async {
        while fake.requests().is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(reached.is_ok(), "the model never got a request");
    server.kill().await;
    let mut options = fake_options(&fake);
    options.data_dir = Some(server.data_dir.clone());
    options.args = ["--lease-seconds", "2"].map(String::from).to_vec();
    let restarted = TestServer::start(binary(), options).await.unwrap();

    let (status, trace) = restarted.get(&format!("/v1/traces/{trace_id}")).await;
    assert_eq!(status, 200, "{trace}");
    let first = &trace["events"][0];
    assert_eq!(
        (&first["type"], &first["attempt"], &first["seq"]),
        (&json!("attempt_started"), &json!(1), &json!(1)),
        "{trace}"
    );
    // The lost attempt is recovered and the run completes on its second.
    let trace = restarted.wait_for_trace(&trace_id, RUN_TIMEOUT).await;
    assert_eq!(trace["status"], "completed", "{trace}\n{}", restarted.log());
    assert_eq!(trace["attempts"], 2, "{trace}");
    let started: Vec<&Value> = trace["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["type"] == "attempt_started")
        .map(|event| &event["attempt"])
        .collect();
    assert_eq!(started, [&json!(1), &json!(2)], "{trace}");
}
