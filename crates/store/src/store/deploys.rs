//! Deployed environments: build logs of versions, the runs in flight of an environment,
//! and deleting an environment (its versions; runs and their traces stay).

use crate::Result;
use crate::error::db;
use crate::store::Store;
use crate::store::envs::BUMP_ENV_GENERATION;

const SET_BUILD_LOG: &str = "UPDATE env_versions SET build_log = $2 WHERE id = $1";
const BUILD_LOG: &str = "SELECT build_log FROM env_versions \
     WHERE project_id = $1 AND name = $2 AND version = $3";
const ACTIVE_RUNS: &str = "SELECT id FROM runs WHERE project_id = $1 AND env_name = $2 \
     AND status IN ('queued', 'running') ORDER BY id";
const DELETE_VERSIONS: &str = "DELETE FROM env_versions WHERE project_id = $1 AND name = $2";
const DELETE_ENVIRONMENT: &str = "DELETE FROM environments WHERE project_id = $1 AND name = $2";

impl Store {
    /// Stores the build log (its tail) of an environment version.
    pub async fn set_env_build_log(&self, version_id: &str, log: &str) -> Result<()> {
        sqlx::query(SET_BUILD_LOG)
            .bind(version_id.to_string())
            .bind(log.to_string())
            .execute(self.pool())
            .await
            .map_err(db("storing a build log"))?;
        Ok(())
    }

    /// The build log of a version: `None` when the version does not exist, `Some(None)`
    /// when it has none (it was registered by command or URL, not built).
    pub async fn env_build_log(
        &self,
        project_id: &str,
        name: &str,
        version: i64,
    ) -> Result<Option<Option<String>>> {
        sqlx::query_scalar::<_, Option<String>>(BUILD_LOG)
            .bind(project_id.to_string())
            .bind(name.to_string())
            .bind(version)
            .fetch_optional(self.pool())
            .await
            .map_err(db("reading a build log"))
    }

    /// Ids of the environment's runs that are queued or running, oldest first.
    pub async fn active_env_runs(&self, project_id: &str, name: &str) -> Result<Vec<String>> {
        sqlx::query_scalar::<_, String>(ACTIVE_RUNS)
            .bind(project_id.to_string())
            .bind(name.to_string())
            .fetch_all(self.pool())
            .await
            .map_err(db("listing an environment's runs in flight"))
    }

    /// Deletes an environment and all its versions. Runs (and their traces) are kept: they
    /// name the environment and version they used. Returns how many versions were deleted.
    pub async fn delete_environment(&self, project_id: &str, name: &str) -> Result<u64> {
        const OP: &str = "deleting an environment";
        let mut tx = self.begin_write(OP).await?;
        let deleted = sqlx::query(DELETE_VERSIONS)
            .bind(project_id.to_string())
            .bind(name.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db(OP))?
            .rows_affected();
        sqlx::query(DELETE_ENVIRONMENT)
            .bind(project_id.to_string())
            .bind(name.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db(OP))?;
        sqlx::query(BUMP_ENV_GENERATION)
            .bind(project_id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db(OP))?;
        tx.commit().await.map_err(db(OP))?;
        Ok(deleted)
    }
}
