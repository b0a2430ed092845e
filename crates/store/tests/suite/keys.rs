//! Projects and API keys.

use super::common::{PROJECT, TestDb, with_project};
use rollout_store::{KeyRole, ProjectSettings, VerifiedKey, generate_api_key, hash_api_key};

pub(crate) async fn keys_are_stored_hashed_verified_and_revoked(db: &TestDb) {
    let store = &db.store;
    with_project(store).await;
    with_project(store).await;
    assert_eq!(store.count_api_keys().await.unwrap(), 0);

    let secret = generate_api_key();
    let admin = store
        .create_api_key(PROJECT, "bootstrap", KeyRole::Admin, &secret)
        .await
        .unwrap();
    assert_eq!(admin.project_id, PROJECT);
    assert_eq!(admin.name, "bootstrap");
    assert_eq!(admin.role, KeyRole::Admin);
    assert_eq!(admin.prefix, secret[..8]);
    assert_eq!(store.count_api_keys().await.unwrap(), 1);

    // The same secret again is the same key, not a second one.
    let again = store
        .create_api_key(PROJECT, "other name", KeyRole::Member, &secret)
        .await
        .unwrap();
    assert_eq!(again, admin);
    assert_eq!(store.count_api_keys().await.unwrap(), 1);

    // Only the hash is stored.
    let mut raw = db.raw().await;
    let hashes: Vec<String> = sqlx::query_scalar("SELECT key_hash FROM api_keys")
        .fetch_all(&mut raw)
        .await
        .unwrap();
    assert_eq!(hashes, vec![hash_api_key(&secret)]);
    let leaked: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM api_keys WHERE key_hash = $1 OR prefix = $1 OR name = $1",
    )
    .bind(secret.clone())
    .fetch_one(&mut raw)
    .await
    .unwrap();
    assert_eq!(leaked, 0);

    assert_eq!(
        store.verify_api_key(&secret).await.unwrap(),
        Some(admin.clone())
    );
    assert_eq!(
        store.verify_api_key(&generate_api_key()).await.unwrap(),
        None
    );
    assert_eq!(store.verify_api_key("").await.unwrap(), None);

    let member_secret = generate_api_key();
    let member = store
        .create_api_key(PROJECT, "ci", KeyRole::Member, &member_secret)
        .await
        .unwrap();
    assert_eq!(
        store.verify_api_key(&member_secret).await.unwrap(),
        Some(member.clone())
    );
    // With its project's settings, in one query: the defaults until some are set.
    assert_eq!(
        store
            .verify_api_key_and_settings(&member_secret)
            .await
            .unwrap(),
        Some(VerifiedKey {
            key: member.clone(),
            settings: ProjectSettings::default(),
            env_generation: Some(0),
        })
    );
    let settings = ProjectSettings {
        max_runs_in_flight: Some(4),
        default_max_steps: Some(7),
        max_tokens_per_day: Some(1_000_000),
        ..ProjectSettings::default()
    };
    assert!(
        store
            .set_project_settings(PROJECT, &settings)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .verify_api_key_and_settings(&member_secret)
            .await
            .unwrap(),
        Some(VerifiedKey {
            key: member.clone(),
            settings,
            env_generation: Some(0),
        })
    );
    let mut listed = store.list_api_keys(PROJECT).await.unwrap();
    listed.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(listed, vec![admin.clone(), member.clone()]);

    // Revoked keys no longer verify, and no longer count.
    assert!(store.revoke_api_key(PROJECT, &member.id).await.unwrap());
    assert!(!store.revoke_api_key(PROJECT, &member.id).await.unwrap());
    assert!(
        !store
            .revoke_api_key("another-project", &admin.id)
            .await
            .unwrap()
    );
    assert_eq!(store.verify_api_key(&member_secret).await.unwrap(), None);
    assert_eq!(
        store
            .verify_api_key_and_settings(&member_secret)
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.count_api_keys().await.unwrap(), 1);
    assert_eq!(store.list_api_keys(PROJECT).await.unwrap(), vec![admin]);
}
