//! The API as a contract: `GET /openapi.json` documents exactly the routes the server
//! answers, and schemathesis, fuzzing every operation against a live server, finds no
//! server error, no undocumented status or content type and no answer outside its schema.

use super::common::{binary, plain_server};
use rollout_testkit::{ServerOptions, TestServer};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// The document's operations as `(method, path)`.
fn documented(document: &Value) -> BTreeSet<(String, String)> {
    let mut operations = BTreeSet::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for method in METHODS {
            if item.get(method.to_ascii_lowercase()).is_some() {
                operations.insert((method.to_string(), path.clone()));
            }
        }
    }
    operations
}

/// Every `"/v1/..."` literal of the server's source (the router and any module that adds
/// routes), so that a route added anywhere is probed.
fn source_paths() -> BTreeSet<String> {
    fn walk(dir: &Path, found: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).expect("server source") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("source file");
                // Every string literal that is a /v1 path; one that is not a route only
                // answers 404 below.
                for (start, _) in text.match_indices("\"/v1/") {
                    let literal = &text[start + 1..];
                    let end = literal.find('"').unwrap_or(literal.len());
                    let literal = &literal[..end];
                    if !literal.contains(char::is_whitespace) {
                        found.insert(literal.to_string());
                    }
                }
            }
        }
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../server/src");
    let mut found = BTreeSet::new();
    walk(&root, &mut found);
    assert!(found.len() > 30, "found only {found:?} in {root:?}");
    found
}

/// `/v1/traces/{id}/cancel` → `/v1/traces/x/cancel`.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|part| if part.starts_with('{') { "x" } else { part })
        .collect::<Vec<_>>()
        .join("/")
}

/// The routes the running server answers: without a key, a route that exists answers 401
/// (authentication runs only on matched routes), a method it lacks 405, a path 404.
async fn answered(server: &TestServer, paths: &BTreeSet<String>) -> BTreeSet<(String, String)> {
    let mut operations = BTreeSet::new();
    for path in paths {
        for method in METHODS {
            let request = server.client().request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                format!("{}{}", server.base_url, concrete(path)),
            );
            let (status, body) = server.send(request).await;
            match status {
                401 => {
                    operations.insert((method.to_string(), path.clone()));
                }
                404 | 405 => {}
                other => panic!("{method} {path} without a key answered {other}: {body}"),
            }
        }
    }
    operations
}

#[tokio::test]
async fn the_document_lists_every_route_and_no_other() {
    let server = plain_server().await;
    let response = server
        .client()
        .get(format!("{}/openapi.json", server.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "the document needs no key");
    let document: Value = response.json().await.unwrap();
    assert_eq!(document["openapi"], "3.1.0");

    let documented = documented(&document);
    let mut paths = source_paths();
    paths.extend(documented.iter().map(|(_, path)| path.clone()));
    let paths: BTreeSet<String> = paths
        .into_iter()
        .filter(|p| p.starts_with("/v1/"))
        .collect();
    let answered = answered(&server, &paths).await;
    assert!(answered.len() > 40, "{answered:?}");
    let documented_v1: BTreeSet<_> = documented
        .iter()
        .filter(|(_, path)| path.starts_with("/v1/"))
        .cloned()
        .collect();
    let undocumented: Vec<_> = answered.difference(&documented_v1).collect();
    let phantom: Vec<_> = documented_v1.difference(&answered).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from /openapi.json (add them to crates/server/src/openapi/paths.rs): {undocumented:?}"
    );
    assert!(phantom.is_empty(), "documented but not served: {phantom:?}");
    for extra in ["/healthz", "/openapi.json"] {
        assert!(
            documented.contains(&("GET".to_string(), extra.to_string())),
            "{extra} is not documented"
        );
    }

    // Every /v1 operation: the Bearer scheme, a 401 and the error body.
    let scheme = &document["components"]["securitySchemes"]["bearer"];
    assert_eq!(scheme["type"], "http");
    assert_eq!(scheme["scheme"], "bearer");
    assert_eq!(document["security"], json!([{"bearer": []}]));
    let error = &document["components"]["schemas"]["ErrorDetail"];
    for field in ["code", "message", "details"] {
        assert!(error["properties"].get(field).is_some(), "{error}");
    }
    for (method, path) in &documented_v1 {
        let operation = &document["paths"][path][method.to_ascii_lowercase()];
        let unauthorized = &operation["responses"]["401"]["content"]["application/json"];
        assert_eq!(
            unauthorized["schema"]["$ref"], "#/components/schemas/ErrorBody",
            "{method} {path}"
        );
    }
    // The README's request is the run body's example.
    let example = &document["components"]["schemas"]["RunRequest"]["example"];
    assert_eq!(example["scenario_name"], "answer_question", "{example}");
}

/// schemathesis, when the test command installed it (`scripts/setup-schemathesis`);
/// missing while it should have is a failure, not a skip.
fn schemathesis() -> Option<String> {
    match std::env::var("ROLLOUT_TEST_SCHEMATHESIS") {
        Ok(st) if !st.is_empty() => Some(st),
        _ => {
            assert!(
                std::env::var("ROLLOUT_REQUIRE_SCHEMATHESIS").is_err(),
                "ROLLOUT_TEST_SCHEMATHESIS is not set; run the tests with scripts/test"
            );
            None
        }
    }
}

#[tokio::test]
async fn schemathesis_finds_no_failure_in_any_operation() {
    let Some(st) = schemathesis() else { return };
    let server = TestServer::start(binary(), ServerOptions::default())
        .await
        .expect("server starts");
    // Something to find: the README's run, finished.
    let (status, run) = server
        .post(
            "/v1/agent/run",
            &json!({"env_name": "my-assistant", "scenario_name": "answer_question",
                "scenario_args": {"query": "What is 17 * 23?"}, "model": "replay",
                "validation": [{"name": "calculator", "arguments": {"expression": "17 * 23"}},
                    {"answer": "17 * 23 = 391"}], "sync": true}),
        )
        .await;
    assert_eq!(status, 200, "{run}");
    let report = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new(&st)
        .arg("run")
        .arg(format!("{}/openapi.json", server.base_url))
        .args(["--header", &format!("Authorization: Bearer {}", server.admin_key)])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        ])
        .args(["--max-examples", "50", "--seed", "13", "--workers", "2"])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--request-timeout", "60"])
        .arg("--report=junit")
        .arg("--report-dir")
        .arg(report.path())
        .env("SCHEMATHESIS_TELEMETRY", "false")
        .env("NO_COLOR", "1")
        // Its cache of found failures (`.schemathesis/`) goes to the temporary directory,
        // not the source tree: every run starts from the seed alone.
        .current_dir(report.path())
        .output()
        .await
        .expect("schemathesis runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "schemathesis found failures:\n{stdout}\n{stderr}\nserver log:\n{}",
        server.log()
    );
    // Every operation was selected and tested.
    let field = |name: &str| {
        stdout
            .lines()
            .find_map(|line| line.trim().strip_prefix(name))
            .map(str::trim)
            .unwrap_or_else(|| panic!("no '{name}' in:\n{stdout}"))
            .to_string()
    };
    let selected = field("Selected:");
    let (tested_of, all) = selected.split_once('/').expect("Selected: N/M");
    assert_eq!(tested_of, all, "{stdout}");
    assert_eq!(field("Tested:"), all, "{stdout}");
    // "Test cases:" then "N generated, N passed".
    let totals = stdout
        .lines()
        .skip_while(|line| line.trim() != "Test cases:")
        .nth(1)
        .unwrap_or_default();
    let (generated, passed) = totals.trim().split_once(" generated, ").expect("totals");
    assert_eq!(passed, format!("{generated} passed"), "{stdout}");
    eprintln!("schemathesis: {all} operations tested, {generated} generated, {passed}");
    assert!(generated.parse::<u64>().unwrap() >= 50 * all.parse::<u64>().unwrap() / 2);
}

/// What schemathesis found, each answered in the API's error shape now: a query string of
/// the wrong type, the MCP proxy's own refusals, and a key revoking itself.
#[tokio::test]
async fn what_the_fuzzer_found_is_refused_in_the_error_shape() {
    let server = plain_server().await;
    let get = |path: &str| {
        server
            .client()
            .get(format!("{}{path}", server.base_url))
            .bearer_auth(&server.admin_key)
    };
    // A number too large for the field, text for a number: 422 JSON, not axum's text 400.
    for path in [
        "/v1/jobs?limit=9223372036854775808",
        "/v1/jobs/x/metrics?threshold=null",
        "/v1/traces/x/events?after=x",
    ] {
        let response = get(path).send().await.unwrap();
        assert_eq!(response.status(), 422, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_request", "{path}: {body}");
        assert_eq!(body["error"]["details"]["errors"][0]["field"], "query");
    }
    // The MCP proxy's refusal (no `Accept: text/event-stream` on GET) as JSON.
    let response = get("/v1/environments/inbox/mcp").send().await.unwrap();
    assert_eq!(response.status(), 406);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_acceptable", "{body}");
    // Methods MCP's transport does not use.
    let response = server
        .client()
        .put(format!("{}/v1/mcp", server.base_url))
        .bearer_auth(&server.admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    // A key revoking itself would lock its holder out: 409, and it still works.
    let (_, keys) = server.get("/v1/keys").await;
    let own = keys["keys"][0]["id"].as_str().unwrap().to_string();
    let (status, body) = server
        .request(reqwest::Method::DELETE, &format!("/v1/keys/{own}"), None)
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "cannot_revoke_own_key");
    let (status, _) = server.get("/v1/keys").await;
    assert_eq!(status, 200);
}

/// `/docs`: the reference page, from the binary alone: every operation and schema of the
/// document, no script, nothing fetched from another site, no key needed.
#[tokio::test]
async fn the_reference_page_shows_every_operation_from_the_binary_alone() {
    let server = plain_server().await;
    let fetch = |path: &str| reqwest::get(format!("{}{path}", server.base_url));
    let document: Value = fetch("/openapi.json").await.unwrap().json().await.unwrap();
    let response = fetch("/docs").await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let page = response.text().await.unwrap();
    for (method, path) in documented(&document) {
        let shown = format!("{method} {path}");
        assert!(page.contains(&shown), "{shown} is not on /docs");
    }
    for name in document["components"]["schemas"]
        .as_object()
        .unwrap()
        .keys()
    {
        assert!(
            page.contains(&format!("id=\"schema-{name}\"")),
            "schema {name}"
        );
    }
    assert!(!page.contains("<script"), "the page runs no script");
    for external in ["src=\"http", "href=\"http", "url(http", "@import"] {
        assert!(!page.contains(external), "the page loads {external}...");
    }
    // Its stylesheet is the UI's, served by the binary.
    assert!(page.contains("href=\"/assets/ui.css\""));
    assert_eq!(fetch("/assets/ui.css").await.unwrap().status(), 200);
}
