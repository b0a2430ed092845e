//! Chaos: three servers share one PostgreSQL queue and run 300 runs against a slow model
//! while, in turn, one is killed with SIGKILL, one is stopped (SIGSTOP) for longer than its
//! lease and resumed, and one is shut down with SIGTERM; each is restarted. At the end every
//! run is terminal and, per trace: the model saw the calls of at most one execution per
//! attempt, there is exactly one `finished` event, attempts strictly increase, and no
//! environment process is left. Bounded (a few minutes at most); its assertions do not
//! depend on timing.

use super::common::{binary, fake_options, marked_binary, processes_with, wait_processes};
use rollout_testkit::{FakeModelServer, Policy, ServerOptions, TestSchema, TestServer};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const RUNS: usize = 300;
const LEASE_SECONDS: u64 = 3;
/// Every model call takes this long: runs are in flight when the servers are disrupted.
const MODEL_DELAY: Duration = Duration::from_secs(1);
/// The bound of the whole test's waiting for runs.
const ALL_DONE: Duration = Duration::from_secs(300);

fn query(index: usize) -> String {
    format!("chaos run {index}: what is 2 + 2?")
}

/// How many of the runs have ended, seen from `server`.
async fn terminal(server: &TestServer) -> usize {
    let (status, page) = server.get("/v1/traces?limit=500").await;
    assert_eq!(status, 200, "{page}");
    page["traces"]
        .as_array()
        .expect("a list of traces")
        .iter()
        .filter(|run| !matches!(run["status"].as_str(), Some("queued" | "running")))
        .count()
}

async fn wait_terminal(server: &TestServer, count: usize, started: Instant) {
    let waited = tokio::time::timeout(ALL_DONE, async {
        while terminal(server).await < count {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    })
    .await;
    assert!(
        waited.is_ok(),
        "fewer than {count} runs ended after {:?}:\n{}",
        started.elapsed(),
        server.log()
    );
}

/// Checks one trace against the model's log; returns its number of attempts.
fn check_trace(index: usize, trace: &Value, requests: &[String]) -> i64 {
    let context = || format!("run {index}: {trace}");
    assert_eq!(trace["status"], "completed", "{}", context());
    let events = trace["events"].as_array().expect("events");
    let finished: Vec<&Value> = events.iter().filter(|e| e["type"] == "finished").collect();
    assert_eq!(finished.len(), 1, "{}", context());
    assert_eq!(events.last().map(|e| &e["type"]), Some(&json!("finished")));
    // Attempts strictly increase, and no event of an earlier attempt follows a later one.
    let started: Vec<i64> = events
        .iter()
        .filter(|e| e["type"] == "attempt_started")
        .map(|e| e["attempt"].as_i64().unwrap())
        .collect();
    assert!(
        started.windows(2).all(|pair| pair[0] < pair[1]),
        "{}",
        context()
    );
    let attempts: Vec<i64> = events
        .iter()
        .map(|e| e["attempt"].as_i64().unwrap())
        .collect();
    assert!(
        attempts.windows(2).all(|pair| pair[0] <= pair[1]),
        "{}",
        context()
    );
    let last = *started.last().expect("an attempt started");
    assert_eq!(finished[0]["attempt"], last, "{}", context());
    assert_eq!(trace["attempts"], last, "{}", context());
    // The finishing attempt made exactly the two model calls of one execution.
    let steps: Vec<i64> = events
        .iter()
        .filter(|e| e["type"] == "model_call" && e["attempt"] == last)
        .map(|e| e["step"].as_i64().unwrap())
        .collect();
    assert_eq!(steps, [1, 2], "{}", context());
    // The model saw at most one first call per started attempt, and a second call only
    // after a first: never two executions of one attempt.
    let marker = format!("chaos run {index}:");
    let mine: Vec<&String> = requests.iter().filter(|r| r.contains(&marker)).collect();
    let second = mine.iter().filter(|r| r.contains("tool_result")).count();
    let first = mine.len() - second;
    let started_count = started.len();
    assert!(
        (1..=started_count).contains(&first) && second <= first && second >= 1,
        "{}: {first} first and {second} second calls for {started_count} attempts",
        context()
    );
    let recorded_first = events
        .iter()
        .filter(|e| e["type"] == "model_call" && e["step"] == 1)
        .count();
    assert!(first >= recorded_first, "{}", context());
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_servers_under_kill_stop_and_term_run_every_run_once() {
    let Some(schema) = TestSchema::create().await.unwrap() else {
        return;
    };
    let began = Instant::now();
    let fake = FakeModelServer::start_with_policy(Policy::ToolStepsThenAnswer {
        tool: "calculator".into(),
        arguments: json!({"expression": "2 + 2"}),
        steps: 1,
    })
    .await
    .unwrap();
    fake.set_delay(MODEL_DELAY);
    let (_dir, marked) = marked_binary("chaos");
    let mut options: ServerOptions = fake_options(&fake);
    options.args = [
        "--database-url",
        &schema.url,
        "--lease-seconds",
        &LEASE_SECONDS.to_string(),
        "--shutdown-grace-seconds",
        "1",
        "--max-concurrent-runs",
        "8",
    ]
    .map(String::from)
    .to_vec();
    let start = |data_dir: Option<std::path::PathBuf>| {
        let mut options = options.clone();
        options.data_dir = data_dir;
        TestServer::start(binary(), options)
    };
    let mut servers = Vec::new();
    for _ in 0..3 {
        servers.push(start(None).await.unwrap());
    }
    let (status, env) = servers[0]
        .post(
            "/v1/environments",
            &json!({"name": "chaos", "command": [marked, "example-env", "my-assistant"]}),
        )
        .await;
    assert_eq!(status, 201, "{env}");

    // Submitted through all three servers at once, so that they are all busy.
    let mut submissions = tokio::task::JoinSet::new();
    for index in 0..RUNS {
        let server = &servers[index % 3];
        let request = server
            .client()
            .post(format!("{}/v1/agent/run", server.base_url))
            .bearer_auth(&server.admin_key)
            .json(&json!({
                "env_name": "chaos",
                "scenario_name": "answer_question",
                "scenario_args": {"query": query(index)},
                "model": "claude-sonnet-4-5"
            }));
        submissions.spawn(async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status().as_u16(), 202);
            let accepted: Value = response.json().await.unwrap();
            (index, accepted["trace_id"].as_str().unwrap().to_string())
        });
    }
    let mut trace_ids = vec![String::new(); RUNS];
    while let Some(submitted) = submissions.join_next().await {
        let (index, trace_id) = submitted.unwrap();
        trace_ids[index] = trace_id;
    }
    let submitted = began.elapsed();

    // kill -9 the first server mid-flight, and restart it.
    wait_terminal(&servers[1], 40, began).await;
    let killed_at = began.elapsed();
    servers[0].kill().await;
    let data_dir = servers[0].data_dir.clone();
    // The stopped server owns its temp data directory: keep it (and so the directory, where
    // the restarted server's environments have their work directories) until the end.
    let mut stopped = vec![std::mem::replace(
        &mut servers[0],
        start(Some(data_dir)).await.unwrap(),
    )];

    // Stop the second for more than twice its lease, then let it go on.
    wait_terminal(&servers[2], 110, began).await;
    let stopped_at = began.elapsed();
    servers[1].signal("STOP").await.unwrap();
    tokio::time::sleep(Duration::from_secs(2 * LEASE_SECONDS + 1)).await;
    servers[1].signal("CONT").await.unwrap();

    // Shut the third down gracefully, and restart it.
    wait_terminal(&servers[0], 180, began).await;
    let terminated_at = began.elapsed();
    if let Err(error) = servers[2].terminate(Duration::from_secs(60)).await {
        panic!("{error}\n{}", servers[2].log());
    }
    let data_dir = servers[2].data_dir.clone();
    stopped.push(std::mem::replace(
        &mut servers[2],
        start(Some(data_dir)).await.unwrap(),
    ));

    wait_terminal(&servers[0], RUNS, began).await;
    let all_done = began.elapsed();

    let requests: Vec<String> = fake.requests().iter().map(|r| r.body.to_string()).collect();
    let mut retried = BTreeMap::new();
    for (index, trace_id) in trace_ids.iter().enumerate() {
        let (status, trace) = servers[index % 3]
            .get(&format!("/v1/traces/{trace_id}"))
            .await;
        assert_eq!(status, 200, "{trace}");
        let attempts = check_trace(index, &trace, &requests);
        *retried.entry(attempts).or_insert(0) += 1;
    }

    for server in &mut servers {
        if let Err(error) = server.terminate(Duration::from_secs(60)).await {
            panic!("{error}\n{}", server.log());
        }
    }
    assert!(
        wait_processes(&marked, false).await,
        "environment processes left: {:?}",
        processes_with(&marked)
    );
    eprintln!(
        "chaos: {RUNS} runs submitted in {submitted:?}; kill -9 at {killed_at:?}, SIGSTOP at \
         {stopped_at:?}, SIGTERM at {terminated_at:?}; all ended at {all_done:?}; runs by \
         attempts {retried:?}; {} model requests ({} dropped in flight)",
        requests.len(),
        fake.abandoned()
    );
    schema.drop().await.unwrap();
}
