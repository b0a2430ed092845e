//! The review panel and `/review/{queue}` in a real headless Chromium: a category scored
//! with a key press, a number, a label with completion, a note and a reward override from
//! the trace page; the traces list's labels, reviewed marker and filters; a queue walked
//! with "Complete and next" to its end. Screenshots in `target/screenshots/`; every page
//! must work under the Content-Security-Policy.

use super::browser::{
    assert_no_csp_violations, assert_pages_follow_the_policy, screenshots_dir, start_driver,
    wait_js,
};
use super::common::plain_server;
use super::reviews::replay_run;
use fantoccini::{Client, Locator};
use rollout_testkit::TestServer;
use serde_json::json;

async fn sign_in(client: &Client, server: &TestServer) {
    client
        .goto(&format!("{}/login", server.base_url))
        .await
        .unwrap();
    client
        .find(Locator::Id("key"))
        .await
        .unwrap()
        .send_keys(&server.admin_key)
        .await
        .unwrap();
    client
        .find(Locator::Id("sign-in"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_js(
        client,
        "return location.pathname === '/environments'",
        "signed in",
    )
    .await;
}

async fn click(client: &Client, id: &str) {
    client
        .find(Locator::Id(id))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

async fn type_into(client: &Client, id: &str, text: &str) {
    client
        .find(Locator::Id(id))
        .await
        .unwrap()
        .send_keys(text)
        .await
        .unwrap();
}

/// Waits for the page to have reloaded with `text` in the review panel.
async fn panel_shows(client: &Client, text: &str) {
    wait_js(
        client,
        &format!(
            "var p=document.getElementById('review');return p && p.innerText.includes({})",
            json!(text)
        ),
        text,
    )
    .await;
}

#[tokio::test]
async fn reviewers_score_label_note_and_override_in_the_browser_and_walk_a_queue() {
    let Some((driver, client)) = start_driver().await else {
        return;
    };
    let server = plain_server().await;
    let base = server.base_url.clone();
    for config in [
        json!({"name": "verdict", "categories": ["good", "bad"], "description": "overall"}),
        json!({"name": "correctness", "min": 0, "max": 1}),
    ] {
        let (status, body) = server.post("/v1/score-configs", &config).await;
        assert_eq!(status, 201, "{body}");
    }
    let trace = replay_run(&server, "I do not know").await;
    let other = replay_run(&server, "391").await;
    // A label used elsewhere in the project, for completion.
    server
        .post(
            &format!("/v1/traces/{other}/labels"),
            &json!({"label": "grader-wrong"}),
        )
        .await;

    sign_in(&client, &server).await;
    client
        .goto(&format!("{base}/traces/{trace}"))
        .await
        .unwrap();
    panel_shows(&client, "not reviewed yet").await;
    let options = client
        .execute(
            "return Array.from(document.querySelectorAll('#known-labels option')).map(o => o.value)",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        options,
        json!(["grader-wrong"]),
        "completion offers the project's labels"
    );

    // Key 2 picks the second category of the first categorical score.
    client
        .find(Locator::Css("body"))
        .await
        .unwrap()
        .send_keys("2")
        .await
        .unwrap();
    panel_shows(&client, "verdict: bad").await;
    type_into(&client, "score-correctness", "0.25").await;
    client
        .find(Locator::Css(".score-save[data-score='correctness']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    panel_shows(&client, "correctness: 0.25").await;
    type_into(&client, "label-input", "grader-wrong").await;
    click(&client, "label-add").await;
    wait_js(
        &client,
        "return document.querySelector('#label-chips .chip[data-label=\"grader-wrong\"]') !== null",
        "the label chip",
    )
    .await;
    type_into(&client, "note-body", "The grader wanted 391 only.").await;
    click(&client, "note-add").await;
    panel_shows(&client, "The grader wanted 391 only.").await;
    type_into(&client, "override-reward", "1").await;
    type_into(&client, "override-reason", "the answer was fine").await;
    click(&client, "override-save").await;
    panel_shows(&client, "Overridden to 1").await;
    panel_shows(&client, "✓ reviewed").await;
    // A bad value is shown, not lost.
    type_into(&client, "score-correctness", "7").await;
    client
        .find(Locator::Css(".score-save[data-score='correctness']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_js(
        &client,
        "return document.getElementById('review-error').textContent.includes('between 0 and 1')",
        "the 422's message",
    )
    .await;
    client.set_window_size(1280, 2000).await.unwrap();
    std::fs::write(
        screenshots_dir().join("review-panel.png"),
        client.screenshot().await.unwrap(),
    )
    .unwrap();
    client.set_window_size(1280, 1000).await.unwrap();
    assert_no_csp_violations(&driver, &client).await;

    // What the browser recorded is what the API reads.
    let (_, review) = server.get(&format!("/v1/traces/{trace}/review")).await;
    let scores: Vec<_> = review["scores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| json!([s["name"], s["value"]]))
        .collect();
    assert_eq!(
        scores,
        [json!(["verdict", "bad"]), json!(["correctness", 0.25])]
    );
    assert_eq!(review["labels"][0]["label"], "grader-wrong");
    assert_eq!(review["reward"], 1.0);
    assert_eq!(review["grader_reward"], 0.0);

    // The list shows labels and the reviewed marker, and filters by them.
    client
        .goto(&format!("{base}/traces?label=grader-wrong&reviewed=true"))
        .await
        .unwrap();
    let rows = client
        .execute(
            "return Array.from(document.querySelectorAll('#traces tbody tr')).map(r => r.innerText)",
            vec![],
        )
        .await
        .unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(
        rows.iter()
            .all(|r| r.as_str().unwrap().contains("grader-wrong")),
        "{rows:?}"
    );
    assert!(rows[0].as_str().unwrap().contains('✓'), "{rows:?}");
    client
        .goto(&format!("{base}/traces?reviewed=false"))
        .await
        .unwrap();
    let empty = client
        .execute(
            "return document.querySelector('#traces tbody').innerText",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        empty.as_str().unwrap().contains("No traces match"),
        "{empty}"
    );
    std::fs::write(
        screenshots_dir().join("review-traces-list.png"),
        client.screenshot().await.unwrap(),
    )
    .unwrap();

    // A queue of both traces, walked to its end.
    let (status, queue) = server
        .post(
            "/v1/review-queues",
            &json!({"name": "triage", "description": "Is the grader right?",
                    "trace_ids": [other, trace]}),
        )
        .await;
    assert_eq!(status, 201, "{queue}");
    client
        .goto(&format!("{base}/review/triage?reviewer=alice"))
        .await
        .unwrap();
    wait_js(
        &client,
        &format!(
            "return document.getElementById('review').getAttribute('data-trace') === {}",
            json!(other)
        ),
        "the first trace of the queue",
    )
    .await;
    let progress = client
        .find(Locator::Id("queue-progress"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(progress, "0 / 2 done");
    client
        .find(Locator::Css("body"))
        .await
        .unwrap()
        .send_keys("1")
        .await
        .unwrap();
    panel_shows(&client, "verdict: good").await;
    std::fs::write(
        screenshots_dir().join("review-queue.png"),
        client.screenshot().await.unwrap(),
    )
    .unwrap();
    click(&client, "review-complete").await;
    wait_js(
        &client,
        &format!("return document.getElementById('review') && document.getElementById('review').getAttribute('data-trace') === {}", json!(trace)),
        "the second trace of the queue",
    )
    .await;
    click(&client, "review-complete").await;
    wait_js(
        &client,
        "return document.getElementById('queue-done') !== null",
        "the end of the queue",
    )
    .await;
    let (_, queue) = server.get("/v1/review-queues/triage").await;
    assert_eq!(queue["progress"]["done"], 2);
    assert_eq!(queue["progress"]["reviewers"][0]["reviewer"], "alice");
    let (_, scored) = server.get(&format!("/v1/traces/{other}/scores")).await;
    assert_eq!(scored["scores"][0]["author"], "alice", "{scored}");
    let pages = [
        format!("/traces/{trace}"),
        "/review/triage?reviewer=alice".into(),
    ];
    assert_pages_follow_the_policy(&driver, &client, &base, &pages).await;
    client.close().await.unwrap();

    // Every changing UI route (POST, PUT, DELETE) needs the X-Rollout-UI header, which a
    // cross-site form cannot send.
    for (method, path) in [
        (reqwest::Method::POST, format!("/ui/traces/{trace}/scores")),
        (reqwest::Method::POST, format!("/ui/traces/{trace}/labels")),
        (
            reqwest::Method::DELETE,
            format!("/ui/traces/{trace}/labels/grader-wrong"),
        ),
        (reqwest::Method::POST, format!("/ui/traces/{trace}/notes")),
        (
            reqwest::Method::PUT,
            format!("/ui/traces/{trace}/reward-override"),
        ),
        (
            reqwest::Method::POST,
            "/ui/review-queues/triage/complete".to_string(),
        ),
    ] {
        let response = server
            .client()
            .request(method.clone(), format!("{base}{path}"))
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 403, "{method} {path}");
    }
}
