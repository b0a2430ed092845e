//! The chat front-end recipe (`examples/automation/chat.html`) in a real browser: a page on
//! another origin calls `POST /v1/agent/run` with `fetch`, allowed by `cors_origins`.

use super::browser::{start_driver, wait_js};
use super::common::{binary, fake_options};
use fantoccini::Locator;
use rollout_testkit::{FakeModelServer, FakeReply, TestServer};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const CHAT: &str = include_str!("../../../../examples/automation/chat.html");

/// Serves one HTML page on `listener` (another origin than the API's).
fn serve_page(listener: TcpListener, html: String) {
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let html = html.clone();
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{html}",
                    html.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
}

#[tokio::test]
async fn the_chat_recipe_runs_a_scenario_from_another_origin() {
    let Some((_driver, client)) = start_driver().await else {
        return;
    };
    let fake = FakeModelServer::start().await.unwrap();
    fake.push([FakeReply::text("17 * 23 = 391")]);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let page_origin = format!("http://{}", listener.local_addr().unwrap());
    let mut options = fake_options(&fake);
    options.config_toml = Some(format!("cors_origins = [\"{page_origin}\"]\n"));
    let server = TestServer::start(binary(), options).await.unwrap();
    let html = CHAT
        .replace("http://127.0.0.1:8300", &server.base_url)
        .replace("ro_...", &server.admin_key);
    serve_page(listener, html);

    client.goto(&format!("{page_origin}/")).await.unwrap();
    let input = client.find(Locator::Css("input[name=q]")).await.unwrap();
    input.send_keys("What is 17 * 23?").await.unwrap();
    client
        .find(Locator::Css("#ask button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let answer = wait_js(
        &client,
        "return document.getElementById('answer').textContent",
        "the answer",
    )
    .await;
    assert_eq!(answer, json!("17 * 23 = 391"), "{}", server.log());
    let (_, traces) = server.get("/v1/traces").await;
    assert_eq!(traces["traces"][0]["status"], "completed");
    assert_eq!(traces["traces"][0]["reward"], 1.0);
    client.close().await.unwrap();
}
