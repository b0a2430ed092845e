//! The web and network edges, attacked: security headers on every response, open
//! redirects and cross-site forms at sign-in, failed sign-ins throttled per address, the
//! UI counting against its key's rate limit, slow and idle clients cut off, the
//! connection cap, and event streams capped per key and closed when the key is revoked.

use super::common::{RUN_TIMEOUT, binary};
use rollout_testkit::{ServerOptions, TestServer};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A client that shows redirects instead of following them.
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn new_key(server: &TestServer, name: &str, role: &str) -> (String, String) {
    let (status, key) = server
        .post("/v1/keys", &json!({"name": name, "role": role}))
        .await;
    assert_eq!(status, 201, "{key}");
    (
        key["key"].as_str().unwrap().to_string(),
        key["id"].as_str().unwrap().to_string(),
    )
}

/// `POST /login` as a browser form would, with `extra` headers.
async fn sign_in(
    server: &TestServer,
    key: &str,
    next: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = no_redirects()
        .post(format!("{}/login", server.base_url))
        .form(&[("key", key), ("next", next)]);
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

/// The session cookie a sign-in set, as a `Cookie` header value.
fn session_cookie(response: &reqwest::Response) -> String {
    let set = header(response, "set-cookie");
    assert!(set.starts_with("rollout_session="), "{set}");
    set.split(';').next().unwrap().to_string()
}

#[tokio::test]
async fn sign_in_refuses_open_redirects_other_sites_and_guessing_and_the_ui_counts_against_the_rate_limit()
 {
    let server = TestServer::start(
        binary(),
        ServerOptions {
            config_toml: Some(
                "[limits]\nrequests_per_minute = 1\nburst = 8\nsign_in_failures_per_minute = 3\n"
                    .into(),
            ),
            ..ServerOptions::default()
        },
    )
    .await
    .unwrap();
    let base = server.base_url.clone();
    let origin = [("origin", base.as_str())];

    // Every response carries the security headers: pages, assets, the API, errors.
    for path in [
        "/login",
        "/assets/ui.css",
        "/healthz",
        "/v1/traces",
        "/nope",
    ] {
        let response = no_redirects()
            .get(format!("{base}{path}"))
            .send()
            .await
            .unwrap();
        let csp = header(&response, "content-security-policy");
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(header(&response, "x-frame-options"), "DENY", "{path}");
        assert_eq!(header(&response, "x-content-type-options"), "nosniff");
        assert_eq!(header(&response, "referrer-policy"), "same-origin");
    }
    let page = reqwest::get(format!("{base}/login"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !page.contains("<style") && !page.contains("onsubmit"),
        "{page}"
    );

    // Open redirects: each `next` leads to a page of this site, whatever it holds
    // (`/%09/evil.example` used to reach evil.example: browsers drop the tab).
    let (member, _) = new_key(&server, "browser", "member").await;
    for next in [
        "/\t/evil.example",
        "/\n/evil.example",
        "/\r\n/evil.example",
        "//evil.example",
        "/\\evil.example",
        "/\\/evil.example",
        "\\\\evil.example",
        "https://evil.example/",
        "http:evil.example",
        " //evil.example",
        "/ /evil.example",
        "javascript:alert(1)",
    ] {
        let response = sign_in(&server, &member, next, &origin).await;
        assert_eq!(response.status(), 303, "{next:?}");
        assert_eq!(header(&response, "location"), "/environments", "{next:?}");
    }
    let response = sign_in(&server, &member, "/traces?status=failed", &origin).await;
    assert_eq!(header(&response, "location"), "/traces?status=failed");
    // The sign-in page does not carry a hostile `next` into its form either.
    let page = reqwest::get(format!("{base}/login?next=%2F%09%2Fevil.example"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("evil.example"), "{page}");

    // A form of another site cannot sign a browser in (login CSRF) nor out.
    for (name, value) in [
        ("origin", "https://evil.example"),
        ("origin", "null"),
        ("sec-fetch-site", "cross-site"),
    ] {
        let response = sign_in(&server, &member, "/environments", &[(name, value)]).await;
        assert_eq!(response.status(), 403, "{name}: {value}");
        assert_eq!(header(&response, "set-cookie"), "", "{name}: {value}");
    }
    let response = no_redirects()
        .post(format!("{base}/logout"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);

    // The UI's routes count against the key's limit, and share the API's bucket: 8 at
    // once, then 429, in the browser and on the API alike.
    let cookie = session_cookie(&sign_in(&server, &member, "/environments", &origin).await);
    let mut statuses = Vec::new();
    for _ in 0..9 {
        let response = no_redirects()
            .get(format!("{base}/environments"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            assert!(!header(&response, "retry-after").is_empty());
            let body = response.text().await.unwrap();
            assert!(body.contains("too many requests"), "{body}");
        }
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 200, 200, 200, 429]);
    let response = no_redirects()
        .post(format!("{base}/ui/run"))
        .header("cookie", &cookie)
        .header("x-rollout-ui", "1")
        .header("origin", &base)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    let response = no_redirects()
        .get(format!("{base}/v1/traces"))
        .bearer_auth(&member)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429, "one bucket for the API and the UI");

    // Failed sign-ins are throttled per address: 3 guesses, then even the right key
    // waits.
    for _ in 0..3 {
        let response = sign_in(&server, "ro_guess", "/", &origin).await;
        assert_eq!(response.status(), 401);
    }
    let response = sign_in(&server, "ro_guess", "/", &origin).await;
    assert_eq!(response.status(), 429);
    assert!(!header(&response, "retry-after").is_empty());
    let response = sign_in(&server, &member, "/", &origin).await;
    assert_eq!(response.status(), 429);
    assert_eq!(header(&response, "set-cookie"), "");
    assert!(
        server.log().contains("failed sign-in"),
        "failed sign-ins are logged"
    );
}

/// Sends `text` on a fresh connection to the server.
async fn connect(server: &TestServer, text: &str) -> TcpStream {
    let address = server.base_url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(text.as_bytes()).await.unwrap();
    stream
}

/// Reads until the server closes the connection; what it sent.
async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    tokio::time::timeout(RUN_TIMEOUT, stream.read_to_end(&mut received))
        .await
        .expect("the server did not close the connection")
        .unwrap();
    String::from_utf8_lossy(&received).to_string()
}

/// Reads one response's head and body (`Content-Length` framed).
async fn read_response(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    tokio::time::timeout(RUN_TIMEOUT, async {
        loop {
            let n = stream.read(&mut buffer).await.unwrap();
            assert!(
                n > 0,
                "closed early: {}",
                String::from_utf8_lossy(&received)
            );
            received.extend_from_slice(&buffer[..n]);
            let text = String::from_utf8_lossy(&received).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|line| {
                        line.to_ascii_lowercase()
                            .strip_prefix("content-length: ")
                            .map(str::to_string)
                    })
                    .and_then(|n| n.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if body.len() >= length {
                    return text;
                }
            }
        }
    })
    .await
    .expect("no response")
}

const HEALTH: &str = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

#[tokio::test]
async fn slow_and_idle_clients_are_cut_off_and_connections_are_capped() {
    let server = TestServer::start(
        binary(),
        ServerOptions {
            config_toml: Some(
                "[http]\nheader_read_timeout_seconds = 2\nmax_connections = 1\n".into(),
            ),
            ..ServerOptions::default()
        },
    )
    .await
    .unwrap();

    // Slowloris: headers that never end are cut off after the header timeout.
    let started = Instant::now();
    let mut slow = connect(
        &server,
        "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: 1",
    )
    .await;
    read_to_close(&mut slow).await;
    let cut_after = started.elapsed();
    eprintln!("a slow-header client was cut off after {cut_after:?} (timeout 2 s)");

    // One connection at most: a second client is served only once the first is gone.
    let mut holder = connect(&server, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n").await;
    let mut waiting = connect(&server, HEALTH).await;
    let response = read_response(&mut waiting).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    // The holder was closed before the waiting client got its answer.
    let mut byte = [0u8; 1];
    let closed = tokio::time::timeout(Duration::ZERO, holder.read(&mut byte)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "the second client was served while the first held the only place: {closed:?}"
    );

    // An idle keep-alive connection is closed too.
    drop(waiting);
    let mut idle = connect(&server, HEALTH).await;
    let response = read_response(&mut idle).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert_eq!(read_to_close(&mut idle).await, "");
    let (status, _) = server.get("/healthz").await;
    assert_eq!(status, 200, "the server is fine");
}

/// Reads an SSE response until it ends; false if it did not within `RUN_TIMEOUT`.
async fn ends(response: reqwest::Response) -> bool {
    let mut response = response;
    tokio::time::timeout(RUN_TIMEOUT, async {
        while let Ok(Some(_)) = response.chunk().await {}
    })
    .await
    .is_ok()
}

#[tokio::test]
async fn event_streams_are_capped_per_key_and_end_when_the_key_is_revoked() {
    // No worker: the run stays queued, so its event stream never ends by itself.
    let server = TestServer::start(
        binary(),
        ServerOptions {
            args: vec!["--max-concurrent-runs".into(), "0".into()],
            config_toml: Some("[limits]\nevent_streams_per_key = 2\n".into()),
            ..ServerOptions::default()
        },
    )
    .await
    .unwrap();
    let (status, run) = server
        .post(
            "/v1/agent/run",
            &json!({"env_name": "my-assistant", "scenario_name": "answer_question",
                    "scenario_args": {"query": "q"}, "model": "replay",
                    "validation": [{"answer": "a"}]}),
        )
        .await;
    assert_eq!(status, 202, "{run}");
    let path = format!(
        "{}/v1/traces/{}/events",
        server.base_url,
        run["trace_id"].as_str().unwrap()
    );
    let (member, member_id) = new_key(&server, "watcher", "member").await;
    let open = |key: String| {
        let path = path.clone();
        async move {
            reqwest::Client::new()
                .get(path)
                .bearer_auth(key)
                .send()
                .await
                .unwrap()
        }
    };
    let first = open(member.clone()).await;
    let second = open(member.clone()).await;
    assert_eq!(
        (first.status().as_u16(), second.status().as_u16()),
        (200, 200)
    );
    let third = open(member.clone()).await;
    assert_eq!(third.status(), 429);
    let body: Value = third.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_many_streams", "{body}");
    // Other keys count on their own; a closed stream frees its place.
    let admin = open(server.admin_key.clone()).await;
    assert_eq!(admin.status(), 200);
    drop(first);
    let reopened = tokio::time::timeout(RUN_TIMEOUT, async {
        loop {
            let response = open(member.clone()).await;
            if response.status() == 200 {
                return response;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("a closed stream did not free its place");

    // Revoking the key ends its streams; the admin's stream goes on.
    let (status, _) = server
        .request(
            reqwest::Method::DELETE,
            &format!("/v1/keys/{member_id}"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (second_ended, reopened_ended) = tokio::join!(ends(second), ends(reopened));
    assert!(second_ended && reopened_ended, "{}", server.log());
    assert!(server.log().contains("its API key was revoked"));
    let mut admin = admin;
    let still_open = tokio::time::timeout(Duration::from_millis(1500), admin.chunk()).await;
    assert!(
        !matches!(still_open, Ok(Ok(None))),
        "the admin's stream ended too"
    );
}
