//! Review queues end to end: made from a filter or ids (422 listing problems), reviewers
//! racing on `next` never get the same trace, a held trace cannot be completed by another
//! reviewer, release hands it on, progress per queue and reviewer, completing marks the
//! trace reviewed, and another project's key gets 404 everywhere.

use super::common::{call_as, plain_server};
use super::reviews::{key_in, problem_fields, replay_run};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::HashSet;

#[tokio::test]
async fn reviewers_work_through_a_queue_without_ever_sharing_a_trace() {
    let server = plain_server().await;
    let mut runs = Vec::new();
    for _ in 0..5 {
        runs.push(replay_run(&server, "391").await);
    }

    let (status, refused) = server
        .post(
            "/v1/review-queues",
            &json!({"name": "", "trace_ids": [runs[0]], "filter": {"model": "replay"},
                    "lease_seconds": 1}),
        )
        .await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(
        problem_fields(&refused),
        ["name", "lease_seconds", "trace_ids"]
    );
    let (status, refused) = server
        .post(
            "/v1/review-queues",
            &json!({"name": "q", "filter": {"modle": "replay", "reviewed": "maybe"}}),
        )
        .await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(
        problem_fields(&refused),
        ["filter.modle", "filter.reviewed"]
    );

    let (status, queue) = server
        .post(
            "/v1/review-queues",
            &json!({"name": "triage", "description": "is the answer right?",
                    "filter": {"model": "replay", "reward_min": 1}, "limit": 4}),
        )
        .await;
    assert_eq!(status, 201, "{queue}");
    assert_eq!(queue["progress"]["total"], 4);
    assert_eq!(queue["progress"]["done"], 0);
    let id = queue["id"].as_str().unwrap().to_string();
    let (status, _) = server
        .post(
            "/v1/review-queues",
            &json!({"name": "triage", "trace_ids": [runs[0]]}),
        )
        .await;
    assert_eq!(status, 409);

    // Eight reviewers ask at once: four get the four traces, each a different one.
    let next = |reviewer: String| {
        let server = &server;
        let id = id.clone();
        async move {
            let (status, next) = server
                .get(&format!("/v1/review-queues/{id}/next?reviewer={reviewer}"))
                .await;
            assert_eq!(status, 200, "{next}");
            next
        }
    };
    let mut racing = tokio::task::JoinSet::new();
    for i in 0..8 {
        let request = server
            .client()
            .get(format!(
                "{}/v1/review-queues/{id}/next?reviewer=reviewer-{i}",
                server.base_url
            ))
            .bearer_auth(&server.admin_key);
        racing.spawn(async move { request.send().await.unwrap().json::<Value>().await.unwrap() });
    }
    let answers = racing.join_all().await;
    let handed: Vec<(String, String)> = answers
        .iter()
        .filter(|a| !a["trace_id"].is_null())
        .map(|a| {
            (
                a["reviewer"].as_str().unwrap().to_string(),
                a["trace_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(handed.len(), 4, "{answers:?}");
    let distinct: HashSet<&String> = handed.iter().map(|(_, trace)| trace).collect();
    assert_eq!(
        distinct.len(),
        4,
        "no trace went to two reviewers: {handed:?}"
    );
    let (first_reviewer, first_trace) = handed[0].clone();
    let (second_reviewer, second_trace) = handed[1].clone();
    // Asking again hands back the trace one holds.
    let again = next(first_reviewer.clone()).await;
    assert_eq!(again["trace_id"], first_trace.as_str());
    let (_, queue_now) = server.get(&format!("/v1/review-queues/{id}")).await;
    assert_eq!(queue_now["progress"]["in_review"], 4);

    let act = |action: &'static str, trace: String, reviewer: String| {
        let server = &server;
        let id = id.clone();
        async move {
            server
                .post(
                    &format!("/v1/review-queues/{id}/{action}"),
                    &json!({"trace_id": trace, "reviewer": reviewer}),
                )
                .await
        }
    };
    let (status, refused) = act("complete", first_trace.clone(), second_reviewer.clone()).await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"]["code"], "held_by_another_reviewer");
    // The reviewer scores the trace, then completes it.
    let (status, _) = server
        .post(
            &format!("/v1/traces/{first_trace}/scores"),
            &json!({"name": "quality", "value": 1, "author": first_reviewer}),
        )
        .await;
    assert_eq!(status, 201);
    let (status, completed) = act("complete", first_trace.clone(), first_reviewer.clone()).await;
    assert_eq!(status, 200, "{completed}");
    assert_eq!(completed["progress"]["done"], 1);
    let (status, refused) = act("complete", first_trace.clone(), first_reviewer.clone()).await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"]["code"], "already_completed");
    let outside = runs
        .iter()
        .find(|run| !handed.iter().any(|(_, trace)| trace == *run))
        .unwrap()
        .clone();
    let (status, refused) = act("complete", outside, first_reviewer.clone()).await;
    assert_eq!(status, 404, "{refused}");

    // A released trace goes to the next reviewer who asks.
    let (status, refused) = act("release", second_trace.clone(), first_reviewer.clone()).await;
    assert_eq!(status, 409, "only its holder releases a trace: {refused}");
    let (status, released) = act("release", second_trace.clone(), second_reviewer.clone()).await;
    assert_eq!(status, 200, "{released}");
    let taken = next("late".into()).await;
    assert_eq!(taken["trace_id"], second_trace.as_str());
    let (status, done) = act("complete", second_trace.clone(), "late".into()).await;
    assert_eq!(status, 200, "{done}");

    let (_, queue_now) = server.get("/v1/review-queues/triage").await;
    let progress = &queue_now["progress"];
    assert_eq!(progress["total"], 4);
    assert_eq!(progress["done"], 2);
    assert_eq!(progress["remaining"], 2);
    assert_eq!(progress["in_review"], 2);
    let per_reviewer: Vec<Value> = progress["reviewers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["done"] != 0)
        .map(|r| json!([r["reviewer"], r["done"]]))
        .collect();
    let mut expected = vec![json!([first_reviewer, 1]), json!(["late", 1])];
    expected.sort_by_key(|v| v[0].as_str().unwrap().to_string());
    assert_eq!(per_reviewer, expected);

    // Completed traces count as reviewed, with the completion in their history.
    let (_, reviewed) = server.get("/v1/traces?reviewed=true").await;
    let reviewed: HashSet<&str> = reviewed["traces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["trace_id"].as_str().unwrap())
        .collect();
    assert!(reviewed.contains(second_trace.as_str()), "{reviewed:?}");
    let (_, history) = server
        .get(&format!("/v1/traces/{second_trace}/history"))
        .await;
    assert_eq!(history["history"][0]["subject"], "review");
    assert_eq!(history["history"][0]["action"], "completed");
    assert_eq!(history["history"][0]["author"], "late");

    // A queue of explicit ids keeps their order.
    let (status, by_ids) = server
        .post(
            "/v1/review-queues",
            &json!({"name": "by-ids", "trace_ids": [runs[3], runs[1], runs[3]],
                    "lease_seconds": 60}),
        )
        .await;
    assert_eq!(status, 201, "{by_ids}");
    assert_eq!(by_ids["progress"]["total"], 2);
    let (_, first) = server.get("/v1/review-queues/by-ids/next").await;
    assert_eq!(first["trace_id"], runs[3].as_str());
    assert_eq!(
        first["reviewer"], "admin (ROLLOUT_ADMIN_KEY)",
        "the key's name by default"
    );

    // Another project sees nothing and touches nothing.
    let intruder = key_in(&server, "acme", "admin", "intruder").await;
    for (method, path, body) in [
        (Method::GET, format!("/v1/review-queues/{id}"), None),
        (Method::GET, "/v1/review-queues/triage".to_string(), None),
        (Method::GET, format!("/v1/review-queues/{id}/next"), None),
        (
            Method::POST,
            format!("/v1/review-queues/{id}/complete"),
            Some(json!({"trace_id": handed[2].1})),
        ),
        (
            Method::POST,
            format!("/v1/review-queues/{id}/release"),
            Some(json!({"trace_id": handed[2].1, "reviewer": handed[2].0})),
        ),
        (Method::DELETE, format!("/v1/review-queues/{id}"), None),
    ] {
        let (status, answer) = call_as(&server, &intruder, method.clone(), &path, body).await;
        assert_eq!(status, 404, "{method} {path}: {answer}");
    }
    let (_, listed) = call_as(&server, &intruder, Method::GET, "/v1/review-queues", None).await;
    assert_eq!(listed["review_queues"], json!([]));
    let (status, refused) = call_as(
        &server,
        &intruder,
        Method::POST,
        "/v1/review-queues",
        Some(json!({"name": "steal", "trace_ids": [runs[0]]})),
    )
    .await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(problem_fields(&refused), ["trace_ids[0]"]);
    let (_, mine) = server.get(&format!("/v1/review-queues/{id}")).await;
    assert_eq!(mine["progress"]["in_review"], 2, "{mine}");

    let (status, _) = call_as(
        &server,
        &server.admin_key,
        Method::DELETE,
        "/v1/review-queues/by-ids",
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = server.get("/v1/review-queues/by-ids").await;
    assert_eq!(status, 404);
}
