//! Web UI sessions. The browser's cookie holds a random token; the store keeps only its
//! SHA-256, the API key the user signed in with, and an expiry. Revoking the key ends its
//! sessions.

use crate::Result;
use crate::error::{corrupt, db};
use crate::store::keys::hash_api_key;
use crate::store::{Store, now_ms};
use crate::types::ApiKeyRecord;

const INSERT_SESSION: &str = "INSERT INTO ui_sessions (token_hash, key_id, created_at, expires_at) \
     VALUES ($1, $2, $3, $4)";
const SESSION_KEY: &str = "SELECT k.id, k.project_id, k.name, k.role, k.prefix, k.created_at \
     FROM ui_sessions s JOIN api_keys k ON k.id = s.key_id \
     WHERE s.token_hash = $1 AND s.expires_at > $2 AND k.revoked_at IS NULL";
const DELETE_SESSION: &str = "DELETE FROM ui_sessions WHERE token_hash = $1";
const DELETE_EXPIRED: &str = "DELETE FROM ui_sessions WHERE expires_at <= $1";

#[derive(sqlx::FromRow)]
struct SessionKeyRow {
    id: String,
    project_id: String,
    name: String,
    role: String,
    prefix: String,
    created_at: i64,
}

impl Store {
    /// Starts a session for an API key: returns the token to put in the cookie (only its hash
    /// is stored). Expired sessions are removed on the way.
    pub async fn create_ui_session(&self, key_id: &str, ttl_ms: i64) -> Result<String> {
        let now = now_ms();
        sqlx::query(DELETE_EXPIRED)
            .bind(now)
            .execute(self.pool())
            .await
            .map_err(db("removing expired sessions"))?;
        let token = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        sqlx::query(INSERT_SESSION)
            .bind(hash_api_key(&token))
            .bind(key_id.to_string())
            .bind(now)
            .bind(now.saturating_add(ttl_ms))
            .execute(self.pool())
            .await
            .map_err(db("creating a session"))?;
        Ok(token)
    }

    /// The API key of a live session, or `None` for an unknown or expired token or a
    /// revoked key.
    pub async fn ui_session_key(&self, token: &str) -> Result<Option<ApiKeyRecord>> {
        let row = sqlx::query_as::<_, SessionKeyRow>(SESSION_KEY)
            .bind(hash_api_key(token))
            .bind(now_ms())
            .fetch_optional(self.pool())
            .await
            .map_err(db("reading a session"))?;
        row.map(|row| {
            Ok(ApiKeyRecord {
                id: row.id,
                project_id: row.project_id,
                name: row.name,
                role: row.role.parse().map_err(corrupt("api key role"))?,
                prefix: row.prefix,
                created_at_ms: row.created_at,
            })
        })
        .transpose()
    }

    /// Ends a session (sign-out). Unknown tokens are ignored.
    pub async fn delete_ui_session(&self, token: &str) -> Result<()> {
        sqlx::query(DELETE_SESSION)
            .bind(hash_api_key(token))
            .execute(self.pool())
            .await
            .map_err(db("deleting a session"))?;
        Ok(())
    }
}
