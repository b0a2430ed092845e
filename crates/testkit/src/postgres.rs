//! A PostgreSQL schema of its own for one end-to-end test: servers started with
//! [`TestSchema::url`] keep their tables there, beside other tests on the same database.

use anyhow::Context;
use sqlx::{AnyConnection, AssertSqlSafe, Connection};

/// A fresh schema in the database of `TEST_DATABASE_URL`, dropped by [`TestSchema::drop`].
pub struct TestSchema {
    /// A URL whose connections use the schema (libpq `options` setting `search_path`).
    pub url: String,
    base: String,
    name: String,
}

impl TestSchema {
    /// Creates a schema, or `None` when `TEST_DATABASE_URL` is not set. Panics instead when
    /// the test command promised PostgreSQL (`ROLLOUT_REQUIRE_POSTGRES=1`, set by
    /// `scripts/test`): a test that needs it must fail, not pass without running.
    pub async fn create() -> anyhow::Result<Option<Self>> {
        let Some(base) = std::env::var("TEST_DATABASE_URL")
            .ok()
            .filter(|url| !url.is_empty())
        else {
            assert!(
                std::env::var("ROLLOUT_REQUIRE_POSTGRES").is_err(),
                "ROLLOUT_REQUIRE_POSTGRES is set but TEST_DATABASE_URL is not: scripts/test \
                 provides PostgreSQL (scripts/setup-postgres)"
            );
            return Ok(None);
        };
        sqlx::any::install_default_drivers();
        let name = format!("e2e_{}", uuid::Uuid::new_v4().simple());
        let mut conn = AnyConnection::connect(&base)
            .await
            .context("connecting to TEST_DATABASE_URL")?;
        sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA {name}")))
            .execute(&mut conn)
            .await
            .context("creating a test schema")?;
        conn.close().await?;
        let separator = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{separator}options=-c%20search_path%3D{name}");
        Ok(Some(Self { url, base, name }))
    }

    /// Drops the schema and everything in it.
    pub async fn drop(self) -> anyhow::Result<()> {
        let mut conn = AnyConnection::connect(&self.base).await?;
        sqlx::query(AssertSqlSafe(format!("DROP SCHEMA {} CASCADE", self.name)))
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        Ok(())
    }
}
