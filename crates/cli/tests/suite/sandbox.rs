//! Environment processes against the server: a hud-python environment that plays an
//! attacker (`fixtures/attack_env.py`) looks for the server's secrets and data through its
//! shell tool (in a run, through the MCP gateway, and in a build), forks thousands of
//! processes and writes a huge file; the server without bubblewrap warns or refuses.

use super::common::{RUN_TIMEOUT, binary, gateway_tool_call, python, sandbox_available};
use super::deploy::{get_text, tarball, upload};
use rollout_testkit::{ServerOptions, TEST_ADMIN_KEY, TestServer};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

const ATTACKER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../testkit/fixtures/attack_env.py"
);
/// Granted to the attacker by the operator: its processes must see it (the control).
const GRANTED: (&str, &str) = ("SERP_API_KEY", "canary-granted-serp-5c1e");
/// Secrets of the server: none may reach an environment, a trace or the log.
const CANARIES: [(&str, &str); 6] = [
    ("ANTHROPIC_API_KEY", "canary-anthropic-9d2b"),
    ("OPENAI_API_KEY", "canary-openai-41f7"),
    ("CUSTOM_PROVIDER_KEY", "canary-custom-provider-a80c"),
    (
        "TEST_DATABASE_URL",
        "postgres://canary:canary-pg-password-77e1@db/test",
    ),
    ("UNGRANTED_TOKEN", "canary-ungranted-0b6d"),
    ("AWS_SECRET_ACCESS_KEY", "canary-aws-3e95"),
];

/// What the shell tool runs to look around: its environment, its own and its parent's
/// initial environment, every process it can see, and the data directory.
fn looking_around(data_dir: &Path) -> String {
    format!(
        "id; env; tr '\\0' '\\n' < /proc/self/environ; \
         for p in $PPID 1 /proc/[0-9]*; do tr '\\0' '\\n' < /proc/${{p##*/}}/environ; done 2>&1; \
         ls -la {data} 2>&1; ls -la {data}/envs 2>&1; \
         find / -xdev \\( -name 'rollout*.db' -o -name server.log \\) 2>/dev/null; echo looked",
        data = data_dir.display()
    )
}

/// Checks what an environment process could show: the granted secret (the control) and
/// its private home, no secret of the server, nothing of the data directory.
fn assert_clean(seen: &str, granted_visible: bool) {
    assert!(seen.contains("looked"), "the probe did not run: {seen}");
    assert!(seen.contains("HOME=/home/rollout"), "{seen}");
    assert_eq!(seen.contains(GRANTED.1), granted_visible, "{seen}");
    for (name, value) in CANARIES {
        assert!(!seen.contains(value), "{name} leaked: {seen}");
    }
    assert!(
        !seen.contains(TEST_ADMIN_KEY),
        "the admin key leaked: {seen}"
    );
    for found in ["rollout-canary.db", "server.log", "rollout.toml"] {
        assert!(!seen.contains(found), "{found} is visible: {seen}");
    }
}

/// A server started with canary values in every secret variable, the database in its data
/// directory under a name of our own, and the attacker granted one secret.
async fn canary_server(data: &tempfile::TempDir) -> TestServer {
    let mut env: Vec<(String, String)> = CANARIES
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    env.push((GRANTED.0.into(), GRANTED.1.into()));
    env.push((
        "ROLLOUT_DATABASE_URL".into(),
        format!("sqlite://{}/rollout-canary.db", data.path().display()),
    ));
    let config = format!(
        "[sandbox]\nrequired = true\n\n\
         [providers.custom]\nbase_url = \"http://127.0.0.1:9/v1\"\napi_key_env = \"CUSTOM_PROVIDER_KEY\"\n\n\
         [environments.attacker]\nsecrets = [\"{}\"]\n\n\
         [environments.offline]\nnetwork = \"none\"\n",
        GRANTED.0
    );
    TestServer::start(
        binary(),
        ServerOptions {
            env,
            config_toml: Some(config),
            data_dir: Some(data.path().to_path_buf()),
            ..ServerOptions::default()
        },
    )
    .await
    .expect("server starts")
}

async fn register_attacker(server: &TestServer, python: &str) {
    register_as(server, python, "attacker").await;
}

async fn register_as(server: &TestServer, python: &str, name: &str) {
    let (status, body) = server
        .post(
            "/v1/environments",
            &json!({"name": name, "command": [python, ATTACKER]}),
        )
        .await;
    assert_eq!(status, 201, "{body}\n{}", server.log());
}

/// Runs the probe scenario of `attacker` with the replay model calling `calls` (name,
/// arguments) in turn; returns the finished trace.
async fn run_calls(server: &TestServer, calls: &[(&str, Value)]) -> Value {
    run_calls_on(server, "attacker", calls).await
}

async fn run_calls_on(server: &TestServer, env: &str, calls: &[(&str, Value)]) -> Value {
    let mut validation: Vec<Value> = calls
        .iter()
        .map(|(name, arguments)| json!({"name": name, "arguments": arguments}))
        .collect();
    validation.push(json!({"answer": "done"}));
    let (status, accepted) = server
        .post(
            "/v1/agent/run",
            &json!({"env_name": env, "scenario_name": "probe", "model": "replay", "validation": validation}),
        )
        .await;
    assert_eq!(status, 202, "{accepted}");
    server
        .wait_for_trace(accepted["trace_id"].as_str().unwrap(), RUN_TIMEOUT)
        .await
}

/// The result texts of a trace's tool calls.
fn tool_results(trace: &Value) -> Vec<String> {
    trace["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "tool_call")
        .map(|e| e["result"]["text"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn environment_processes_see_no_secret_of_the_server_in_runs_gateway_or_builds() {
    let Some(python) = python() else { return };
    if !sandbox_available() {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let server = canary_server(&data).await;
    register_attacker(&server, &python).await;

    // A run: the agent's shell tool looks around.
    let trace = run_calls(
        &server,
        &[("shell", json!({"command": looking_around(data.path())}))],
    )
    .await;
    assert_eq!(trace["status"], "completed", "{trace}");
    let results = tool_results(&trace);
    assert_clean(&results[0], true);
    // The trace as a whole (arguments, prompt, results) holds no secret either.
    let text = trace.to_string();
    for (name, value) in CANARIES {
        assert!(!text.contains(value), "{name} is in the trace");
    }

    // Its network is the host's; an environment the operator set to `network = "none"`
    // reaches nothing, not even the server on loopback.
    let port: u16 = server.base_url.rsplit(':').next().unwrap().parse().unwrap();
    let reach = [("connect", json!({"host": "127.0.0.1", "port": port}))];
    let trace = run_calls(&server, &reach).await;
    assert_eq!(tool_results(&trace)[0], "connected", "{trace}");
    register_as(&server, &python, "offline").await;
    let trace = run_calls_on(&server, "offline", &reach).await;
    let result = &tool_results(&trace)[0];
    assert!(result.starts_with("no connection"), "{result}");

    // The same through the MCP gateway.
    let arguments = json!({"command": looking_around(data.path())});
    let out = gateway_tool_call(&python, &server, "attacker", "shell", &arguments).await;
    assert_clean(out["text"].as_str().unwrap(), true);

    // A build: its log holds what it saw.
    let bundle = tempfile::tempdir().unwrap();
    let dir = bundle.path().join("probe");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("rollout.toml"),
        format!(
            "[build]\ncommand = {:?}\n\n[run]\ncommand = [{python:?}, {ATTACKER:?}]\n",
            looking_around(data.path())
        ),
    )
    .unwrap();
    let (status, deployed) = upload(&server, "probe", tarball(&dir)).await;
    assert_eq!(status, 201, "{deployed}\n{}", server.log());
    let (_, log) = get_text(&server, "/v1/environments/probe/versions/1/log").await;
    // `probe` was granted nothing.
    assert_clean(&log, false);

    // The server's log: nothing of the server's secrets, and the admin key is gone from the
    // server's own environment once stored.
    let log = server.log();
    for (name, value) in CANARIES {
        assert!(!log.contains(value), "{name} is in the server's log");
    }
    let pid = server.pid().unwrap();
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let environ = String::from_utf8_lossy(&environ);
    assert!(
        !environ.contains(TEST_ADMIN_KEY),
        "ROLLOUT_ADMIN_KEY is still in the server's environment"
    );
    assert!(
        environ.contains("canary-anthropic"),
        "the provider keys stay (the server uses them)"
    );
}

#[tokio::test]
async fn limits_stop_a_fork_bomb_and_a_huge_file_and_the_server_goes_on() {
    let Some(python) = python() else { return };
    if !sandbox_available() {
        return;
    }
    // Server-wide defaults, lowered: the attacker's manifest-less command gets them.
    let server = TestServer::start(
        binary(),
        ServerOptions {
            config_toml: Some(
                "[sandbox]\nrequired = true\n\n[sandbox.limits]\nmax_processes = 64\nmax_file_size_mb = 16\n"
                    .into(),
            ),
            ..ServerOptions::default()
        },
    )
    .await
    .unwrap();
    register_attacker(&server, &python).await;

    // 10,000 processes: the sandbox's own user may have 64.
    let trace = run_calls(&server, &[("spawn", json!({"count": 10_000}))]).await;
    assert_eq!(trace["status"], "completed", "{trace}");
    let result = &tool_results(&trace)[0];
    let started: u64 = result
        .strip_prefix("started ")
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{result}"));
    assert!(started < 64, "{result}");
    assert!(
        result.contains("Resource temporarily unavailable"),
        "{result}"
    );
    // They went with the session.
    let gone = tokio::time::timeout(Duration::from_secs(30), async {
        while !super::common::processes_with("4242.5").is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(
        gone.is_ok(),
        "the sleeping processes outlived their session"
    );

    // A 10 GiB file: the environment is stopped at 16 MiB, the run fails and says why.
    let trace = run_calls(
        &server,
        &[("write", json!({"path": "/tmp/big", "mib": 10_240}))],
    )
    .await;
    assert_eq!(trace["status"], "failed", "{trace}");
    let error = trace["error"].as_str().unwrap();
    assert!(error.contains("file size limit"), "{error}");
    assert!(error.contains("max_file_size_mb = 16"), "{error}");

    // The server is fine: the next run works, and no work directory is left.
    let trace = run_calls(&server, &[("shell", json!({"command": "echo fine"}))]).await;
    assert_eq!(trace["status"], "completed", "{trace}");
    assert!(tool_results(&trace)[0].contains("fine"));
    let work = server.data_dir.join("work");
    let emptied = tokio::time::timeout(Duration::from_secs(30), async {
        while std::fs::read_dir(&work).map(|d| d.count()).unwrap_or(0) > 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(
        emptied.is_ok(),
        "work directories left in {}",
        work.display()
    );
}

#[tokio::test]
async fn without_bwrap_the_server_warns_once_or_refuses_when_required() {
    let missing = "[sandbox]\nbwrap = \"/nonexistent/bwrap\"\n";
    let refused = TestServer::start(
        binary(),
        ServerOptions {
            config_toml: Some(format!("{missing}required = true\n")),
            ..ServerOptions::default()
        },
    )
    .await;
    let error = format!("{:#}", refused.err().expect("the server refuses to start"));
    assert!(error.contains("cannot make a sandbox"), "{error}");
    assert!(error.contains("required = true"), "{error}");

    let server = TestServer::start(
        binary(),
        ServerOptions {
            config_toml: Some(missing.into()),
            ..ServerOptions::default()
        },
    )
    .await
    .unwrap();
    let log = server.log();
    assert_eq!(log.matches("WITHOUT a sandbox").count(), 1, "{log}");
    let trace = super::deploy::run_to_end(
        &server,
        &json!({
            "env_name": "my-assistant",
            "scenario_name": "answer_question",
            "scenario_args": {"query": "What is 17 * 23?"},
            "model": "replay",
            "validation": [{"answer": "391"}],
        }),
    )
    .await;
    assert_eq!(trace["status"], "completed", "{trace}");
}

#[tokio::test]
async fn a_short_admin_key_is_refused_at_start() {
    let refused = TestServer::start(
        binary(),
        ServerOptions {
            env: vec![("ROLLOUT_ADMIN_KEY".into(), "short-key-1234".into())],
            ..ServerOptions::default()
        },
    )
    .await;
    let error = format!("{:#}", refused.err().expect("the server refuses to start"));
    assert!(error.contains("at least 32"), "{error}");
}
