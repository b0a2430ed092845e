//! The queue: claims, leases, fencing, recovery, release, positions.

use super::common::{PROJECT, TestDb, spec, with_project};
use rollout_domain::{Evaluation, EventKind, RunId, RunStatus, Usage};
use rollout_store::{FinishRun, Lease, RunProgress, Store, StoreError};
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

/// The run a finish answers (a `sync` request answers with it instead of reading the run)
/// is the run a read returns afterwards, field for field: texts cut as stored (the answer,
/// the error and the evaluation's strings), the end's time, the claim's fields. A stale
/// claim gets nothing.
pub(crate) async fn a_finish_answers_the_run_as_a_read_returns_it(db: &TestDb) {
    let store = &db.store.clone().with_max_event_bytes(1024);
    with_project(store).await;
    let id = new_run(store).await;
    let claimed = store.claim_next_run("w1", LEASE).await.unwrap().unwrap();
    assert!(
        store
            .record_progress(&claimed.lease, 1, &Usage::default())
            .await
            .unwrap()
    );
    let long = "é".repeat(3000);
    let finish = FinishRun {
        status: RunStatus::Failed,
        evaluation: Some(Evaluation::reward(0.25).with_content(long.clone())),
        reward: Some(0.25),
        final_response: Some(long.clone()),
        error: Some(long.clone()),
        usage: Usage {
            input_tokens: u64::MAX,
            ..completed(0.25).usage
        },
        ..completed(0.25)
    };
    assert_eq!(
        store
            .finish_claimed_run(&claimed.run, &stale(&claimed.lease), &finish)
            .await
            .unwrap(),
        None
    );
    let ended = store
        .finish_claimed_run(&claimed.run, &claimed.lease, &finish)
        .await
        .unwrap()
        .unwrap();
    let read = store.get_run(PROJECT, id.as_str()).await.unwrap().unwrap();
    assert_eq!(ended, read);
    assert!(read.final_response.unwrap().len() < long.len(), "cut");
}

/// The same claim with another token: what a stale execution of the run holds.
fn stale(lease: &Lease) -> Lease {
    Lease {
        token: "an-earlier-claim".into(),
        ..lease.clone()
    }
}

pub(crate) async fn claim_heartbeat_progress_and_finish_are_fenced(db: &TestDb) {
    let store = &db.store;
    with_project(store).await;
    assert!(store.claim_next_run("w1", LEASE).await.unwrap().is_none());
    let first = new_run(store).await;
    let second = new_run(store).await;

    let claimed = store.claim_next_run("w1", LEASE).await.unwrap().unwrap();
    let lease = claimed.lease.clone();
    assert_eq!(claimed.run.id, first);
    assert_eq!((lease.run_id.clone(), lease.attempt), (first.clone(), 1));
    assert_eq!(claimed.run.attempts, 1);
    assert_eq!(claimed.run.status, RunStatus::Running);
    assert_eq!(claimed.run.spec, spec("alpha", "answer", "m"));
    let started = claimed.run.started_at_ms.unwrap();
    assert!(started >= claimed.run.created_at_ms);
    // The claim stored the attempt's first event with it.
    let events = store.list_events(first.as_str(), 0, 100).await.unwrap();
    let attempt_started = EventKind::AttemptStarted {
        attempt: 1,
        worker: "w1".into(),
    };
    assert_eq!(
        events
            .iter()
            .map(|e| (e.seq, e.attempt, &e.kind))
            .collect::<Vec<_>>(),
        [(1, 1, &attempt_started)]
    );
    assert_eq!(claimed.started.as_ref(), events.first());

    assert!(store.heartbeat(&lease, LEASE).await.unwrap());
    assert!(!store.heartbeat(&stale(&lease), LEASE).await.unwrap());
    let unclaimed = Lease {
        run_id: second.clone(),
        ..lease.clone()
    };
    assert!(
        !store.heartbeat(&unclaimed, LEASE).await.unwrap(),
        "not claimed yet"
    );

    let usage = Usage {
        input_tokens: 100,
        output_tokens: 10,
        ..Usage::default()
    };
    assert!(store.record_progress(&lease, 1, &usage).await.unwrap());
    assert!(
        !store
            .record_progress(&stale(&lease), 7, &Usage::default())
            .await
            .unwrap()
    );
    let step = EventKind::Answer {
        text: "Paris".into(),
        outcome: "answered".into(),
    };
    let appended = store.append_leased_event(&lease, &step).await.unwrap();
    assert_eq!(appended.map(|e| (e.seq, e.attempt)), Some((2, 1)));
    assert_eq!(
        store
            .append_leased_event(&stale(&lease), &step)
            .await
            .unwrap(),
        None
    );
    let run = store
        .get_run(PROJECT, first.as_str())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((run.steps, run.usage), (1, usage));

    // A model call's append writes the progress in the same round trip, and a stale claim
    // writes neither.
    let later = RunProgress {
        steps: 2,
        usage: Usage {
            input_tokens: 250,
            output_tokens: 30,
            cache_read_tokens: 5,
            cache_write_tokens: 1,
        },
    };
    let appended = store
        .append_leased_event_and_progress(&lease, &step, Some(&later))
        .await
        .unwrap();
    assert_eq!(appended.map(|e| e.seq), Some(3));
    let refused = RunProgress {
        steps: 9,
        usage: Usage::default(),
    };
    assert_eq!(
        store
            .append_leased_event_and_progress(&stale(&lease), &step, Some(&refused))
            .await
            .unwrap(),
        None
    );
    let run = store
        .get_run(PROJECT, first.as_str())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((run.steps, run.usage), (later.steps, later.usage));
    let events = store.list_events(first.as_str(), 0, 100).await.unwrap();
    assert_eq!(events.len(), 3, "the stale claim appended nothing");

    // Another claim cannot finish the run.
    assert!(
        !store
            .finish_run(&stale(&lease), &completed(0.0))
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
        store.finish_run(&lease, &not_terminal).await,
        Err(StoreError::NotTerminal {
            status: RunStatus::Queued
        })
    ));

    assert!(store.finish_run(&lease, &completed(1.0)).await.unwrap());
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
    // The `finished` event was written with the terminal row.
    let events = store.list_events(first.as_str(), 0, 100).await.unwrap();
    assert_eq!(
        events
            .iter()
            .map(|e| (e.seq, e.attempt))
            .collect::<Vec<_>>(),
        [(1, 1), (2, 1), (3, 1), (4, 1)]
    );
    assert_eq!(
        events[3].kind,
        EventKind::Finished {
            status: "completed".into(),
            error: None
        }
    );

    // Finished runs cannot be written again, and their lease is gone.
    assert!(!store.finish_run(&lease, &completed(0.0)).await.unwrap());
    assert!(!store.heartbeat(&lease, LEASE).await.unwrap());
    assert!(
        !store
            .record_progress(&lease, 9, &Usage::default())
            .await
            .unwrap()
    );
    assert_eq!(
        store.append_leased_event(&lease, &step).await.unwrap(),
        None
    );
    assert_eq!(
        store
            .list_events(first.as_str(), 0, 100)
            .await
            .unwrap()
            .len(),
        4
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
    assert_ne!(claimed.lease.token, lease.token, "a token per claim");
    assert!(store.finish_run(&claimed.lease, &failed).await.unwrap());
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

/// The failure of fencing by process: a worker whose heartbeat stalled past the lease
/// recovers and claims its own run again. The earlier claim, although of the same worker,
/// is refused every write; only the newer one may finish the run.
pub(crate) async fn a_reclaim_by_the_same_worker_fences_out_its_earlier_claim(db: &TestDb) {
    let store = &db.store;
    with_project(store).await;
    let run = new_run(store).await;
    let earlier = store
        .claim_next_run("w1", Duration::ZERO)
        .await
        .unwrap()
        .unwrap()
        .lease;
    assert_eq!(
        store.recover_expired_leases(3).await.unwrap(),
        vec![(run.clone(), RunStatus::Queued)]
    );
    let later = store
        .claim_next_run("w1", LEASE)
        .await
        .unwrap()
        .unwrap()
        .lease;
    assert_eq!((earlier.attempt, later.attempt), (1, 2));

    let step = EventKind::Answer {
        text: "from the earlier claim".into(),
        outcome: "answered".into(),
    };
    assert!(!store.heartbeat(&earlier, LEASE).await.unwrap());
    assert!(
        !store
            .record_progress(&earlier, 5, &Usage::default())
            .await
            .unwrap()
    );
    assert_eq!(
        store.append_leased_event(&earlier, &step).await.unwrap(),
        None
    );
    assert!(!store.release_run(&earlier, "shutting down").await.unwrap());
    assert!(!store.finish_run(&earlier, &completed(0.0)).await.unwrap());

    assert!(store.heartbeat(&later, LEASE).await.unwrap());
    assert!(store.finish_run(&later, &completed(1.0)).await.unwrap());
    let stored = store.get_run(PROJECT, run.as_str()).await.unwrap().unwrap();
    assert_eq!(
        (stored.status, stored.reward),
        (RunStatus::Completed, Some(1.0))
    );
    let events = store.list_events(run.as_str(), 0, 100).await.unwrap();
    let kinds: Vec<(&str, i64)> = events.iter().map(|e| (e.kind.name(), e.attempt)).collect();
    assert_eq!(
        kinds,
        [
            ("attempt_started", 1),
            ("error", 1),
            ("attempt_started", 2),
            ("finished", 2)
        ]
    );
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
                assert_eq!(run.lease.attempt, 1);
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
    let healthy_claim = store
        .claim_next_run("healthy", LEASE)
        .await
        .unwrap()
        .unwrap()
        .lease;
    assert_eq!(healthy_claim.run_id, healthy);

    // A zero lease is expired as soon as it is taken.
    let claimed = store
        .claim_next_run("w1", Duration::ZERO)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (claimed.run.id.clone(), claimed.lease.attempt),
        (lost.clone(), 1)
    );
    let first_claim = claimed.lease;
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
    assert_eq!(events.len(), 3);
    assert_eq!((events[2].seq, events[2].attempt), (3, 1));
    assert_eq!(
        events[2].kind,
        EventKind::Error {
            phase: "lease".into(),
            message: "worker lost; run re-queued (attempt 1 lost, 1 of 2 allowed)".into()
        }
    );
    // The lost worker is fenced out.
    assert!(!store.heartbeat(&first_claim, LEASE).await.unwrap());
    assert!(
        !store
            .finish_run(&first_claim, &completed(1.0))
            .await
            .unwrap()
    );
    assert_eq!(store.queue_position(lost.as_str()).await.unwrap(), Some(1));

    let claimed = store
        .claim_next_run("w2", Duration::ZERO)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (claimed.run.id.clone(), claimed.lease.attempt),
        (lost.clone(), 2)
    );
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
    // After the first attempt's three events and the second's `attempt_started`.
    let events = store.list_events(lost.as_str(), 4, 100).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].seq, events[0].attempt), (5, 2));
    assert_eq!(
        events[0].kind,
        EventKind::Finished {
            status: "failed".into(),
            error: Some("worker lost after 2 attempts".into())
        }
    );

    // Nothing else expired: the healthy run keeps its lease.
    assert!(store.recover_expired_leases(2).await.unwrap().is_empty());
    assert!(store.heartbeat(&healthy_claim, LEASE).await.unwrap());
    assert!(store.claim_next_run("w3", LEASE).await.unwrap().is_none());
}

pub(crate) async fn release_puts_a_run_back_and_the_next_claim_is_a_new_attempt(db: &TestDb) {
    let store = &db.store;
    with_project(store).await;
    let run = new_run(store).await;
    let claimed = store.claim_next_run("w1", LEASE).await.unwrap().unwrap();
    let lease = claimed.lease.clone();
    assert_eq!(lease.attempt, 1);

    assert!(
        !store
            .release_run(&stale(&lease), "shutting down")
            .await
            .unwrap()
    );
    assert!(store.release_run(&lease, "shutting down").await.unwrap());
    assert!(
        !store.release_run(&lease, "shutting down").await.unwrap(),
        "no longer owned"
    );
    let released = store.get_run(PROJECT, run.as_str()).await.unwrap().unwrap();
    // Attempts only increase: the released attempt keeps its number.
    assert_eq!((released.status, released.attempts), (RunStatus::Queued, 1));
    assert!(!store.heartbeat(&lease, LEASE).await.unwrap());
    assert_eq!(store.queue_position(run.as_str()).await.unwrap(), Some(1));
    let events = store.list_events(run.as_str(), 0, 100).await.unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].attempt, 1);
    assert_eq!(
        events[1].kind,
        EventKind::Error {
            phase: "shutdown".into(),
            message: "shutting down".into()
        }
    );

    let again = store.claim_next_run("w2", LEASE).await.unwrap().unwrap();
    assert_eq!(
        (again.run.id.clone(), again.lease.attempt),
        (run.clone(), 2)
    );
    // The first start time is kept across attempts.
    assert_eq!(again.run.started_at_ms, claimed.run.started_at_ms);

    // Releases do not use up the bound on lost attempts: with a bound of 2, a run released
    // twice and then lost once is re-queued, not failed.
    assert!(
        store
            .release_run(&again.lease, "shutting down")
            .await
            .unwrap()
    );
    let third = store
        .claim_next_run("w3", Duration::ZERO)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(third.lease.attempt, 3);
    assert_eq!(
        store.recover_expired_leases(2).await.unwrap(),
        vec![(run.clone(), RunStatus::Queued)]
    );
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
    // A claim tells whether others wait: a worker claims again at once only then.
    assert!(claimed.more_queued, "two runs were still queued");
    let second = store.claim_next_run("w1", LEASE).await.unwrap().unwrap();
    assert_eq!((second.run.id, second.more_queued), (runs[1].clone(), true));
    let last = store.claim_next_run("w1", LEASE).await.unwrap().unwrap();
    assert_eq!((last.run.id, last.more_queued), (runs[2].clone(), false));
    assert!(store.claim_next_run("w1", LEASE).await.unwrap().is_none());
}
