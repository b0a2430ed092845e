//! The queue: claims, leases, fencing, recovery, release, positions.

use super::common::{PROJECT, TestDb, spec, with_project};
use rollout_domain::{Evaluation, EventKind, RunId, RunStatus, Usage};
use rollout_store::{FinishRun, Store, StoreError};
use std::collections::BTreeSet;
use std::time::Duration;

const LEASE: Duration = Duration::from_secs(600);

async fn new_run(store: &Store) -> RunId {
    let id = RunId::generate();
    store
        .insert_run(&id, PROJECT, &spec("alpha", "answer", "m"))
        .await
        .unwrap();
    id
}

fn completed(reward: f64) -> FinishRun {
    FinishRun {
        status: RunStatus::Completed,
        outcome: Some("answered".into()),
        reward: Some(reward),
        evaluation: Some(Evaluation::reward(reward).with_content("well done")),
        final_response: Some("Paris".into()),
        steps: 3,
        usage: Usage {
            input_tokens: 300,
            output_tokens: 40,
            cache_read_tokens: 100,
            cache_write_tokens: 7,
        },
        error: None,
    }
}

pub(crate) async fn claim_heartbeat_progress_and_finish_are_fenced(db: &TestDb) {
    let store = &db.store;
    with_project(store).await;
    assert!(store.claim_next_run("w1", LEASE).await.unwrap().is_none());
    let first = new_run(store).await;
    let second = new_run(store).await;

    let claimed = store.claim_next_run("w1", LEASE).await.unwrap().unwrap();
    assert_eq!(claimed.run.id, first);
    assert_eq!(claimed.attempt, 1);
    assert_eq!(claimed.run.attempts, 1);
    assert_eq!(claimed.run.status, RunStatus::Running);
    assert_eq!(claimed.run.spec, spec("alpha", "answer", "m"));
    let started = claimed.run.started_at_ms.unwrap();
    assert!(started >= claimed.run.created_at_ms);

    assert!(store.heartbeat(&first, "w1", LEASE).await.unwrap());
    assert!(!store.heartbeat(&first, "w2", LEASE).await.unwrap());
    assert!(
        !store.heartbeat(&second, "w1", LEASE).await.unwrap(),
        "not claimed yet"
    );

    let usage = Usage {
        input_tokens: 100,
        output_tokens: 10,
        ..Usage::default()
    };
    assert!(
        store
            .record_progress(&first, "w1", 1, &usage)
            .await
            .unwrap()
    );
    assert!(
        !store
            .record_progress(&first, "w2", 7, &Usage::default())
            .await
            .unwrap()
    );
    let run = store
        .get_run(PROJECT, first.as_str())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((run.steps, run.usage), (1, usage));

    // A worker that does not own the run cannot finish it.
    assert!(
        !store
            .finish_run(&first, "w2", &completed(0.0))
            .await
            .unwrap()
    );
    let run = store
        .get_run(PROJECT, first.as_str())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(run.status, RunStatus::Running);
    assert_eq!(run.reward, None);

    let not_terminal = FinishRun {
        status: RunStatus::Queued,
        ..completed(1.0)
    };
    assert!(matches!(
        store.finish_run(&first, "w1", &not_terminal).await,
        Err(StoreError::NotTerminal {
            status: RunStatus::Queued
        })
    ));

    assert!(
        store
            .finish_run(&first, "w1", &completed(1.0))
            .await
            .unwrap()
    );
    let run = store
        .get_run(PROJECT, first.as_str())
        .await
        .unwrap()
        .unwrap();
    let finish = completed(1.0);
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(run.outcome, finish.outcome);
    assert_eq!(run.reward, Some(1.0));
    assert_eq!(run.evaluation, finish.evaluation);
    assert_eq!(run.final_response.as_deref(), Some("Paris"));
    assert_eq!((run.steps, run.usage), (3, finish.usage));
    assert_eq!(run.error, None);
    assert_eq!(run.started_at_ms, Some(started));
    assert!(run.finished_at_ms.unwrap() >= started);

    // Finished runs cannot be written again, and their lease is gone.
    assert!(
        !store
            .finish_run(&first, "w1", &completed(0.0))
            .await
            .unwrap()
    );
    assert!(!store.heartbeat(&first, "w1", LEASE).await.unwrap());
    assert!(
        !store
            .record_progress(&first, "w1", 9, &Usage::default())
            .await
            .unwrap()
    );

    let failed = FinishRun {
        status: RunStatus::Failed,
        outcome: None,
        reward: None,
        evaluation: None,
        final_response: None,
        steps: 0,
        usage: Usage::default(),
        error: Some("environment crashed".into()),
    };
    let claimed = store.claim_next_run("w2", LEASE).await.unwrap().unwrap();
    assert_eq!(claimed.run.id, second);
    assert!(store.finish_run(&second, "w2", &failed).await.unwrap());
    let run = store
        .get_run(PROJECT, second.as_str())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.error.as_deref(), Some("environment crashed"));
    assert_eq!((run.reward, run.evaluation), (None, None));
    assert!(store.claim_next_run("w1", LEASE).await.unwrap().is_none());
}

pub(crate) async fn concurrent_claimers_never_claim_a_run_twice(db: &TestDb) {
    let store = &db.store;
    with_project(store).await;
    let mut inserted = BTreeSet::new();
    for _ in 0..20 {
        inserted.insert(new_run(store).await.0);
    }

    let mut claimers = tokio::task::JoinSet::new();
    for worker in 0..4 {
        let store = store.clone();
        claimers.spawn(async move {
            let worker_id = format!("w{worker}");
            let mut claimed = Vec::new();
            while let Some(run) = store.claim_next_run(&worker_id, LEASE).await.unwrap() {
                assert_eq!(run.attempt, 1);
                claimed.push(run.run.id.0);
                tokio::task::yield_now().await;
            }
            claimed
        });
    }
    let mut all = Vec::new();
    while let Some(claimed) = claimers.join_next().await {
        all.extend(claimed.unwrap());
    }
    let unique: BTreeSet<String> = all.iter().cloned().collect();
    assert_eq!(all.len(), 20, "every run claimed exactly once");
    assert_eq!(unique, inserted);
    assert!(store.claim_next_run("late", LEASE).await.unwrap().is_none());
}

pub(crate) async fn expired_leases_are_requeued_then_failed(db: &TestDb) {
    let store = &db.store;
    with_project(store).await;
    let healthy = new_run(store).await;
    let lost = new_run(store).await;
    assert_eq!(
        store
            .claim_next_run("healthy", LEASE)
            .await
            .unwrap()
            .unwrap()
            .run
            .id,
        healthy
    );

    // A zero lease is expired as soon as it is taken.
    let claimed = store
        .claim_next_run("w1", Duration::ZERO)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((claimed.run.id.clone(), claimed.attempt), (lost.clone(), 1));
    store
        .append_event(
            &lost,
            1,
            &EventKind::AttemptStarted {
                attempt: 1,
                worker: "w1".into(),
            },
        )
        .await
        .unwrap();

    let recovered = store.recover_expired_leases(2).await.unwrap();
    assert_eq!(recovered, vec![(lost.clone(), RunStatus::Queued)]);
    let run = store
        .get_run(PROJECT, lost.as_str())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((run.status, run.attempts), (RunStatus::Queued, 1));
    let events = store.list_events(lost.as_str(), 0, 100).await.unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!((events[1].seq, events[1].attempt), (2, 1));
    assert_eq!(
        events[1].kind,
        EventKind::Error {
            phase: "lease".into(),
            message: "worker lost; run re-queued (attempt 1 of 2)".into()
        }
    );
    // The lost worker is fenced out.
    assert!(!store.heartbeat(&lost, "w1", LEASE).await.unwrap());
    assert!(
        !store
            .finish_run(&lost, "w1", &completed(1.0))
            .await
            .unwrap()
    );
    assert_eq!(store.queue_position(lost.as_str()).await.unwrap(), Some(1));

    let claimed = store
        .claim_next_run("w2", Duration::ZERO)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((claimed.run.id.clone(), claimed.attempt), (lost.clone(), 2));
    let recovered = store.recover_expired_leases(2).await.unwrap();
    assert_eq!(recovered, vec![(lost.clone(), RunStatus::Failed)]);
    let run = store
        .get_run(PROJECT, lost.as_str())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.error.as_deref(), Some("worker lost after 2 attempts"));
    assert!(run.finished_at_ms.is_some());
    let events = store.list_events(lost.as_str(), 2, 100).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].seq, events[0].attempt), (3, 2));
    assert_eq!(
        events[0].kind,
        EventKind::Finished {
            status: "failed".into(),
            error: Some("worker lost after 2 attempts".into())
        }
    );

    // Nothing else expired: the healthy run keeps its lease.
    assert!(store.recover_expired_leases(2).await.unwrap().is_empty());
    assert!(store.heartbeat(&healthy, "healthy", LEASE).await.unwrap());
    assert!(store.claim_next_run("w3", LEASE).await.unwrap().is_none());
}

pub(crate) async fn release_puts_a_run_back_without_counting_the_attempt(db: &TestDb) {
    let store = &db.store;
    with_project(store).await;
    let run = new_run(store).await;
    let claimed = store.claim_next_run("w1", LEASE).await.unwrap().unwrap();
    assert_eq!(claimed.attempt, 1);

    assert!(!store.release_run(&run, "w2").await.unwrap());
    assert!(store.release_run(&run, "w1").await.unwrap());
    assert!(
        !store.release_run(&run, "w1").await.unwrap(),
        "no longer owned"
    );
    let released = store.get_run(PROJECT, run.as_str()).await.unwrap().unwrap();
    assert_eq!((released.status, released.attempts), (RunStatus::Queued, 0));
    assert!(!store.heartbeat(&run, "w1", LEASE).await.unwrap());
    assert_eq!(store.queue_position(run.as_str()).await.unwrap(), Some(1));

    let again = store.claim_next_run("w2", LEASE).await.unwrap().unwrap();
    assert_eq!((again.run.id, again.attempt), (run, 1));
    // The first start time is kept across attempts.
    assert_eq!(again.run.started_at_ms, claimed.run.started_at_ms);
}

pub(crate) async fn queue_position_follows_claim_order(db: &TestDb) {
    let store = &db.store;
    with_project(store).await;
    let runs = [
        new_run(store).await,
        new_run(store).await,
        new_run(store).await,
    ];
    for (index, run) in runs.iter().enumerate() {
        assert_eq!(
            store.queue_position(run.as_str()).await.unwrap(),
            Some(index as i64 + 1)
        );
    }
    assert_eq!(store.queue_position("no-such-run").await.unwrap(), None);

    let claimed = store.claim_next_run("w1", LEASE).await.unwrap().unwrap();
    assert_eq!(claimed.run.id, runs[0]);
    assert_eq!(store.queue_position(runs[0].as_str()).await.unwrap(), None);
    assert_eq!(
        store.queue_position(runs[1].as_str()).await.unwrap(),
        Some(1)
    );
    assert_eq!(
        store.queue_position(runs[2].as_str()).await.unwrap(),
        Some(2)
    );
}
