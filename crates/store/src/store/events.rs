//! The append-only events of a run's trace, numbered 1, 2, 3.. per run.

use crate::Result;
use crate::error::{corrupt, db};
use crate::event_size::stored_form;
use crate::store::appender::{Append, Submitted};
use crate::store::notifications::notification;
use crate::store::{Store, now_ms, retry_on_conflict};
use crate::types::{Lease, RunProgress};
use futures::TryStreamExt;
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
// A claim's append goes through the store's `Appender` (group commit): many runs' appends
// in one transaction, each checking its own lease.
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

impl EventRow {
    fn into_event(self) -> Result<RunEvent> {
        let kind: EventKind = serde_json::from_str(&self.data).map_err(corrupt("event"))?;
        Ok(RunEvent {
            seq: self.seq,
            at_ms: self.at_ms,
            attempt: self.attempt,
            kind,
        })
    }
}

impl Store {
    /// The event's stored JSON, and the event as stored when it was cut to the size limit.
    pub(crate) fn stored_event(
        &self,
        run_id: &RunId,
        kind: &EventKind,
    ) -> Result<(String, Option<EventKind>)> {
        let (data, cut) = stored_form(kind, self.max_event_bytes())?;
        if cut.is_some() {
            tracing::info!(run = %run_id, event = kind.name(), "an event over the size limit was stored cut");
        }
        Ok((data, cut))
    }

    /// Appends one event on `conn`, a transaction that holds the run's row lock. The event
    /// is stored (and returned) cut to the store's size limit.
    pub(crate) async fn insert_event(
        &self,
        conn: &mut AnyConnection,
        run_id: &RunId,
        attempt: i64,
        kind: &EventKind,
    ) -> Result<RunEvent> {
        let (data, cut) = self.stored_event(run_id, kind)?;
        let at_ms = now_ms();
        let seq: i64 = sqlx::query_scalar(INSERT_EVENT)
            .bind(run_id.0.clone())
            .bind(attempt)
            .bind(kind.name())
            .bind(at_ms)
            .bind(data)
            .fetch_one(&mut *conn)
            .await
            .map_err(db("appending an event"))?;
        self.notify_event(conn, run_id, kind).await?;
        Ok(RunEvent {
            seq,
            at_ms,
            attempt,
            kind: cut.unwrap_or_else(|| kind.clone()),
        })
    }

    /// Appends an event of a claim's execution, only while the claim holds. `None` when the
    /// lease was lost: the execution must stop.
    pub async fn append_leased_event(
        &self,
        lease: &Lease,
        kind: &EventKind,
    ) -> Result<Option<RunEvent>> {
        self.append_leased_event_and_progress(lease, kind, None)
            .await
    }

    /// [`Store::append_leased_event`], writing the run's `progress` (a model call's totals)
    /// in the same round trip. `None` when the lease was lost: neither is written then.
    pub async fn append_leased_event_and_progress(
        &self,
        lease: &Lease,
        kind: &EventKind,
        progress: Option<&RunProgress>,
    ) -> Result<Option<RunEvent>> {
        retry_on_conflict(|| async {
            self.submit_leased_event(lease, kind.clone(), progress, now_ms())?
                .stored()
                .await
        })
        .await
    }

    /// Hands an event of a claim's execution (that happened at `at_ms`, with a model call's
    /// `progress`) to the store's writing task and returns at once, so that a run's writer
    /// can hand over all the events it has waiting before it waits: they are stored in the
    /// order they were handed over, as one transaction when they are written together.
    /// [`PendingEvent::stored`] waits for the answer.
    pub fn submit_leased_event(
        &self,
        lease: &Lease,
        kind: EventKind,
        progress: Option<&RunProgress>,
        at_ms: i64,
    ) -> Result<PendingEvent> {
        let (data, cut) = self.stored_event(&lease.run_id, &kind)?;
        let append = Append {
            lease: lease.clone(),
            kind: kind.name(),
            at_ms,
            data,
            progress: progress.copied(),
            notification: notification(&lease.run_id, &kind),
            end: None,
        };
        Ok(PendingEvent {
            submitted: self
                .appender()
                .submit(self.writer(), self.backend(), append),
            event: RunEvent {
                seq: 0,
                at_ms,
                attempt: lease.attempt,
                kind: cut.unwrap_or(kind),
            },
        })
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
            let mut tx = self.begin_write(OP).await?;
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

    /// A page of the run's events with `seq > after_seq`, in order: at most `limit` (clamped
    /// to `1..=10000`) and, past the first, no more than about `max_bytes` of stored JSON,
    /// so that a page of long events stays a bounded response. Rows are read one by one
    /// and reading stops at the budget.
    pub async fn list_events_page(
        &self,
        run_id: &str,
        after_seq: i64,
        limit: i64,
        max_bytes: usize,
    ) -> Result<Vec<RunEvent>> {
        let mut rows = sqlx::query_as::<_, EventRow>(LIST_EVENTS)
            .bind(run_id.to_string())
            .bind(after_seq)
            .bind(limit.clamp(1, MAX_EVENTS_PAGE))
            .fetch(self.pool());
        let mut events = Vec::new();
        let mut bytes = 0usize;
        while let Some(row) = rows.try_next().await.map_err(db("listing events"))? {
            bytes = bytes.saturating_add(row.data.len());
            if bytes > max_bytes && !events.is_empty() {
                break;
            }
            events.push(row.into_event()?);
        }
        Ok(events)
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
            .map(EventRow::into_event)
            .collect()
    }
}

/// An event handed to the store's writing task ([`Store::submit_leased_event`]).
#[derive(Debug)]
pub struct PendingEvent {
    submitted: Submitted,
    /// The event as it will read once stored, but for its seq.
    event: RunEvent,
}

impl PendingEvent {
    /// The stored event, or `None` when the lease was lost (nothing was written then).
    pub async fn stored(self) -> Result<Option<RunEvent>> {
        let seq = self.submitted.seq().await?;
        Ok(seq.map(|seq| RunEvent { seq, ..self.event }))
    }
}
