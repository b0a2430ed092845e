//! Human review of traces, end to end on a real server: score configs validate scores (422
//! listing every problem), edits keep their history, labels and notes, a reward override
//! that changes what the trace filters read but not the grader's reward, the trace list's
//! review filters, and every new route of another project's trace answering 404.

use super::common::{call_as, plain_server};
use reqwest::Method;
use rollout_testkit::TestServer;
use serde_json::{Value, json};

/// Runs the bundled scenario with the replay model; `answer` decides the reward (1 or 0).
pub(super) async fn replay_run(server: &TestServer, answer: &str) -> String {
    let body = json!({
        "env_name": "my-assistant",
        "scenario_name": "answer_question",
        "scenario_args": {"query": "What is 17 * 23?"},
        "model": "replay",
        "validation": [
            {"name": "calculator", "arguments": {"expression": "17 * 23"}},
            {"answer": answer}
        ],
        "sync": true
    });
    let (status, summary) = server.post("/v1/agent/run", &body).await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["status"], "completed", "{summary}");
    summary["trace_id"].as_str().unwrap().to_string()
}

/// A key of `project` with `role`, made by the operator.
pub(super) async fn key_in(server: &TestServer, project: &str, role: &str, name: &str) -> String {
    let (status, key) = server
        .post(
            "/v1/keys",
            &json!({"name": name, "role": role, "project": project}),
        )
        .await;
    assert_eq!(status, 201, "{key}");
    key["key"].as_str().unwrap().to_string()
}

/// The `field`s of a 422's problems.
pub(super) fn problem_fields(body: &Value) -> Vec<String> {
    body["error"]["details"]["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no problems in {body}"))
        .iter()
        .map(|p| p["field"].as_str().unwrap().to_string())
        .collect()
}

fn trace_ids(page: &Value) -> Vec<String> {
    page["traces"]
        .as_array()
        .unwrap_or_else(|| panic!("{page}"))
        .iter()
        .map(|t| t["trace_id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn scores_labels_notes_and_overrides_are_recorded_with_history_and_filter_traces() {
    let server = plain_server().await;
    let admin = server.admin_key.clone();
    let member = key_in(&server, "default", "member", "bob").await;
    let call = |key: &str, method: Method, path: String, body: Option<Value>| {
        let server = &server;
        let key = key.to_string();
        async move { call_as(server, &key, method, &path, body).await }
    };
    let solved = replay_run(&server, "17 * 23 = 391").await;
    let failed = replay_run(&server, "I do not know").await;
    let untouched = replay_run(&server, "391").await;

    // Score configs: a numeric range and categories; a bad one lists every problem.
    let (status, config) = call(
        &admin,
        Method::POST,
        "/v1/score-configs".into(),
        Some(json!({"name": "correctness", "min": 0, "max": 1, "description": "how right"})),
    )
    .await;
    assert_eq!(status, 201, "{config}");
    assert_eq!(config["kind"], "numeric");
    let (status, config) = call(
        &admin,
        Method::POST,
        "/v1/score-configs".into(),
        Some(json!({"name": "verdict", "categories": ["good", "bad"]})),
    )
    .await;
    assert_eq!(status, 201, "{config}");
    let (status, refused) = call(
        &admin,
        Method::POST,
        "/v1/score-configs".into(),
        Some(json!({"name": "a,b", "min": 2, "max": 1})),
    )
    .await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(problem_fields(&refused), ["name", "max"]);
    let (status, refused) = call(
        &admin,
        Method::POST,
        "/v1/score-configs".into(),
        Some(json!({"name": "verdict", "categories": ["x"]})),
    )
    .await;
    assert_eq!(status, 409, "{refused}");
    let (status, refused) = call(
        &member,
        Method::POST,
        "/v1/score-configs".into(),
        Some(json!({"name": "other", "min": 0})),
    )
    .await;
    assert_eq!(
        status, 403,
        "members score, admins define scores: {refused}"
    );
    let (_, configs) = call(&member, Method::GET, "/v1/score-configs".into(), None).await;
    assert_eq!(configs["score_configs"].as_array().unwrap().len(), 2);

    // Scores are checked against their config, every problem listed.
    let scores = format!("/v1/traces/{solved}/scores");
    let (status, refused) = call(
        &member,
        Method::POST,
        scores.clone(),
        Some(json!({"name": "correctness", "value": 2, "author": "  "})),
    )
    .await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(problem_fields(&refused), ["value", "author"]);
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("between 0 and 1"),
        "{refused}"
    );
    let (status, refused) = call(
        &member,
        Method::POST,
        scores.clone(),
        Some(json!({"name": "verdict", "value": "meh"})),
    )
    .await;
    assert_eq!(status, 422, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("good, bad"),
        "{refused}"
    );
    let (status, refused) = call(
        &member,
        Method::POST,
        scores.clone(),
        Some(json!({"name": "free", "value": "text"})),
    )
    .await;
    assert_eq!(
        status, 422,
        "a score without a config is a number: {refused}"
    );
    let (status, first) = call(
        &member,
        Method::POST,
        scores.clone(),
        Some(json!({"name": "correctness", "value": 0.5, "comment": "partly"})),
    )
    .await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["author"], "bob", "the key's name is the author");
    // Scoring again edits the author's score; another reviewer's score is their own.
    let (status, edited) = call(
        &member,
        Method::POST,
        scores.clone(),
        Some(json!({"name": "correctness", "value": 0.9})),
    )
    .await;
    assert_eq!(status, 200, "{edited}");
    assert_eq!(edited["id"], first["id"]);
    let (status, alice) = call(
        &member,
        Method::POST,
        scores.clone(),
        Some(json!({"name": "correctness", "value": 0.7, "author": "alice"})),
    )
    .await;
    assert_eq!(status, 201, "{alice}");
    let (status, verdict) = call(
        &member,
        Method::POST,
        scores.clone(),
        Some(json!({"name": "verdict", "value": "good"})),
    )
    .await;
    assert_eq!(status, 201, "{verdict}");
    let (_, listed) = call(&member, Method::GET, scores.clone(), None).await;
    let values: Vec<Value> = listed["scores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| json!([s["name"], s["author"], s["value"]]))
        .collect();
    assert_eq!(
        values,
        [
            json!(["correctness", "bob", 0.9]),
            json!(["correctness", "alice", 0.7]),
            json!(["verdict", "bob", "good"])
        ]
    );

    // Labels: added once, listed, removed.
    let labels = format!("/v1/traces/{failed}/labels");
    let (status, added) = call(
        &member,
        Method::POST,
        labels.clone(),
        Some(json!({"labels": ["wrong-tool", "grader-wrong"]})),
    )
    .await;
    assert_eq!(status, 200, "{added}");
    assert_eq!(added["added"], json!(["wrong-tool", "grader-wrong"]));
    let (_, again) = call(
        &member,
        Method::POST,
        labels.clone(),
        Some(json!({"label": "wrong-tool"})),
    )
    .await;
    assert_eq!(again["added"], json!([]));
    let names: Vec<&str> = again["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["label"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["grader-wrong", "wrong-tool"]);
    let (status, refused) = call(
        &member,
        Method::POST,
        labels.clone(),
        Some(json!({"labels": ["ok", "a,b", ""]})),
    )
    .await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(problem_fields(&refused), ["labels[1]", "labels[2]"]);
    call(
        &member,
        Method::POST,
        format!("/v1/traces/{solved}/labels"),
        Some(json!({"label": "golden"})),
    )
    .await;

    // Notes: written, edited (the old text kept), deleted.
    let (status, note) = call(
        &member,
        Method::POST,
        format!("/v1/traces/{failed}/notes"),
        Some(json!({"body": "the grader wanted 391 only"})),
    )
    .await;
    assert_eq!(status, 201, "{note}");
    let note_path = format!("/v1/traces/{failed}/notes/{}", note["id"].as_str().unwrap());
    let (status, edited) = call(
        &admin,
        Method::PATCH,
        note_path.clone(),
        Some(json!({"body": "the grader wanted exactly 391", "author": "carol"})),
    )
    .await;
    assert_eq!(status, 200, "{edited}");
    assert_eq!(edited["author"], "bob");
    assert_eq!(edited["updated_by"], "carol");
    let (status, refused) = call(
        &admin,
        Method::PATCH,
        note_path.clone(),
        Some(json!({"body": " "})),
    )
    .await;
    assert_eq!(status, 422, "{refused}");

    // The override: metrics read it, the grader's reward stays.
    let override_path = format!("/v1/traces/{failed}/reward-override");
    let (status, refused) = call(
        &member,
        Method::PUT,
        override_path.clone(),
        Some(json!({"reward": 1.0, "reason": ""})),
    )
    .await;
    assert_eq!(status, 422, "a reason is required: {refused}");
    let (status, overridden) = call(
        &member,
        Method::PUT,
        override_path.clone(),
        Some(json!({"reward": 1.0, "reason": "the answer was right"})),
    )
    .await;
    assert_eq!(status, 200, "{overridden}");
    assert_eq!(overridden["grader_reward"], 0.0);
    let (_, trace) = server.get(&format!("/v1/traces/{failed}")).await;
    assert_eq!(trace["reward"], 0.0, "the grader's reward is untouched");
    let (_, review) = call(
        &member,
        Method::GET,
        format!("/v1/traces/{failed}/review"),
        None,
    )
    .await;
    assert_eq!(review["grader_reward"], 0.0);
    assert_eq!(review["reward"], 1.0);
    assert_eq!(review["reviewed"], true);
    assert_eq!(review["notes"][0]["body"], "the grader wanted exactly 391");

    // The history keeps every change with who and the value before.
    let (status, history) = call(
        &member,
        Method::GET,
        format!("/v1/traces/{failed}/history"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{history}");
    let steps: Vec<Value> = history["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| json!([h["subject"], h["action"], h["author"]]))
        .collect();
    assert_eq!(
        steps,
        [
            json!(["label", "created", "bob"]),
            json!(["label", "created", "bob"]),
            json!(["note", "created", "bob"]),
            json!(["note", "updated", "carol"]),
            json!(["reward_override", "created", "bob"]),
        ]
    );
    assert_eq!(
        history["history"][3]["previous"]["body"],
        "the grader wanted 391 only"
    );
    let (_, history) = call(
        &member,
        Method::GET,
        format!("/v1/traces/{solved}/history"),
        None,
    )
    .await;
    let score_edit = &history["history"][1];
    assert_eq!(score_edit["action"], "updated");
    assert_eq!(score_edit["previous"]["value"], 0.5);
    assert_eq!(score_edit["value"]["value"], 0.9);

    // The trace list: review state on each line, and its filters.
    let list = |query: &'static str| {
        let server = &server;
        async move {
            let (status, page) = server.get(&format!("/v1/traces?{query}")).await;
            assert_eq!(status, 200, "{query}: {page}");
            page
        }
    };
    let page = list("").await;
    let line = page["traces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["trace_id"] == failed.as_str())
        .unwrap();
    assert_eq!(line["labels"], json!(["grader-wrong", "wrong-tool"]));
    assert_eq!(line["reviewed"], true);
    assert_eq!(line["reward_override"], 1.0);
    assert_eq!(
        trace_ids(&list("label=wrong-tool").await),
        [failed.as_str()]
    );
    assert_eq!(
        trace_ids(&list("label=wrong-tool,golden").await),
        Vec::<String>::new()
    );
    assert_eq!(
        trace_ids(&list("labels_any=wrong-tool,golden").await),
        [failed.clone(), solved.clone()]
    );
    assert_eq!(
        trace_ids(&list("labels_none=wrong-tool").await),
        [untouched.clone(), solved.clone()]
    );
    assert_eq!(
        trace_ids(&list("reviewed=false").await),
        [untouched.as_str()]
    );
    assert_eq!(
        trace_ids(&list("reviewed=true").await),
        [failed.clone(), solved.clone()]
    );
    assert_eq!(trace_ids(&list("overridden=true").await), [failed.as_str()]);
    // The mean of bob's 0.9 and alice's 0.7 is 0.8.
    assert_eq!(
        trace_ids(&list("score_name=correctness&score_min=0.8").await),
        [solved.as_str()]
    );
    assert_eq!(
        trace_ids(&list("score_name=correctness&score_min=0.81").await),
        Vec::<String>::new()
    );
    assert_eq!(
        trace_ids(&list("score_name=verdict").await),
        [solved.as_str()]
    );
    assert_eq!(
        trace_ids(&list("reward_min=1").await),
        [untouched.clone(), failed.clone(), solved.clone()],
        "the override counts by default"
    );
    assert_eq!(
        trace_ids(&list("reward_min=1&reward=grader").await),
        [untouched.clone(), solved.clone()]
    );
    let (status, refused) = server
        .get("/v1/traces?reviewed=maybe&score_min=1&reward=mine")
        .await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(
        problem_fields(&refused),
        ["reviewed", "score_name", "reward"]
    );

    // Deletes: each recorded in the history; the trace stays reviewed.
    let (status, _) = call(
        &member,
        Method::DELETE,
        format!("{labels}/wrong-tool?author=dave"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = call(
        &member,
        Method::DELETE,
        format!("{labels}/wrong-tool"),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = call(&member, Method::DELETE, note_path.clone(), None).await;
    assert_eq!(status, 200);
    let (status, _) = call(&member, Method::DELETE, override_path.clone(), None).await;
    assert_eq!(status, 200);
    let (status, _) = call(&member, Method::GET, override_path.clone(), None).await;
    assert_eq!(status, 404);
    let (status, _) = call(
        &member,
        Method::DELETE,
        format!("{scores}/{}", first["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (_, history) = call(
        &member,
        Method::GET,
        format!("/v1/traces/{failed}/history"),
        None,
    )
    .await;
    let last: Vec<Value> = history["history"].as_array().unwrap()[5..]
        .iter()
        .map(|h| json!([h["subject"], h["action"], h["author"]]))
        .collect();
    assert_eq!(
        last,
        [
            json!(["label", "deleted", "dave"]),
            json!(["note", "deleted", "bob"]),
            json!(["reward_override", "deleted", "bob"]),
        ]
    );
    assert_eq!(
        trace_ids(&list("overridden=true").await),
        Vec::<String>::new()
    );
    assert_eq!(trace_ids(&list("reviewed=false").await), [untouched]);
}

#[tokio::test]
async fn every_review_route_of_another_projects_trace_is_not_found() {
    let server = plain_server().await;
    let mine = replay_run(&server, "391").await;
    let admin = server.admin_key.clone();
    // Something to find: a config, a score, a label, a note and an override.
    for (method, path, body) in [
        (
            Method::POST,
            "/v1/score-configs".to_string(),
            json!({"name": "correctness", "min": 0, "max": 1}),
        ),
        (
            Method::POST,
            format!("/v1/traces/{mine}/scores"),
            json!({"name": "correctness", "value": 1}),
        ),
        (
            Method::POST,
            format!("/v1/traces/{mine}/labels"),
            json!({"label": "golden"}),
        ),
        (
            Method::POST,
            format!("/v1/traces/{mine}/notes"),
            json!({"body": "fine"}),
        ),
        (
            Method::PUT,
            format!("/v1/traces/{mine}/reward-override"),
            json!({"reward": 0.5, "reason": "r"}),
        ),
    ] {
        let (status, body) = call_as(&server, &admin, method, &path, Some(body)).await;
        assert!(status == 200 || status == 201, "{path}: {body}");
    }
    let (_, review) = server.get(&format!("/v1/traces/{mine}/review")).await;
    let score_id = review["scores"][0]["id"].as_str().unwrap().to_string();
    let note_id = review["notes"][0]["id"].as_str().unwrap().to_string();

    let intruder = key_in(&server, "acme", "admin", "intruder").await;
    let attempts: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, format!("/v1/traces/{mine}/review"), None),
        (Method::GET, format!("/v1/traces/{mine}/history"), None),
        (Method::GET, format!("/v1/traces/{mine}/scores"), None),
        (
            Method::POST,
            format!("/v1/traces/{mine}/scores"),
            Some(json!({"name": "x", "value": 1})),
        ),
        (
            Method::DELETE,
            format!("/v1/traces/{mine}/scores/{score_id}"),
            None,
        ),
        (Method::GET, format!("/v1/traces/{mine}/labels"), None),
        (
            Method::POST,
            format!("/v1/traces/{mine}/labels"),
            Some(json!({"label": "x"})),
        ),
        (
            Method::DELETE,
            format!("/v1/traces/{mine}/labels/golden"),
            None,
        ),
        (Method::GET, format!("/v1/traces/{mine}/notes"), None),
        (
            Method::POST,
            format!("/v1/traces/{mine}/notes"),
            Some(json!({"body": "x"})),
        ),
        (
            Method::PATCH,
            format!("/v1/traces/{mine}/notes/{note_id}"),
            Some(json!({"body": "x"})),
        ),
        (
            Method::DELETE,
            format!("/v1/traces/{mine}/notes/{note_id}"),
            None,
        ),
        (
            Method::GET,
            format!("/v1/traces/{mine}/reward-override"),
            None,
        ),
        (
            Method::PUT,
            format!("/v1/traces/{mine}/reward-override"),
            Some(json!({"reward": 0, "reason": "x"})),
        ),
        (
            Method::DELETE,
            format!("/v1/traces/{mine}/reward-override"),
            None,
        ),
        (
            Method::GET,
            "/v1/score-configs/correctness".to_string(),
            None,
        ),
        (
            Method::DELETE,
            "/v1/score-configs/correctness".to_string(),
            None,
        ),
    ];
    for (method, path, body) in attempts {
        let (status, answer) = call_as(&server, &intruder, method.clone(), &path, body).await;
        assert_eq!(status, 404, "{method} {path}: {answer}");
    }
    let (_, configs) = call_as(&server, &intruder, Method::GET, "/v1/score-configs", None).await;
    assert_eq!(configs["score_configs"], json!([]));
    // The intruder's own config of the same name is its own; nothing of mine changed.
    let (status, _) = call_as(
        &server,
        &intruder,
        Method::PUT,
        "/v1/score-configs/correctness",
        Some(json!({"categories": ["x"]})),
    )
    .await;
    assert_eq!(status, 201);
    let (_, config) = server.get("/v1/score-configs/correctness").await;
    assert_eq!(config["kind"], "numeric");
    let (_, after) = server.get(&format!("/v1/traces/{mine}/review")).await;
    assert_eq!(after["scores"], review["scores"]);
    assert_eq!(after["labels"], review["labels"]);
    assert_eq!(after["notes"], review["notes"]);
    assert_eq!(after["reward"], 0.5);
    let (_, traces) = call_as(
        &server,
        &intruder,
        Method::GET,
        "/v1/traces?reviewed=true",
        None,
    )
    .await;
    assert_eq!(traces["traces"], json!([]));
}
