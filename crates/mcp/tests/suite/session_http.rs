//! The client's sessions over streamable HTTP: what they cost the environment on the wire.

use super::sdk::test_env;
use axum::extract::{ConnectInfo, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use rollout_mcp::sandbox::Sandbox;
use rollout_mcp::{EnvSession, EnvTarget};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Every request the environment received: its method and the client's address.
type Seen = Arc<Mutex<Vec<(String, SocketAddr)>>>;

async fn serve_http(seen: Seen) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let record = move |ConnectInfo(peer): ConnectInfo<SocketAddr>, request: Request, next: Next| {
        let seen = seen.clone();
        async move {
            seen.lock()
                .unwrap()
                .push((request.method().to_string(), peer));
            let response: Response = next.run(request).await;
            response
        }
    };
    let router = axum::Router::new()
        .nest_service("/mcp", test_env().http_service())
        .layer(middleware::from_fn(record));
    tokio::spawn(async move {
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        let _ = axum::serve(listener, service).await;
    });
    format!("http://{addr}/mcp")
}

/// A scenario session asks the environment only what it needs: no standalone SSE stream
/// (`GET`), which would cost each run one more exchange and a TCP connection of its own
/// (the stream holds it to the session's end), and each session ends with its `DELETE`.
#[tokio::test]
async fn sessions_open_no_standalone_stream() {
    let seen = Seen::default();
    let url = serve_http(seen.clone()).await;
    let target = EnvTarget::Url {
        url,
        headers: Default::default(),
    };
    let sandbox = Sandbox::unconfined().for_env("p", "test-env");
    let deletes = || {
        let seen = seen.lock().unwrap();
        seen.iter().filter(|(method, _)| method == "DELETE").count()
    };
    for session in 1..=3 {
        let connected = EnvSession::connect(&target, "test", &sandbox)
            .await
            .unwrap();
        assert!(!connected.visible_tools().await.unwrap().is_empty());
        drop(connected);
        // The session's worker sends its DELETE once the session is dropped.
        tokio::time::timeout(Duration::from_secs(20), async {
            while deletes() < session {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .unwrap();
    }
    let seen = seen.lock().unwrap().clone();
    let count = |wanted: &str| seen.iter().filter(|(method, _)| method == wanted).count();
    assert_eq!(count("GET"), 0, "{seen:?}");
    assert_eq!(count("DELETE"), 3, "{seen:?}");
    // initialize, initialized and the tool list, per session.
    assert_eq!(count("POST"), 9, "{seen:?}");
}
