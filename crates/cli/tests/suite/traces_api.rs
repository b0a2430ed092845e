//! The traces API: every filter, cursor pagination, event paging, the SSE stream resumed
//! with `Last-Event-ID`, and usage aggregation.

use super::common::plain_server;
use rollout_testkit::TestServer;
use serde_json::{Value, json};
use std::time::Duration;

/// Runs the bundled scenario with the replay model (synchronously); `answer` decides the
/// reward.
async fn replay_run(server: &TestServer, answer: &str, metadata: Value) -> Value {
    let body = json!({
        "env_name": "my-assistant",
        "scenario_name": "answer_question",
        "scenario_args": {"query": "What is 17 * 23?"},
        "model": "replay",
        "validation": [
            {"name": "calculator", "arguments": {"expression": "17 * 23"}},
            {"answer": answer}
        ],
        "metadata": metadata,
        "sync": true
    });
    let (status, summary) = server.post("/v1/agent/run", &body).await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["status"], "completed", "{summary}");
    summary
}

fn ids(page: &Value) -> Vec<String> {
    page["traces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["trace_id"].as_str().unwrap().to_string())
        .collect()
}

/// Reads a whole SSE response (the stream ends after `finished`) into (id, event, data).
async fn read_sse(
    server: &TestServer,
    trace_id: &str,
    last_event_id: Option<&str>,
) -> Vec<(i64, String, Value)> {
    let mut request = server
        .client()
        .get(format!("{}/v1/traces/{trace_id}/events", server.base_url))
        .bearer_auth(&server.admin_key);
    if let Some(id) = last_event_id {
        request = request.header("Last-Event-ID", id);
    }
    let response = tokio::time::timeout(Duration::from_secs(60), request.send())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let text = tokio::time::timeout(Duration::from_secs(120), response.text())
        .await
        .expect("the stream ends after the finished event")
        .unwrap();
    let mut events = Vec::new();
    for block in text.split("\n\n") {
        let (mut id, mut kind, mut data) = (None, String::new(), String::new());
        for line in block.lines() {
            if let Some(v) = line.strip_prefix("id:") {
                id = Some(v.trim().parse::<i64>().unwrap());
            } else if let Some(v) = line.strip_prefix("event:") {
                kind = v.trim().to_string();
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push_str(v.trim_start());
            }
        }
        if let Some(id) = id {
            events.push((id, kind, serde_json::from_str(&data).unwrap()));
        }
    }
    events
}

#[tokio::test]
async fn trace_filters_cursor_pages_and_event_pages_work() {
    let server = plain_server().await;
    let first = replay_run(&server, "17 * 23 = 391", json!({"team": "red", "n": 5})).await;
    let second = replay_run(&server, "I do not know", json!({"team": "blue"})).await;
    let third = replay_run(&server, "391", json!({})).await;
    assert_eq!(first["reward"], 1.0);
    assert_eq!(second["reward"], 0.0, "{second}");
    let id = |v: &Value| v["trace_id"].as_str().unwrap().to_string();
    let (a, b, c) = (id(&first), id(&second), id(&third));

    let get = |query: &'static str| {
        let server = &server;
        async move {
            let (status, page) = server.get(&format!("/v1/traces?{query}")).await;
            assert_eq!(status, 200, "{query}: {page}");
            ids(&page)
        }
    };
    assert_eq!(get("").await, [c.clone(), b.clone(), a.clone()]);
    assert_eq!(get("status=completed&model=replay").await.len(), 3);
    assert_eq!(get("status=failed").await.len(), 0);
    assert_eq!(
        get("env_name=my-assistant&scenario_name=answer_question")
            .await
            .len(),
        3
    );
    assert_eq!(get("environment=other").await.len(), 0);
    assert_eq!(get("model=claude-opus-4-5").await.len(), 0);
    assert_eq!(get("reward_min=0.5").await, [c.clone(), a.clone()]);
    assert_eq!(get("reward_max=0.5").await, [b.as_str()]);
    assert_eq!(get("metadata_key=team").await, [b.clone(), a.clone()]);
    assert_eq!(
        get("metadata_key=team&metadata_value=red").await,
        [a.as_str()]
    );
    assert_eq!(get("metadata_key=n&metadata_value=5").await, [a.as_str()]);
    assert_eq!(get("from=2000-01-01&to=2999-01-01").await.len(), 3);
    assert_eq!(get("from=2999-01-01T00:00:00Z").await.len(), 0);
    assert_eq!(get("to=0").await.len(), 0);
    assert_eq!(
        get("duration_min=0&duration_max=600&tokens_min=0")
            .await
            .len(),
        3
    );
    assert_eq!(get("tokens_min=1").await.len(), 0, "replay uses no tokens");

    // Pages of one, newest first, each id exactly once.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..5 {
        let path = match &cursor {
            Some(cursor) => format!("/v1/traces?limit=1&cursor={cursor}"),
            None => "/v1/traces?limit=1".to_string(),
        };
        let (status, page) = server.get(&path).await;
        assert_eq!(status, 200);
        seen.extend(ids(&page));
        cursor = page["next_cursor"].as_str().map(str::to_string);
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(seen, [c.clone(), b.clone(), a.clone()]);

    // Bad filters: 422 naming each one.
    let (status, error) = server
        .get("/v1/traces?reward_min=high&from=yesterday&limit=0&status=done")
        .await;
    assert_eq!(status, 422, "{error}");
    let fields: Vec<&str> = error["error"]["details"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["field"].as_str().unwrap())
        .collect();
    for field in ["status", "reward_min", "from", "limit"] {
        assert!(fields.contains(&field), "{field} in {error}");
    }

    // Event paging.
    let (_, whole) = server.get(&format!("/v1/traces/{a}")).await;
    let all = whole["events"].as_array().unwrap().clone();
    assert_eq!(whole["events_next_after"], Value::Null);
    let (status, page) = server
        .get(&format!("/v1/traces/{a}?include=events&events_limit=4"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(page["events"].as_array().unwrap()[..], all[..4]);
    assert_eq!(page["events_next_after"], 4);
    let (_, rest) = server
        .get(&format!("/v1/traces/{a}?include=events&events_after=4"))
        .await;
    assert_eq!(rest["events"].as_array().unwrap()[..], all[4..]);
    let (_, bare) = server.get(&format!("/v1/traces/{a}?include=summary")).await;
    assert!(bare.get("events").is_none());
    assert_eq!(bare["reward"], 1.0);
    let (status, _) = server.get(&format!("/v1/traces/{a}?events_limit=0")).await;
    assert_eq!(status, 422);
}

#[tokio::test]
async fn the_event_stream_replays_resumes_and_follows_a_live_run() {
    let server = plain_server().await;
    let done = replay_run(&server, "17 * 23 = 391", json!({})).await;
    let trace_id = done["trace_id"].as_str().unwrap();
    let (_, trace) = server.get(&format!("/v1/traces/{trace_id}")).await;
    let stored = trace["events"].as_array().unwrap().clone();

    let events = read_sse(&server, trace_id, None).await;
    let seqs: Vec<i64> = events.iter().map(|e| e.0).collect();
    assert_eq!(seqs, (1..=stored.len() as i64).collect::<Vec<_>>());
    assert_eq!(events.last().unwrap().1, "finished");
    for (event, stored) in events.iter().zip(&stored) {
        assert_eq!(&event.2, stored);
        assert_eq!(event.1, stored["type"]);
    }

    // Reconnecting after seq 3 gets 4.. exactly once, in order.
    let resumed = read_sse(&server, trace_id, Some("3")).await;
    let seqs: Vec<i64> = resumed.iter().map(|e| e.0).collect();
    assert_eq!(seqs, (4..=stored.len() as i64).collect::<Vec<_>>());
    // After the last event there is nothing left: the stream ends at once.
    let last = stored.len().to_string();
    assert!(read_sse(&server, trace_id, Some(&last)).await.is_empty());

    // A stream opened right after queueing follows the run to its end.
    let body = json!({
        "env_name": "my-assistant", "scenario_name": "answer_question",
        "scenario_args": {"query": "What is 17 * 23?"}, "model": "replay",
        "validation": [{"name": "calculator", "arguments": {"expression": "17 * 23"}}, {"answer": "391"}]
    });
    let (status, queued) = server.post("/v1/agent/run", &body).await;
    assert_eq!(status, 202);
    let live_id = queued["trace_id"].as_str().unwrap();
    let live = read_sse(&server, live_id, None).await;
    assert_eq!(live.last().unwrap().1, "finished");
    let (_, trace) = server.get(&format!("/v1/traces/{live_id}")).await;
    let stored: Vec<&Value> = trace["events"].as_array().unwrap().iter().collect();
    let streamed: Vec<&Value> = live.iter().map(|e| &e.2).collect();
    assert_eq!(streamed, stored);

    // Errors: unknown trace, bad Last-Event-ID, no key.
    let (status, _) = server.get("/v1/traces/nope/events").await;
    assert_eq!(status, 404);
    let response = server
        .client()
        .get(format!("{}/v1/traces/{trace_id}/events", server.base_url))
        .bearer_auth(&server.admin_key)
        .header("Last-Event-ID", "abc")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let response = server
        .client()
        .get(format!("{}/v1/traces/{trace_id}/events", server.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn usage_sums_runs_steps_and_tokens_per_group() {
    let server = plain_server().await;
    replay_run(&server, "391", json!({})).await;
    replay_run(&server, "391", json!({})).await;
    let (status, usage) = server.get("/v1/usage?group_by=model").await;
    assert_eq!(status, 200, "{usage}");
    assert_eq!(usage["group_by"], "model");
    let groups = usage["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0]["group"], "replay");
    assert_eq!(groups[0]["runs"], 2);
    assert_eq!(groups[0]["steps"], 4);
    assert!(groups[0]["compute_seconds"].as_f64().unwrap() >= 0.0);
    assert_eq!(usage["total"]["runs"], 2);

    let (status, by_day) = server.get("/v1/usage").await;
    assert_eq!(status, 200);
    let days = by_day["groups"].as_array().unwrap();
    assert_eq!(days.len(), 1, "{by_day}");
    assert_eq!(days[0]["group"].as_str().unwrap().len(), 10);
    let (_, by_env) = server.get("/v1/usage?group_by=environment").await;
    assert_eq!(by_env["groups"][0]["group"], "my-assistant");
    let (_, none) = server.get("/v1/usage?from=2000-01-01&to=2000-02-01").await;
    assert_eq!(none["groups"], json!([]));

    let (status, error) = server.get("/v1/usage?group_by=week&from=soon").await;
    assert_eq!(status, 422, "{error}");
    assert_eq!(
        error["error"]["details"]["errors"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}
