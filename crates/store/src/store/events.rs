//! The append-only events of a run's trace, numbered 1, 2, 3.. per run.

use crate::Result;
use crate::error::{corrupt, db, encode};
use crate::store::{Store, now_ms, retry_on_conflict};
use crate::types::Lease;
use rollout_domain::{EventKind, RunEvent, RunId};
use sqlx::AnyConnection;

/// The next sequence number is computed inside the INSERT, so that no gap or duplicate can
/// come from a read-then-write race; a lost race fails on the primary key and is retried.
const INSERT_EVENT: &str = "INSERT INTO run_events (run_id, seq, attempt, kind, at_ms, data) \
     SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4, $5 FROM run_events WHERE run_id = $1 \
     RETURNING seq";
/// A no-op write on the run's row: it takes the row lock (PostgreSQL) or the write lock
/// (SQLite), so that concurrent appends to one run queue up instead of racing for a seq.
const LOCK_RUN: &str = "UPDATE runs SET id = id WHERE id = $1";
/// The same lock, taken only while the claim holds: an execution whose lease was taken over
/// appends nothing more (its stream and the newer attempt's never interleave).
const LOCK_LEASED_RUN: &str = "UPDATE runs SET id = id \
     WHERE id = $1 AND status = 'running' AND lease_token = $2";
const LIST_EVENTS: &str = "SELECT seq, attempt, at_ms, data FROM run_events \
     WHERE run_id = $1 AND seq > $2 ORDER BY seq LIMIT $3";

/// The largest page of events one call returns.
pub(crate) const MAX_EVENTS_PAGE: i64 = 10_000;

#[derive(sqlx::FromRow)]
struct EventRow {
    seq: i64,
    attempt: i64,
    at_ms: i64,
    data: String,
}

impl Store {
    /// Appends one event on `conn`, a transaction that holds the run's row lock.
    pub(crate) async fn insert_event(
        &self,
        conn: &mut AnyConnection,
        run_id: &RunId,
        attempt: i64,
        kind: &EventKind,
    ) -> Result<RunEvent> {
        let data = serde_json::to_string(kind).map_err(encode("event"))?;
        let at_ms = now_ms();
        let seq: i64 = sqlx::query_scalar(INSERT_EVENT)
            .bind(run_id.0.clone())
            .bind(attempt)
            .bind(kind.name())
            .bind(at_ms)
            .bind(data)
            .fetch_one(conn)
            .await
            .map_err(db("appending an event"))?;
        Ok(RunEvent {
            seq,
            at_ms,
            attempt,
            kind: kind.clone(),
        })
    }

    /// Appends an event of a claim's execution, only while the claim holds. `None` when the
    /// lease was lost: the execution must stop.
    pub async fn append_leased_event(
        &self,
        lease: &Lease,
        kind: &EventKind,
    ) -> Result<Option<RunEvent>> {
        const OP: &str = "appending an event";
        retry_on_conflict(|| async {
            let mut tx = self.pool().begin().await.map_err(db(OP))?;
            let locked = sqlx::query(LOCK_LEASED_RUN)
                .bind(lease.run_id.0.clone())
                .bind(lease.token.clone())
                .execute(&mut *tx)
                .await
                .map_err(db(OP))?;
            if locked.rows_affected() == 0 {
                return Ok(None);
            }
            let event = self
                .insert_event(&mut tx, &lease.run_id, lease.attempt, kind)
                .await?;
            tx.commit().await.map_err(db(OP))?;
            Ok(Some(event))
        })
        .await
    }

    /// Appends an event to the run's trace, numbered one past the last, stamped now.
    pub async fn append_event(
        &self,
        run_id: &RunId,
        attempt: i64,
        kind: &EventKind,
    ) -> Result<RunEvent> {
        const OP: &str = "appending an event";
        retry_on_conflict(|| async {
            let mut tx = self.pool().begin().await.map_err(db(OP))?;
            sqlx::query(LOCK_RUN)
                .bind(run_id.0.clone())
                .execute(&mut *tx)
                .await
                .map_err(db(OP))?;
            let event = self.insert_event(&mut tx, run_id, attempt, kind).await?;
            tx.commit().await.map_err(db(OP))?;
            Ok(event)
        })
        .await
    }

    /// The run's events with `seq > after_seq`, in order, at most `limit` (clamped to
    /// `1..=10000`). Resume a stream by passing the last `seq` seen.
    pub async fn list_events(
        &self,
        run_id: &str,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<RunEvent>> {
        sqlx::query_as::<_, EventRow>(LIST_EVENTS)
            .bind(run_id.to_string())
            .bind(after_seq)
            .bind(limit.clamp(1, MAX_EVENTS_PAGE))
            .fetch_all(self.pool())
            .await
            .map_err(db("listing events"))?
            .into_iter()
            .map(|row| {
                let kind: EventKind = serde_json::from_str(&row.data).map_err(corrupt("event"))?;
                Ok(RunEvent {
                    seq: row.seq,
                    at_ms: row.at_ms,
                    attempt: row.attempt,
                    kind,
                })
            })
            .collect()
    }
}
