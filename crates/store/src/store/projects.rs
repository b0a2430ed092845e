//! Per-project settings (defaults, limits, quotas; migration 0008) and the usage they are
//! checked against, counted in one query over the project's runs.

use crate::Result;
use crate::error::db;
use crate::store::{Store, now_ms};

const GET_SETTINGS: &str = "SELECT id, name, created_at, max_runs_in_flight, \
     default_timeout_seconds, max_timeout_seconds, default_max_steps, max_runs_per_day, \
     max_tokens_per_day FROM projects WHERE id = $1";
const SET_SETTINGS: &str = "UPDATE projects SET max_runs_in_flight = $2, \
     default_timeout_seconds = $3, max_timeout_seconds = $4, default_max_steps = $5, \
     max_runs_per_day = $6, max_tokens_per_day = $7, settings_updated_at = $8 WHERE id = $1";
/// Runs in flight (queued or running) and the runs created since `$2` with their tokens, in
/// one pass over the rows either index selects (`runs_project_status`,
/// `runs_project_created`).
const USAGE: &str = "SELECT \
     CAST(COALESCE(SUM(CASE WHEN status IN ('queued', 'running') THEN 1 ELSE 0 END), 0) \
     AS BIGINT), \
     CAST(COALESCE(SUM(CASE WHEN created_at >= $2 THEN 1 ELSE 0 END), 0) AS BIGINT), \
     CAST(COALESCE(SUM(CASE WHEN created_at >= $2 THEN input_tokens + output_tokens \
     ELSE 0 END), 0) AS BIGINT), \
     CAST(MIN(CASE WHEN created_at >= $2 THEN created_at END) AS BIGINT) \
     FROM runs WHERE project_id = $1 \
     AND (status IN ('queued', 'running') OR created_at >= $2)";
const LIVE_IDEMPOTENCY_KEY: &str = "SELECT CAST(COUNT(*) AS BIGINT) FROM idempotency_keys \
     WHERE project_id = $1 AND idem_key = $2 AND expires_at > $3";

/// A project's own defaults and limits. `None`: the server's default, or no limit. Read
/// from a row by its column names (a project's, or a key's joined with its project).
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct ProjectSettings {
    /// Most runs queued or running at once.
    pub max_runs_in_flight: Option<i64>,
    /// `timeout_seconds` of a run that does not ask for one.
    pub default_timeout_seconds: Option<i64>,
    /// The largest `timeout_seconds` a run may ask for.
    pub max_timeout_seconds: Option<i64>,
    /// `max_steps` of a run that does not ask for one.
    pub default_max_steps: Option<i64>,
    /// Most runs created in any 24 hours.
    pub max_runs_per_day: Option<i64>,
    /// Most tokens (input + output) used by the runs created in any 24 hours.
    pub max_tokens_per_day: Option<i64>,
}

/// A project with its settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectRecord {
    /// The project's id (also its name in API keys' `project`).
    pub id: String,
    /// Its display name.
    pub name: String,
    /// Creation time, unix milliseconds.
    pub created_at_ms: i64,
    /// Defaults, limits and quotas.
    pub settings: ProjectSettings,
}

/// What a project uses now, for its limits and quotas.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProjectUsage {
    /// Runs queued or running.
    pub in_flight: i64,
    /// Runs created since the window's start.
    pub runs: i64,
    /// Input + output tokens of those runs.
    pub tokens: i64,
    /// When the oldest of those runs was created (unix ms): usage falls 24 hours later.
    pub oldest_run_at_ms: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct ProjectRow {
    id: String,
    name: String,
    created_at: i64,
    #[sqlx(flatten)]
    settings: ProjectSettings,
}

impl Store {
    /// The project and its settings, or `None` if there is no such project.
    pub async fn get_project(&self, id: &str) -> Result<Option<ProjectRecord>> {
        let row = sqlx::query_as::<_, ProjectRow>(GET_SETTINGS)
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await
            .map_err(db("reading a project"))?;
        Ok(row.map(|row| ProjectRecord {
            id: row.id,
            name: row.name,
            created_at_ms: row.created_at,
            settings: row.settings,
        }))
    }

    /// Replaces the project's settings (every field). False if there is no such project.
    pub async fn set_project_settings(&self, id: &str, settings: &ProjectSettings) -> Result<bool> {
        let result = sqlx::query(SET_SETTINGS)
            .bind(id.to_string())
            .bind(settings.max_runs_in_flight)
            .bind(settings.default_timeout_seconds)
            .bind(settings.max_timeout_seconds)
            .bind(settings.default_max_steps)
            .bind(settings.max_runs_per_day)
            .bind(settings.max_tokens_per_day)
            .bind(now_ms())
            .execute(self.pool())
            .await
            .map_err(db("updating a project's settings"))?;
        Ok(result.rows_affected() > 0)
    }

    /// The project's runs in flight, and its runs and tokens since `since_ms` (unix ms).
    pub async fn project_usage(&self, project_id: &str, since_ms: i64) -> Result<ProjectUsage> {
        let (in_flight, runs, tokens, oldest): (i64, i64, i64, Option<i64>) = sqlx::query_as(USAGE)
            .bind(project_id.to_string())
            .bind(since_ms)
            .fetch_one(self.pool())
            .await
            .map_err(db("counting a project's usage"))?;
        Ok(ProjectUsage {
            in_flight,
            runs,
            tokens,
            oldest_run_at_ms: oldest,
        })
    }

    /// Whether the project holds this idempotency key, unexpired: a request with it is a
    /// replay (or a conflict), not a new run.
    pub async fn idempotency_key_is_live(&self, project_id: &str, key: &str) -> Result<bool> {
        let count: i64 = sqlx::query_scalar(LIVE_IDEMPOTENCY_KEY)
            .bind(project_id.to_string())
            .bind(key.to_string())
            .bind(now_ms())
            .fetch_one(self.pool())
            .await
            .map_err(db("reading an idempotency key"))?;
        Ok(count > 0)
    }
}
