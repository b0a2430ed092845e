//! Runs: insert, read, list with filters and a cursor, cancel.

use super::common::{PROJECT, TestDb, spec, with_project};
use rollout_domain::{EventKind, RunId, RunStatus, Usage};
use rollout_store::{CancelOutcome, RunFilter, RunRecord};
use std::time::Duration;

const LEASE: Duration = Duration::from_secs(600);

fn ids(runs: &[RunRecord]) -> Vec<String> {
    runs.iter().map(|run| run.id.0.clone()).collect()
}

pub(crate) async fn runs_are_inserted_read_and_listed_with_filters_and_cursor(db: &TestDb) {
    let store = &db.store;
    with_project(store).await;
    store.ensure_project("p2", "Project two").await.unwrap();

    let combos = [
        ("alpha", "answer", "claude-x"),
        ("alpha", "count", "gpt-y"),
        ("beta", "answer", "gpt-y"),
        ("alpha", "answer", "gpt-y"),
        ("beta", "count", "claude-x"),
    ];
    let mut inserted = Vec::new();
    for (env, scenario, model) in combos {
        let id = RunId::generate();
        let run = store
            .insert_run(&id, PROJECT, &spec(env, scenario, model))
            .await
            .unwrap();
        assert_eq!(run.id, id);
        assert_eq!(run.status, RunStatus::Queued);
        assert_eq!(run.spec, spec(env, scenario, model));
        assert_eq!(run.attempts, 0);
        assert_eq!(run.steps, 0);
        assert_eq!(run.usage, Usage::default());
        assert_eq!((run.started_at_ms, run.finished_at_ms), (None, None));
        assert!(run.created_at_ms > 0);
        inserted.push(run);
    }
    // Runs belong to an existing project (foreign keys are on, on SQLite too).
    let orphan = store
        .insert_run(&RunId::generate(), "no-such-project", &spec("a", "b", "c"))
        .await;
    assert!(orphan.is_err());
    let other = store
        .insert_run(&RunId::generate(), "p2", &spec("alpha", "answer", "gpt-y"))
        .await
        .unwrap();

    let first = &inserted[0];
    assert_eq!(
        store
            .get_run(PROJECT, first.id.as_str())
            .await
            .unwrap()
            .as_ref(),
        Some(first)
    );
    assert_eq!(store.get_run("p2", first.id.as_str()).await.unwrap(), None);
    assert_eq!(store.get_run(PROJECT, "no-such-run").await.unwrap(), None);

    let newest_first: Vec<String> = inserted.iter().rev().map(|run| run.id.0.clone()).collect();
    let all = store
        .list_runs(PROJECT, &RunFilter::default())
        .await
        .unwrap();
    assert_eq!(ids(&all), newest_first);
    assert_eq!(all[0], inserted[4]);
    assert_eq!(
        ids(&store.list_runs("p2", &RunFilter::default()).await.unwrap()),
        vec![other.id.0]
    );

    let by_env = RunFilter {
        env_name: Some("alpha".into()),
        ..RunFilter::default()
    };
    let pick = |indices: &[usize]| -> Vec<String> {
        indices.iter().map(|&i| inserted[i].id.0.clone()).collect()
    };
    assert_eq!(
        ids(&store.list_runs(PROJECT, &by_env).await.unwrap()),
        pick(&[3, 1, 0])
    );
    let by_scenario = RunFilter {
        scenario: Some("count".into()),
        ..RunFilter::default()
    };
    assert_eq!(
        ids(&store.list_runs(PROJECT, &by_scenario).await.unwrap()),
        pick(&[4, 1])
    );
    let by_model = RunFilter {
        model: Some("gpt-y".into()),
        ..RunFilter::default()
    };
    assert_eq!(
        ids(&store.list_runs(PROJECT, &by_model).await.unwrap()),
        pick(&[3, 2, 1])
    );
    let combined = RunFilter {
        env_name: Some("alpha".into()),
        scenario: Some("answer".into()),
        model: Some("gpt-y".into()),
        ..RunFilter::default()
    };
    assert_eq!(
        ids(&store.list_runs(PROJECT, &combined).await.unwrap()),
        pick(&[3])
    );

    // Status: claim the oldest run.
    let claimed = store.claim_next_run("w1", LEASE).await.unwrap().unwrap();
    assert_eq!(claimed.run.id, inserted[0].id);
    let running = RunFilter {
        status: Some(RunStatus::Running),
        ..RunFilter::default()
    };
    assert_eq!(
        ids(&store.list_runs(PROJECT, &running).await.unwrap()),
        pick(&[0])
    );
    let queued = RunFilter {
        status: Some(RunStatus::Queued),
        ..RunFilter::default()
    };
    assert_eq!(
        ids(&store.list_runs(PROJECT, &queued).await.unwrap()),
        pick(&[4, 3, 2, 1])
    );

    // Pages of two, following the cursor.
    let mut pages = Vec::new();
    let mut before = None;
    loop {
        let filter = RunFilter {
            limit: Some(2),
            before: before.clone(),
            ..RunFilter::default()
        };
        let page = store.list_runs(PROJECT, &filter).await.unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 2);
        before = page.last().map(|run| run.id.0.clone());
        pages.push(ids(&page));
    }
    assert_eq!(pages, vec![pick(&[4, 3]), pick(&[2, 1]), pick(&[0])]);
}

pub(crate) async fn cancel_stops_queued_runs_and_flags_running_ones(db: &TestDb) {
    let store = &db.store;
    with_project(store).await;
    let running_id = RunId::generate();
    store
        .insert_run(&running_id, PROJECT, &spec("alpha", "answer", "m"))
        .await
        .unwrap();
    let queued_id = RunId::generate();
    store
        .insert_run(&queued_id, PROJECT, &spec("alpha", "answer", "m"))
        .await
        .unwrap();
    let claimed = store.claim_next_run("w1", LEASE).await.unwrap().unwrap();
    assert_eq!(claimed.run.id, running_id);

    let status = store.cancel_run(PROJECT, queued_id.as_str()).await.unwrap();
    assert_eq!(status, Some(CancelOutcome::Cancelled));
    // Cancelling again finds it ended: only the first request cancelled it.
    assert_eq!(
        store.cancel_run(PROJECT, queued_id.as_str()).await.unwrap(),
        Some(CancelOutcome::Ended(RunStatus::Cancelled))
    );
    let cancelled = store
        .get_run(PROJECT, queued_id.as_str())
        .await
        .unwrap()
        .unwrap();
    assert!(cancelled.finished_at_ms.is_some());
    let events = store.list_events(queued_id.as_str(), 0, 100).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0].kind,
        EventKind::Finished {
            status: "cancelled".into(),
            error: None
        }
    );
    // A cancelled run is never claimed.
    assert!(store.claim_next_run("w2", LEASE).await.unwrap().is_none());

    assert!(!store.is_cancel_requested(&running_id).await.unwrap());
    let status = store
        .cancel_run(PROJECT, running_id.as_str())
        .await
        .unwrap();
    assert_eq!(status, Some(CancelOutcome::Requested));
    assert!(store.is_cancel_requested(&running_id).await.unwrap());

    assert_eq!(
        store.cancel_run(PROJECT, "no-such-run").await.unwrap(),
        None
    );
    assert_eq!(
        store
            .cancel_run("p-other", running_id.as_str())
            .await
            .unwrap(),
        None
    );
}

pub(crate) async fn concurrent_cancels_of_a_queued_run_cancel_it_once(db: &TestDb) {
    let store = &db.store;
    with_project(store).await;
    let id = RunId::generate();
    store
        .insert_run(&id, PROJECT, &spec("alpha", "answer", "m"))
        .await
        .unwrap();
    let mut cancels = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let store = store.clone();
        let id = id.clone();
        cancels.spawn(async move { store.cancel_run(PROJECT, id.as_str()).await.unwrap() });
    }
    let mut outcomes = Vec::new();
    while let Some(outcome) = cancels.join_next().await {
        outcomes.push(outcome.unwrap().unwrap());
    }
    let cancelled = outcomes
        .iter()
        .filter(|outcome| **outcome == CancelOutcome::Cancelled)
        .count();
    assert_eq!(cancelled, 1, "{outcomes:?}");
    assert!(
        outcomes.iter().all(|outcome| matches!(
            outcome,
            CancelOutcome::Cancelled | CancelOutcome::Ended(RunStatus::Cancelled)
        )),
        "{outcomes:?}"
    );
    let events = store.list_events(id.as_str(), 0, 100).await.unwrap();
    assert_eq!(events.len(), 1, "one finished event");
}

/// SQLite: a burst of submitted runs with nothing else written meanwhile (no run claimed,
/// no event) keeps its WAL checkpointed. SQLite checkpoints only when a statement steps to
/// its end; read only to its first row (`fetch_one` of the insert's `RETURNING`), the inserts
/// left the WAL growing by about 14 pages a run (56 MiB per 1,000 runs), and every read
/// after searched it. Run on SQLite only (`sqlite_wal_checkpointed` in `suite.rs`).
pub(crate) async fn a_burst_of_submitted_runs_keeps_the_wal_checkpointed(db: &TestDb) {
    let store = &db.store;
    assert_eq!(store.backend(), rollout_store::Backend::Sqlite);
    with_project(store).await;
    let wal = format!("{}-wal", db.url.trim_start_matches("sqlite://"));
    for _ in 0..1_500 {
        store
            .insert_run(&RunId::generate(), PROJECT, &spec("e", "s", "m"))
            .await
            .unwrap();
    }
    let lease = Duration::from_secs(60);
    for _ in 0..500 {
        store
            .insert_running_run(
                &RunId::generate(),
                PROJECT,
                &spec("e", "s", "m"),
                "gw",
                lease,
            )
            .await
            .unwrap();
    }
    let size = std::fs::metadata(&wal).unwrap().len();
    // The automatic checkpoint starts the WAL over past 1,000 pages (4 MiB); twice that
    // leaves room for the pages of the write that crossed it.
    assert!(
        size <= 8 << 20,
        "the WAL holds {size} bytes after 2,000 inserted runs"
    );
}
