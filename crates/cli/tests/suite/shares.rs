//! Share links, attacked: a link shows its trace signed out and nothing else (no project,
//! no key, no other trace), with noindex and no-referrer; it stops when revoked, expired or
//! when the project turns sharing off; other traces' ids, other tokens, mangled tokens and
//! another project's key get nothing.

use super::common::{call_as, plain_server};
use super::reviews::{key_in, replay_run};
use reqwest::Method;
use rollout_testkit::TestServer;
use serde_json::{Value, json};
use std::time::Duration;

/// A signed-out GET (no key, no cookie): status, headers and body.
async fn signed_out(server: &TestServer, path: &str) -> (u16, reqwest::header::HeaderMap, String) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = client
        .get(format!("{}{path}", server.base_url))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().await.unwrap())
}

fn share_path(link: &Value) -> String {
    let url = link["url"].as_str().unwrap();
    url[url.find("/shared/").unwrap()..].to_string()
}

#[tokio::test]
async fn a_share_link_shows_only_its_trace_signed_out_until_revoked_or_expired() {
    let server = plain_server().await;
    let shared = replay_run(&server, "17 * 23 = 391").await;
    let secret = replay_run(&server, "a-secret-answer-of-another-trace").await;
    let member = key_in(&server, "default", "member", "bob").await;
    let (_, key_list) = server.get("/v1/keys").await;

    let (status, link) = call_as(
        &server,
        &member,
        Method::POST,
        &format!("/v1/traces/{shared}/share"),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 201, "{link}");
    let token = link["token"].as_str().unwrap().to_string();
    assert!(token.len() >= 64, "unguessable: {token}");
    assert_eq!(link["created_by"], "bob");
    let path = share_path(&link);
    assert_eq!(path, format!("/shared/{token}"));

    // Signed out, the page is the trace and nothing else.
    let (status, headers, page) = signed_out(&server, &path).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(headers["x-robots-tag"], "noindex, nofollow, noarchive");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(headers["cache-control"], "no-store");
    assert!(page.contains("name=\"robots\" content=\"noindex"));
    assert!(page.contains(&shared), "the trace's id");
    assert!(page.contains("17 * 23 = 391"), "the final answer");
    assert!(page.contains("id=\"timeline\""));
    for absent in [
        secret.as_str(),
        "a-secret-answer-of-another-trace",
        "Sign out",
        "/environments",
        "/traces",
        "default",
        "ROLLOUT_ADMIN_KEY",
        "live.js",
    ] {
        assert!(!page.contains(absent), "the page shows {absent:?}:\n{page}");
    }
    for key in key_list["keys"].as_array().unwrap() {
        let prefix = key["prefix"].as_str().unwrap();
        assert!(!page.contains(prefix), "a key's prefix {prefix}");
    }
    // The token is stored hashed: the list never shows it.
    let (_, links) = server.get(&format!("/v1/traces/{shared}/shares")).await;
    assert_eq!(links["share_links"][0]["active"], true);
    assert!(!links.to_string().contains(&token), "{links}");

    // Other ids and tokens get the same 404, signed out or not.
    // The last character changed (to another one: a token may end in '0').
    let last = if token.ends_with('0') { '1' } else { '0' };
    let mangled = format!("{}{last}", &token[..token.len() - 1]);
    for attempt in [
        format!("/shared/{secret}"),
        format!("/shared/{shared}"),
        format!("/shared/{mangled}"),
        format!("/shared/{}", token.to_uppercase()),
        "/shared/".to_string(),
        format!("/traces/{secret}"),
        format!("/shared/{token}/../../traces/{secret}"),
    ] {
        let (status, _, body) = signed_out(&server, &attempt).await;
        assert!(
            status == 404 || status == 303 || status == 302,
            "{attempt}: {status}"
        );
        assert!(!body.contains("a-secret-answer"), "{attempt}: {body}");
    }
    let (status, _, _) = signed_out(&server, &format!("/v1/traces/{shared}")).await;
    assert_eq!(status, 401, "the API still needs a key");

    // Another project can neither share, list nor revoke my trace's links.
    let intruder = key_in(&server, "acme", "admin", "intruder").await;
    let link_id = link["id"].as_str().unwrap();
    for (method, path, body) in [
        (
            Method::POST,
            format!("/v1/traces/{shared}/share"),
            Some(json!({})),
        ),
        (Method::GET, format!("/v1/traces/{shared}/shares"), None),
        (
            Method::DELETE,
            format!("/v1/traces/{shared}/shares/{link_id}"),
            None,
        ),
        (
            Method::GET,
            "/v1/projects/default/sharing".to_string(),
            None,
        ),
        (
            Method::PUT,
            "/v1/projects/default/sharing".to_string(),
            Some(json!({"enabled": false})),
        ),
    ] {
        let (status, answer) = call_as(&server, &intruder, method.clone(), &path, body).await;
        assert_eq!(status, 404, "{method} {path}: {answer}");
    }
    // Its own link of its own trace shows its trace only.
    let (status, registered) = server
        .post(
            "/v1/environments",
            &json!({"name": "my-assistant", "project": "acme",
                    "command": [super::common::binary(), "example-env", "my-assistant"]}),
        )
        .await;
    assert_eq!(status, 201, "{registered}");
    let theirs = {
        let (status, run) = call_as(
            &server,
            &intruder,
            Method::POST,
            "/v1/agent/run",
            Some(
                json!({"env_name": "my-assistant", "scenario_name": "answer_question",
                        "scenario_args": {"query": "q"}, "model": "replay",
                        "validation": [{"answer": "theirs"}], "sync": true}),
            ),
        )
        .await;
        assert_eq!(status, 200, "{run}");
        run["trace_id"].as_str().unwrap().to_string()
    };
    let (status, their_link) = call_as(
        &server,
        &intruder,
        Method::POST,
        &format!("/v1/traces/{theirs}/share"),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 201, "{their_link}");
    let (_, _, their_page) = signed_out(&server, &share_path(&their_link)).await;
    assert!(their_page.contains(&theirs));
    assert!(!their_page.contains(&shared));

    // Input is checked.
    let (status, refused) = server
        .post(
            &format!("/v1/traces/{shared}/share"),
            &json!({"expires_in_seconds": 0}),
        )
        .await;
    assert_eq!(status, 422, "{refused}");

    // Revoked: gone at once.
    let (status, _) = call_as(
        &server,
        &member,
        Method::DELETE,
        &format!("/v1/traces/{shared}/shares/{link_id}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, headers, _) = signed_out(&server, &path).await;
    assert_eq!(status, 404);
    assert_eq!(headers["x-robots-tag"], "noindex, nofollow, noarchive");

    // Expired: gone once its time is up.
    let (_, expiring) = server
        .post(
            &format!("/v1/traces/{shared}/share"),
            &json!({"expires_in_seconds": 1}),
        )
        .await;
    let expiring_path = share_path(&expiring);
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let (status, _, _) = signed_out(&server, &expiring_path).await;
            if status == 404 {
                break;
            }
            assert_eq!(status, 200);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("the link expires");
    let (_, links) = server.get(&format!("/v1/traces/{shared}/shares")).await;
    let active: Vec<&Value> = links["share_links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| &l["active"])
        .collect();
    assert_eq!(active, [&json!(false), &json!(false)]);

    // The project turns sharing off: links stop, new ones are refused; on again, back.
    let (_, fresh) = server
        .post(&format!("/v1/traces/{shared}/share"), &json!({}))
        .await;
    let fresh_path = share_path(&fresh);
    let (status, _) = call_as(
        &server,
        &member,
        Method::PUT,
        "/v1/projects/default/sharing",
        Some(json!({"enabled": false})),
    )
    .await;
    assert_eq!(status, 403, "members do not change it");
    let (status, setting) = call_as(
        &server,
        &server.admin_key,
        Method::PUT,
        "/v1/projects/default/sharing",
        Some(json!({"enabled": false})),
    )
    .await;
    assert_eq!(status, 200, "{setting}");
    assert_eq!(setting["enabled"], false);
    let (status, _, _) = signed_out(&server, &fresh_path).await;
    assert_eq!(status, 404);
    let (status, refused) = server
        .post(&format!("/v1/traces/{shared}/share"), &json!({}))
        .await;
    assert_eq!(status, 403, "{refused}");
    assert_eq!(refused["error"]["code"], "sharing_disabled");
    let (_, _, still_theirs) = signed_out(&server, &share_path(&their_link)).await;
    assert!(
        still_theirs.contains(&theirs),
        "another project's switch is its own"
    );
    call_as(
        &server,
        &server.admin_key,
        Method::PUT,
        "/v1/projects/default/sharing",
        Some(json!({"enabled": true})),
    )
    .await;
    let (status, _, _) = signed_out(&server, &fresh_path).await;
    assert_eq!(status, 200);
}
