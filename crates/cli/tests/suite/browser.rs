//! The web UI in a real headless Chromium, driven over WebDriver: sign-in, a scenario card
//! with its form and snippets (run for real with curl and python3), the Run button, the
//! trace page, an XSS attempt through a tool result, sign-out. Every test ends by reading
//! the browser's console: a Content-Security-Policy violation (an inline script or
//! handler the policy blocked, so a feature that silently stopped working) fails it.
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (`scripts/setup-browser`); without
//! them the test is skipped, unless `ROLLOUT_REQUIRE_BROWSER=1` (set by `scripts/test`).

use super::common::{RUN_TIMEOUT, server_with_fake};
use fantoccini::{Client, ClientBuilder, Locator};
use rollout_testkit::{FakeModelServer, FakeReply, Policy, ServerOptions, TestServer};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
const XSS: &str = "<img src=x onerror=\"window.__xss=1\"><script>window.__xss=2</script>";

pub(super) fn screenshots_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A chromedriver on a free loopback port, killed on drop.
pub(super) struct Driver {
    _child: tokio::process::Child,
    url: String,
    _profile: tempfile::TempDir,
}

pub(super) async fn start_driver() -> Option<(Driver, Client)> {
    if !std::path::Path::new(CHROMEDRIVER).exists() || !std::path::Path::new(CHROMIUM).exists() {
        assert!(
            std::env::var("ROLLOUT_REQUIRE_BROWSER").is_err(),
            "ROLLOUT_REQUIRE_BROWSER is set but chromium/chromedriver are missing: run scripts/setup-browser"
        );
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = tokio::process::Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let profile = tempfile::tempdir().unwrap();
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1280,1000",
                format!("--user-data-dir={}", profile.path().display()),
            ]
        }),
    );
    // The console, for the CSP check (`console_errors`).
    capabilities.insert("goog:loggingPrefs".into(), json!({"browser": "ALL"}));
    let mut last_error = String::new();
    for _ in 0..100 {
        match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities.clone())
            .connect(&url)
            .await
        {
            Ok(client) => {
                let driver = Driver {
                    _child: child,
                    url,
                    _profile: profile,
                };
                return Some((driver, client));
            }
            Err(error) => {
                last_error = error.to_string();
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    panic!("chromedriver did not start a session: {last_error}");
}

/// The browser console's entries since the last call (chromedriver's log endpoint).
pub(super) async fn console(driver: &Driver, client: &Client) -> Vec<Value> {
    let session = client.session_id().await.unwrap().unwrap();
    let response: Value = reqwest::Client::new()
        .post(format!("{}/session/{session}/se/log", driver.url))
        .json(&json!({"type": "browser"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    response["value"]
        .as_array()
        .unwrap_or_else(|| panic!("no browser log: {response}"))
        .clone()
}

/// Fails on any Content-Security-Policy violation the browser reported since the last
/// look: the pages must work under the policy the server sends.
pub(super) async fn assert_no_csp_violations(driver: &Driver, client: &Client) {
    let violations: Vec<Value> = console(driver, client)
        .await
        .into_iter()
        .filter(|entry| {
            entry["message"]
                .as_str()
                .is_some_and(|m| m.contains("Content Security Policy"))
        })
        .collect();
    assert!(violations.is_empty(), "CSP violations: {violations:#?}");
}

/// Loads each of `paths` (signed in as `client` is) and checks that it needs nothing the
/// strict Content-Security-Policy forbids: the answer carries the policy, without
/// `unsafe-inline` or `unsafe-eval`, and the page has no inline script (only
/// `<script src>` and JSON data blocks), no inline event handler (`onclick=`, ...) and no
/// inline style. Then no violation was reported while the pages ran.
pub(super) async fn assert_pages_follow_the_policy(
    driver: &Driver,
    client: &Client,
    base: &str,
    paths: &[String],
) {
    let session = client
        .get_named_cookie("rollout_session")
        .await
        .expect("a session cookie");
    let cookie = format!("rollout_session={}", session.value());
    for path in paths {
        let response = reqwest::Client::new()
            .get(format!("{base}{path}"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "{path}");
        let csp = response
            .headers()
            .get("content-security-policy")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        for needed in [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
        ] {
            assert!(csp.contains(needed), "{path}: {csp}");
        }
        assert!(!csp.contains("unsafe-"), "{path}: {csp}");
        client.goto(&format!("{base}{path}")).await.unwrap();
        let inline = client
            .execute(
                "var bad = [];
                 document.querySelectorAll('*').forEach(function (e) {
                   for (var i = 0; i < e.attributes.length; i++) {
                     var name = e.attributes[i].name;
                     if (/^on/i.test(name) || name === 'style') bad.push(e.tagName + ' ' + name);
                   }
                 });
                 document.querySelectorAll('script').forEach(function (s) {
                   if (!s.src && s.type !== 'application/json') bad.push('inline script');
                 });
                 document.querySelectorAll('style').forEach(function () { bad.push('style element'); });
                 return bad;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(inline, json!([]), "{path}");
    }
    assert_no_csp_violations(driver, client).await;
}

/// Evaluates `script` (a function body) until it returns a truthy value, bounded.
pub(super) async fn wait_js(client: &Client, script: &str, what: &str) -> Value {
    let deadline = tokio::time::Instant::now() + RUN_TIMEOUT;
    loop {
        let value = client.execute(script, vec![]).await.unwrap_or(Value::Null);
        let truthy = !matches!(&value, Value::Null | Value::Bool(false))
            && value != json!("")
            && value != json!(0);
        if truthy {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn snippet(client: &Client, lang: &str) -> String {
    client
        .execute(
            &format!("return document.querySelector('#scenario-answer_question code.snippet[data-lang={lang}]').textContent"),
            vec![],
        )
        .await
        .unwrap()
        .as_str()
        .unwrap()
        .to_string()
}

async fn run_command(program: &str, args: &[&str], key: &str) -> Value {
    let output = tokio::time::timeout(
        RUN_TIMEOUT,
        tokio::process::Command::new(program)
            .args(args)
            .env("ROLLOUT_API_KEY", key)
            .output(),
    )
    .await
    .unwrap()
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{program} failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{program} printed {stdout}: {e}"))
}

#[tokio::test]
async fn the_web_ui_runs_a_scenario_and_shows_its_trace() {
    let Some((driver, client)) = start_driver().await else {
        return;
    };
    let fake = FakeModelServer::start_with_policy(Policy::ToolStepsThenAnswer {
        tool: "calculator".into(),
        arguments: json!({"expression": "17 * 23"}),
        steps: 1,
    })
    .await
    .unwrap();
    let server = server_with_fake(&fake).await;
    let base = server.base_url.clone();

    // A run whose tool result carries markup, through the API first.
    fake.push([
        FakeReply::tool_call("lookup", json!({"topic": XSS})),
        FakeReply::text("done"),
    ]);
    let (status, xss_run) = server
        .post(
            "/v1/agent/run",
            &json!({"env_name": "my-assistant", "scenario_name": "answer_question",
                    "scenario_args": {"query": "What is 17 * 23?"}, "model": "claude-opus-4-5",
                    "sync": true}),
        )
        .await;
    assert_eq!(status, 200, "{xss_run}");
    let xss_id = xss_run["trace_id"].as_str().unwrap().to_string();

    // Every page needs a session: the first visit lands on sign-in.
    client.goto(&format!("{base}/environments")).await.unwrap();
    assert!(
        client
            .current_url()
            .await
            .unwrap()
            .path()
            .starts_with("/login")
    );
    client
        .find(Locator::Id("key"))
        .await
        .unwrap()
        .send_keys("ro_wrong")
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
        &client,
        "return document.body.innerText.includes('not valid')",
        "the sign-in error",
    )
    .await;
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
        &client,
        "return location.pathname === '/environments'",
        "the environments page",
    )
    .await;
    // The session cookie is HttpOnly: scripts cannot read it.
    let cookies = client
        .execute("return document.cookie", vec![])
        .await
        .unwrap();
    assert!(!cookies.as_str().unwrap().contains("rollout_session"));
    assert!(client.source().await.unwrap().contains("my-assistant"));
    // The policy is enforced and its violations reach the console this test reads: a
    // script injected inline does not run, and is reported.
    assert_no_csp_violations(&driver, &client).await;
    let injected = client
        .execute(
            "var s = document.createElement('script'); s.textContent = 'window.__inline = 1'; \
             document.body.appendChild(s); return window.__inline === undefined",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(injected, json!(true), "an inline script ran");
    let reported = console(&driver, &client).await;
    assert!(
        reported.iter().any(|entry| entry["message"]
            .as_str()
            .is_some_and(|m| m.contains("Content Security Policy"))),
        "{reported:#?}"
    );

    // The scenario card.
    client
        .goto(&format!("{base}/environments/my-assistant"))
        .await
        .unwrap();
    let card = client
        .wait()
        .at_most(RUN_TIMEOUT)
        .for_element(Locator::Id("scenario-answer_question"))
        .await
        .unwrap();
    let query = client
        .find(Locator::Id("scenario-answer_question-arg-query"))
        .await
        .unwrap();
    assert_eq!(
        query.attr("required").await.unwrap().as_deref(),
        Some("true")
    );
    query.clear().await.unwrap();
    query.send_keys("What is 17 * 23?").await.unwrap();
    let steps = client
        .find(Locator::Id("scenario-answer_question-max-steps"))
        .await
        .unwrap();
    steps.clear().await.unwrap();
    steps.send_keys("7").await.unwrap();
    let model: String = client
        .find(Locator::Id("scenario-answer_question-model"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(model, "claude-opus-4-5");
    for lang in ["curl", "python", "javascript"] {
        let text = snippet(&client, lang).await;
        assert!(text.contains("What is 17 * 23?"), "{lang}: {text}");
        assert!(text.contains("claude-opus-4-5"), "{lang}: {text}");
        assert!(
            text.contains(&format!("{base}/v1/agent/run")),
            "{lang}: {text}"
        );
        assert!(text.contains("ROLLOUT_API_KEY"), "{lang}: {text}");
    }
    assert!(snippet(&client, "curl").await.contains("\"max_steps\": 7"));
    assert!(
        snippet(&client, "python")
            .await
            .contains("\"max_steps\": 7")
    );
    assert!(snippet(&client, "python").await.contains("\"sync\": True"));
    assert!(
        snippet(&client, "javascript")
            .await
            .contains("\"max_steps\": 7")
    );
    // Typing updates every snippet at once.
    query.send_keys(" Show your work.").await.unwrap();
    for lang in ["curl", "python", "javascript"] {
        assert!(
            snippet(&client, lang)
                .await
                .contains("What is 17 * 23? Show your work."),
            "{lang}"
        );
    }
    // Tabs switch the visible snippet.
    card.find(Locator::Css("button.tab[data-lang=python]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let python_visible = client
        .execute("return !document.querySelector('#scenario-answer_question code.snippet[data-lang=python]').parentElement.hidden", vec![])
        .await
        .unwrap();
    assert_eq!(python_visible, json!(true));
    std::fs::write(
        screenshots_dir().join("scenario-card.png"),
        card.screenshot().await.unwrap(),
    )
    .unwrap();

    // The snippets work for real.
    let dir = tempfile::tempdir().unwrap();
    let curl_path = dir.path().join("run.sh");
    std::fs::write(&curl_path, snippet(&client, "curl").await).unwrap();
    let from_curl = run_command("bash", &[curl_path.to_str().unwrap()], &server.admin_key).await;
    assert_eq!(from_curl["status"], "completed", "{from_curl}");
    assert_eq!(from_curl["reward"], 1.0, "{from_curl}");
    let python_path = dir.path().join("run.py");
    std::fs::write(&python_path, snippet(&client, "python").await).unwrap();
    let from_python = run_command(
        "python3",
        &[python_path.to_str().unwrap()],
        &server.admin_key,
    )
    .await;
    assert_eq!(from_python["status"], "completed", "{from_python}");
    assert_eq!(from_python["reward"], 1.0, "{from_python}");
    // "Python (your own agent)": the hud SDK through the MCP gateway.
    let agent = snippet(&client, "agent").await;
    assert!(
        agent.contains(&format!("{base}/v1/environments/my-assistant/mcp")),
        "{agent}"
    );
    assert!(
        agent.contains("What is 17 * 23? Show your work."),
        "{agent}"
    );
    if let Ok(python) = std::env::var("ROLLOUT_TEST_PYTHON") {
        let agent_path = dir.path().join("agent.py");
        std::fs::write(&agent_path, &agent).unwrap();
        let output = tokio::time::timeout(
            RUN_TIMEOUT,
            tokio::process::Command::new(python)
                .arg(&agent_path)
                .env("ROLLOUT_API_KEY", &server.admin_key)
                .env("HUD_API_URL", "http://127.0.0.1:9")
                .env("HUD_TELEMETRY_URL", "http://127.0.0.1:9")
                .env("HUD_TELEMETRY_ENABLED", "false")
                .output(),
        )
        .await
        .unwrap()
        .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            stdout.contains("reward: 0.0"),
            "{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    // The Run button queues a run and opens its trace, which goes live and then final.
    client
        .find(Locator::Css("#scenario-answer_question button.run"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_js(
        &client,
        "return location.pathname.startsWith('/traces/')",
        "the trace page",
    )
    .await;
    let trace_id = client
        .current_url()
        .await
        .unwrap()
        .path()
        .trim_start_matches("/traces/")
        .to_string();
    wait_js(
        &client,
        "return document.getElementById('evaluation') && !document.getElementById('live')",
        "the finished trace",
    )
    .await;
    let trace = server.wait_for_trace(&trace_id, RUN_TIMEOUT).await;
    assert_eq!(trace["status"], "completed");
    let text: String = client
        .find(Locator::Css("main"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let reward_text = client
        .find(Locator::Css("#stat-reward .value"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(reward_text, "1.000");
    let input_tokens = client
        .find(Locator::Css("#stat-input-tokens .value"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(input_tokens, trace["usage"]["input_tokens"].to_string());
    assert_ne!(input_tokens, "0");
    let output_tokens = client
        .find(Locator::Css("#stat-output-tokens .value"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(output_tokens, trace["usage"]["output_tokens"].to_string());
    assert!(text.contains("tool calculator"), "{text}");
    assert!(text.contains("\"expression\": \"17 * 23\""), "{text}");
    assert!(text.contains("out tokens"), "{text}");
    assert!(text.contains("The answer is 391."), "{text}");
    assert!(text.contains("What is 17 * 23? Show your work."), "{text}");
    // A tall window, so that the screenshot holds the whole timeline.
    client.set_window_size(1280, 2400).await.unwrap();
    std::fs::write(
        screenshots_dir().join("trace-page.png"),
        client.screenshot().await.unwrap(),
    )
    .unwrap();

    // The traces list links to it.
    client
        .goto(&format!(
            "{base}/traces?model=claude-opus-4-5&reward_min=0.5"
        ))
        .await
        .unwrap();
    let list = client.source().await.unwrap();
    assert!(list.contains(&format!("/traces/{trace_id}")));
    assert!(
        !list.contains(&format!("/traces/{xss_id}")),
        "reward filter"
    );

    // Markup in a tool result is shown as text and never runs.
    client
        .goto(&format!("{base}/traces/{xss_id}"))
        .await
        .unwrap();
    wait_js(
        &client,
        "return document.readyState === 'complete'",
        "the XSS trace",
    )
    .await;
    let xss = client
        .execute(
            "return {flag: window.__xss === undefined, img: document.querySelectorAll('main img').length, text: document.querySelector('main').innerText}",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(xss["flag"], true, "{xss}");
    assert_eq!(xss["img"], 0, "{xss}");
    assert!(xss["text"].as_str().unwrap().contains(XSS), "{xss}");
    std::fs::write(
        screenshots_dir().join("trace-xss.png"),
        client.screenshot().await.unwrap(),
    )
    .unwrap();

    // A narrow screen still works (no horizontal page overflow of the card).
    client.set_window_size(400, 900).await.unwrap();
    client
        .goto(&format!("{base}/environments/my-assistant"))
        .await
        .unwrap();
    let overflow = client
        .execute(
            "return document.documentElement.scrollWidth <= window.innerWidth + 1",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(overflow, json!(true));
    std::fs::write(
        screenshots_dir().join("scenario-card-narrow.png"),
        client.screenshot().await.unwrap(),
    )
    .unwrap();
    client.set_window_size(1280, 1000).await.unwrap();

    // Usage page draws its chart.
    client.goto(&format!("{base}/usage")).await.unwrap();
    let bars = client
        .execute(
            "return document.querySelectorAll('svg.chart rect').length",
            vec![],
        )
        .await
        .unwrap();
    assert!(bars.as_u64().unwrap() >= 1);
    std::fs::write(
        screenshots_dir().join("usage.png"),
        client.screenshot().await.unwrap(),
    )
    .unwrap();

    // Every page works under the strict policy.
    let pages: Vec<String> = [
        "/environments",
        "/environments/my-assistant",
        "/traces",
        &format!("/traces/{trace_id}"),
        &format!("/traces/{xss_id}"),
        &format!("/traces/{trace_id}/timeline"),
        "/usage",
        "/jobs",
        "/training",
        "/docs",
    ]
    .map(String::from)
    .to_vec();
    assert_pages_follow_the_policy(&driver, &client, &base, &pages).await;

    // Sign-out ends the session.
    client.goto(&format!("{base}/environments")).await.unwrap();
    client
        .find(Locator::Id("sign-out"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_js(
        &client,
        "return location.pathname === '/login'",
        "the sign-in page",
    )
    .await;
    client.goto(&format!("{base}/traces")).await.unwrap();
    assert!(
        client
            .current_url()
            .await
            .unwrap()
            .path()
            .starts_with("/login")
    );
    assert_no_csp_violations(&driver, &client).await;
    client.close().await.unwrap();
}

/// Signs in on `base` with `key`, from the sign-in page.
async fn sign_in(client: &Client, base: &str, key: &str) {
    client.goto(&format!("{base}/login")).await.unwrap();
    client
        .find(Locator::Id("key"))
        .await
        .unwrap()
        .send_keys(key)
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

#[tokio::test]
async fn the_trace_page_follows_a_run_live_until_it_ends() {
    let Some((driver, client)) = start_driver().await else {
        return;
    };
    // No worker: the run stays queued until it is cancelled, so the page is surely live.
    let server = TestServer::start(
        super::common::binary(),
        ServerOptions {
            args: vec!["--max-concurrent-runs".into(), "0".into()],
            ..ServerOptions::default()
        },
    )
    .await
    .unwrap();
    let base = server.base_url.clone();
    let (status, queued) = server
        .post(
            "/v1/agent/run",
            &json!({"env_name": "my-assistant", "scenario_name": "answer_question",
                    "scenario_args": {"query": "<b>bold?</b>"}, "model": "replay",
                    "validation": [{"answer": "391"}]}),
        )
        .await;
    assert_eq!(status, 202, "{queued}");
    let trace_id = queued["trace_id"].as_str().unwrap();
    sign_in(&client, &base, &server.admin_key).await;
    client
        .goto(&format!("{base}/traces/{trace_id}"))
        .await
        .unwrap();
    client.find(Locator::Id("live")).await.unwrap();
    let page = client
        .find(Locator::Css("main"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("queued"), "{page}");
    // The page is subscribed to the run's events: the cancellation's `finished` event
    // reloads it, and the result shows without the test reloading anything.
    client
        .execute("window.__same_page = true; return true", vec![])
        .await
        .unwrap();
    let (status, body) = server
        .post(&format!("/v1/traces/{trace_id}/cancel"), &json!({}))
        .await;
    assert!(status == 200 || status == 202, "{status} {body}");
    wait_js(
        &client,
        "return !document.getElementById('live') && document.body.innerText.includes('cancelled')",
        "the page to follow the run to its end",
    )
    .await;
    // It reloaded itself (a new document has no marker).
    let marker = client
        .execute("return window.__same_page === undefined", vec![])
        .await
        .unwrap();
    assert_eq!(marker, json!(true));
    assert_no_csp_violations(&driver, &client).await;
    client.close().await.unwrap();
}

/// `text` of the first element matching `css`.
async fn text_of(client: &Client, css: &str) -> String {
    client
        .find(Locator::Css(css))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_job_page_shows_metrics_and_trains_a_checkpoint() {
    let Some((driver, client)) = start_driver().await else {
        return;
    };
    let fake = FakeModelServer::start_with_policy(Policy::ToolStepsThenAnswer {
        tool: "calculator".into(),
        arguments: json!({"expression": "17 * 23"}),
        steps: 1,
    })
    .await
    .unwrap();
    let server = server_with_fake(&fake).await;
    let base = server.base_url.clone();

    // The replay model solves `mul` and fails the task with a malicious id.
    let tasks = [
        json!({"id": "mul", "env": "my-assistant", "scenario": "answer_question",
               "args": {"query": "What is 17 * 23?"}, "validation": [{"answer": "391"}]}),
        json!({"id": XSS, "env": "my-assistant", "scenario": "answer_question",
               "args": {"query": "What is the capital of France?"},
               "validation": [{"answer": "Lyon"}]}),
    ];
    let request = server
        .client()
        .post(format!("{base}/v1/tasksets/arith/import"))
        .bearer_auth(&server.admin_key)
        .header("content-type", "application/x-ndjson")
        .body(tasks.iter().map(|t| format!("{t}\n")).collect::<String>());
    let (status, imported) = server.send(request).await;
    assert_eq!(status, 201, "{imported}");
    let (status, job) = server
        .post(
            "/v1/jobs",
            &json!({"taskset": "arith", "models": ["replay"], "repeats": 2,
                    "metadata": {"note": XSS}}),
        )
        .await;
    assert_eq!(status, 201, "{job}");
    let job_id = job["id"].as_str().unwrap().to_string();
    tokio::time::timeout(RUN_TIMEOUT, async {
        loop {
            let (_, job) = server.get(&format!("/v1/jobs/{job_id}")).await;
            if job["status"] == "finished" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the job did not finish\n{}", server.log()));

    sign_in(&client, &base, &server.admin_key).await;
    // The top bar leads to the jobs, the list to the job.
    client
        .find(Locator::Css("header.top nav a[href='/jobs']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    client
        .find(Locator::Css(&format!("#jobs a[href='/jobs/{job_id}']")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_js(
        &client,
        "return location.pathname.startsWith('/jobs/') && document.getElementById('metrics')",
        "the job page",
    )
    .await;
    // Rewards 1, 1, 0, 0: mean 0.5, s² = 1/3, se = sqrt(1/12).
    assert_eq!(
        text_of(&client, "#metrics tr.model-row td.mean-reward").await,
        "0.500 ± 0.289"
    );
    let page = text_of(&client, "main").await;
    assert!(page.contains("finished"), "{page}");
    assert!(page.contains("50.0%"), "{page}");
    assert!(page.contains("arith"), "{page}");
    // Markup in a task id and in the job's metadata shows as text and never runs.
    assert!(page.contains(XSS), "{page}");
    let xss = client
        .execute(
            "return [window.__xss === undefined, document.querySelectorAll('main img').length]",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(xss, json!([true, 0]), "markup ran");
    let metadata: String = client
        .find(Locator::Id("job-metadata"))
        .await
        .unwrap()
        .prop("textContent")
        .await
        .unwrap()
        .unwrap();
    assert!(metadata.contains("onerror"), "{metadata}");
    // Each run links to its trace.
    let links = client
        .execute(
            "return document.querySelectorAll('#runs a.trace-link').length",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(links, json!(4));
    client.set_window_size(1280, 2000).await.unwrap();
    std::fs::write(
        screenshots_dir().join("job-page.png"),
        client.screenshot().await.unwrap(),
    )
    .unwrap();
    client.set_window_size(1280, 1000).await.unwrap();

    // Train model: the two successful runs, fewshot on the provider model.
    assert_eq!(
        text_of(&client, "#train-count").await,
        "2 of 4 completed runs selected"
    );
    client
        .execute(
            "document.getElementById('train-base').value = 'claude-opus-4-5'; return true",
            vec![],
        )
        .await
        .unwrap();
    let backend: String = client
        .find(Locator::Id("train-backend"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(backend, "fewshot");
    client
        .find(Locator::Id("train-button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_js(
        &client,
        "return location.pathname.startsWith('/training/')",
        "the checkpoint page",
    )
    .await;
    wait_js(
        &client,
        "var s = document.getElementById('training-status'); return s && s.textContent.includes('succeeded') && document.getElementById('evaluate-button')",
        "the training job to succeed",
    )
    .await;
    let training_id = client
        .current_url()
        .await
        .unwrap()
        .path()
        .trim_start_matches("/training/")
        .to_string();
    let lineage = text_of(&client, "#lineage").await;
    assert!(lineage.contains("claude-opus-4-5"), "{lineage}");
    assert!(lineage.contains("fewshot"), "{lineage}");
    assert!(lineage.contains("2 traces"), "{lineage}");
    assert!(lineage.contains("arith"), "{lineage}");
    client
        .find(Locator::Css(&format!("#source-job[href='/jobs/{job_id}']")))
        .await
        .unwrap();
    let checkpoint = text_of(&client, "#checkpoint-name").await;
    assert!(!text_of(&client, "#training-log").await.is_empty());
    std::fs::write(
        screenshots_dir().join("checkpoint-page.png"),
        client.screenshot().await.unwrap(),
    )
    .unwrap();
    let (status, models) = server.get("/v1/models").await;
    assert_eq!(status, 200);
    assert!(models.to_string().contains(&checkpoint), "{models}");

    // Evaluate on the same taskset: a job with the checkpoint and its base model.
    client
        .find(Locator::Id("evaluate-button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_js(
        &client,
        &format!("return location.pathname.startsWith('/jobs/') && !location.pathname.endsWith('{job_id}')"),
        "the evaluation job's page",
    )
    .await;
    let evaluation_id = client
        .current_url()
        .await
        .unwrap()
        .path()
        .trim_start_matches("/jobs/")
        .to_string();
    let (status, evaluation) = server.get(&format!("/v1/jobs/{evaluation_id}")).await;
    assert_eq!(status, 200, "{evaluation}");
    assert_eq!(evaluation["taskset"], "arith");
    assert_eq!(evaluation["models"], json!([checkpoint, "claude-opus-4-5"]));
    // Two models: the page compares them once the job has ended (it refreshes itself).
    wait_js(
        &client,
        "return document.getElementById('comparison') && !document.getElementById('live')",
        "the evaluation job to end",
    )
    .await;
    let comparison = text_of(&client, "#comparison").await;
    let comparison = comparison.to_lowercase();
    assert!(
        comparison.contains(&checkpoint.to_lowercase()),
        "{comparison}"
    );
    assert!(comparison.contains("paired tasks"), "{comparison}");
    client.set_window_size(1280, 2400).await.unwrap();
    std::fs::write(
        screenshots_dir().join("job-compare.png"),
        client.screenshot().await.unwrap(),
    )
    .unwrap();
    client.set_window_size(1280, 1000).await.unwrap();

    // The UI's posting routes refuse requests without the X-Rollout-UI header (a
    // cross-site form cannot send it), before looking at the session.
    for path in ["/ui/jobs", "/ui/datasets", "/ui/training"] {
        let response = server
            .client()
            .post(format!("{base}{path}"))
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 403, "{path}");
    }

    // The traces list filtered by the first job.
    client
        .goto(&format!("{base}/traces?job_id={job_id}"))
        .await
        .unwrap();
    client.find(Locator::Id("job-filter")).await.unwrap();
    let rows = client
        .execute(
            "return document.querySelectorAll('#traces tbody a[href^=\"/traces/\"]').length",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(rows, json!(4));
    let pages = [
        format!("/jobs/{job_id}"),
        format!("/jobs/{evaluation_id}"),
        format!("/training/{training_id}"),
        "/training".into(),
    ];
    assert_pages_follow_the_policy(&driver, &client, &base, &pages).await;
    client.close().await.unwrap();
}
