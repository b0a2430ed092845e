//! Runs recorded by the MCP gateway: inserted running, never claimed, finished fenced.

use super::common::{PROJECT, TestDb, spec, with_project};
use rollout_domain::{Evaluation, RunId, RunStatus};
use rollout_store::{FinishRun, Lease};
use std::time::Duration;

const LEASE: Duration = Duration::from_secs(600);

pub(crate) async fn gateway_runs_start_running_and_finish_fenced(db: &TestDb) {
    let store = &db.store;
    with_project(store).await;
    let id = RunId::generate();
    let claimed = store
        .insert_running_run(
            &id,
            PROJECT,
            &spec("alpha", "answer", "external"),
            "gateway",
            LEASE,
        )
        .await
        .unwrap();
    let (run, lease) = (claimed.run, claimed.lease);
    assert_eq!((lease.run_id.clone(), lease.attempt), (id.clone(), 1));
    assert_eq!(run.status, RunStatus::Running);
    assert_eq!(run.attempts, 1);
    assert!(run.started_at_ms.is_some());
    // A running run is not in the queue.
    assert!(store.claim_next_run("w1", LEASE).await.unwrap().is_none());
    assert!(store.heartbeat(&lease, LEASE).await.unwrap());
    let stranger = Lease {
        token: "not-the-claim".into(),
        ..lease.clone()
    };
    assert!(!store.heartbeat(&stranger, LEASE).await.unwrap());
    let finish = FinishRun {
        status: RunStatus::Completed,
        outcome: Some("answered".into()),
        reward: Some(1.0),
        evaluation: Some(Evaluation::reward(1.0)),
        final_response: Some("391".into()),
        steps: 1,
        usage: Default::default(),
        error: None,
    };
    assert!(!store.finish_run(&stranger, &finish).await.unwrap());
    assert!(store.finish_run(&lease, &finish).await.unwrap());
    let run = store.get_run(PROJECT, &id.0).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(run.reward, Some(1.0));
    assert_eq!(run.spec.model, "external");
}

pub(crate) async fn a_lost_gateway_run_fails_instead_of_going_back_to_the_queue(db: &TestDb) {
    let store = &db.store;
    with_project(store).await;
    let id = RunId::generate();
    store
        .insert_running_run(
            &id,
            PROJECT,
            &spec("alpha", "answer", "external"),
            rollout_store::GATEWAY_OWNER,
            Duration::ZERO,
        )
        .await
        .unwrap();
    let recovered = store.recover_expired_leases(3).await.unwrap();
    assert_eq!(recovered, vec![(id.clone(), RunStatus::Failed)]);
    let run = store.get_run(PROJECT, &id.0).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    assert!(run.error.unwrap().contains("gateway session was lost"));
    assert!(store.claim_next_run("w1", LEASE).await.unwrap().is_none());
}
