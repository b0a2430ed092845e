//! Environments and their versions.

use super::common::{PROJECT, TestDb, with_project};
use rollout_domain::{EnvDescription, ScenarioArg, ScenarioSpec, ToolSpec};
use rollout_store::{EnvStatus, KeyRole, NewEnvVersion, Store};
use serde_json::json;

fn description() -> EnvDescription {
    EnvDescription {
        server_name: "alpha".into(),
        server_version: "1.0".into(),
        tools: vec![ToolSpec {
            name: "add".into(),
            description: "adds".into(),
            input_schema: json!({"type": "object"}),
        }],
        scenarios: vec![ScenarioSpec {
            name: "answer".into(),
            id: "alpha:answer".into(),
            description: String::new(),
            arguments: vec![ScenarioArg {
                name: "query".into(),
                required: true,
                schema: json!({"type": "string"}),
                default: None,
            }],
            args_schema: json!({"type": "object"}),
            meta: serde_json::Map::new(),
        }],
    }
}

fn version(name: &str, hash: &str, status: EnvStatus) -> NewEnvVersion {
    NewEnvVersion {
        project_id: PROJECT.into(),
        name: name.into(),
        source: json!({"command": ["python", "env.py"], "hash": hash}),
        source_hash: hash.into(),
        status,
        description: (status == EnvStatus::Ready).then(description),
        error: (status == EnvStatus::Failed).then(|| "build failed: exit 1".to_string()),
    }
}

pub(crate) async fn env_versions_are_numbered_and_reregistration_is_a_noop(db: &TestDb) {
    let store = &db.store;
    with_project(store).await;
    assert_eq!(
        store.latest_ready_version(PROJECT, "alpha").await.unwrap(),
        None
    );
    assert!(
        store
            .env_versions(PROJECT, "alpha")
            .await
            .unwrap()
            .is_empty()
    );

    let v1 = store
        .add_env_version(&version("alpha", "h1", EnvStatus::Ready))
        .await
        .unwrap();
    assert_eq!(v1.version, 1);
    assert_eq!(v1.status, EnvStatus::Ready);
    assert_eq!(v1.description, Some(description()));
    assert_eq!(v1.source["hash"], "h1");

    // The same source again changes nothing.
    let same = store
        .add_env_version(&version("alpha", "h1", EnvStatus::Ready))
        .await
        .unwrap();
    assert_eq!(same, v1);

    let v2 = store
        .add_env_version(&version("alpha", "h2", EnvStatus::Failed))
        .await
        .unwrap();
    assert_eq!(v2.version, 2);
    assert_eq!(v2.error.as_deref(), Some("build failed: exit 1"));
    assert_eq!(v2.description, None);
    assert_eq!(
        store.latest_ready_version(PROJECT, "alpha").await.unwrap(),
        Some(v1.clone())
    );
    // The newest ready version is still h1: registering it again is still a no-op.
    let same = store
        .add_env_version(&version("alpha", "h1", EnvStatus::Ready))
        .await
        .unwrap();
    assert_eq!(same, v1);

    let v3 = store
        .add_env_version(&version("alpha", "h3", EnvStatus::Ready))
        .await
        .unwrap();
    assert_eq!(v3.version, 3);
    assert_eq!(
        store.latest_ready_version(PROJECT, "alpha").await.unwrap(),
        Some(v3.clone())
    );
    // Redeploying an older source makes it the newest again.
    let v4 = store
        .add_env_version(&version("alpha", "h1", EnvStatus::Ready))
        .await
        .unwrap();
    assert_eq!(v4.version, 4);

    let versions = store.env_versions(PROJECT, "alpha").await.unwrap();
    let numbers: Vec<i64> = versions.iter().map(|v| v.version).collect();
    assert_eq!(numbers, vec![4, 3, 2, 1]);
    assert_eq!(
        store.env_version(PROJECT, "alpha", 2).await.unwrap(),
        Some(v2)
    );
    assert_eq!(store.env_version(PROJECT, "alpha", 9).await.unwrap(), None);

    let beta = store
        .add_env_version(&version("beta", "h1", EnvStatus::Failed))
        .await
        .unwrap();
    assert_eq!(beta.version, 1);
    let listed = store.list_environments(PROJECT).await.unwrap();
    assert_eq!(listed, vec![v4, beta]);

    // Other projects see nothing.
    store.ensure_project("p2", "Project two").await.unwrap();
    assert!(store.list_environments("p2").await.unwrap().is_empty());
    assert_eq!(
        store.latest_ready_version("p2", "alpha").await.unwrap(),
        None
    );
}

/// A claim reads the id of its run's environment version with it (a worker keeps versions
/// by id); a version deleted, or deleted and stored again under its number, is told apart.
pub(crate) async fn a_claim_reads_the_id_of_its_runs_version(db: &TestDb) {
    use rollout_domain::RunId;
    use std::time::Duration;
    let store = &db.store;
    with_project(store).await;
    let claim = |id: RunId| async move {
        store
            .insert_run(&id, PROJECT, &super::common::spec("alpha", "answer", "m"))
            .await
            .unwrap();
        let claimed = store
            .claim_next_run("w", Duration::from_secs(60))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(claimed.run.id, id);
        claimed.env_version_id
    };
    let v1 = store
        .add_env_version(&version("alpha", "h1", EnvStatus::Ready))
        .await
        .unwrap();
    assert_eq!(claim(RunId::generate()).await, Some(v1.id.clone()));

    assert_eq!(store.delete_environment(PROJECT, "alpha").await.unwrap(), 1);
    assert_eq!(claim(RunId::generate()).await, None);

    let again = store
        .add_env_version(&version("alpha", "h2", EnvStatus::Ready))
        .await
        .unwrap();
    assert_eq!(again.version, 1);
    assert_ne!(again.id, v1.id);
    assert_eq!(claim(RunId::generate()).await, Some(again.id));
}

/// The project's environment generation, as a request reads it with its key.
async fn generation(store: &Store, secret: &str) -> Option<i64> {
    store
        .verify_api_key_and_settings(secret)
        .await
        .unwrap()
        .unwrap()
        .env_generation
}

/// A run request's version comes from memory while the project's environment generation,
/// read with the request's key, is the one it was kept under; a version registered or an
/// environment deleted by another process (a second store on the same database) bumps the
/// generation, and the next request reads the version again.
pub(crate) async fn serving_versions_are_kept_until_another_process_changes_them(db: &TestDb) {
    let store = &db.store;
    with_project(store).await;
    let secret = rollout_store::generate_api_key();
    store
        .create_api_key(PROJECT, "ci", KeyRole::Member, &secret)
        .await
        .unwrap();
    let other = Store::connect(&db.url).await.unwrap();
    let v1 = other
        .add_env_version(&version("alpha", "h1", EnvStatus::Ready))
        .await
        .unwrap();
    let seen = generation(store, &secret).await;
    assert!(seen.is_some());
    let served = store
        .serving_version(PROJECT, "alpha", None, seen)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(served.id, v1.id);

    // Kept: a row changed behind the store's back, without the generation (no process of
    // rollout does that), goes unseen under the same generation, and is read without one.
    let mut raw = db.raw().await;
    sqlx::query("UPDATE env_versions SET status = 'failed' WHERE id = $1")
        .bind(v1.id.clone())
        .execute(&mut raw)
        .await
        .unwrap();
    let kept = store.serving_version(PROJECT, "alpha", None, seen).await;
    assert_eq!(kept.unwrap().unwrap().id, v1.id);
    assert_eq!(
        store
            .serving_version(PROJECT, "alpha", None, None)
            .await
            .unwrap(),
        None
    );
    sqlx::query("UPDATE env_versions SET status = 'ready' WHERE id = $1")
        .bind(v1.id.clone())
        .execute(&mut raw)
        .await
        .unwrap();
    // The version asked by number is kept on its own.
    let by_number = store.serving_version(PROJECT, "alpha", Some(1), seen).await;
    assert_eq!(by_number.unwrap().unwrap().id, v1.id);

    // Another process registers version 2: the generation moves, the newest is read again.
    let v2 = other
        .add_env_version(&version("alpha", "h2", EnvStatus::Ready))
        .await
        .unwrap();
    let after_v2 = generation(store, &secret).await;
    assert_ne!(after_v2, seen);
    let served = store
        .serving_version(PROJECT, "alpha", None, after_v2)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((served.id.clone(), served.version), (v2.id.clone(), 2));
    // Re-registering the newest source changes nothing, generation included.
    other
        .add_env_version(&version("alpha", "h2", EnvStatus::Ready))
        .await
        .unwrap();
    assert_eq!(generation(store, &secret).await, after_v2);

    // Another process deletes the environment and registers it again: version 1 is now
    // another version (a new id), and the one kept under the old generation is not served.
    other.delete_environment(PROJECT, "alpha").await.unwrap();
    let after_delete = generation(store, &secret).await;
    assert_eq!(
        store
            .serving_version(PROJECT, "alpha", None, after_delete)
            .await
            .unwrap(),
        None
    );
    let again = other
        .add_env_version(&version("alpha", "h3", EnvStatus::Ready))
        .await
        .unwrap();
    let served = store
        .serving_version(PROJECT, "alpha", Some(1), generation(store, &secret).await)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((served.id.clone(), served.version), (again.id, 1));
    assert_ne!(served.id, v1.id);
    other.close().await;
}
