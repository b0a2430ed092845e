//! Deploying environments: from a directory (`rollout env deploy`), a tarball and a local
//! git repository; a failing build; an identical re-deploy; a version pinned by a run;
//! delete refused while runs are in flight, and forced; a hud-python bundle whose build
//! makes a virtualenv.

use super::common::{RUN_TIMEOUT, binary, gateway_tool_call, guards_with};
use rollout_testkit::{ServerOptions, TestServer};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;

/// A bundle whose run command is the bundled example environment, started by a shell that
/// first notes its open-file limit on stderr (one line per start, in the server's log).
pub(super) fn write_bundle(dir: &Path, build: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let run = format!(
        "echo \"open files: $(ulimit -n)\" >&2; exec {:?} example-env my-assistant",
        binary()
    );
    let manifest = format!(
        "name = \"bundled\"\n\n[build]\ncommand = {build:?}\n\n[run]\ncommand = [\"sh\", \"-c\", {run:?}]\n\n[limits]\nmax_open_files = 512\nmax_cpu_seconds = 600\n"
    );
    std::fs::write(dir.join("rollout.toml"), manifest).unwrap();
    std::fs::write(dir.join("README.md"), "A test bundle.\n").unwrap();
}

/// What the test bundles need from the server: the rollout binary their run commands
/// name (outside any bundle, so shown to the sandbox by the operator's setting), and git
/// deploys from local repositories.
pub(super) fn bundle_config() -> String {
    let binaries = Path::new(binary()).parent().unwrap();
    format!(
        "[sandbox]\nrequired = {}\nread_only_paths = [{:?}]\n\n[deploy]\nallow_local_git = true\n",
        super::common::sandbox_expected(),
        binaries.display().to_string()
    )
}

/// A server for the test bundles.
pub(super) async fn bundle_server() -> TestServer {
    TestServer::start(
        binary(),
        ServerOptions {
            config_toml: Some(bundle_config()),
            ..ServerOptions::default()
        },
    )
    .await
    .expect("server starts")
}

/// `rollout ARGS` against `server`; returns (success, stdout, stderr).
fn cli(server: &TestServer, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(binary())
        .args(args)
        .env("ROLLOUT_URL", &server.base_url)
        .env("ROLLOUT_KEY", &server.admin_key)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A tar.gz of `dir` made by the system's tar, with the folder as its top level.
pub(super) fn tarball(dir: &Path) -> Vec<u8> {
    let output = Command::new("tar")
        .arg("-czf")
        .arg("-")
        .arg("-C")
        .arg(dir.parent().unwrap())
        .arg(dir.file_name().unwrap())
        .output()
        .unwrap();
    assert!(output.status.success());
    output.stdout
}

pub(super) async fn upload(server: &TestServer, name: &str, archive: Vec<u8>) -> (u16, Value) {
    let request = server
        .client()
        .post(format!("{}/v1/environments/{name}/deploy", server.base_url))
        .bearer_auth(&server.admin_key)
        .header("content-type", "application/gzip")
        .body(archive);
    server.send(request).await
}

pub(super) async fn get_text(server: &TestServer, path: &str) -> (u16, String) {
    let response = server
        .client()
        .get(format!("{}{path}", server.base_url))
        .bearer_auth(&server.admin_key)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

pub(super) fn replay_run(env: &str, version: Option<i64>) -> Value {
    let mut body = json!({
        "env_name": env,
        "scenario_name": "answer_question",
        "scenario_args": {"query": "What is 17 * 23?"},
        "model": "replay",
        "validation": [{"name": "calculator", "arguments": {"expression": "17 * 23"}}, {"answer": "17 * 23 = 391"}],
    });
    if let Some(version) = version {
        body["env_version"] = json!(version);
    }
    body
}

pub(super) async fn run_to_end(server: &TestServer, body: &Value) -> Value {
    let (status, accepted) = server.post("/v1/agent/run", body).await;
    assert_eq!(status, 202, "{accepted}");
    server
        .wait_for_trace(accepted["trace_id"].as_str().unwrap(), RUN_TIMEOUT)
        .await
}

pub(super) fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

#[tokio::test]
async fn a_directory_deploys_with_its_build_log_serves_runs_and_redeploys_as_a_noop() {
    let server = bundle_server().await;
    let work = tempfile::tempdir().unwrap();
    let bundle = work.path().join("my-env");
    write_bundle(&bundle, "echo building the bundle; echo done > built.txt");
    // Local build output and history are not uploaded.
    std::fs::create_dir_all(bundle.join(".venv")).unwrap();
    std::fs::write(bundle.join(".venv/big"), "local only").unwrap();

    let (ok, stdout, stderr) = cli(&server, &["env", "deploy", bundle.to_str().unwrap()]);
    assert!(ok, "{stdout}\n{stderr}\n{}", server.log());
    assert!(stdout.contains("building the bundle"), "{stdout}");
    assert!(
        stdout.contains("Version 1 of 'bundled' is ready: scenarios answer_question"),
        "{stdout}"
    );
    // The build log went to the server's log too, tagged with the environment.
    assert!(server.log().contains("building the bundle"));

    let (status, env) = server.get("/v1/environments/bundled").await;
    assert_eq!(status, 200, "{env}");
    let version = &env["versions"][0];
    assert_eq!(version["status"], "ready");
    assert_eq!(version["source"]["limits"]["max_open_files"], 512);
    let dir = version["source"]["bundle"]["dir"].as_str().unwrap();
    assert!(dir.contains("/envs/default/bundled/"), "{dir}");
    assert!(Path::new(dir).join("built.txt").exists());
    assert!(!Path::new(dir).join(".venv").exists());

    let (status, log) = get_text(&server, "/v1/environments/bundled/versions/1/log").await;
    assert_eq!(status, 200);
    assert_eq!(log, "building the bundle\n");
    let (status, _) = get_text(&server, "/v1/environments/bundled/versions/9/log").await;
    assert_eq!(status, 404);

    let trace = run_to_end(&server, &replay_run("bundled", None)).await;
    assert_eq!(trace["status"], "completed", "{trace}");
    assert_eq!(trace["reward"], 1.0);
    assert_eq!(trace["env_version"], 1);
    // The manifest's limits applied to the introspection's process and the run's.
    let log = server.log();
    assert_eq!(log.matches("open files: 512").count(), 2, "{log}");

    // The same content again: nothing is built, the version stays.
    let (ok, stdout, _) = cli(&server, &["env", "deploy", bundle.to_str().unwrap()]);
    assert!(ok);
    assert!(
        stdout.contains("Unchanged: version 1 of 'bundled'"),
        "{stdout}"
    );
    let (_, env) = server.get("/v1/environments/bundled").await;
    assert_eq!(env["versions"].as_array().unwrap().len(), 1);

    let (ok, stdout, _) = cli(&server, &["env", "list"]);
    assert!(ok);
    assert!(stdout.contains("bundled"), "{stdout}");
    assert!(stdout.contains("my-assistant"), "{stdout}");
}

#[tokio::test]
async fn a_tarball_and_a_git_repository_deploy_and_a_run_can_pin_a_version() {
    let server = bundle_server().await;
    let work = tempfile::tempdir().unwrap();
    let bundle = work.path().join("my-env");
    write_bundle(&bundle, "echo tarball build");
    // Over the 1 MiB JSON limit: uploads have their own.
    let mut noise = Vec::with_capacity(2 * 1024 * 1024);
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    while noise.len() < 2 * 1024 * 1024 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        noise.extend_from_slice(&state.to_le_bytes());
    }
    std::fs::write(bundle.join("data.bin"), &noise).unwrap();
    let archive = tarball(&bundle);
    assert!(archive.len() > 1024 * 1024);
    let (status, env) = upload(&server, "bundled", archive).await;
    assert_eq!(status, 201, "{env}\n{}", server.log());
    assert_eq!(env["deployed_version"], 1);
    assert_eq!(env["unchanged"], false);
    assert_eq!(env["build_log"], "tarball build\n");

    // The same bundle in a git repository, with another build command: version 2.
    let repo = work.path().join("repo");
    write_bundle(&repo, "echo git build");
    git(&repo, &["init", "--quiet"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "--quiet", "-m", "first"]);
    let commit = git(&repo, &["rev-parse", "HEAD"]);
    let url = format!("file://{}", repo.display());
    let (status, env) = server
        .post(
            "/v1/environments",
            &json!({"name": "bundled", "git": {"url": url, "ref": "main"}}),
        )
        .await;
    assert_eq!(status, 201, "{env}\n{}", server.log());
    assert_eq!(env["deployed_version"], 2);
    assert_eq!(env["build_log"], "git build\n");
    let source = &env["versions"][0]["source"]["bundle"]["origin"];
    assert_eq!(source["commit"], commit.as_str());

    // A local path at a commit, through the CLI: the same content, so nothing new.
    let (ok, stdout, stderr) = cli(
        &server,
        &[
            "env",
            "deploy",
            "--git",
            repo.to_str().unwrap(),
            "--ref",
            &commit,
            "--name",
            "bundled",
        ],
    );
    assert!(ok, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("Unchanged: version 2 of 'bundled'"),
        "{stdout}"
    );

    // An unknown reference is the caller's mistake.
    let (status, error) = server
        .post(
            "/v1/environments",
            &json!({"name": "bundled", "git": {"url": url, "ref": "no-such-branch"}}),
        )
        .await;
    assert_eq!(status, 422, "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no-such-branch")
    );

    // New runs use the newest ready version; a run may pin an older one.
    let latest = run_to_end(&server, &replay_run("bundled", None)).await;
    assert_eq!(latest["status"], "completed", "{latest}");
    assert_eq!(latest["env_version"], 2);
    let pinned = run_to_end(&server, &replay_run("bundled", Some(1))).await;
    assert_eq!(pinned["status"], "completed", "{pinned}");
    assert_eq!(pinned["env_version"], 1);
}

#[tokio::test]
async fn a_failing_build_is_stored_as_failed_with_its_log_tail() {
    let server = bundle_server().await;
    let work = tempfile::tempdir().unwrap();
    let bundle = work.path().join("my-env");
    write_bundle(
        &bundle,
        "echo compiling; echo 'error: the compiler is unhappy' >&2; exit 7",
    );
    let (ok, stdout, stderr) = cli(&server, &["env", "deploy", bundle.to_str().unwrap()]);
    assert!(!ok, "{stdout}");
    assert!(stderr.contains("failed"), "{stderr}");
    assert!(
        stderr.contains("error: the compiler is unhappy"),
        "{stderr}"
    );

    let (status, env) = server.get("/v1/environments/bundled").await;
    assert_eq!(status, 200);
    assert_eq!(env["status"], "failed");
    let version = &env["versions"][0];
    assert_eq!(version["status"], "failed");
    let error = version["error"].as_str().unwrap();
    assert!(error.contains("exit status: 7"), "{error}");
    assert!(error.contains("the compiler is unhappy"), "{error}");
    let (status, log) = get_text(&server, "/v1/environments/bundled/versions/1/log").await;
    assert_eq!(status, 200);
    assert!(log.contains("compiling\n"), "{log}");

    // A failed environment serves no runs.
    let (status, _) = server
        .post("/v1/agent/run", &replay_run("bundled", None))
        .await;
    assert_eq!(status, 409);

    // Built, but its program does not exist: failed too, with the reason.
    std::fs::write(
        bundle.join("rollout.toml"),
        "name = \"bundled\"\n[run]\ncommand = [\"./no-such-program\"]\n",
    )
    .unwrap();
    let (status, error) = upload(&server, "bundled", tarball(&bundle)).await;
    assert_eq!(status, 422, "{error}");
    assert_eq!(error["error"]["code"], "environment_unusable");

    // Its limits apply from the build on: 1 MiB of memory is too little for anything.
    write_bundle(&bundle, "true");
    let manifest = std::fs::read_to_string(bundle.join("rollout.toml")).unwrap();
    std::fs::write(
        bundle.join("rollout.toml"),
        format!("{manifest}max_memory_mb = 1\n"),
    )
    .unwrap();
    let (status, error) = upload(&server, "bundled", tarball(&bundle)).await;
    assert_eq!(status, 422, "{error}");
    assert_eq!(error["error"]["code"], "build_failed");

    // Not a bundle at all.
    let (status, error) = upload(&server, "bundled", b"not a tarball".to_vec()).await;
    assert_eq!(status, 422, "{error}");
    std::fs::remove_file(bundle.join("rollout.toml")).unwrap();
    let (status, error) = upload(&server, "bundled", tarball(&bundle)).await;
    assert_eq!(status, 422, "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("rollout.toml")
    );
    let request = server
        .client()
        .post(format!(
            "{}/v1/environments/bundled/deploy",
            server.base_url
        ))
        .bearer_auth(&server.admin_key)
        .header("content-type", "application/json")
        .body("{}");
    let (status, _) = server.send(request).await;
    assert_eq!(status, 415);
}

#[tokio::test]
async fn delete_is_refused_while_runs_are_in_flight_unless_forced_and_keeps_traces() {
    // No worker: runs stay queued.
    let server = TestServer::start(
        binary(),
        ServerOptions {
            args: vec!["--max-concurrent-runs".into(), "0".into()],
            config_toml: Some(format!("max_upload_bytes = 100000\n{}", bundle_config())),
            ..ServerOptions::default()
        },
    )
    .await
    .unwrap();
    let work = tempfile::tempdir().unwrap();
    let bundle = work.path().join("my-env");
    write_bundle(&bundle, "true");
    let (status, error) = upload(&server, "bundled", vec![0x1f; 200_000]).await;
    assert_eq!(status, 413, "{error}");
    assert_eq!(error["error"]["code"], "payload_too_large");
    // Far larger than the limit: the client is still sending when the server refuses, and
    // gets the 413 rather than a connection reset.
    let (status, error) = upload(&server, "bundled", vec![0x1f; 16 * 1024 * 1024]).await;
    assert_eq!(status, 413, "{error}");
    assert_eq!(error["error"]["code"], "payload_too_large");
    let (status, env) = upload(&server, "bundled", tarball(&bundle)).await;
    assert_eq!(status, 201, "{env}");
    let files = server.data_dir.join("envs/default/bundled");
    assert!(files.exists());

    let (status, accepted) = server
        .post("/v1/agent/run", &replay_run("bundled", None))
        .await;
    assert_eq!(status, 202);
    let trace_id = accepted["trace_id"].as_str().unwrap().to_string();

    let (status, refused) = server
        .request(reqwest::Method::DELETE, "/v1/environments/bundled", None)
        .await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"]["code"], "environment_busy");
    assert_eq!(refused["error"]["details"]["runs"], json!([trace_id]));

    let (status, deleted) = server
        .request(
            reqwest::Method::DELETE,
            "/v1/environments/bundled?force=true",
            None,
        )
        .await;
    assert_eq!(status, 200, "{deleted}");
    assert_eq!(deleted["deleted_versions"], 1);
    assert_eq!(deleted["cancelled_runs"], json!([trace_id]));
    assert!(!files.exists());

    let (status, _) = server.get("/v1/environments/bundled").await;
    assert_eq!(status, 404);
    let (status, trace) = server.get(&format!("/v1/traces/{trace_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(trace["status"], "cancelled");
    assert_eq!(trace["env_name"], "bundled");
    let (status, _) = server
        .request(reqwest::Method::DELETE, "/v1/environments/bundled", None)
        .await;
    assert_eq!(status, 404);
}

/// The build of a hud-python bundle makes a virtualenv and installs requirements.txt with
/// pip, as a real one would. To stay offline, the test links the already-installed
/// hud-python 0.5.41 (the test virtualenv's site-packages) into the fresh virtualenv with a
/// `.pth` file, so `pip install --no-index -r requirements.txt` finds it satisfied.
#[tokio::test]
async fn a_hud_python_bundle_builds_a_virtualenv_and_serves_runs() {
    let Ok(python) = std::env::var("ROLLOUT_TEST_PYTHON") else {
        assert!(
            std::env::var("ROLLOUT_REQUIRE_PYTHON").is_err(),
            "ROLLOUT_TEST_PYTHON is not set"
        );
        eprintln!("skipping: hud-python not installed (run scripts/test)");
        return;
    };
    // The build links the test virtualenv, outside the bundle: the operator shows it.
    let venv = Path::new(&python).parent().unwrap().parent().unwrap();
    let server = TestServer::start(
        binary(),
        ServerOptions {
            config_toml: Some(format!(
                "[sandbox]\nrequired = {}\nread_only_paths = [{:?}]\n",
                super::common::sandbox_expected(),
                venv.display().to_string()
            )),
            ..ServerOptions::default()
        },
    )
    .await
    .unwrap();
    let work = tempfile::tempdir().unwrap();
    let bundle = work.path().join("hud-env");
    std::fs::create_dir_all(&bundle).unwrap();
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../testkit/fixtures/hud_env.py"
        ),
        bundle.join("env.py"),
    )
    .unwrap();
    std::fs::write(bundle.join("requirements.txt"), "hud-python==0.5.41\n").unwrap();
    let manifest = format!(
        r#"name = "hud-bundle"

[build]
command = """
set -e
"$TEST_PYTHON" -m venv .venv
site=$(.venv/bin/python -c 'import site; print(site.getsitepackages()[0])')
"$TEST_PYTHON" -c 'import site; print(site.getsitepackages()[0])' > "$site/rollout-test.pth"
.venv/bin/pip install --no-index --disable-pip-version-check -r requirements.txt
"""
env = {{ TEST_PYTHON = {python:?} }}

[run]
command = [".venv/bin/python", "env.py"]

[limits]
max_open_files = 1024
"#
    );
    std::fs::write(bundle.join("rollout.toml"), manifest).unwrap();

    let (ok, stdout, stderr) = cli(&server, &["env", "deploy", bundle.to_str().unwrap()]);
    assert!(ok, "{stdout}\n{stderr}\n{}", server.log());
    assert!(
        stdout.contains("Requirement already satisfied: hud-python==0.5.41"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Version 1 of 'hud-bundle' is ready"),
        "{stdout}"
    );
    assert!(stdout.contains("sum_numbers"), "{stdout}");

    let trace = run_to_end(
        &server,
        &json!({
            "env_name": "hud-bundle",
            "scenario_name": "answer_question",
            "scenario_args": {"query": "What is the capital of France?"},
            "model": "replay",
            "validation": [{"answer": "Paris"}],
        }),
    )
    .await;
    assert_eq!(trace["status"], "completed", "{trace}\n{}", server.log());
    assert_eq!(trace["reward"], 1.0);
}

#[tokio::test]
async fn an_http_bundle_runs_as_supervised_replicas_that_restart_after_a_crash() {
    let server = bundle_server().await;
    let dir = server.data_dir.join("http-bundle");
    std::fs::create_dir_all(&dir).unwrap();
    let serve = dir.join("serve.sh");
    std::fs::write(
        &serve,
        format!(
            "#!/bin/sh\nexec {:?} example-env my-assistant --http \"127.0.0.1:$PORT\"\n",
            binary()
        ),
    )
    .unwrap();
    Command::new("chmod")
        .arg("+x")
        .arg(&serve)
        .status()
        .unwrap();
    std::fs::write(
        dir.join("rollout.toml"),
        "name = \"served\"\n\n[run]\ncommand = [\"./serve.sh\"]\nport = 0\npath = \"/mcp\"\nreplicas = 2\n",
    )
    .unwrap();
    let (status, deployed) = upload(&server, "served", tarball(&dir)).await;
    assert_eq!(status, 201, "{deployed}\n{}", server.log());

    let first = run_to_end(&server, &replay_run("served", None)).await;
    assert_eq!(first["status"], "completed", "{first}\n{}", server.log());
    assert_eq!(first["reward"], 1.0);
    // Two replicas, each a guard (whose command line names the bundle) over the server.
    let marker = format!("{}", server.data_dir.join("envs/default/served").display());
    let wait_for = |count: usize| async move {
        let found = tokio::time::timeout(RUN_TIMEOUT, async {
            loop {
                let guards: Vec<u32> = guards_with(&marker);
                if guards.len() >= count {
                    return guards;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        })
        .await;
        found.expect("replicas running")
    };
    let replicas = wait_for(2).await;

    // Kill one replica: runs go on, and the supervisor brings it back.
    Command::new("kill")
        .arg("-9")
        .arg(replicas[0].to_string())
        .status()
        .unwrap();
    for _ in 0..3 {
        let run = run_to_end(&server, &replay_run("served", None)).await;
        assert_eq!(run["status"], "completed", "{run}\n{}", server.log());
    }
    let marker = format!("{}", server.data_dir.join("envs/default/served").display());
    let restarted = tokio::time::timeout(RUN_TIMEOUT, async {
        while !server.log().contains("replica exited; restarting") {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        loop {
            if guards_with(&marker).len() >= 2 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(
        restarted.is_ok(),
        "the replica was not restarted:\n{}",
        server.log()
    );

    // The MCP gateway opens its sessions on the same replicas (official `mcp` client).
    if let Ok(python) = std::env::var("ROLLOUT_TEST_PYTHON") {
        let arguments = json!({"expression": "6 * 7"});
        let out = gateway_tool_call(&python, &server, "served", "calculator", &arguments).await;
        assert_eq!(out["text"], "42", "{out}");
    }
}

/// A worker keeps the environment versions it has run by id, read once: an environment
/// deleted and registered again under its name (its version 1 again, another program) runs
/// its new program, not the one kept from before.
#[tokio::test]
async fn an_environment_registered_again_under_its_name_runs_its_new_program() {
    let server = super::common::plain_server().await;
    let register =
        |program: &str| json!({"name": "swap", "command": [binary(), "example-env", program]});
    let (status, env) = server
        .post("/v1/environments", &register("my-assistant"))
        .await;
    assert_eq!(status, 201, "{env}");
    let mut first = replay_run("swap", None);
    first["sync"] = json!(true);
    let (status, done) = server.post("/v1/agent/run", &first).await;
    assert_eq!(
        (status, &done["status"]),
        (200, &json!("completed")),
        "{done}"
    );

    let (status, deleted) = server
        .request(reqwest::Method::DELETE, "/v1/environments/swap", None)
        .await;
    assert_eq!(status, 200, "{deleted}");
    let (status, env) = server.post("/v1/environments", &register("inbox")).await;
    assert_eq!(status, 201, "{env}");
    assert_eq!(env["versions"][0]["version"], 1, "{env}");
    let second = json!({
        "env_name": "swap",
        "scenario_name": "triage_inbox",
        "scenario_args": {"owner": "Alex"},
        "model": "replay",
        "validation": [{"answer": "Left: the VPN maintenance on Saturday."}],
        "sync": true
    });
    let (status, done) = server.post("/v1/agent/run", &second).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["status"], "completed", "{done}\n{}", server.log());
    let trace_id = done["trace_id"].as_str().unwrap();
    let (_, trace) = server.get(&format!("/v1/traces/{trace_id}")).await;
    let connected = trace["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|event| event["type"] == "env_connected")
        .cloned()
        .unwrap_or_default();
    assert_eq!(connected["server_name"], "inbox", "{trace}");
}
