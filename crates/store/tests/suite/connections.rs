//! The pools' connections: PostgreSQL connections cut off while they sat idle in the pool
//! are found dead and replaced, not handed to a statement.

use super::common::{PROJECT, TestDb, spec, with_project};
use futures::future::join_all;
use rollout_domain::RunId;
use rollout_store::Store;
use sqlx::AssertSqlSafe;
use std::time::Duration;

/// Longer than the store's `PING_AFTER_IDLE`: a connection idle this long is pinged when
/// taken from the pool.
const IDLE: Duration = Duration::from_millis(1_500);

/// Every connection of the store is killed by the database while idle (as a restart of the
/// database, or a proxy closing quiet connections, does), and the store is used again after
/// a pause: every operation succeeds on new connections.
pub(crate) async fn idle_connections_cut_off_are_replaced(db: &TestDb) {
    // The same tables under an application name of this test's own, so that exactly this
    // store's connections can be found and killed.
    let name = format!("cutoff_{}", uuid::Uuid::new_v4().simple());
    let store = Store::connect(&format!("{}&application_name={name}", db.url))
        .await
        .unwrap();
    with_project(&store).await;
    // Several connections in the pool: runs inserted side by side.
    let inserted = join_all((0..8).map(|_| {
        let store = store.clone();
        async move {
            let id = RunId::generate();
            store
                .insert_run(&id, PROJECT, &spec("alpha", "answer", "m"))
                .await
                .unwrap();
            id
        }
    }))
    .await;

    let mut raw = db.raw().await;
    let killed: Vec<(bool,)> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '{name}'"
    )))
    .fetch_all(&mut raw)
    .await
    .unwrap();
    assert!(!killed.is_empty(), "the store had connections to kill");
    assert!(killed.iter().all(|(done,)| *done));
    tokio::time::sleep(IDLE).await;

    // One at a time, then side by side: each would be handed a dead connection unless the
    // pool tests the ones that sat idle.
    for id in &inserted {
        let run = store.get_run(PROJECT, &id.0).await.unwrap();
        assert!(run.is_some());
    }
    let reads = join_all(inserted.iter().map(|id| store.get_run(PROJECT, &id.0))).await;
    assert!(reads.iter().all(|read| matches!(read, Ok(Some(_)))));
    store
        .insert_run(&RunId::generate(), PROJECT, &spec("alpha", "answer", "m"))
        .await
        .unwrap();
    store.close().await;
}
