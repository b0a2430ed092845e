//! Deployed environments: build logs, runs in flight, deletion that keeps runs.

use super::common::{PROJECT, TestDb, spec, with_project};
use rollout_domain::RunId;
use rollout_store::{EnvStatus, NewEnvVersion};
use serde_json::json;

pub(crate) async fn build_logs_active_runs_and_delete_keep_traces(db: &TestDb) {
    let store = &db.store;
    with_project(store).await;
    let version = store
        .add_env_version(&NewEnvVersion {
            project_id: PROJECT.into(),
            name: "bundle".into(),
            source: json!({"command": ["sh", "run.sh"]}),
            source_hash: "h1".into(),
            status: EnvStatus::Failed,
            description: None,
            error: Some("build failed".into()),
        })
        .await
        .unwrap();
    assert_eq!(
        store.env_build_log(PROJECT, "bundle", 1).await.unwrap(),
        Some(None)
    );
    store
        .set_env_build_log(&version.id, "step 1\nstep 2\n")
        .await
        .unwrap();
    assert_eq!(
        store.env_build_log(PROJECT, "bundle", 1).await.unwrap(),
        Some(Some("step 1\nstep 2\n".to_string()))
    );
    assert_eq!(
        store.env_build_log(PROJECT, "bundle", 2).await.unwrap(),
        None
    );

    let queued = RunId::generate();
    store
        .insert_run(&queued, PROJECT, &spec("bundle", "answer", "replay"))
        .await
        .unwrap();
    let other = RunId::generate();
    store
        .insert_run(&other, PROJECT, &spec("other", "answer", "replay"))
        .await
        .unwrap();
    assert_eq!(
        store.active_env_runs(PROJECT, "bundle").await.unwrap(),
        vec![queued.0.clone()]
    );
    assert_eq!(
        store.cancel_run(PROJECT, &queued.0).await.unwrap(),
        Some(rollout_store::CancelOutcome::Cancelled)
    );
    assert!(
        store
            .active_env_runs(PROJECT, "bundle")
            .await
            .unwrap()
            .is_empty()
    );

    assert_eq!(
        store.delete_environment(PROJECT, "bundle").await.unwrap(),
        1
    );
    assert!(
        store
            .env_versions(PROJECT, "bundle")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.delete_environment(PROJECT, "bundle").await.unwrap(),
        0
    );
    // The run (its trace) is still there.
    assert!(store.get_run(PROJECT, &queued.0).await.unwrap().is_some());
    // The name can be deployed again, numbered from 1.
    let again = store
        .add_env_version(&NewEnvVersion {
            project_id: PROJECT.into(),
            name: "bundle".into(),
            source: json!({"command": ["sh", "run.sh"]}),
            source_hash: "h1".into(),
            status: EnvStatus::Ready,
            description: None,
            error: None,
        })
        .await
        .unwrap();
    assert_eq!(again.version, 1);
}
