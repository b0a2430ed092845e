//! Test databases: a temp SQLite file, or a fresh PostgreSQL schema per test.

use rollout_domain::RunSpec;
use rollout_store::Store;
use serde_json::json;
use sqlx::{AnyConnection, AssertSqlSafe, Connection};
use std::future::Future;
use std::time::Duration;

/// A store on a database of its own, and what is needed to look inside and clean up.
pub(crate) struct TestDb {
    pub(crate) store: Store,
    /// A URL reaching the same tables, for assertions on what is stored.
    pub(crate) url: String,
    _dir: Option<tempfile::TempDir>,
    postgres: Option<(String, String)>,
}

impl TestDb {
    pub(crate) async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let url = format!(
            "sqlite://{}",
            dir.path().join("data").join("rollout.db").display()
        );
        let store = Store::connect(&url).await.unwrap();
        assert_eq!(store.backend(), rollout_store::Backend::Sqlite);
        TestDb {
            store,
            url,
            _dir: Some(dir),
            postgres: None,
        }
    }

    /// `None` when `TEST_DATABASE_URL` is not set; a failure instead when the test command
    /// promised PostgreSQL (`ROLLOUT_REQUIRE_POSTGRES=1`, set by `scripts/test`).
    pub(crate) async fn postgres() -> Option<TestDb> {
        let Some(base) = std::env::var("TEST_DATABASE_URL")
            .ok()
            .filter(|url| !url.is_empty())
        else {
            assert!(
                std::env::var("ROLLOUT_REQUIRE_POSTGRES").is_err(),
                "ROLLOUT_REQUIRE_POSTGRES is set but TEST_DATABASE_URL is not: \
                 scripts/test provides PostgreSQL (scripts/setup-postgres)"
            );
            return None;
        };
        sqlx::any::install_default_drivers();
        let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
        let mut conn = AnyConnection::connect(&base).await.unwrap();
        sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        let separator = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{separator}options=-c%20search_path%3D{schema}");
        let store = Store::connect(&url).await.unwrap();
        assert_eq!(store.backend(), rollout_store::Backend::Postgres);
        Some(TestDb {
            store,
            url,
            _dir: None,
            postgres: Some((base, schema)),
        })
    }

    /// A direct connection to the store's tables.
    pub(crate) async fn raw(&self) -> AnyConnection {
        AnyConnection::connect(&self.url).await.unwrap()
    }

    pub(crate) async fn cleanup(self) {
        self.store.close().await;
        if let Some((base, schema)) = &self.postgres {
            let mut conn = AnyConnection::connect(base).await.unwrap();
            sqlx::query(AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
                .execute(&mut conn)
                .await
                .unwrap();
            conn.close().await.unwrap();
        }
    }
}

/// Every story runs under one generous timeout, so that a hang fails instead of stalling CI.
pub(crate) async fn within_timeout(story: impl Future<Output = ()>) {
    tokio::time::timeout(Duration::from_secs(120), story)
        .await
        .expect("story timed out");
}

pub(crate) const PROJECT: &str = "p1";

/// A project to own runs, keys and environments.
pub(crate) async fn with_project(store: &Store) {
    store.ensure_project(PROJECT, "Project one").await.unwrap();
}

pub(crate) fn spec(env: &str, scenario: &str, model: &str) -> RunSpec {
    RunSpec {
        env_name: env.into(),
        env_version: 1,
        scenario_name: scenario.into(),
        scenario_args: json!({"query": "capital of France?"})
            .as_object()
            .unwrap()
            .clone(),
        model: model.into(),
        max_steps: 10,
        system_prompt: Some("be brief".into()),
        validation: Vec::new(),
        metadata: json!({"tag": "test"}).as_object().unwrap().clone(),
        agent_timeout_seconds: 60,
        grading_timeout_seconds: 30,
        max_total_tokens: None,
        max_cost_usd: None,
        key_id: None,
        traceparent: None,
        callback: None,
    }
}
