//! Idempotency keys of `POST /v1/agent/run`: the first request with a key inserts the run
//! and the key in one transaction; any later request with the same key (also one racing
//! it) finds the key instead and gets the same run, or a conflict if its request differs.

use crate::Result;
use crate::error::db;
use crate::store::runs::{Placement, insert_run_query};
use crate::store::{Store, duration_ms, now_ms};
use crate::types::RunRecord;
use rollout_domain::{RunId, RunSpec};
use std::time::Duration;

const DELETE_EXPIRED_KEY: &str = "DELETE FROM idempotency_keys \
     WHERE project_id = $1 AND idem_key = $2 AND expires_at <= $3";
/// On a conflict this waits for a concurrent transaction holding the same key (PostgreSQL)
/// or for the write lock (SQLite), then inserts nothing.
const INSERT_KEY: &str = "INSERT INTO idempotency_keys \
     (project_id, idem_key, request_hash, run_id, created_at, expires_at) \
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (project_id, idem_key) DO NOTHING";
const GET_KEY: &str = "SELECT request_hash, run_id FROM idempotency_keys \
     WHERE project_id = $1 AND idem_key = $2";
/// Expired keys, a batch at a time, so that each delete is a short write.
const PURGE_EXPIRED: &str = "DELETE FROM idempotency_keys WHERE (project_id, idem_key) IN \
     (SELECT project_id, idem_key FROM idempotency_keys WHERE expires_at <= $1 LIMIT $2)";
const PURGE_BATCH: i64 = 1000;

/// What an idempotent insert did.
#[derive(Debug, Clone, PartialEq)]
pub enum IdempotentInsert {
    /// The key was new (or expired): the run was inserted.
    Inserted(RunRecord),
    /// The key is known with the same request: the run it created.
    Existing(RunRecord),
    /// The key is known with a different request.
    Conflict {
        /// The run the key created.
        run_id: String,
    },
}

impl Store {
    /// Inserts a run under an idempotency key, or returns what the key already stands for.
    /// `request_hash` identifies the request (same hash, same request); the key is kept
    /// for `ttl`, after which it may be used again for a new run.
    pub async fn insert_run_idempotent(
        &self,
        id: &RunId,
        project_id: &str,
        spec: &RunSpec,
        key: &str,
        request_hash: &str,
        ttl: Duration,
    ) -> Result<IdempotentInsert> {
        const OP: &str = "inserting a run under an idempotency key";
        let now = now_ms();
        let mut tx = self.writer().begin().await.map_err(db(OP))?;
        sqlx::query(DELETE_EXPIRED_KEY)
            .bind(project_id.to_string())
            .bind(key.to_string())
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db(OP))?;
        let inserted = sqlx::query(INSERT_KEY)
            .bind(project_id.to_string())
            .bind(key.to_string())
            .bind(request_hash.to_string())
            .bind(id.0.clone())
            .bind(now)
            .bind(now.saturating_add(duration_ms(ttl)))
            .execute(&mut *tx)
            .await
            .map_err(db(OP))?
            .rows_affected();
        if inserted == 1 {
            let run = insert_run_query(id, project_id, spec, now, &Placement::Queued)?
                .fetch_one(&mut *tx)
                .await
                .map_err(db(OP))?
                .into_record()?;
            tx.commit().await.map_err(db(OP))?;
            return Ok(IdempotentInsert::Inserted(run));
        }
        tx.commit().await.map_err(db(OP))?;
        let (stored_hash, run_id): (String, String) = sqlx::query_as(GET_KEY)
            .bind(project_id.to_string())
            .bind(key.to_string())
            .fetch_one(self.pool())
            .await
            .map_err(db(OP))?;
        if stored_hash != request_hash {
            return Ok(IdempotentInsert::Conflict { run_id });
        }
        match self.get_run(project_id, &run_id).await? {
            Some(run) => Ok(IdempotentInsert::Existing(run)),
            None => Err(crate::error::StoreError::Corrupt {
                what: "idempotency key",
                detail: format!("key names run '{run_id}', which does not exist"),
            }),
        }
    }

    /// Deletes the keys whose time is over (they no longer stand for their run), in
    /// batches. Returns how many.
    pub async fn purge_expired_idempotency_keys(&self) -> Result<u64> {
        let now = now_ms();
        let mut purged = 0;
        loop {
            let deleted = sqlx::query(PURGE_EXPIRED)
                .bind(now)
                .bind(PURGE_BATCH)
                .execute(self.pool())
                .await
                .map_err(db("purging expired idempotency keys"))?
                .rows_affected();
            purged += deleted;
            if deleted < PURGE_BATCH.unsigned_abs() {
                return Ok(purged);
            }
        }
    }
}
