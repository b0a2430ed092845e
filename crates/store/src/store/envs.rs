//! Environments and their numbered versions.

use crate::Result;
use crate::error::{corrupt, db, encode};
use crate::store::{Store, now_ms, retry_on_conflict};
use crate::types::{EnvStatus, EnvVersion, NewEnvVersion};
use rollout_domain::new_id;

macro_rules! version_columns {
    () => {
        "id, project_id, name, version, source, source_hash, status, description, error, \
         created_at"
    };
}

const ENSURE_ENVIRONMENT: &str = "INSERT INTO environments (id, project_id, name, created_at) \
     VALUES ($1, $2, $3, $4) ON CONFLICT (project_id, name) DO NOTHING";
const ENVIRONMENT_ID: &str = "SELECT id FROM environments WHERE project_id = $1 AND name = $2";
const LATEST_READY_OF: &str = concat!(
    "SELECT ",
    version_columns!(),
    " FROM env_versions WHERE environment_id = $1 AND status = 'ready' \
     ORDER BY version DESC LIMIT 1"
);
const INSERT_VERSION: &str = concat!(
    "INSERT INTO env_versions (id, environment_id, project_id, name, version, source, \
     source_hash, status, description, error, created_at) \
     SELECT $1, $2, $3, $4, COALESCE(MAX(version), 0) + 1, $5, $6, $7, $8, $9, $10 \
     FROM env_versions WHERE environment_id = $2 RETURNING ",
    version_columns!()
);
const LATEST_OF_EACH: &str = concat!(
    "SELECT ",
    version_columns!(),
    " FROM env_versions v WHERE project_id = $1 AND version = \
     (SELECT MAX(w.version) FROM env_versions w WHERE w.environment_id = v.environment_id) \
     ORDER BY name"
);
const VERSIONS: &str = concat!(
    "SELECT ",
    version_columns!(),
    " FROM env_versions WHERE project_id = $1 AND name = $2 ORDER BY version DESC"
);
const LATEST_READY: &str = concat!(
    "SELECT ",
    version_columns!(),
    " FROM env_versions WHERE project_id = $1 AND name = $2 AND status = 'ready' \
     ORDER BY version DESC LIMIT 1"
);
/// Tells the project's readers that its environment versions changed (see the migration
/// `0053_env_generation.sql` and [`Store::serving_version`]).
pub(crate) const BUMP_ENV_GENERATION: &str =
    "UPDATE projects SET env_generation = env_generation + 1 WHERE id = $1";
const ONE_VERSION: &str = concat!(
    "SELECT ",
    version_columns!(),
    " FROM env_versions WHERE project_id = $1 AND name = $2 AND version = $3"
);

#[derive(sqlx::FromRow)]
struct VersionRow {
    id: String,
    project_id: String,
    name: String,
    version: i64,
    source: String,
    source_hash: String,
    status: String,
    description: Option<String>,
    error: Option<String>,
    created_at: i64,
}

impl VersionRow {
    fn into_version(self) -> Result<EnvVersion> {
        Ok(EnvVersion {
            id: self.id,
            project_id: self.project_id,
            name: self.name,
            version: self.version,
            source: serde_json::from_str(&self.source).map_err(corrupt("environment source"))?,
            source_hash: self.source_hash,
            status: self
                .status
                .parse::<EnvStatus>()
                .map_err(corrupt("environment status"))?,
            description: self
                .description
                .map(|text| serde_json::from_str(&text))
                .transpose()
                .map_err(corrupt("environment description"))?,
            error: self.error,
            created_at_ms: self.created_at,
        })
    }
}

fn into_versions(rows: Vec<VersionRow>) -> Result<Vec<EnvVersion>> {
    rows.into_iter().map(VersionRow::into_version).collect()
}

impl Store {
    /// Registers a new version of an environment (created if missing), numbered one past the
    /// newest. If the newest `ready` version has the same `source_hash`, it is returned
    /// unchanged instead: re-registering the current source is a no-op. An older ready
    /// version with that hash does not count, so that redeploying an earlier source makes it
    /// the newest again.
    pub async fn add_env_version(&self, new: &NewEnvVersion) -> Result<EnvVersion> {
        let source = serde_json::to_string(&new.source).map_err(encode("environment source"))?;
        let description = new
            .description
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(encode("environment description"))?;
        retry_on_conflict(|| self.try_add_env_version(new, &source, description.as_deref())).await
    }

    async fn try_add_env_version(
        &self,
        new: &NewEnvVersion,
        source: &str,
        description: Option<&str>,
    ) -> Result<EnvVersion> {
        const OP: &str = "registering an environment version";
        let mut tx = self.begin_write(OP).await?;
        // A write first, so that SQLite takes the write lock (waiting for it) up front.
        sqlx::query(ENSURE_ENVIRONMENT)
            .bind(new_id())
            .bind(new.project_id.clone())
            .bind(new.name.clone())
            .bind(now_ms())
            .execute(&mut *tx)
            .await
            .map_err(db(OP))?;
        let environment_id: String = sqlx::query_scalar(ENVIRONMENT_ID)
            .bind(new.project_id.clone())
            .bind(new.name.clone())
            .fetch_one(&mut *tx)
            .await
            .map_err(db(OP))?;
        let existing = sqlx::query_as::<_, VersionRow>(LATEST_READY_OF)
            .bind(environment_id.clone())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db(OP))?
            .filter(|latest| latest.source_hash == new.source_hash);
        let row = match existing {
            Some(row) => row,
            None => {
                sqlx::query(BUMP_ENV_GENERATION)
                    .bind(new.project_id.clone())
                    .execute(&mut *tx)
                    .await
                    .map_err(db(OP))?;
                sqlx::query_as::<_, VersionRow>(INSERT_VERSION)
                    .bind(new_id())
                    .bind(environment_id)
                    .bind(new.project_id.clone())
                    .bind(new.name.clone())
                    .bind(source.to_string())
                    .bind(new.source_hash.clone())
                    .bind(new.status.as_str())
                    .bind(description.map(str::to_string))
                    .bind(new.error.clone())
                    .bind(now_ms())
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db(OP))?
            }
        };
        tx.commit().await.map_err(db(OP))?;
        row.into_version()
    }

    /// The newest version of each of the project's environments, by name.
    pub async fn list_environments(&self, project_id: &str) -> Result<Vec<EnvVersion>> {
        let rows = sqlx::query_as::<_, VersionRow>(LATEST_OF_EACH)
            .bind(project_id.to_string())
            .fetch_all(self.pool())
            .await
            .map_err(db("listing environments"))?;
        into_versions(rows)
    }

    /// Every version of an environment, newest first (empty if there is no such environment).
    pub async fn env_versions(&self, project_id: &str, name: &str) -> Result<Vec<EnvVersion>> {
        let rows = sqlx::query_as::<_, VersionRow>(VERSIONS)
            .bind(project_id.to_string())
            .bind(name.to_string())
            .fetch_all(self.pool())
            .await
            .map_err(db("listing environment versions"))?;
        into_versions(rows)
    }

    /// The newest `ready` version of an environment: what a new run uses.
    pub async fn latest_ready_version(
        &self,
        project_id: &str,
        name: &str,
    ) -> Result<Option<EnvVersion>> {
        sqlx::query_as::<_, VersionRow>(LATEST_READY)
            .bind(project_id.to_string())
            .bind(name.to_string())
            .fetch_optional(self.pool())
            .await
            .map_err(db("reading the latest ready environment version"))?
            .map(VersionRow::into_version)
            .transpose()
    }

    /// One version of an environment.
    pub async fn env_version(
        &self,
        project_id: &str,
        name: &str,
        version: i64,
    ) -> Result<Option<EnvVersion>> {
        sqlx::query_as::<_, VersionRow>(ONE_VERSION)
            .bind(project_id.to_string())
            .bind(name.to_string())
            .bind(version)
            .fetch_optional(self.pool())
            .await
            .map_err(db("reading an environment version"))?
            .map(VersionRow::into_version)
            .transpose()
    }
}
