//! Tasksets and jobs: tasks kept in order, jobs queue linked runs, the claim honours a job's
//! max_concurrency, cancel and retry.

use super::common::{PROJECT, TestDb, spec, with_project};
use rollout_domain::{EventKind, RunId, RunStatus, Task, Usage};
use rollout_store::{FinishRun, JobCounts, JobSpec, NewJobRun, Store};
use serde_json::json;
use std::time::Duration;

const LEASE: Duration = Duration::from_secs(600);

fn task(query: &str) -> Task {
    serde_json::from_value(json!({
        "env": {"name": "alpha"},
        "scenario": "answer",
        "args": {"query": query},
        "validation": [{"answer": "x"}],
    }))
    .unwrap()
}

fn failed() -> FinishRun {
    FinishRun {
        status: RunStatus::Failed,
        outcome: None,
        reward: None,
        evaluation: None,
        final_response: None,
        steps: 1,
        usage: Usage::default(),
        error: Some("boom".into()),
    }
}

async fn job(store: &Store, max_concurrency: Option<i64>, runs: i64) -> (String, Vec<RunId>) {
    let id = rollout_domain::new_id();
    let spec_of_job = JobSpec {
        taskset: "set".into(),
        models: vec!["m".into()],
        repeats: runs,
        max_concurrency,
        max_steps: 10,
        system_prompt: None,
        metadata: Default::default(),
        task_ids: vec!["t0".into()],
    };
    let new_runs: Vec<NewJobRun> = (0..runs)
        .map(|repeat| NewJobRun {
            id: RunId::generate(),
            spec: spec("alpha", "answer", "m"),
            task_index: 0,
            repeat_index: repeat,
        })
        .collect();
    store
        .create_job(&id, PROJECT, &spec_of_job, &new_runs)
        .await
        .unwrap();
    (id, new_runs.into_iter().map(|r| r.id).collect())
}

pub(crate) async fn tasksets_keep_tasks_in_order_and_all_or_nothing(db: &TestDb) {
    let store = &db.store;
    with_project(store).await;
    let tasks = vec![("a".to_string(), task("1")), ("b".to_string(), task("2"))];
    let created = store
        .create_taskset(PROJECT, "set", "two tasks", &tasks)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(created.task_count, 2);
    assert!(
        store
            .create_taskset(PROJECT, "set", "again", &[])
            .await
            .unwrap()
            .is_none()
    );
    let added = store
        .add_tasks(PROJECT, "set", &[("c".to_string(), task("3"))])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(added.task_count, 3);
    // A duplicate id fails the whole batch: nothing of it is kept.
    let duplicate = vec![("d".to_string(), task("4")), ("a".to_string(), task("5"))];
    assert!(store.add_tasks(PROJECT, "set", &duplicate).await.is_err());
    let stored = store.taskset_tasks(&created.id).await.unwrap();
    let ids: Vec<&str> = stored.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["a", "b", "c"]);
    assert_eq!(stored[2].position, 2);
    assert_eq!(stored[0].task, task("1"));

    assert!(store.remove_task(PROJECT, "set", "b").await.unwrap());
    assert!(!store.remove_task(PROJECT, "set", "b").await.unwrap());
    assert_eq!(store.list_tasksets(PROJECT).await.unwrap()[0].task_count, 2);
    assert!(
        store
            .add_tasks(PROJECT, "nope", &[])
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.delete_taskset(PROJECT, "set").await.unwrap());
    assert!(store.get_taskset(PROJECT, "set").await.unwrap().is_none());
    assert!(store.taskset_tasks(&created.id).await.unwrap().is_empty());
    assert!(!store.delete_taskset(PROJECT, "set").await.unwrap());
}

pub(crate) async fn claims_respect_a_jobs_max_concurrency(db: &TestDb) {
    let store = &db.store;
    with_project(store).await;
    let (limited, _) = job(store, Some(2), 4).await;
    let (free, _) = job(store, None, 2).await;

    let mut claimed = Vec::new();
    while let Some(run) = store.claim_next_run("w", LEASE).await.unwrap() {
        claimed.push(run);
    }
    // Two of the limited job, both of the unlimited one.
    assert_eq!(claimed.len(), 4);
    // Each claim of a job's run stored its `attempt_started` with it (on PostgreSQL in the
    // transaction that holds the job's lock).
    for claim in &claimed {
        let events = store
            .list_events(claim.run.id.as_str(), 0, 10)
            .await
            .unwrap();
        let started = EventKind::AttemptStarted {
            attempt: 1,
            worker: "w".into(),
        };
        assert_eq!(
            events.iter().map(|e| &e.kind).collect::<Vec<_>>(),
            [&started]
        );
        assert_eq!(claim.started.as_ref(), events.first());
    }
    let limited_counts = store.job_counts(&limited).await.unwrap();
    assert_eq!((limited_counts.running, limited_counts.queued), (2, 2));
    assert_eq!(store.job_counts(&free).await.unwrap().running, 2);

    // A finished run frees a slot for exactly one more.
    let limited_runs = store.job_runs(&limited).await.unwrap();
    let running = claimed
        .iter()
        .find(|claim| limited_runs.iter().any(|r| r.run.id == claim.run.id))
        .unwrap();
    assert!(store.finish_run(&running.lease, &failed()).await.unwrap());
    assert!(store.claim_next_run("w", LEASE).await.unwrap().is_some());
    assert!(store.claim_next_run("w", LEASE).await.unwrap().is_none());
    assert_eq!(
        store.job_counts(&limited).await.unwrap(),
        JobCounts {
            queued: 1,
            running: 2,
            failed: 1,
            ..JobCounts::default()
        }
    );
    let progress = store.job_progress(&limited).await.unwrap();
    assert_eq!(progress.len(), 1);
    assert_eq!(progress[0].model, "m");
    assert_eq!(
        progress[0].counts,
        store.job_counts(&limited).await.unwrap()
    );
    assert_eq!(progress[0].mean_reward(), None);
}

pub(crate) async fn jobs_cancel_and_retry_only_failed_runs(db: &TestDb) {
    let store = &db.store;
    with_project(store).await;
    let (id, run_ids) = job(store, None, 3).await;
    let runs = store.job_runs(&id).await.unwrap();
    assert_eq!(runs.len(), 3);
    assert_eq!(
        runs.iter().map(|r| r.repeat_index).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    let first = store.claim_next_run("w", LEASE).await.unwrap().unwrap();
    assert!(run_ids.contains(&first.run.id));
    assert!(store.finish_run(&first.lease, &failed()).await.unwrap());
    let second = store.claim_next_run("w", LEASE).await.unwrap().unwrap();

    let cancelled = store.cancel_job(PROJECT, &id).await.unwrap().unwrap();
    assert!(cancelled.cancelled_at_ms.is_some());
    let counts = store.job_counts(&id).await.unwrap();
    // The queued run is cancelled; the running one is only asked to stop.
    assert_eq!((counts.cancelled, counts.running, counts.failed), (1, 1, 1));
    assert!(store.is_cancel_requested(&second.run.id).await.unwrap());

    assert_eq!(
        store.retry_failed_runs(PROJECT, &id).await.unwrap(),
        Some(1)
    );
    let retried = store
        .get_run(PROJECT, first.run.id.as_str())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(retried.status, RunStatus::Queued);
    assert_eq!(retried.error, None);
    assert_eq!(retried.attempts, 1);
    let events = store
        .list_events(first.run.id.as_str(), 0, 100)
        .await
        .unwrap();
    assert!(events.iter().any(|e| matches!(
        &e.kind,
        rollout_domain::EventKind::Error { phase, .. } if phase == "retry"
    )));
    assert_eq!(
        store.retry_failed_runs(PROJECT, &id).await.unwrap(),
        Some(0)
    );
    assert_eq!(
        store.retry_failed_runs(PROJECT, "nope").await.unwrap(),
        None
    );
    assert!(store.cancel_job(PROJECT, "nope").await.unwrap().is_none());
    assert_eq!(store.list_jobs(PROJECT, None, 10).await.unwrap().len(), 1);
}

/// Racing claimers never run more of a job than its `max_concurrency` (on PostgreSQL the
/// claimers of one job are serialised), and a full job's backlog does not hide other runs.
pub(crate) async fn concurrent_claimers_hold_a_jobs_max_concurrency(db: &TestDb) {
    let store = &db.store;
    with_project(store).await;
    let (limited, _) = job(store, Some(2), 30).await;
    // Queued after the job's backlog: claimable while the job is full.
    let loose = RunId::generate();
    store
        .insert_run(&loose, PROJECT, &spec("alpha", "answer", "m"))
        .await
        .unwrap();

    let mut claimers = tokio::task::JoinSet::new();
    for worker in 0..6 {
        let store = store.clone();
        let limited = limited.clone();
        claimers.spawn(async move {
            let worker_id = format!("w{worker}");
            let mut most = 0;
            let mut claimed = Vec::new();
            while let Some(run) = store.claim_next_run(&worker_id, LEASE).await.unwrap() {
                let running = store.job_counts(&limited).await.unwrap().running;
                most = most.max(running);
                tokio::time::sleep(Duration::from_millis(5)).await;
                assert!(store.finish_run(&run.lease, &failed()).await.unwrap());
                claimed.push(run.run.id);
            }
            (most, claimed)
        });
    }
    let mut most = 0;
    let mut claimed = Vec::new();
    while let Some(result) = claimers.join_next().await {
        let (seen, runs) = result.unwrap();
        most = most.max(seen);
        claimed.extend(runs);
    }
    assert!(most <= 2, "{most} runs of the job were running at once");
    assert_eq!(claimed.len(), 31);
    assert!(claimed.contains(&loose));
    let counts = store.job_counts(&limited).await.unwrap();
    assert_eq!((counts.queued, counts.running, counts.failed), (0, 0, 30));
}

/// A measurement, not a test (no threshold): what a claim costs when nothing is claimable
/// because the only queued runs belong to a job at its `max_concurrency`, for growing
/// backlogs; then what a claim (and its run's end) costs at the head of a growing queue of
/// runs of no job. Prints one line per backlog; see `measure_claim_cost` in `suite.rs`.
#[allow(clippy::print_stdout)]
pub(crate) async fn measure_claim_cost(db: &TestDb) {
    use sqlx::Executor;
    let store = &db.store;
    with_project(store).await;
    for backlog in [100i64, 1_000, 10_000, 30_000] {
        let (limited, _) = job(store, Some(1), backlog).await;
        let first = store.claim_next_run("w", LEASE).await.unwrap().unwrap();
        // Statistics as autovacuum would leave them after a bulk insert.
        if store.backend() == rollout_store::Backend::Postgres {
            db.raw().await.execute("ANALYZE runs").await.unwrap();
        }
        let started = std::time::Instant::now();
        for _ in 0..300 {
            assert!(store.claim_next_run("w", LEASE).await.unwrap().is_none());
        }
        let per_claim = started.elapsed() / 300;
        println!(
            "claim cost, {:?}, backlog {backlog} of a full job: {per_claim:?}",
            store.backend()
        );
        store.finish_run(&first.lease, &failed()).await.unwrap();
        store.cancel_job(PROJECT, &limited).await.unwrap();
    }
    // Claims of runs of no job, at the head of a queue of a growing length.
    let (mut queued, mut inserted) = (0, 0);
    for backlog in [1_000usize, 10_000, 30_000] {
        while queued < backlog {
            inserted += 1;
            let id = RunId(format!("backlog-{inserted:06}"));
            store
                .insert_run(&id, PROJECT, &spec("e", "s", "m"))
                .await
                .unwrap();
            queued += 1;
        }
        if store.backend() == rollout_store::Backend::Postgres {
            db.raw().await.execute("ANALYZE runs").await.unwrap();
        }
        let (mut claiming, mut ending) = (Duration::ZERO, Duration::ZERO);
        for _ in 0..300 {
            let started = std::time::Instant::now();
            let claimed = store.claim_next_run("w", LEASE).await.unwrap().unwrap();
            claiming += started.elapsed();
            let started = std::time::Instant::now();
            store.finish_run(&claimed.lease, &failed()).await.unwrap();
            ending += started.elapsed();
        }
        queued -= 300;
        println!(
            "{:?}, {backlog} runs of no job queued: a claim {:?}, its end {:?}",
            store.backend(),
            claiming / 300,
            ending / 300
        );
    }
}
