//! Retries, timeouts and error reporting, shared by both clients.

use super::{WAIT, complete, fast_retry, first_request};
use rollout_domain::{ModelClient, ModelErrorKind};
use rollout_models::{ApiKey, ClientConfig, OpenAiChatClient};
use rollout_testkit::{FakeModelServer, FakeReply};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn a_429_is_retried_after_retry_after_then_succeeds() {
    let server = FakeModelServer::start().await.unwrap();
    server.push([FakeReply::rate_limited(1), FakeReply::text("ok")]);
    let client = super::anthropic(&server, Some("k"), fast_retry(4));
    let response = complete(&client, &first_request()).await.unwrap();
    assert_eq!(response.message.content, "ok");
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn a_retry_after_longer_than_max_delay_ends_the_retries() {
    let server = FakeModelServer::start().await.unwrap();
    server.push([FakeReply::rate_limited(120), FakeReply::text("not reached")]);
    let client = super::openai(&server, Some("k"), fast_retry(4));
    let error = complete(&client, &first_request()).await.unwrap_err();
    assert_eq!(error.kind, ModelErrorKind::RateLimited);
    assert_eq!(error.status, Some(429));
    assert_eq!(error.retry_after_ms, Some(120_000));
    assert!(
        error.message.contains("asked to wait 120.0 s"),
        "{}",
        error.message
    );
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn overloaded_529_and_openai_500_are_retried() {
    let server = FakeModelServer::start().await.unwrap();
    server.push([FakeReply::error(529, "Overloaded"), FakeReply::text("a")]);
    let anthropic = super::anthropic(&server, Some("k"), fast_retry(2));
    assert_eq!(
        complete(&anthropic, &first_request())
            .await
            .unwrap()
            .message
            .content,
        "a"
    );

    server.push([
        FakeReply::error(500, "boom"),
        FakeReply::error(503, "busy"),
        FakeReply::text("b"),
    ]);
    let openai = super::openai(&server, Some("k"), fast_retry(3));
    assert_eq!(
        complete(&openai, &first_request())
            .await
            .unwrap()
            .message
            .content,
        "b"
    );
    assert_eq!(server.requests().len(), 5);
}

#[tokio::test]
async fn server_errors_give_up_after_max_attempts_with_a_clear_error() {
    let server = FakeModelServer::start().await.unwrap();
    server.push((0..3).map(|_| FakeReply::error(500, "the fake is down")));
    server.push([FakeReply::text("never reached")]);
    let client = super::anthropic(&server, Some("k"), fast_retry(3));
    let error = complete(&client, &first_request()).await.unwrap_err();
    assert_eq!(error.kind, ModelErrorKind::Server);
    assert_eq!(error.status, Some(500));
    assert_eq!(
        error.message,
        "anthropic error: api_error: the fake is down (gave up after 3 attempts)"
    );
    assert_eq!(
        error.to_string(),
        "model call failed (server_error, HTTP 500): anthropic error: api_error: the fake is down (gave up after 3 attempts)"
    );
    assert_eq!(server.requests().len(), 3);
    assert_eq!(server.remaining(), 1);
}

#[tokio::test]
async fn bad_requests_and_auth_errors_fail_at_once() {
    let server = FakeModelServer::start().await.unwrap();
    server.push([
        FakeReply::error(400, "max_tokens: too large"),
        FakeReply::error(401, "invalid x-api-key"),
    ]);
    let client = super::anthropic(&server, Some("k"), fast_retry(4));
    let error = complete(&client, &first_request()).await.unwrap_err();
    assert_eq!(
        (error.kind, error.status),
        (ModelErrorKind::BadRequest, Some(400))
    );
    assert_eq!(
        error.message,
        "anthropic error: invalid_request_error: max_tokens: too large"
    );
    let error = complete(&client, &first_request()).await.unwrap_err();
    assert_eq!(
        (error.kind, error.status),
        (ModelErrorKind::Auth, Some(401))
    );
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn an_under_scripted_fake_fails_loudly() {
    let server = FakeModelServer::start().await.unwrap();
    let client = super::openai(&server, None, fast_retry(2));
    let error = complete(&client, &first_request()).await.unwrap_err();
    assert_eq!(error.kind, ModelErrorKind::Server);
    assert!(
        error.message.contains("the script is empty"),
        "{}",
        error.message
    );
}

#[tokio::test]
async fn the_api_key_never_appears_in_errors_or_debug_output() {
    let key = "sk-very-secret-key";
    let server = FakeModelServer::start().await.unwrap();
    // A provider that echoes the key back in its error message.
    server.push([FakeReply::Error {
        status: 401,
        retry_after_secs: None,
        body: json!({"error": {"message": format!("Incorrect API key provided: {key}"), "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}}),
    }]);
    let client = super::openai(&server, Some(key), fast_retry(2));
    let error = complete(&client, &first_request()).await.unwrap_err();
    assert_eq!(error.kind, ModelErrorKind::Auth);
    for text in [
        error.to_string(),
        format!("{error:?}"),
        format!("{client:?}"),
    ] {
        assert!(!text.contains(key), "key leaked: {text}");
    }
    assert!(
        error.message.contains("Incorrect API key provided: ***"),
        "{}",
        error.message
    );

    let anthropic = super::anthropic(&server, Some(key), fast_retry(1));
    assert!(!format!("{anthropic:?}").contains(key));
    assert!(!format!("{:?}", ApiKey::new(key)).contains(key));
}

#[tokio::test]
async fn a_silent_server_times_out_per_attempt() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    // Accept connections and never answer.
    let holder = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            open.push(stream);
        }
    });
    let client = OpenAiChatClient::new(
        ClientConfig::new("local", format!("http://{address}/v1"), "m")
            .with_retry(fast_retry(2))
            .with_request_timeout(Duration::from_millis(200)),
    );
    let error = tokio::time::timeout(WAIT, client.complete(&first_request()))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(error.kind, ModelErrorKind::Timeout);
    assert!(
        error.message.contains("gave up after 2 attempts"),
        "{}",
        error.message
    );
    holder.abort();
}

#[tokio::test]
async fn a_refused_connection_is_a_connect_error() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let client = OpenAiChatClient::new(
        ClientConfig::new("local", format!("http://user:pw@{address}/v1"), "m")
            .with_retry(fast_retry(2)),
    );
    let error = complete(&client, &first_request()).await.unwrap_err();
    assert_eq!(error.kind, ModelErrorKind::Connect);
    assert_eq!(error.status, None);
    assert!(
        error
            .message
            .contains(&format!("http://{address}/v1/chat/completions")),
        "{}",
        error.message
    );
    assert!(!error.message.contains("pw"), "{}", error.message);
}
