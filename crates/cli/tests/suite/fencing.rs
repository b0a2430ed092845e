//! Fencing by claim: an execution whose lease was lost, even to a newer claim of its own
//! process, stops (its model call dropped, its environment killed) and writes nothing more.
//! Needs the `failpoints` feature (`scripts/test` builds with it).

use super::common::{RUN_TIMEOUT, binary, fake_options, start_assistant_run};
use rollout_testkit::{FakeModelServer, FakeReply, TestServer};
use serde_json::{Value, json};
use std::time::Duration;

/// The `(type, attempt)` of every event of a trace, in order.
fn kinds(trace: &Value) -> Vec<(String, i64)> {
    trace["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| {
            let kind = e["type"].as_str().unwrap_or_default().to_string();
            (kind, e["attempt"].as_i64().unwrap_or_default())
        })
        .collect()
}

#[tokio::test]
#[cfg_attr(
    not(feature = "failpoints"),
    ignore = "needs the failpoints feature (scripts/test enables it)"
)]
async fn a_run_whose_heartbeat_stalls_past_the_lease_reaches_the_model_once() {
    let fake = FakeModelServer::start().await.unwrap();
    // Attempt 1's first model call is still in flight long after its lease ran out; the
    // next two replies serve attempt 2.
    fake.push([
        FakeReply::delayed(
            Duration::from_secs(60),
            FakeReply::text("late answer of attempt 1"),
        ),
        FakeReply::tool_call("calculator", json!({"expression": "17 * 23"})),
        FakeReply::text("17 * 23 = 391"),
    ]);
    let mut options = fake_options(&fake);
    options.args = vec!["--lease-seconds".into(), "2".into()];
    // Attempt 1's heartbeats fail as if the store were unreachable; attempt 2's succeed.
    options
        .env
        .push(("FAILPOINTS".into(), "worker::heartbeat=return(1)".into()));
    let server = TestServer::start(binary(), options).await.unwrap();
    let trace_id = start_assistant_run(&server).await;
    let trace = server.wait_for_trace(&trace_id, RUN_TIMEOUT).await;
    assert_eq!(trace["status"], "completed", "{trace}\n{}", server.log());
    assert_eq!(trace["reward"], 1.0);
    assert_eq!(trace["attempts"], 2);

    // The stalled model call was dropped by its execution, not left to finish.
    let dropped = tokio::time::timeout(Duration::from_secs(30), async {
        while fake.abandoned() == 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(dropped.is_ok(), "attempt 1's model call was never dropped");
    assert_eq!(fake.abandoned(), 1);
    // One request of attempt 1, two of attempt 2: nothing else reached the model.
    assert_eq!(fake.requests().len(), 3);

    let events = kinds(&trace);
    let starts: Vec<i64> = events
        .iter()
        .filter(|(kind, _)| kind == "attempt_started")
        .map(|(_, attempt)| *attempt)
        .collect();
    assert_eq!(starts, [1, 2], "{events:?}");
    let finished: Vec<&(String, i64)> = events.iter().filter(|(k, _)| k == "finished").collect();
    assert_eq!(finished, [&("finished".to_string(), 2)], "{events:?}");
    // Nothing of attempt 1 after attempt 2 started: one event stream per attempt.
    let second = events
        .iter()
        .position(|event| *event == ("attempt_started".to_string(), 2))
        .unwrap();
    assert!(
        events[second..].iter().all(|(_, attempt)| *attempt == 2),
        "{events:?}"
    );
    assert_eq!(
        events.last().map(|(kind, _)| kind.as_str()),
        Some("finished")
    );
}
