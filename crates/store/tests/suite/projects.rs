//! Per-project settings and the usage counted for their limits and quotas.

use super::common::{PROJECT, TestDb, spec, with_project};
use rollout_domain::{RunId, Usage};
use rollout_store::{ProjectSettings, ProjectUsage};
use std::time::Duration;

const DAY_MS: i64 = 86_400_000;

pub(crate) async fn settings_are_stored_per_project_and_usage_is_counted(db: &TestDb) {
    let store = &db.store;
    with_project(store).await;
    store.ensure_project("p2", "Project two").await.unwrap();

    // A new project has no settings of its own; an unknown one is absent.
    let project = store.get_project(PROJECT).await.unwrap().unwrap();
    assert_eq!(project.name, "Project one");
    assert_eq!(project.settings, ProjectSettings::default());
    assert_eq!(store.get_project("nope").await.unwrap(), None);
    let settings = ProjectSettings {
        max_runs_in_flight: Some(2),
        default_timeout_seconds: Some(30),
        max_timeout_seconds: Some(60),
        default_max_steps: Some(7),
        max_runs_per_day: Some(100),
        max_tokens_per_day: Some(5000),
    };
    assert!(
        store
            .set_project_settings(PROJECT, &settings)
            .await
            .unwrap()
    );
    assert!(!store.set_project_settings("nope", &settings).await.unwrap());
    assert_eq!(
        store.get_project(PROJECT).await.unwrap().unwrap().settings,
        settings
    );
    // Another project's settings are untouched.
    assert_eq!(
        store.get_project("p2").await.unwrap().unwrap().settings,
        ProjectSettings::default()
    );

    // Usage: nothing yet.
    let since = 0;
    assert_eq!(
        store.project_usage(PROJECT, since).await.unwrap(),
        ProjectUsage::default()
    );
    // Three runs in p1: one running with tokens, one queued, one cancelled; one in p2.
    let mut ids = Vec::new();
    for _ in 0..3 {
        let id = RunId::generate();
        store
            .insert_run(&id, PROJECT, &spec("env", "answer", "replay"))
            .await
            .unwrap();
        ids.push(id);
    }
    store
        .insert_run(&RunId::generate(), "p2", &spec("env", "answer", "replay"))
        .await
        .unwrap();
    let claimed = store
        .claim_next_run("w1", Duration::from_secs(600))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.run.id, ids[0]);
    let usage = Usage {
        input_tokens: 120,
        output_tokens: 30,
        ..Usage::default()
    };
    assert!(
        store
            .record_progress(&claimed.lease, 1, &usage)
            .await
            .unwrap()
    );
    let last = ids.last().unwrap();
    store.cancel_run(PROJECT, last.as_str()).await.unwrap();

    let now = store
        .get_run(PROJECT, ids[0].as_str())
        .await
        .unwrap()
        .unwrap();
    let counted = store.project_usage(PROJECT, since).await.unwrap();
    assert_eq!(counted.in_flight, 2);
    assert_eq!(counted.runs, 3);
    assert_eq!(counted.tokens, 150);
    assert_eq!(counted.oldest_run_at_ms, Some(now.created_at_ms));
    let other = store.project_usage("p2", since).await.unwrap();
    assert_eq!((other.in_flight, other.runs), (1, 1));

    // A window starting after every run counts the runs in flight only.
    let later = store
        .project_usage(PROJECT, now.created_at_ms + DAY_MS)
        .await
        .unwrap();
    assert_eq!(
        later,
        ProjectUsage {
            in_flight: 2,
            runs: 0,
            tokens: 0,
            oldest_run_at_ms: None,
        }
    );
    // Clearing the settings.
    assert!(
        store
            .set_project_settings(PROJECT, &ProjectSettings::default())
            .await
            .unwrap()
    );
    assert_eq!(
        store.get_project(PROJECT).await.unwrap().unwrap().settings,
        ProjectSettings::default()
    );
    // No idempotency key is held.
    assert!(!store.idempotency_key_is_live(PROJECT, "k").await.unwrap());
}
