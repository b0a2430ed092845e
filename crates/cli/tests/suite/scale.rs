//! Many processes on one PostgreSQL database: limits hold across processes.

use super::common::{binary, fake_options};
use rollout_testkit::{FakeModelServer, Policy, TestSchema, TestServer};
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
