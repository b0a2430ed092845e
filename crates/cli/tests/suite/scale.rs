//! Many processes on one PostgreSQL database: limits hold across processes.

use super::common::{binary, fake_options};
use rollout_testkit::{FakeModelServer, Policy, TestSchema, TestServer, TestWorker};
use serde_json::{Value, json};
use std::time::Duration;

/// Servers of one PostgreSQL schema, started one after the other (each registers the
/// bundled environments at start-up).
pub(super) async fn servers_on(
    schema: &TestSchema,
    fake: &FakeModelServer,
    count: usize,
    args: &[&str],
) -> Vec<TestServer> {
    let mut options = fake_options(fake);
    options.args = ["--database-url", &schema.url]
        .iter()
        .chain(args)
        .map(|arg| arg.to_string())
        .collect();
    let mut servers = Vec::new();
    for _ in 0..count {
        servers.push(TestServer::start(binary(), options.clone()).await.unwrap());
    }
    servers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_jobs_max_concurrency_holds_across_four_servers() {
    let Some(schema) = TestSchema::create().await.unwrap() else {
        return;
    };
    let fake = FakeModelServer::start_with_policy(Policy::ToolStepsThenAnswer {
        tool: "calculator".into(),
        arguments: json!({"expression": "1 + 1"}),
        steps: 0,
    })
    .await
    .unwrap();
    fake.set_delay(Duration::from_millis(300));
    let servers = servers_on(&schema, &fake, 4, &["--max-concurrent-runs", "8"]).await;
    let tasks: String = (0..10)
        .map(|i| {
            let task = json!({
                "id": format!("t{i}"),
                "env": "my-assistant",
                "scenario": "answer_question",
                "args": {"query": format!("What is {i} + 1?")}
            });
            format!("{task}\n")
        })
        .collect();
    let request = servers[0]
        .client()
        .post(format!(
            "{}/v1/tasksets/limited/import",
            servers[0].base_url
        ))
        .bearer_auth(&servers[0].admin_key)
        .header("content-type", "application/x-ndjson")
        .body(tasks);
    let (status, imported) = servers[0].send(request).await;
    assert!(status == 200 || status == 201, "{imported}");
    let (status, job) = servers[1]
        .post(
            "/v1/jobs",
            &json!({"taskset": "limited", "models": ["claude-sonnet-4-5"], "repeats": 4, "max_concurrency": 2}),
        )
        .await;
    assert_eq!(status, 201, "{job}");
    let job_id = job["id"].as_str().unwrap().to_string();

    let mut most = 0;
    let mut samples = 0;
    let finished = tokio::time::timeout(Duration::from_secs(240), async {
        loop {
            let (status, job): (u16, Value) = servers[samples % 4]
                .get(&format!("/v1/jobs/{job_id}"))
                .await;
            assert_eq!(status, 200, "{job}");
            samples += 1;
            most = most.max(job["counts"]["running"].as_i64().unwrap());
            if job["status"] == "finished" {
                return job;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let job = finished.unwrap_or_else(|_| panic!("the job did not finish:\n{}", servers[0].log()));
    assert!(
        most <= 2,
        "{most} runs of the job were running at once ({samples} samples)"
    );
    assert_eq!(job["counts"]["done"], 40, "{job}");
    schema.drop().await.unwrap();
}

/// `rollout serve` with no worker of its own (the API) and a `rollout worker` process (the
/// execution) on one PostgreSQL database: a `sync` request and an event stream on the API
/// follow runs executed by the worker (woken through LISTEN/NOTIFY).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_api_server_and_a_worker_process_share_one_queue() {
    let Some(schema) = TestSchema::create().await.unwrap() else {
        return;
    };
    let fake = FakeModelServer::start_with_policy(Policy::ToolStepsThenAnswer {
        tool: "calculator".into(),
        arguments: json!({"expression": "2 + 2"}),
        steps: 1,
    })
    .await
    .unwrap();
    let api = servers_on(&schema, &fake, 1, &["--max-concurrent-runs", "0"])
        .await
        .remove(0);
    let mut options = fake_options(&fake);
    options.args = ["--database-url", &schema.url, "--max-concurrent-runs", "4"]
        .map(String::from)
        .to_vec();
    let mut worker = TestWorker::start(binary(), options).await.unwrap();

    let body = |sync: bool| {
        json!({
            "env_name": "my-assistant",
            "scenario_name": "answer_question",
            "scenario_args": {"query": "What is 2 + 2?"},
            "model": "claude-sonnet-4-5",
            "sync": sync
        })
    };
    let (status, summary) = api.post("/v1/agent/run", &body(true)).await;
    assert_eq!(status, 200, "{summary}\n{}", worker.log());
    assert_eq!(summary["status"], "completed");
    assert_eq!(summary["reward"], 1.0);

    let (status, accepted) = api.post("/v1/agent/run", &body(false)).await;
    assert_eq!(status, 202, "{accepted}");
    let trace_id = accepted["trace_id"].as_str().unwrap();
    let stream = api
        .client()
        .get(format!("{}/v1/traces/{trace_id}/events", api.base_url))
        .bearer_auth(&api.admin_key)
        .send()
        .await
        .unwrap();
    let text = tokio::time::timeout(Duration::from_secs(120), stream.text())
        .await
        .expect("the stream ended after the run")
        .unwrap();
    let types: Vec<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("event: "))
        .collect();
    assert_eq!(types.first(), Some(&"attempt_started"), "{text}");
    assert_eq!(types.last(), Some(&"finished"), "{text}");
    assert!(types.contains(&"tool_call"), "{text}");

    if let Err(error) = worker.terminate(Duration::from_secs(60)).await {
        panic!("{error}\n{}", worker.log());
    }
    schema.drop().await.unwrap();
}

/// Milliseconds of the day of an RFC 3339 time from the API (`...THH:MM:SS.mmmZ`).
fn ms_of_day(time: &str) -> i64 {
    let clock = time.split('T').nth(1).unwrap().trim_end_matches('Z');
    let (hms, millis) = clock.split_once('.').unwrap_or((clock, "0"));
    let parts: Vec<i64> = hms.split(':').map(|part| part.parse().unwrap()).collect();
    ((parts[0] * 60 + parts[1]) * 60 + parts[2]) * 1000 + millis.parse::<i64>().unwrap()
}

/// A measurement, not a test (no threshold): how long a `sync` request on the API server
/// answers after its run finished in a `rollout worker` process, i.e. the time the request
/// took minus the run's own time from creation to finish. Run with `TEST_DATABASE_URL`:
/// `cargo nextest run -p rollout-cli --run-ignored only -E 'test(measure_sync_wake_up)'
/// --no-capture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a measurement, run on demand"]
async fn measure_sync_wake_up_across_processes() {
    let Some(schema) = TestSchema::create().await.unwrap() else {
        return;
    };
    let fake = FakeModelServer::start_with_policy(Policy::ToolStepsThenAnswer {
        tool: "calculator".into(),
        arguments: json!({"expression": "2 + 2"}),
        steps: 0,
    })
    .await
    .unwrap();
    let api = servers_on(&schema, &fake, 1, &["--max-concurrent-runs", "0"])
        .await
        .remove(0);
    let mut options = fake_options(&fake);
    options.args = ["--database-url", &schema.url, "--max-concurrent-runs", "4"]
        .map(String::from)
        .to_vec();
    let _worker = TestWorker::start(binary(), options).await.unwrap();
    let mut overheads = Vec::new();
    for index in 0..20 {
        let asked = std::time::Instant::now();
        let (status, summary) = api
            .post(
                "/v1/agent/run",
                &json!({"env_name": "my-assistant", "scenario_name": "answer_question",
                    "scenario_args": {"query": format!("What is {index} + 2?")},
                    "model": "claude-sonnet-4-5", "sync": true}),
            )
            .await;
        let took = i64::try_from(asked.elapsed().as_millis()).unwrap();
        assert_eq!(status, 200, "{summary}");
        let id = summary["trace_id"].as_str().unwrap();
        let (_, trace) = api.get(&format!("/v1/traces/{id}?include=summary")).await;
        let ran = ms_of_day(trace["finished_at"].as_str().unwrap())
            - ms_of_day(trace["created_at"].as_str().unwrap());
        overheads.push(took - ran);
    }
    overheads.sort_unstable();
    let mean = overheads.iter().sum::<i64>() / 20;
    eprintln!(
        "sync answered after the run finished in another process: mean {mean} ms, p50 {} ms, \
         max {} ms",
        overheads[10], overheads[19]
    );
    schema.drop().await.unwrap();
}
