//! Share links (migration 0052): a random token per link, stored as its SHA-256 only (like
//! API keys and UI sessions), resolved to exactly one trace while the link is unrevoked,
//! unexpired and its project allows sharing.

use crate::Result;
use crate::error::db;
use crate::reviews::{Reviewer, ShareLinkRecord};
use crate::store::keys::hash_api_key;
use crate::store::{RunRow, Store, now_ms};
use crate::types::RunRecord;

const INSERT_LINK: &str = "INSERT INTO share_links (id, project_id, run_id, token_hash, \
     created_by, key_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
const LIST_LINKS: &str = "SELECT id, run_id, created_by, created_at, expires_at, revoked_at \
     FROM share_links WHERE project_id = $1 AND run_id = $2 ORDER BY id";
const REVOKE_LINK: &str = "UPDATE share_links SET revoked_at = $4 \
     WHERE project_id = $1 AND run_id = $2 AND id = $3 AND revoked_at IS NULL";
/// The trace of a live link: the token's hash, unrevoked, unexpired, of a project that
/// shares, and of the run of that very project.
const SHARED_RUN: &str = concat!(
    "SELECT ",
    run_columns!(),
    " FROM runs WHERE id IN (SELECT s.run_id FROM share_links s \
     JOIN projects p ON p.id = s.project_id \
     WHERE s.token_hash = $1 AND s.revoked_at IS NULL \
     AND (s.expires_at IS NULL OR s.expires_at > $2) AND p.sharing_disabled = 0 \
     AND s.project_id = runs.project_id)"
);
const SHARING_DISABLED: &str = "SELECT sharing_disabled FROM projects WHERE id = $1";
const SET_SHARING: &str = "UPDATE projects SET sharing_disabled = $2 WHERE id = $1";

#[derive(sqlx::FromRow)]
struct LinkRow {
    id: String,
    run_id: String,
    created_by: String,
    created_at: i64,
    expires_at: Option<i64>,
    revoked_at: Option<i64>,
}

impl From<LinkRow> for ShareLinkRecord {
    fn from(row: LinkRow) -> Self {
        ShareLinkRecord {
            id: row.id,
            run_id: row.run_id,
            created_by: row.created_by,
            created_at_ms: row.created_at,
            expires_at_ms: row.expires_at,
            revoked_at_ms: row.revoked_at,
        }
    }
}

/// A fresh token: two random UUIDs (244 random bits), hex, with a prefix that says what it
/// is when it turns up in a log.
fn new_token() -> String {
    format!(
        "sh_{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

impl Store {
    /// Makes a share link of the project's trace; returns it with its token (the only time
    /// the token exists outside the caller). The caller has checked the trace.
    pub async fn create_share_link(
        &self,
        project_id: &str,
        run_id: &str,
        reviewer: &Reviewer,
        expires_at_ms: Option<i64>,
    ) -> Result<(ShareLinkRecord, String)> {
        let token = new_token();
        let record = ShareLinkRecord {
            id: rollout_domain::new_id(),
            run_id: run_id.to_string(),
            created_by: reviewer.author.clone(),
            created_at_ms: now_ms(),
            expires_at_ms,
            revoked_at_ms: None,
        };
        sqlx::query(INSERT_LINK)
            .bind(record.id.clone())
            .bind(project_id.to_string())
            .bind(run_id.to_string())
            .bind(hash_api_key(&token))
            .bind(record.created_by.clone())
            .bind(reviewer.key_id.clone())
            .bind(record.created_at_ms)
            .bind(expires_at_ms)
            .execute(self.pool())
            .await
            .map_err(db("creating a share link"))?;
        Ok((record, token))
    }

    /// The trace's share links, oldest first (revoked and expired ones too).
    pub async fn share_links(
        &self,
        project_id: &str,
        run_id: &str,
    ) -> Result<Vec<ShareLinkRecord>> {
        Ok(sqlx::query_as::<_, LinkRow>(LIST_LINKS)
            .bind(project_id.to_string())
            .bind(run_id.to_string())
            .fetch_all(self.pool())
            .await
            .map_err(db("listing share links"))?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// Revokes a link of the trace; false if there is no such live link.
    pub async fn revoke_share_link(
        &self,
        project_id: &str,
        run_id: &str,
        id: &str,
    ) -> Result<bool> {
        let revoked = sqlx::query(REVOKE_LINK)
            .bind(project_id.to_string())
            .bind(run_id.to_string())
            .bind(id.to_string())
            .bind(now_ms())
            .execute(self.pool())
            .await
            .map_err(db("revoking a share link"))?;
        Ok(revoked.rows_affected() > 0)
    }

    /// The trace a token shares, or `None` for an unknown, revoked or expired token or a
    /// project that turned sharing off.
    pub async fn shared_run(&self, token: &str) -> Result<Option<RunRecord>> {
        sqlx::query_as::<_, RunRow>(SHARED_RUN)
            .bind(hash_api_key(token))
            .bind(now_ms())
            .fetch_optional(self.pool())
            .await
            .map_err(db("reading a shared trace"))?
            .map(RunRow::into_record)
            .transpose()
    }

    /// Whether the project lets its traces be shared (true for a project without a row).
    pub async fn sharing_enabled(&self, project_id: &str) -> Result<bool> {
        let disabled: Option<i64> = sqlx::query_scalar(SHARING_DISABLED)
            .bind(project_id.to_string())
            .fetch_optional(self.pool())
            .await
            .map_err(db("reading a project's sharing"))?;
        Ok(disabled.unwrap_or(0) == 0)
    }

    /// Turns sharing on or off for the project; false if there is no such project.
    pub async fn set_sharing(&self, project_id: &str, enabled: bool) -> Result<bool> {
        let updated = sqlx::query(SET_SHARING)
            .bind(project_id.to_string())
            .bind(i64::from(!enabled))
            .execute(self.pool())
            .await
            .map_err(db("changing a project's sharing"))?;
        Ok(updated.rows_affected() > 0)
    }
}
