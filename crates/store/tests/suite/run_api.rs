//! The run API for automations: idempotency keys and the callback delivery log.

use super::common::{PROJECT, TestDb, spec, with_project};
use rollout_domain::RunId;
use rollout_store::{IdempotentInsert, NewDelivery, RunFilter, TickAction};
use std::time::Duration;

const DAY: Duration = Duration::from_secs(86_400);

pub(crate) async fn idempotency_keys_return_the_same_run_and_refuse_other_requests(db: &TestDb) {
    let store = &db.store;
    with_project(store).await;
    store.ensure_project("p2", "Project two").await.unwrap();
    let spec = spec("alpha", "answer", "replay");

    let first = RunId::generate();
    let inserted = store
        .insert_run_idempotent(&first, PROJECT, &spec, "k1", "hash-a", DAY)
        .await
        .unwrap();
    let IdempotentInsert::Inserted(run) = inserted else {
        panic!("expected an insert, got {inserted:?}");
    };
    assert_eq!(run.id, first);

    let again = store
        .insert_run_idempotent(&RunId::generate(), PROJECT, &spec, "k1", "hash-a", DAY)
        .await
        .unwrap();
    assert!(
        matches!(&again, IdempotentInsert::Existing(run) if run.id == first),
        "{again:?}"
    );

    let other = store
        .insert_run_idempotent(&RunId::generate(), PROJECT, &spec, "k1", "hash-b", DAY)
        .await
        .unwrap();
    assert_eq!(
        other,
        IdempotentInsert::Conflict {
            run_id: first.0.clone()
        }
    );

    // Keys are per project.
    let elsewhere = store
        .insert_run_idempotent(&RunId::generate(), "p2", &spec, "k1", "hash-a", DAY)
        .await
        .unwrap();
    assert!(matches!(elsewhere, IdempotentInsert::Inserted(_)));

    // An expired key (a zero lifetime expires at once) starts a new run.
    let short = RunId::generate();
    let inserted = store
        .insert_run_idempotent(&short, PROJECT, &spec, "k2", "hash-a", Duration::ZERO)
        .await
        .unwrap();
    assert!(matches!(inserted, IdempotentInsert::Inserted(_)));
    let renewed = store
        .insert_run_idempotent(&RunId::generate(), PROJECT, &spec, "k2", "hash-b", DAY)
        .await
        .unwrap();
    assert!(
        matches!(&renewed, IdempotentInsert::Inserted(run) if run.id != short),
        "{renewed:?}"
    );
}

pub(crate) async fn concurrent_duplicates_create_exactly_one_run(db: &TestDb) {
    let store = &db.store;
    with_project(store).await;
    let spec = spec("alpha", "answer", "replay");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..24 {
        let store = store.clone();
        let spec = spec.clone();
        tasks.spawn(async move {
            store
                .insert_run_idempotent(&RunId::generate(), PROJECT, &spec, "same", "h", DAY)
                .await
                .unwrap()
        });
    }
    let mut inserted = Vec::new();
    let mut existing = Vec::new();
    while let Some(result) = tasks.join_next().await {
        match result.unwrap() {
            IdempotentInsert::Inserted(run) => inserted.push(run.id),
            IdempotentInsert::Existing(run) => existing.push(run.id),
            IdempotentInsert::Conflict { run_id } => panic!("conflict with {run_id}"),
        }
    }
    assert_eq!(inserted.len(), 1);
    assert_eq!(existing.len(), 23);
    assert!(existing.iter().all(|id| *id == inserted[0]));
    let runs = store
        .list_runs(PROJECT, &RunFilter::default())
        .await
        .unwrap();
    assert_eq!(runs.len(), 1);
}

pub(crate) async fn deliveries_are_logged_per_run_and_project(db: &TestDb) {
    let store = &db.store;
    with_project(store).await;
    let id = RunId::generate();
    store
        .insert_run(&id, PROJECT, &spec("alpha", "answer", "replay"))
        .await
        .unwrap();
    for (attempt, status, error) in [(1, Some(500), Some("HTTP 500")), (2, Some(200), None)] {
        store
            .record_delivery(&NewDelivery {
                run_id: id.0.clone(),
                project_id: PROJECT.into(),
                attempt,
                kind: "auto".into(),
                url: "http://127.0.0.1:9/hook".into(),
                status_code: status,
                latency_ms: 12,
                error: error.map(str::to_string),
            })
            .await
            .unwrap();
    }
    let deliveries = store.list_deliveries(PROJECT, id.as_str()).await.unwrap();
    let summary: Vec<(i64, Option<i64>, Option<String>)> = deliveries
        .iter()
        .map(|d| (d.attempt, d.status_code, d.error.clone()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (1, Some(500), Some("HTTP 500".into())),
            (2, Some(200), None)
        ]
    );
    assert_eq!(deliveries[0].kind, "auto");
    assert!(deliveries[0].created_at_ms > 0);
    assert_eq!(
        store.run_project(id.as_str()).await.unwrap(),
        Some(PROJECT.to_string())
    );
    assert_eq!(store.run_project("missing").await.unwrap(), None);
    assert!(
        store
            .list_deliveries("p2", id.as_str())
            .await
            .unwrap()
            .is_empty()
    );
}

pub(crate) async fn a_schedule_tick_fires_exactly_once(db: &TestDb) {
    let store = &db.store;
    with_project(store).await;
    let new = rollout_store::NewSchedule {
        project_id: PROJECT.into(),
        name: "nightly".into(),
        cron: "* * * * * *".into(),
        timezone: "UTC".into(),
        spec: spec("alpha", "answer", "replay"),
        pinned_version: None,
        next_run_at_ms: Some(1_000),
    };
    let schedule = store.insert_schedule("s1", &new).await.unwrap();
    assert!(store.due_schedules(999, 10).await.unwrap().is_empty());
    assert_eq!(store.due_schedules(1_000, 10).await.unwrap().len(), 1);

    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let store = store.clone();
        let schedule = schedule.clone();
        let spec = spec("alpha", "answer", "replay");
        tasks.spawn(async move {
            let id = RunId::generate();
            store
                .fire_schedule(&schedule, 1_000, Some(2_000), TickAction::Run(&id, &spec))
                .await
                .unwrap()
        });
    }
    let mut fired = Vec::new();
    while let Some(result) = tasks.join_next().await {
        fired.extend(result.unwrap());
    }
    assert_eq!(fired.len(), 1);
    let runs = store.schedule_runs(PROJECT, "s1", 10).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!((runs[0].0, &runs[0].1.id), (1_000, &fired[0].id));
    let stored = store.get_schedule(PROJECT, "s1").await.unwrap().unwrap();
    assert_eq!(
        (stored.next_run_at_ms, stored.last_run_at_ms),
        (Some(2_000), Some(1_000))
    );

    // A skipped tick moves on, starts nothing and says why.
    let skipped = store
        .fire_schedule(
            &stored,
            2_000,
            Some(3_000),
            TickAction::Skip("quota used up"),
        )
        .await
        .unwrap();
    assert!(skipped.is_none());
    let stored = store.get_schedule(PROJECT, "s1").await.unwrap().unwrap();
    assert_eq!(stored.next_run_at_ms, Some(3_000));
    assert_eq!(stored.last_skipped_at_ms, Some(2_000));
    assert_eq!(stored.last_skip_reason.as_deref(), Some("quota used up"));
    assert_eq!(
        store.schedule_runs(PROJECT, "s1", 10).await.unwrap().len(),
        1
    );

    // Paused: nothing is due and a stale firer cannot fire.
    assert!(
        store
            .set_schedule_paused(PROJECT, "s1", true, Some(3_000))
            .await
            .unwrap()
    );
    assert!(store.due_schedules(5_000, 10).await.unwrap().is_empty());
    let id = RunId::generate();
    let spec = spec("alpha", "answer", "replay");
    assert!(
        store
            .fire_schedule(&stored, 3_000, Some(4_000), TickAction::Run(&id, &spec))
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.get_schedule("p2", "s1").await.unwrap().is_none());
    assert!(store.delete_schedule(PROJECT, "s1").await.unwrap());
    assert!(store.list_schedules(PROJECT).await.unwrap().is_empty());
    // The run stays.
    assert!(
        store
            .get_run(PROJECT, fired[0].id.as_str())
            .await
            .unwrap()
            .is_some()
    );
}

pub(crate) async fn expired_idempotency_keys_are_purged_and_live_ones_kept(db: &TestDb) {
    let store = &db.store;
    with_project(store).await;
    let spec = spec("alpha", "answer", "replay");
    for index in 0..1_205 {
        store
            .insert_run_idempotent(
                &RunId::generate(),
                PROJECT,
                &spec,
                &format!("expired-{index}"),
                "hash",
                Duration::ZERO,
            )
            .await
            .unwrap();
    }
    let live = RunId::generate();
    store
        .insert_run_idempotent(&live, PROJECT, &spec, "live", "hash", DAY)
        .await
        .unwrap();
    // More than one batch of expired keys.
    assert_eq!(store.purge_expired_idempotency_keys().await.unwrap(), 1_205);
    assert_eq!(store.purge_expired_idempotency_keys().await.unwrap(), 0);
    let again = store
        .insert_run_idempotent(&RunId::generate(), PROJECT, &spec, "live", "hash", DAY)
        .await
        .unwrap();
    assert!(
        matches!(&again, IdempotentInsert::Existing(run) if run.id == live),
        "{again:?}"
    );
}
