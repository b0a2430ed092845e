//! PostgreSQL: a batch of appends in two statements, whatever its size. Each statement is a
//! round trip to the database, and a run that records events faster than they are written
//! waits for them at its end: with two statements per append (the lease check, the insert) a
//! run of a dozen events at C = 1 waited about 20 ms for its last events before its finish
//! could be written (bench/RESULTS.md item 9).
//!
//! The first statement checks every append's lease and takes its run's row lock (writing a
//! model call's progress, the last of the batch's for each run); the second inserts the
//! events of the claims that hold, numbered past each run's last seq, and sends their
//! notifications (delivered on commit). They must stay two statements: a lock that waited
//! for another transaction on the run must be followed by a statement that reads the seqs
//! that transaction committed (READ COMMITTED: a statement reads what was committed when it
//! began).
//!
//! The appends travel as one JSON array each (`json_to_recordset`): the store's `Any`
//! driver has no array arguments, and a statement of one shape for every batch size stays
//! prepared.

use super::Append;
use crate::Result;
use crate::error::db;
use crate::store::progress_columns;
use crate::types::RunProgress;
use serde::Serialize;
use sqlx::AnyPool;

const OP: &str = "appending an event";

/// Checks each claim (run, token) and locks its run; writes the progress given.
const LOCK_CLAIMS: &str = "UPDATE runs r SET \
     steps = COALESCE(c.steps, r.steps), \
     input_tokens = COALESCE(c.input_tokens, r.input_tokens), \
     output_tokens = COALESCE(c.output_tokens, r.output_tokens), \
     cache_read_tokens = COALESCE(c.cache_read_tokens, r.cache_read_tokens), \
     cache_write_tokens = COALESCE(c.cache_write_tokens, r.cache_write_tokens) \
     FROM json_to_recordset(CAST($1 AS json)) AS c(run_id text, token text, steps bigint, \
       input_tokens bigint, output_tokens bigint, cache_read_tokens bigint, cache_write_tokens bigint) \
     WHERE r.id = c.run_id AND r.status = 'running' AND r.lease_token = c.token \
     RETURNING c.run_id, c.token";

/// Inserts the events (`ord`: 1, 2, … among the batch's events of its run) and notifies.
const INSERT_EVENTS: &str = "WITH input AS ( \
       SELECT e.*, (SELECT COALESCE(MAX(seq), 0) FROM run_events WHERE run_id = e.run_id) + e.ord AS seq \
       FROM json_to_recordset(CAST($1 AS json)) AS e(item bigint, run_id text, ord bigint, \
         attempt bigint, kind text, at_ms bigint, data text, channel text, payload text)), \
     appended AS ( \
       INSERT INTO run_events (run_id, seq, attempt, kind, at_ms, data) \
       SELECT run_id, seq, attempt, kind, at_ms, data FROM input ORDER BY item \
       RETURNING run_id, seq) \
     SELECT i.item, i.seq, CAST(pg_notify(i.channel, i.payload) AS TEXT) AS notified \
     FROM appended a JOIN input i ON i.run_id = a.run_id AND i.seq = a.seq \
     ORDER BY i.item";

/// A claim of the batch, with the last progress its appends carry.
#[derive(Serialize, Default)]
struct Claim<'a> {
    run_id: &'a str,
    token: &'a str,
    steps: Option<i64>,
    input_tokens: Option<i64>,
    output_tokens: Option<i64>,
    cache_read_tokens: Option<i64>,
    cache_write_tokens: Option<i64>,
}

impl Claim<'_> {
    fn set_progress(&mut self, progress: &RunProgress) {
        let [steps, input, output, cache_read, cache_write] = progress_columns(progress);
        self.steps = Some(steps);
        self.input_tokens = Some(input);
        self.output_tokens = Some(output);
        self.cache_read_tokens = Some(cache_read);
        self.cache_write_tokens = Some(cache_write);
    }
}

/// An event to insert: its place in the batch, and in its run's part of the batch.
#[derive(Serialize)]
struct Event<'a> {
    item: usize,
    run_id: &'a str,
    ord: i64,
    attempt: i64,
    kind: &'a str,
    at_ms: i64,
    data: &'a str,
    channel: &'a str,
    payload: &'a str,
}

/// Writes `appends` in one transaction: each one's seq, or `None` for a lost lease.
pub(super) async fn write_batch(pool: &AnyPool, appends: &[Append]) -> Result<Vec<Option<i64>>> {
    if appends.iter().any(|append| append.end.is_some()) {
        return Err(crate::error::StoreError::Corrupt {
            what: "append",
            detail: "a run's end was handed to PostgreSQL's appender, which writes events only"
                .into(),
        });
    }
    let mut claims: Vec<Claim<'_>> = Vec::new();
    for append in appends {
        let lease = &append.lease;
        let index = match claims
            .iter()
            .position(|c| c.run_id == lease.run_id.as_str() && c.token == lease.token)
        {
            Some(index) => index,
            None => {
                claims.push(Claim {
                    run_id: lease.run_id.as_str(),
                    token: &lease.token,
                    ..Claim::default()
                });
                claims.len() - 1
            }
        };
        if let Some(progress) = &append.progress {
            claims[index].set_progress(progress);
        }
    }
    let mut tx = pool.begin().await.map_err(db(OP))?;
    let held: Vec<(String, String)> = sqlx::query_as(LOCK_CLAIMS)
        .bind(json(&claims)?)
        .fetch_all(&mut *tx)
        .await
        .map_err(db(OP))?;
    let mut seqs = vec![None; appends.len()];
    let mut events = Vec::with_capacity(appends.len());
    for (item, append) in appends.iter().enumerate() {
        let lease = &append.lease;
        if !held
            .iter()
            .any(|(run_id, token)| run_id == lease.run_id.as_str() && *token == lease.token)
        {
            continue;
        }
        let before = events
            .iter()
            .filter(|e: &&Event<'_>| e.run_id == lease.run_id.as_str())
            .count();
        let (channel, payload) = &append.notification;
        events.push(Event {
            item,
            run_id: lease.run_id.as_str(),
            ord: i64::try_from(before).unwrap_or(i64::MAX).saturating_add(1),
            attempt: lease.attempt,
            kind: append.kind,
            at_ms: append.at_ms,
            data: &append.data,
            channel,
            payload,
        });
    }
    if !events.is_empty() {
        let rows: Vec<(i64, i64, String)> = sqlx::query_as(INSERT_EVENTS)
            .bind(json(&events)?)
            .fetch_all(&mut *tx)
            .await
            .map_err(db(OP))?;
        for (item, seq, _) in rows {
            if let Some(slot) = usize::try_from(item).ok().and_then(|i| seqs.get_mut(i)) {
                *slot = Some(seq);
            }
        }
    }
    tx.commit().await.map_err(db(OP))?;
    Ok(seqs)
}

/// The JSON array a statement reads its rows from.
fn json<T: Serialize>(rows: &[T]) -> Result<String> {
    serde_json::to_string(rows).map_err(|e| db(OP)(sqlx::Error::Encode(e.into())))
}
