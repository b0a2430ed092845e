//! Projects and API keys. A key is a random secret shown once; only its SHA-256 is stored.

use crate::Result;
use crate::error::{corrupt, db};
use crate::store::projects::ProjectSettings;
use crate::store::{Store, now_ms};
use crate::types::{ApiKeyRecord, KeyRole};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;

const ENSURE_PROJECT: &str = "INSERT INTO projects (id, name, created_at) VALUES ($1, $2, $3) \
     ON CONFLICT (id) DO NOTHING";
const COUNT_KEYS: &str = "SELECT COUNT(*) FROM api_keys WHERE revoked_at IS NULL";
const INSERT_KEY: &str = "INSERT INTO api_keys \
     (id, project_id, name, role, prefix, key_hash, created_at, revoked_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, NULL) ON CONFLICT (key_hash) DO NOTHING";
const KEY_BY_HASH: &str = "SELECT id, project_id, name, role, prefix, created_at FROM api_keys \
     WHERE key_hash = $1";
const ACTIVE_KEY_BY_HASH: &str = "SELECT id, project_id, name, role, prefix, created_at \
     FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL";
/// The key with its project's settings (NULL, none set, when the project row is missing).
const ACTIVE_KEY_AND_SETTINGS_BY_HASH: &str = "SELECT k.id, k.project_id, k.name, k.role, \
     k.prefix, k.created_at, p.max_runs_in_flight, p.default_timeout_seconds, \
     p.max_timeout_seconds, p.default_max_steps, p.max_runs_per_day, p.max_tokens_per_day, \
     p.env_generation FROM api_keys k LEFT JOIN projects p ON p.id = k.project_id \
     WHERE k.key_hash = $1 AND k.revoked_at IS NULL";
const LIST_KEYS: &str = "SELECT id, project_id, name, role, prefix, created_at FROM api_keys \
     WHERE project_id = $1 AND revoked_at IS NULL ORDER BY id";
const KEY_IS_ACTIVE: &str =
    "SELECT CAST(COUNT(*) AS BIGINT) FROM api_keys WHERE id = $1 AND revoked_at IS NULL";
const REVOKE_KEY: &str = "UPDATE api_keys SET revoked_at = $3 \
     WHERE project_id = $1 AND id = $2 AND revoked_at IS NULL";

/// A new API key secret: `ro_` and 64 hex characters from two random UUIDs.
pub fn generate_api_key() -> String {
    format!(
        "ro_{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// The SHA-256 of a key secret, in lower-case hex: what the store keeps and looks keys up by.
pub fn hash_api_key(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    digest
        .iter()
        .fold(String::with_capacity(64), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    id: String,
    project_id: String,
    name: String,
    role: String,
    prefix: String,
    created_at: i64,
}

/// A key row with its project's settings.
#[derive(sqlx::FromRow)]
struct KeyAndSettingsRow {
    #[sqlx(flatten)]
    key: KeyRow,
    #[sqlx(flatten)]
    settings: ProjectSettings,
    env_generation: Option<i64>,
}

/// An active key with what a request made with it needs of its project, read with it.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedKey {
    pub key: ApiKeyRecord,
    /// The project's settings (the defaults when the project row is missing).
    pub settings: ProjectSettings,
    /// The project's environment generation when the key was read (`None` when the project
    /// row is missing): what [`Store::serving_version`] keeps its answers under.
    pub env_generation: Option<i64>,
}

impl KeyRow {
    fn into_record(self) -> Result<ApiKeyRecord> {
        Ok(ApiKeyRecord {
            id: self.id,
            project_id: self.project_id,
            name: self.name,
            role: self.role.parse().map_err(corrupt("api key role"))?,
            prefix: self.prefix,
            created_at_ms: self.created_at,
        })
    }
}

impl Store {
    /// Creates the project if it does not exist yet; an existing project is left unchanged.
    pub async fn ensure_project(&self, id: &str, name: &str) -> Result<()> {
        sqlx::query(ENSURE_PROJECT)
            .bind(id.to_string())
            .bind(name.to_string())
            .bind(now_ms())
            .execute(self.pool())
            .await
            .map_err(db("creating a project"))?;
        Ok(())
    }

    /// How many keys are active (not revoked), over all projects: zero means none can log in.
    pub async fn count_api_keys(&self) -> Result<i64> {
        sqlx::query_scalar::<_, i64>(COUNT_KEYS)
            .fetch_one(self.pool())
            .await
            .map_err(db("counting api keys"))
    }

    /// Stores a key for `secret` (its hash and prefix only). Storing the same secret again
    /// returns the existing record unchanged, so that a configured admin key can be
    /// registered at every start.
    pub async fn create_api_key(
        &self,
        project_id: &str,
        name: &str,
        role: KeyRole,
        secret: &str,
    ) -> Result<ApiKeyRecord> {
        let hash = hash_api_key(secret);
        let prefix: String = secret.chars().take(8).collect();
        sqlx::query(INSERT_KEY)
            .bind(rollout_domain::new_id())
            .bind(project_id.to_string())
            .bind(name.to_string())
            .bind(role.as_str())
            .bind(prefix)
            .bind(hash.clone())
            .bind(now_ms())
            .execute(self.pool())
            .await
            .map_err(db("creating an api key"))?;
        sqlx::query_as::<_, KeyRow>(KEY_BY_HASH)
            .bind(hash)
            .fetch_one(self.pool())
            .await
            .map_err(db("reading an api key"))?
            .into_record()
    }

    /// The active key whose secret this is, or `None` for an unknown or revoked key.
    pub async fn verify_api_key(&self, secret: &str) -> Result<Option<ApiKeyRecord>> {
        sqlx::query_as::<_, KeyRow>(ACTIVE_KEY_BY_HASH)
            .bind(hash_api_key(secret))
            .fetch_optional(self.pool())
            .await
            .map_err(db("verifying an api key"))?
            .map(KeyRow::into_record)
            .transpose()
    }

    /// [`Store::verify_api_key`] with the settings and the environment generation of the
    /// key's project, in the same query: a run request needs them all, and this saves it a
    /// round trip. A missing project has the
    /// default settings, as [`Store::get_project`]'s callers read them.
    pub async fn verify_api_key_and_settings(&self, secret: &str) -> Result<Option<VerifiedKey>> {
        let Some(row) = sqlx::query_as::<_, KeyAndSettingsRow>(ACTIVE_KEY_AND_SETTINGS_BY_HASH)
            .bind(hash_api_key(secret))
            .fetch_optional(self.pool())
            .await
            .map_err(db("verifying an api key"))?
        else {
            return Ok(None);
        };
        Ok(Some(VerifiedKey {
            key: row.key.into_record()?,
            settings: row.settings,
            env_generation: row.env_generation,
        }))
    }

    /// The project's active keys, oldest first.
    pub async fn list_api_keys(&self, project_id: &str) -> Result<Vec<ApiKeyRecord>> {
        sqlx::query_as::<_, KeyRow>(LIST_KEYS)
            .bind(project_id.to_string())
            .fetch_all(self.pool())
            .await
            .map_err(db("listing api keys"))?
            .into_iter()
            .map(KeyRow::into_record)
            .collect()
    }

    /// True while the key `key_id` exists and is not revoked (long requests, such as event
    /// streams, end when it turns false).
    pub async fn api_key_is_active(&self, key_id: &str) -> Result<bool> {
        let count: i64 = sqlx::query_scalar(KEY_IS_ACTIVE)
            .bind(key_id.to_string())
            .fetch_one(self.pool())
            .await
            .map_err(db("checking an api key"))?;
        Ok(count > 0)
    }

    /// Revokes a key of the project. False when there is no such active key.
    pub async fn revoke_api_key(&self, project_id: &str, key_id: &str) -> Result<bool> {
        let result = sqlx::query(REVOKE_KEY)
            .bind(project_id.to_string())
            .bind(key_id.to_string())
            .bind(now_ms())
            .execute(self.pool())
            .await
            .map_err(db("revoking an api key"))?;
        Ok(result.rows_affected() > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_have_the_prefix_and_64_hex_characters() {
        let key = generate_api_key();
        let hex = key.strip_prefix("ro_").unwrap();
        assert_eq!(hex.len(), 64);
        assert!(hex.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(key, generate_api_key());
    }

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(
            hash_api_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
