//! The SDK over streamable HTTP: stateful sessions, isolated from each other.

use super::sdk::{Client, call, get_prompt, mcp_error, read, test_env};
use rmcp::ServiceExt;
use rmcp::transport::StreamableHttpClientTransport;
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

async fn serve_http() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = axum::Router::new().nest_service("/mcp", test_env().http_service());
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    format!("http://{addr}/mcp")
}

async fn connect(url: &str) -> Client {
    // reqwest is built without a default TLS provider; plain http still needs one installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let transport = StreamableHttpClientTransport::from_uri(url.to_owned());
    tokio::time::timeout(WAIT, ().serve(transport))
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn http_sessions_keep_their_own_scenarios() {
    let url = serve_http().await;
    let first = connect(&url).await;
    let second = connect(&url).await;
    let info = serde_json::to_value(first.peer_info().unwrap()).unwrap();
    assert_eq!(info["serverInfo"]["name"], "test-env");

    get_prompt(
        &first,
        "test-env:answer_question",
        json!({"query": "What is 17 * 23?"}),
    )
    .await
    .unwrap();
    // The second session has no active scenario, whatever the first one does.
    let (is_error, text) = call(
        &second,
        "_hud_submit",
        json!({"scenario": "answer_question", "answer": "391"}),
    )
    .await;
    assert!(is_error, "{text}");
    let error = read(&second, "test-env:answer_question").await.unwrap_err();
    assert_eq!(
        mcp_error(error),
        (0, "Resource not found: test-env:answer_question".into())
    );

    get_prompt(&second, "test-env:answer_question", json!({"query": "q"}))
        .await
        .unwrap();
    call(
        &second,
        "_hud_submit",
        json!({"scenario": "answer_question", "answer": "Lyon"}),
    )
    .await;
    call(
        &first,
        "_hud_submit",
        json!({"scenario": "answer_question", "answer": "391"}),
    )
    .await;
    let first_text = read(&first, "test-env:answer_question").await.unwrap();
    let second_text = read(&second, "test-env:answer_question").await.unwrap();
    assert!(first_text.starts_with(r#"{"reward": 1.0"#), "{first_text}");
    assert!(
        second_text.starts_with(r#"{"reward": 0.0"#),
        "{second_text}"
    );

    tokio::time::timeout(WAIT, first.cancel())
        .await
        .unwrap()
        .unwrap();
    tokio::time::timeout(WAIT, second.cancel())
        .await
        .unwrap()
        .unwrap();
}
