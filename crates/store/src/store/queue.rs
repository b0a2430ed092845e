//! The queue: the runs table itself. Workers claim the oldest queued run with a lease,
//! renew it by heartbeat, and write progress, events and the result only while their claim
//! holds (fencing by the claim's token, see [`Lease`]). Expired leases are re-queued a
//! bounded number of times, then failed.

use crate::Result;
use crate::error::{StoreError, corrupt, db};
use crate::event_size::{cut_text, stored_evaluation};
use crate::store::appender::{Append, EndColumns};
use crate::store::notifications::{EVENTS, notification};
use crate::store::{
    RunRow, Store, duration_ms, end_failed_transaction, now_ms, retry_on_conflict, tokens_from_db,
    tokens_to_db,
};
use crate::types::{Backend, ClaimedRun, FinishRun, Lease, RunProgress, RunRecord};
use rollout_domain::{EventKind, RunEvent, RunId, RunStatus, Usage};
use sqlx::Row;
use sqlx::any::AnyRow;
use std::time::Duration;

/// The heads of the queue's lanes, oldest first (PostgreSQL claims from each in turn;
/// SQLite's claim takes the first within its query): the runs of no job, and the runs of each
/// job whose `max_concurrency` is not reached. The recursive part walks the distinct jobs
/// with queued runs through the `runs_queue_lanes` index (one probe per job), so the cost
/// depends on the number of jobs with queued runs and on the runs running, never on how
/// many runs are queued.
macro_rules! lanes {
    () => {
        "WITH RECURSIVE lanes(job_id) AS ( \
       SELECT MIN(job_id) FROM runs WHERE status = 'queued' AND job_id IS NOT NULL \
       UNION ALL \
       SELECT (SELECT MIN(q.job_id) FROM runs q WHERE q.status = 'queued' AND q.job_id > l.job_id) \
       FROM lanes l WHERE l.job_id IS NOT NULL) \
     SELECT job_id, head FROM ( \
       SELECT CAST(NULL AS TEXT) AS job_id, \
         (SELECT MIN(created_at) FROM runs WHERE status = 'queued' AND job_id IS NULL) AS head \
       UNION ALL \
       SELECT l.job_id, (SELECT MIN(q.created_at) FROM runs q \
           WHERE q.status = 'queued' AND q.job_id = l.job_id) AS head \
       FROM lanes l WHERE l.job_id IS NOT NULL AND NOT EXISTS ( \
         SELECT 1 FROM jobs j WHERE j.id = l.job_id AND j.max_concurrency IS NOT NULL \
         AND j.max_concurrency <= (SELECT COUNT(*) FROM runs x \
           WHERE x.job_id = l.job_id AND x.status = 'running')) \
     ) heads WHERE head IS NOT NULL ORDER BY head LIMIT 8"
    };
}
const LANES: &str = lanes!();

/// The oldest queued run a claim may take. On PostgreSQL of the lane `$5` (a job, or NULL
/// for the runs of no job), if the job's `max_concurrency` leaves it room: it walks
/// `runs_status_created` in order with the form with `OR` until the first that matches (it
/// cannot use an index for `IS NOT DISTINCT FROM`). On SQLite of the first of the [`LANES`],
/// found in the same query (writers take turns there, so the lanes cannot change between
/// reading them and claiming; a read of them first on another connection cost each claim a
/// round trip): `IS` (equality that matches NULL) probes `runs_queue_lanes` by status and job
/// for the lane's head, where the form with `OR` made SQLite read every queued run and sort
/// them (about 7 ms a claim with 20,000 queued).
macro_rules! pick_lane {
    (sqlite) => {
        concat!(
            "SELECT r.id FROM runs r WHERE r.status = 'queued' AND r.job_id IS \
             (SELECT job_id FROM (",
            lanes!(),
            ") LIMIT 1) ORDER BY r.created_at, r.id LIMIT 1"
        )
    };
    (postgres) => {
        concat!(
            "SELECT r.id FROM runs r WHERE r.status = 'queued' \
             AND ((CAST($5 AS TEXT) IS NULL AND r.job_id IS NULL) OR r.job_id = $5) \
             AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = $5 \
               AND j.max_concurrency IS NOT NULL AND j.max_concurrency <= \
               (SELECT COUNT(*) FROM runs x WHERE x.job_id = $5 AND x.status = 'running')) \
             ORDER BY r.created_at, r.id LIMIT 1"
        )
    };
}
/// Claims the oldest run of one lane, with the id of its environment version (one probe of
/// the versions' index: a worker keeps versions by id), and tells whether any other run is
/// queued (the claimed row is excluded by id: PostgreSQL's subquery sees it as it was, still
/// queued).
/// On PostgreSQL `$5` is the job, or NULL for the runs of no job; a job whose
/// `max_concurrency` is reached has no run to give.
macro_rules! claim_lane {
    ($database:ident, $lock:literal) => {
        concat!(
            "UPDATE runs SET status = 'running', lease_owner = $1, lease_token = $4, \
             lease_expires_at = $2, attempts = attempts + 1, started_at = COALESCE(started_at, $3) \
             WHERE id = (",
            pick_lane!($database),
            $lock,
            ") AND status = 'queued' RETURNING ",
            run_columns!(),
            ", (SELECT v.id FROM env_versions v WHERE v.project_id = runs.project_id \
             AND v.name = runs.env_name AND v.version = runs.env_version) AS env_version_id",
            ", CASE WHEN EXISTS (SELECT 1 FROM runs q WHERE q.status = 'queued' \
             AND q.id <> runs.id) THEN 1 ELSE 0 END AS more_queued"
        )
    };
}
/// On SQLite writers are serialised: the lanes, the room check and the claim cannot race
/// (`$5` is not used: the query finds the first lane itself). The claim and
/// its `attempt_started` event are one query in one transaction: the event first, for the
/// run the claim then picks (the same one: nothing else writes in between; SQLite has no
/// data-modifying `WITH` to hand the claimed row over). The event's data and kind are bound
/// as on PostgreSQL (`$6`, `$7`, `$8`). Its rows: the event's seq, then the claim's.
const CLAIM_SQLITE: &str = concat!(
    "BEGIN IMMEDIATE; INSERT INTO run_events (run_id, seq, attempt, kind, at_ms, data) \
     SELECT r.id, (SELECT COALESCE(MAX(e.seq), 0) + 1 FROM run_events e WHERE e.run_id = r.id), \
     r.attempts + 1, $8, $3, $6 || CAST(r.attempts + 1 AS TEXT) || $7 FROM runs r WHERE r.id = (",
    pick_lane!(sqlite),
    ") RETURNING seq AS started_seq; ",
    claim_lane!(sqlite, ""),
    "; COMMIT;"
);
/// On PostgreSQL `SKIP LOCKED` keeps concurrent claimers off the same row; the job's row
/// lock (below) serialises the claimers of one job. The claim appends the attempt's
/// `attempt_started` event and sends its notification in the same statement: its data is
/// the event's JSON around the attempt number (`$6` before it, `$7` after it, see
/// [`started_halves`]), its kind `$8`, its channel `$9`. A seq taken meanwhile by another
/// writer of the run fails the statement whole, and it is tried again.
const CLAIM_POSTGRES: &str = concat!(
    "WITH claimed AS (",
    claim_lane!(postgres, " FOR UPDATE OF r SKIP LOCKED"),
    "), started AS (INSERT INTO run_events (run_id, seq, attempt, kind, at_ms, data) \
     SELECT c.id, (SELECT COALESCE(MAX(e.seq), 0) + 1 FROM run_events e WHERE e.run_id = c.id), \
     c.attempts, $8, $3, $6 || CAST(c.attempts AS TEXT) || $7 FROM claimed c RETURNING seq) \
     SELECT claimed.*, started.seq AS started_seq, \
     CAST(pg_notify($9, claimed.id) AS TEXT) AS notified FROM claimed, started"
);
const CLAIMING: &str = "claiming a run";
/// Taken before claiming a run of a job on PostgreSQL, so that two claimers cannot both
/// count the same free slot (READ COMMITTED: the claim's count runs after the lock, and sees
/// what the previous holder committed).
const LOCK_JOB: &str = "SELECT id FROM jobs WHERE id = $1 FOR UPDATE";
const HEARTBEAT: &str = "UPDATE runs SET lease_expires_at = $3 \
     WHERE id = $1 AND status = 'running' AND lease_token = $2";
const PROGRESS: &str = "UPDATE runs SET steps = $3, input_tokens = $4, output_tokens = $5, \
     cache_read_tokens = $6, cache_write_tokens = $7 \
     WHERE id = $1 AND status = 'running' AND lease_token = $2";
macro_rules! finish_update {
    () => {
        "UPDATE runs SET status = $3, outcome = $4, reward = $5, evaluation = $6, \
         final_response = $7, steps = $8, input_tokens = $9, output_tokens = $10, \
         cache_read_tokens = $11, cache_write_tokens = $12, error = $13, finished_at = $14, \
         lease_expires_at = NULL, lease_token = NULL \
         WHERE id = $1 AND status = 'running' AND lease_token = $2"
    };
}
/// Attempts are not given back: the next claim is a new attempt with its own number.
macro_rules! release_update {
    () => {
        "UPDATE runs SET status = 'queued', \
         lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL \
         WHERE id = $1 AND status = 'running' AND lease_token = $2"
    };
}
/// On SQLite the event of a fenced write: inserted only if the update before it changed the
/// run (`changes()`: the rows the previous statement changed); arguments `$n`..`$n+3`:
/// attempt, kind, time, data.
macro_rules! event_if_changed_sqlite {
    ($attempt:literal, $kind:literal, $at:literal, $data:literal, $returning:literal) => {
        concat!(
            "INSERT INTO run_events (run_id, seq, attempt, kind, at_ms, data) \
             SELECT $1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM run_events WHERE run_id = $1), $",
            $attempt, ", $", $kind, ", $", $at, ", $", $data,
            " WHERE changes() > 0 RETURNING ", $returning
        )
    };
}
/// On SQLite a fenced write and its event go as one query, one round trip to the
/// connection's thread instead of four: the update, then its event
/// (`event_if_changed_sqlite!`), in a transaction of their own.
macro_rules! then_event_sqlite {
    ($update:expr, $attempt:literal, $kind:literal, $at:literal, $data:literal) => {
        concat!(
            "BEGIN IMMEDIATE; ",
            $update,
            "; ",
            event_if_changed_sqlite!($attempt, $kind, $at, $data, "seq"),
            "; COMMIT;"
        )
    };
}
/// On PostgreSQL the same as one statement on its own (its own transaction): one round trip
/// instead of five (begin, update, insert, notify, commit). The insert's seq is read from the
/// statement's snapshot, taken before the update waited for the run's row lock, if it had to:
/// an event committed meanwhile by the holder makes the insert fail on the run's seq key,
/// which undoes the whole statement, and it is tried again ([`retry_on_conflict`]). The
/// notification (arguments `$n+4`, `$n+5`: channel, payload) is sent on commit.
macro_rules! then_event_postgres {
    ($update:expr, $attempt:literal, $kind:literal, $at:literal, $data:literal, $channel:literal, $payload:literal) => {
        concat!(
            "WITH updated AS (",
            $update,
            " RETURNING id), appended AS (\
             INSERT INTO run_events (run_id, seq, attempt, kind, at_ms, data) \
             SELECT id, (SELECT COALESCE(MAX(seq), 0) + 1 FROM run_events WHERE run_id = $1), $",
            $attempt, ", $", $kind, ", $", $at, ", $", $data,
            " FROM updated RETURNING seq) \
             SELECT seq, CAST(pg_notify($", $channel, ", $", $payload, ") AS TEXT) AS notified FROM appended"
        )
    };
}
const FINISH_POSTGRES: &str = then_event_postgres!(finish_update!(), 15, 16, 17, 18, 19, 20);
/// On SQLite a run's end is an item of the appender's batch (`appender::END_ITEM`): the
/// update and its `finished` event, numbered from `$1` and renumbered in the batch.
pub(super) const FINISH_ITEM_SQLITE: &str = concat!(
    finish_update!(),
    "; ",
    event_if_changed_sqlite!(15, 16, 17, 18, "seq, {item} AS item"),
    "; "
);
const RELEASE_POSTGRES: &str = then_event_postgres!(release_update!(), 3, 4, 5, 6, 7, 8);
const RELEASE_SQLITE: &str = then_event_sqlite!(release_update!(), 3, 4, 5, 6);
const EXPIRED: &str = "SELECT id, attempts, lost_attempts, COALESCE(lease_owner, '') FROM runs \
     WHERE status = 'running' AND lease_expires_at <= $1 ORDER BY id";
/// The lease owner of runs recorded by the MCP gateway: a session that cannot be resumed by a
/// worker, so its expired runs fail instead of going back to the queue.
pub const GATEWAY_OWNER: &str = "gateway";
/// The guards (still running, still expired, same attempt) make recovery safe against a
/// heartbeat or a second recoverer racing it.
const REQUEUE_EXPIRED: &str = "UPDATE runs SET status = 'queued', lease_owner = NULL, \
     lease_token = NULL, lease_expires_at = NULL, lost_attempts = lost_attempts + 1 \
     WHERE id = $1 AND status = 'running' AND lease_expires_at <= $2 AND attempts = $3";
const FAIL_EXPIRED: &str = "UPDATE runs SET status = 'failed', error = $4, finished_at = $2, \
     lease_token = NULL, lease_expires_at = NULL \
     WHERE id = $1 AND status = 'running' AND lease_expires_at <= $2 AND attempts = $3";
const QUEUE_POSITION: &str = "SELECT COUNT(*) FROM runs q, \
     (SELECT created_at, id FROM runs WHERE id = $1 AND status = 'queued') r \
     WHERE q.status = 'queued' \
     AND (q.created_at < r.created_at OR (q.created_at = r.created_at AND q.id <= r.id))";

impl Store {
    /// Claims the oldest queued run for `worker_id`, leased for `lease`: it becomes
    /// `running`, its attempt count goes up and the claim gets a token of its own. `None`
    /// when the queue is empty (or only holds runs of jobs at their `max_concurrency`). A run
    /// is never claimed by two workers at once, and a job never runs more than its
    /// `max_concurrency` runs, however many processes claim.
    pub async fn claim_next_run(
        &self,
        worker_id: &str,
        lease: Duration,
    ) -> Result<Option<ClaimedRun>> {
        if self.backend() == Backend::Sqlite {
            // One query finds the first lane and claims its head (`pick_lane!`).
            return self.claim_in_lane(worker_id, lease, None).await;
        }
        let lanes: Vec<(Option<String>, i64)> = sqlx::query_as(LANES)
            .fetch_all(self.pool())
            .await
            .map_err(db("finding the queue's lanes"))?;
        for (job_id, _) in lanes {
            if let Some(claimed) = self.claim_in_lane(worker_id, lease, job_id).await? {
                return Ok(Some(claimed));
            }
        }
        Ok(None)
    }

    /// Claims the oldest run of one lane (a job's runs, or those of no job), or `None` when
    /// another claimer took the last one or the job's limit is reached; on SQLite, whose
    /// query finds the first lane itself, `job_id` is `None` and unused. The attempt's
    /// `attempt_started` event is stored with the claim, in its transaction: an attempt is in
    /// its run's trace before it can do anything, however soon its process dies.
    async fn claim_in_lane(
        &self,
        worker_id: &str,
        lease: Duration,
        job_id: Option<String>,
    ) -> Result<Option<ClaimedRun>> {
        let now = now_ms();
        let token = new_token();
        let started = |attempt| EventKind::AttemptStarted {
            attempt,
            worker: worker_id.to_string(),
        };
        let arguments = ClaimArguments {
            worker_id,
            until: now.saturating_add(duration_ms(lease)),
            now,
            token: &token,
            job_id: job_id.as_deref(),
        };
        let (row, started) = match self.backend() {
            Backend::Sqlite => {
                let (before, after) = started_halves(worker_id)?;
                let query = arguments
                    .query::<SqliteClaimRow>(CLAIM_SQLITE)
                    .bind(before)
                    .bind(after)
                    .bind(started(0).name());
                let mut conn = self.writer().acquire().await.map_err(db(CLAIMING))?;
                let rows = match query.fetch_all(&mut *conn).await {
                    Ok(rows) => rows,
                    Err(error) => {
                        end_failed_transaction(conn).await;
                        return Err(db(CLAIMING)(error));
                    }
                };
                let mut rows = rows.into_iter();
                match (rows.next(), rows.next()) {
                    (None, _) => return Ok(None),
                    (Some(SqliteClaimRow::Started(seq)), Some(SqliteClaimRow::Claimed(row))) => {
                        let attempt = row.run.attempts;
                        let event = RunEvent {
                            seq,
                            at_ms: now,
                            attempt,
                            kind: started(attempt),
                        };
                        (*row, event)
                    }
                    _ => {
                        return Err(StoreError::Corrupt {
                            what: "claim",
                            detail: "its event and its run did not both come back".into(),
                        });
                    }
                }
            }
            Backend::Postgres => {
                let (before, after) = started_halves(worker_id)?;
                let kind = started(0);
                let claim = || {
                    arguments
                        .query::<StartedClaimRow>(CLAIM_POSTGRES)
                        .bind(before.clone())
                        .bind(after.clone())
                        .bind(kind.name())
                        .bind(EVENTS)
                };
                let row = retry_on_conflict(|| async {
                    let Some(job) = &job_id else {
                        return claim()
                            .fetch_optional(self.pool())
                            .await
                            .map_err(db(CLAIMING));
                    };
                    let mut tx = self.begin_write(CLAIMING).await?;
                    sqlx::query(LOCK_JOB)
                        .bind(job.clone())
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(db(CLAIMING))?;
                    let row = claim()
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(db(CLAIMING))?;
                    tx.commit().await.map_err(db(CLAIMING))?;
                    Ok(row)
                })
                .await?;
                let Some(row) = row else { return Ok(None) };
                let attempt = row.claim.run.attempts;
                let event = RunEvent {
                    seq: row.started_seq,
                    at_ms: now,
                    attempt,
                    kind: started(attempt),
                };
                (row.claim, event)
            }
        };
        let mut claimed = claimed(row.run, token)?;
        claimed.more_queued = row.more_queued != 0;
        claimed.env_version_id = row.env_version_id;
        claimed.started = Some(started);
        Ok(Some(claimed))
    }

    /// Extends a claim to now + `duration`. False when the claim was lost (recovered and
    /// perhaps claimed again, released, or the run finished): its execution must stop
    /// without writing anything more.
    pub async fn heartbeat(&self, lease: &Lease, duration: Duration) -> Result<bool> {
        let result = sqlx::query(HEARTBEAT)
            .bind(lease.run_id.0.clone())
            .bind(lease.token.clone())
            .bind(now_ms().saturating_add(duration_ms(duration)))
            .execute(self.writer())
            .await
            .map_err(db("renewing a lease"))?;
        Ok(result.rows_affected() > 0)
    }

    /// Records the steps taken and tokens used so far (totals, not increments) under a
    /// claim. False when the claim was lost.
    pub async fn record_progress(
        &self,
        lease: &Lease,
        steps: i64,
        usage: &rollout_domain::Usage,
    ) -> Result<bool> {
        let progress = RunProgress {
            steps,
            usage: *usage,
        };
        let query = sqlx::query(PROGRESS)
            .bind(lease.run_id.0.clone())
            .bind(lease.token.clone());
        let result = bind_progress!(query, progress)
            .execute(self.writer())
            .await
            .map_err(db("recording run progress"))?;
        Ok(result.rows_affected() > 0)
    }

    /// Writes the result of a run and its `finished` event, in one transaction, only if the
    /// claim still holds (fencing: an execution that lost its lease can neither overwrite a
    /// newer attempt nor end its event stream). False when nothing was written.
    pub async fn finish_run(&self, lease: &Lease, finish: &FinishRun) -> Result<bool> {
        Ok(self.end_run(lease, finish).await?.is_some())
    }

    /// [`Store::finish_run`] for the run `claimed` (the record its claim returned), answering
    /// the run as it now stands in the store: what a read would return, without the read.
    /// `None` when the lease was lost.
    pub async fn finish_claimed_run(
        &self,
        claimed: &RunRecord,
        lease: &Lease,
        finish: &FinishRun,
    ) -> Result<Option<RunRecord>> {
        let Some(end) = self.end_run(lease, finish).await? else {
            return Ok(None);
        };
        // The row as the finish left it: the claim's fields (a held run changes only through
        // its holder), then every column the finish wrote, decoded as a read decodes them.
        let evaluation = end
            .evaluation
            .map(|text| serde_json::from_str(&text))
            .transpose()
            .map_err(corrupt("run evaluation"))?;
        Ok(Some(RunRecord {
            status: finish.status,
            outcome: finish.outcome.clone(),
            reward: finish.reward,
            evaluation,
            final_response: end.final_response,
            error: end.error,
            steps: finish.steps,
            usage: Usage {
                input_tokens: tokens_from_db(tokens_to_db(finish.usage.input_tokens)),
                output_tokens: tokens_from_db(tokens_to_db(finish.usage.output_tokens)),
                cache_read_tokens: tokens_from_db(tokens_to_db(finish.usage.cache_read_tokens)),
                cache_write_tokens: tokens_from_db(tokens_to_db(finish.usage.cache_write_tokens)),
            },
            finished_at_ms: Some(end.finished_at_ms),
            ..claimed.clone()
        }))
    }

    /// Writes a run's end (see [`Store::finish_run`]) and answers its columns as stored:
    /// `None` when the lease was lost. On SQLite the end rides in the appender's next batch
    /// (the events of other runs, one transaction for all); a run's own events were all
    /// written before (the holder waits for them) or are refused after (its lease is gone).
    async fn end_run(&self, lease: &Lease, finish: &FinishRun) -> Result<Option<EndColumns>> {
        const OP: &str = "finishing a run";
        if !finish.status.is_terminal() {
            return Err(StoreError::NotTerminal {
                status: finish.status,
            });
        }
        // What the environment and the model returned is cut like the events repeating it.
        let max = self.max_event_bytes();
        let usage = &finish.usage;
        let end = EndColumns {
            status: finish.status.as_str(),
            outcome: finish.outcome.clone(),
            reward: finish.reward,
            evaluation: finish
                .evaluation
                .as_ref()
                .map(|evaluation| stored_evaluation(evaluation, max))
                .transpose()?,
            final_response: finish.final_response.as_deref().map(|t| cut_text(t, max)),
            steps: finish.steps,
            tokens: [
                tokens_to_db(usage.input_tokens),
                tokens_to_db(usage.output_tokens),
                tokens_to_db(usage.cache_read_tokens),
                tokens_to_db(usage.cache_write_tokens),
            ],
            error: finish.error.as_deref().map(|t| cut_text(t, max)),
            finished_at_ms: now_ms(),
        };
        let finished = EventKind::Finished {
            status: finish.status.as_str().into(),
            error: end.error.clone(),
        };
        if self.backend() == Backend::Sqlite {
            let (data, _) = self.stored_event(&lease.run_id, &finished)?;
            let append = Append {
                lease: lease.clone(),
                kind: finished.name(),
                at_ms: now_ms(),
                data,
                progress: None,
                notification: notification(&lease.run_id, &finished),
                end: Some(Box::new(end.clone())),
            };
            let seq = self
                .appender()
                .submit(self.writer(), self.backend(), append)
                .seq()
                .await?;
            return Ok(seq.map(|_| end));
        }
        let written = self
            .fenced_write_postgres(OP, lease, &finished, FINISH_POSTGRES, |sql| {
                bind_end!(sqlx::query(sql), lease, &end)
            })
            .await?;
        Ok(written.then_some(end))
    }

    /// Puts a claimed run back in the queue for graceful shutdown, with an `error` event
    /// (phase `shutdown`) saying why, in one transaction. The attempt stays counted (the
    /// next claim is attempt + 1) but does not use up the bound on lost attempts. False when
    /// the claim was lost.
    pub async fn release_run(&self, lease: &Lease, message: &str) -> Result<bool> {
        const OP: &str = "releasing a run";
        let released = EventKind::Error {
            phase: "shutdown".into(),
            message: message.to_string(),
        };
        self.fenced_write(
            OP,
            lease,
            &released,
            [RELEASE_POSTGRES, RELEASE_SQLITE],
            |sql| {
                sqlx::query(sql)
                    .bind(lease.run_id.0.clone())
                    .bind(lease.token.clone())
            },
        )
        .await
    }

    /// Runs `update` (a write fenced by the lease's token) and, if it changed the run,
    /// appends `event`, as one query in a transaction of its own. False when the lease was
    /// lost. The two texts are the update followed by the event for PostgreSQL
    /// (`then_event_postgres!`) and for SQLite (`then_event_sqlite!`).
    async fn fenced_write<'q>(
        &self,
        op: &'static str,
        lease: &Lease,
        event: &EventKind,
        [sql_postgres, sql_sqlite]: [&'static str; 2],
        update: impl Fn(&'static str) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> Result<bool> {
        if self.backend() == Backend::Postgres {
            return self
                .fenced_write_postgres(op, lease, event, sql_postgres, update)
                .await;
        }
        let (data, _) = self.stored_event(&lease.run_id, event)?;
        let query = update(sql_sqlite)
            .bind(lease.attempt)
            .bind(event.name())
            .bind(now_ms())
            .bind(data);
        let mut conn = self.writer().acquire().await.map_err(db(op))?;
        match query.fetch_all(&mut *conn).await {
            Ok(appended) => Ok(!appended.is_empty()),
            Err(error) => {
                end_failed_transaction(conn).await;
                Err(db(op)(error))
            }
        }
    }

    /// [`Store::fenced_write`] on PostgreSQL: `sql` is the update followed by the event
    /// (`then_event_postgres!`), tried again when a concurrent append took the event's seq.
    async fn fenced_write_postgres<'q>(
        &self,
        op: &'static str,
        lease: &Lease,
        event: &EventKind,
        sql: &'static str,
        update: impl Fn(&'static str) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> Result<bool> {
        let (data, _) = self.stored_event(&lease.run_id, event)?;
        let (channel, payload) = notification(&lease.run_id, event);
        retry_on_conflict(|| async {
            let appended = update(sql)
                .bind(lease.attempt)
                .bind(event.name())
                .bind(now_ms())
                .bind(data.clone())
                .bind(channel)
                .bind(payload.clone())
                .fetch_all(self.pool())
                .await
                .map_err(db(op))?;
            Ok(!appended.is_empty())
        })
        .await
    }

    /// Finds running runs whose lease expired (their worker died or hung). A run that has now
    /// lost fewer than `max_attempts` attempts (releases at shutdown are not lost) is re-queued
    /// with an `error` event (phase `lease`); otherwise it fails with a `finished` event.
    /// Returns each recovered run and its new status.
    pub async fn recover_expired_leases(
        &self,
        max_attempts: i64,
    ) -> Result<Vec<(RunId, RunStatus)>> {
        let expired: Vec<(String, i64, i64, String)> = sqlx::query_as(EXPIRED)
            .bind(now_ms())
            .fetch_all(self.pool())
            .await
            .map_err(db("finding expired leases"))?;
        let mut recovered = Vec::new();
        for (id, attempts, lost_before, owner) in expired {
            let run_id = RunId(id);
            // A gateway session lives in the process that lost it: nothing can resume it.
            let gateway = owner == GATEWAY_OWNER;
            let lost = lost_before.saturating_add(1);
            let max_attempts = if gateway { lost } else { max_attempts };
            let attempt = Attempt {
                number: attempts,
                lost,
            };
            let outcome =
                retry_on_conflict(|| self.recover_one(&run_id, attempt, max_attempts, gateway))
                    .await?;
            if let Some(status) = outcome {
                tracing::warn!(run_id = %run_id, attempts, status = %status, "recovered an expired lease");
                recovered.push((run_id, status));
            }
        }
        Ok(recovered)
    }

    /// Re-queues or fails one expired run, with its event, in one transaction. `None` when
    /// the run changed meanwhile (a heartbeat came in, or another process recovered it).
    async fn recover_one(
        &self,
        run_id: &RunId,
        attempt: Attempt,
        max_attempts: i64,
        gateway: bool,
    ) -> Result<Option<RunStatus>> {
        const OP: &str = "recovering an expired lease";
        let Attempt {
            number: attempts,
            lost,
        } = attempt;
        let now = now_ms();
        let mut tx = self.begin_write(OP).await?;
        let (status, event) = if lost < max_attempts {
            let result = sqlx::query(REQUEUE_EXPIRED)
                .bind(run_id.0.clone())
                .bind(now)
                .bind(attempts)
                .execute(&mut *tx)
                .await
                .map_err(db(OP))?;
            if result.rows_affected() == 0 {
                return Ok(None);
            }
            let message = format!(
                "worker lost; run re-queued (attempt {attempts} lost, {lost} of {max_attempts} allowed)"
            );
            (
                RunStatus::Queued,
                EventKind::Error {
                    phase: "lease".into(),
                    message,
                },
            )
        } else {
            let error = match gateway {
                true => "the MCP gateway session was lost (its server stopped)".to_string(),
                false => format!("worker lost after {lost} attempts"),
            };
            let result = sqlx::query(FAIL_EXPIRED)
                .bind(run_id.0.clone())
                .bind(now)
                .bind(attempts)
                .bind(error.clone())
                .execute(&mut *tx)
                .await
                .map_err(db(OP))?;
            if result.rows_affected() == 0 {
                return Ok(None);
            }
            let status = RunStatus::Failed;
            (
                status,
                EventKind::Finished {
                    status: status.as_str().into(),
                    error: Some(error),
                },
            )
        };
        self.insert_event(&mut tx, run_id, attempts, &event).await?;
        tx.commit().await.map_err(db(OP))?;
        Ok(Some(status))
    }

    /// The run's 1-based place among queued runs, in claim order. `None` if it is not queued.
    pub async fn queue_position(&self, run_id: &str) -> Result<Option<i64>> {
        let position: i64 = sqlx::query_scalar(QUEUE_POSITION)
            .bind(run_id.to_string())
            .fetch_one(self.pool())
            .await
            .map_err(db("reading a queue position"))?;
        Ok((position > 0).then_some(position))
    }
}

/// The attempt an expired lease belongs to, and how many of the run's attempts were lost.
#[derive(Clone, Copy)]
struct Attempt {
    number: i64,
    lost: i64,
}

/// A fresh claim token.
pub(crate) fn new_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// A claim's row: the run, and whether other runs are queued (0 or 1).
#[derive(sqlx::FromRow)]
struct ClaimRow {
    #[sqlx(flatten)]
    run: RunRow,
    env_version_id: Option<String>,
    more_queued: i64,
}

/// The arguments every claim's query starts with (`$1`..`$5`).
struct ClaimArguments<'a> {
    worker_id: &'a str,
    until: i64,
    now: i64,
    token: &'a str,
    job_id: Option<&'a str>,
}

impl ClaimArguments<'_> {
    /// `sql` with the claim's arguments bound, read as rows of `R`.
    fn query<R>(
        &self,
        sql: &'static str,
    ) -> sqlx::query::QueryAs<'static, sqlx::Any, R, sqlx::any::AnyArguments>
    where
        R: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow>,
    {
        sqlx::query_as(sql)
            .bind(self.worker_id.to_string())
            .bind(self.until)
            .bind(self.now)
            .bind(self.token.to_string())
            .bind(self.job_id.map(str::to_string))
    }
}

/// A row of SQLite's claim: its `attempt_started` event's seq, then the claim's row.
enum SqliteClaimRow {
    Started(i64),
    Claimed(Box<ClaimRow>),
}

impl sqlx::FromRow<'_, AnyRow> for SqliteClaimRow {
    fn from_row(row: &AnyRow) -> std::result::Result<Self, sqlx::Error> {
        if row.columns().len() == 1 {
            return Ok(SqliteClaimRow::Started(row.try_get("started_seq")?));
        }
        Ok(SqliteClaimRow::Claimed(Box::new(ClaimRow::from_row(row)?)))
    }
}

/// A claim's row on PostgreSQL, with the seq of its `attempt_started` event.
#[derive(sqlx::FromRow)]
struct StartedClaimRow {
    #[sqlx(flatten)]
    claim: ClaimRow,
    started_seq: i64,
}

/// The text of an `attempt_started` event of `worker` before and after its attempt number:
/// PostgreSQL's claim puts the number it counted in between, so that the stored event is the
/// text `serde_json` writes.
fn started_halves(worker: &str) -> Result<(String, String)> {
    const MARK: i64 = i64::MIN;
    let event = EventKind::AttemptStarted {
        attempt: MARK,
        worker: worker.to_string(),
    };
    let text = serde_json::to_string(&event).map_err(crate::error::encode("event"))?;
    match text.split_once(&MARK.to_string()) {
        Some((before, after)) => Ok((before.to_string(), after.to_string())),
        None => Err(StoreError::Corrupt {
            what: "attempt_started event",
            detail: format!("no attempt number in {text}"),
        }),
    }
}

/// The claim of a run just updated to `running` with `token` (`more_queued` unknown: false).
pub(crate) fn claimed(row: RunRow, token: String) -> Result<ClaimedRun> {
    let run = row.into_record()?;
    let lease = Lease {
        run_id: run.id.clone(),
        token,
        attempt: run.attempts,
    };
    Ok(ClaimedRun {
        run,
        lease,
        more_queued: false,
        env_version_id: None,
        started: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::Connection;

    /// SQLite's claim finds the first lane and its head in `runs_queue_lanes` by status and
    /// job, without reading and sorting the queued runs: a claim costs the same with 20 or
    /// 20,000 runs queued (the form with `OR` planned a scan of every queued run and a
    /// temporary sort). The one sort left orders the lanes' heads (one row per job).
    #[tokio::test]
    async fn sqlites_claim_finds_the_head_of_its_lane_in_the_index() {
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect("sqlite::memory:")
            .await
            .unwrap();
        crate::store::MIGRATOR.run(&mut conn).await.unwrap();
        let plan: Vec<(i64, i64, i64, String)> =
            sqlx::query_as(concat!("EXPLAIN QUERY PLAN ", pick_lane!(sqlite)))
                .fetch_all(&mut conn)
                .await
                .unwrap();
        let details: Vec<&str> = plan.iter().map(|row| row.3.as_str()).collect();
        assert!(
            details.iter().any(|detail| {
                detail.starts_with(
                    "SEARCH r USING COVERING INDEX runs_queue_lanes (status=? AND job_id=?)",
                )
            }),
            "{details:?}"
        );
        for table in ["r", "runs", "q", "x"] {
            assert!(
                !details.contains(&format!("SCAN {table}").as_str()),
                "{details:?}"
            );
        }
        let sorts = details
            .iter()
            .filter(|detail| detail.contains("TEMP B-TREE"))
            .count();
        assert_eq!(sorts, 1, "{details:?}");
    }

    #[test]
    fn the_halves_of_an_attempt_started_event_hold_its_number_as_serde_writes_it() {
        let worker = "worker \"7\" é";
        let (before, after) = started_halves(worker).unwrap();
        let event = EventKind::AttemptStarted {
            attempt: 12,
            worker: worker.into(),
        };
        assert_eq!(
            format!("{before}12{after}"),
            serde_json::to_string(&event).unwrap()
        );
    }
}
