//! Review queues (migration 0051): a frozen list of traces handed to reviewers one at a
//! time. `next` leases the first open item with a compare-and-set, so that two reviewers
//! never hold the same trace at once, on SQLite (writes are serialised) and PostgreSQL
//! alike (the conditional `UPDATE` re-checks its `WHERE` once it has the row's lock, and a
//! loser takes the next item).

use crate::Result;
use crate::error::{corrupt, db, encode};
use crate::reviews::{
    CompleteOutcome, NewReviewQueue, QueueItem, QueueProgress, ReviewAction, ReviewQueueRecord,
    ReviewSubject, Reviewer, ReviewerProgress,
};
use crate::store::reviews::Change;
use crate::store::{Store, now_ms};

/// Most compare-and-set attempts of one `next`.
const MAX_LEASE_TRIES: usize = 10_000;
const QUEUE_COLUMNS: &str =
    "id, name, description, selection, lease_seconds, created_by, created_at";
const INSERT_QUEUE: &str = "INSERT INTO review_queues (id, project_id, name, description, \
     selection, lease_seconds, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
const INSERT_ITEM: &str =
    "INSERT INTO review_queue_items (queue_id, run_id, position) VALUES ($1, $2, $3)";
const DELETE_QUEUE: &str = "DELETE FROM review_queues WHERE project_id = $1 AND id = $2";
/// The reviewer's own live lease, if any: `next` hands it back (renewed) instead of a new one.
const HELD: &str = "SELECT run_id, position FROM review_queue_items WHERE queue_id = $1 \
     AND leased_by = $2 AND lease_expires_at > $3 AND completed_at IS NULL \
     ORDER BY position LIMIT 1";
const FIRST_OPEN: &str = "SELECT run_id, position FROM review_queue_items WHERE queue_id = $1 \
     AND completed_at IS NULL AND (lease_expires_at IS NULL OR lease_expires_at <= $2) \
     ORDER BY position LIMIT 1";
/// The compare-and-set: only an item still open and unleased (or whose lease ran out, or
/// that the reviewer holds) is taken.
const LEASE: &str = "UPDATE review_queue_items SET leased_by = $3, lease_expires_at = $4 \
     WHERE queue_id = $1 AND run_id = $2 AND completed_at IS NULL \
     AND (lease_expires_at IS NULL OR lease_expires_at <= $5 OR leased_by = $3)";
const COMPLETE: &str = "UPDATE review_queue_items SET completed_by = $3, completed_at = $4, \
     leased_by = NULL, lease_expires_at = NULL \
     WHERE queue_id = $1 AND run_id = $2 AND completed_at IS NULL \
     AND (leased_by IS NULL OR leased_by = $3 OR lease_expires_at <= $4)";
const RELEASE: &str = "UPDATE review_queue_items SET leased_by = NULL, lease_expires_at = NULL \
     WHERE queue_id = $1 AND run_id = $2 AND completed_at IS NULL AND leased_by = $3";
const ITEM: &str = "SELECT leased_by, lease_expires_at, completed_by FROM review_queue_items \
     WHERE queue_id = $1 AND run_id = $2";
const COUNTS: &str = "SELECT CAST(COUNT(*) AS BIGINT), \
     CAST(COALESCE(SUM(CASE WHEN completed_at IS NOT NULL THEN 1 ELSE 0 END), 0) AS BIGINT), \
     CAST(COALESCE(SUM(CASE WHEN completed_at IS NULL AND lease_expires_at > $2 THEN 1 ELSE 0 \
     END), 0) AS BIGINT) FROM review_queue_items WHERE queue_id = $1";
const DONE_BY: &str = "SELECT completed_by, CAST(COUNT(*) AS BIGINT) FROM review_queue_items \
     WHERE queue_id = $1 AND completed_by IS NOT NULL GROUP BY completed_by";
const HELD_BY: &str = "SELECT leased_by, CAST(COUNT(*) AS BIGINT) FROM review_queue_items \
     WHERE queue_id = $1 AND completed_at IS NULL AND lease_expires_at > $2 \
     GROUP BY leased_by";

#[derive(sqlx::FromRow)]
struct QueueRow {
    id: String,
    name: String,
    description: Option<String>,
    selection: String,
    lease_seconds: i64,
    created_by: String,
    created_at: i64,
}

impl QueueRow {
    fn into_record(self) -> Result<ReviewQueueRecord> {
        Ok(ReviewQueueRecord {
            id: self.id,
            name: self.name,
            description: self.description,
            selection: serde_json::from_str(&self.selection)
                .map_err(corrupt("review queue selection"))?,
            lease_seconds: self.lease_seconds,
            created_by: self.created_by,
            created_at_ms: self.created_at,
        })
    }
}

impl Store {
    /// Creates a queue of `run_ids` (in this order), all in one transaction; `None` when
    /// the project has a queue of that name. The caller has checked that the runs are the
    /// project's.
    pub async fn create_review_queue(
        &self,
        project_id: &str,
        queue: &NewReviewQueue,
        run_ids: &[String],
    ) -> Result<Option<ReviewQueueRecord>> {
        const OP: &str = "creating a review queue";
        let record = ReviewQueueRecord {
            id: rollout_domain::new_id(),
            name: queue.name.clone(),
            description: queue.description.clone(),
            selection: queue.selection.clone(),
            lease_seconds: queue.lease_seconds,
            created_by: queue.created_by.clone(),
            created_at_ms: now_ms(),
        };
        let selection =
            serde_json::to_string(&queue.selection).map_err(encode("a queue's selection"))?;
        let mut tx = self.begin_write(OP).await?;
        let inserted = sqlx::query(INSERT_QUEUE)
            .bind(record.id.clone())
            .bind(project_id.to_string())
            .bind(record.name.clone())
            .bind(record.description.clone())
            .bind(selection)
            .bind(record.lease_seconds)
            .bind(record.created_by.clone())
            .bind(record.created_at_ms)
            .execute(&mut *tx)
            .await
            .map_err(db(OP));
        match inserted {
            Ok(_) => {}
            Err(error) if error.is_unique_violation() => return Ok(None),
            Err(error) => return Err(error),
        }
        for (position, run_id) in run_ids.iter().enumerate() {
            sqlx::query(INSERT_ITEM)
                .bind(record.id.clone())
                .bind(run_id.clone())
                .bind(i64::try_from(position).unwrap_or(i64::MAX))
                .execute(&mut *tx)
                .await
                .map_err(db(OP))?;
        }
        tx.commit().await.map_err(db(OP))?;
        Ok(Some(record))
    }

    /// The project's queue with this id or name.
    pub async fn get_review_queue(
        &self,
        project_id: &str,
        id_or_name: &str,
    ) -> Result<Option<ReviewQueueRecord>> {
        let text = format!(
            "SELECT {QUEUE_COLUMNS} FROM review_queues WHERE project_id = $1 \
             AND (id = $2 OR name = $2) ORDER BY CASE WHEN id = $2 THEN 0 ELSE 1 END LIMIT 1"
        );
        sqlx::query_as::<_, QueueRow>(sqlx::AssertSqlSafe(text))
            .bind(project_id.to_string())
            .bind(id_or_name.to_string())
            .fetch_optional(self.pool())
            .await
            .map_err(db("reading a review queue"))?
            .map(QueueRow::into_record)
            .transpose()
    }

    /// The project's queues, newest first.
    pub async fn list_review_queues(&self, project_id: &str) -> Result<Vec<ReviewQueueRecord>> {
        let text = format!(
            "SELECT {QUEUE_COLUMNS} FROM review_queues WHERE project_id = $1 ORDER BY id DESC"
        );
        sqlx::query_as::<_, QueueRow>(sqlx::AssertSqlSafe(text))
            .bind(project_id.to_string())
            .fetch_all(self.pool())
            .await
            .map_err(db("listing review queues"))?
            .into_iter()
            .map(QueueRow::into_record)
            .collect()
    }

    /// Deletes a queue and its items (what reviewers recorded on the traces stays).
    pub async fn delete_review_queue(&self, project_id: &str, id: &str) -> Result<bool> {
        const OP: &str = "deleting a review queue";
        let owned = self.get_review_queue(project_id, id).await?;
        let Some(queue) = owned.filter(|queue| queue.id == id) else {
            return Ok(false);
        };
        let mut tx = self.begin_write(OP).await?;
        sqlx::query("DELETE FROM review_queue_items WHERE queue_id = $1")
            .bind(queue.id.clone())
            .execute(&mut *tx)
            .await
            .map_err(db(OP))?;
        let deleted = sqlx::query(DELETE_QUEUE)
            .bind(project_id.to_string())
            .bind(queue.id.clone())
            .execute(&mut *tx)
            .await
            .map_err(db(OP))?;
        tx.commit().await.map_err(db(OP))?;
        Ok(deleted.rows_affected() > 0)
    }

    /// Hands `reviewer` a trace of the queue for `lease_ms`: the one they hold (renewed),
    /// else the first open one nobody holds; `None` when none is left to hand out.
    pub async fn next_review_item(
        &self,
        queue_id: &str,
        reviewer: &str,
        lease_ms: i64,
    ) -> Result<Option<QueueItem>> {
        const OP: &str = "handing out a queue's trace";
        // Each lost race means another reviewer took an item; a queue has at most a few
        // thousand, so this ends, and the bound keeps a pathological case from spinning.
        for _ in 0..MAX_LEASE_TRIES {
            let now = now_ms();
            let held: Option<(String, i64)> = sqlx::query_as(HELD)
                .bind(queue_id.to_string())
                .bind(reviewer.to_string())
                .bind(now)
                .fetch_optional(self.pool())
                .await
                .map_err(db(OP))?;
            let candidate = match held {
                Some(held) => held,
                None => match sqlx::query_as::<_, (String, i64)>(FIRST_OPEN)
                    .bind(queue_id.to_string())
                    .bind(now)
                    .fetch_optional(self.pool())
                    .await
                    .map_err(db(OP))?
                {
                    Some(open) => open,
                    None => return Ok(None),
                },
            };
            let expires = now.saturating_add(lease_ms);
            let taken = sqlx::query(LEASE)
                .bind(queue_id.to_string())
                .bind(candidate.0.clone())
                .bind(reviewer.to_string())
                .bind(expires)
                .bind(now)
                .execute(self.pool())
                .await
                .map_err(db(OP))?;
            if taken.rows_affected() > 0 {
                return Ok(Some(QueueItem {
                    run_id: candidate.0,
                    position: candidate.1,
                    lease_expires_at_ms: expires,
                }));
            }
            // Another reviewer took it between the read and the write: try the next one.
        }
        Ok(None)
    }

    /// Records that `reviewer` reviewed the queue's trace (and marks the trace reviewed),
    /// unless it is not in the queue, is done already, or another reviewer holds it.
    pub async fn complete_review_item(
        &self,
        project_id: &str,
        queue_id: &str,
        run_id: &str,
        reviewer: &Reviewer,
    ) -> Result<CompleteOutcome> {
        const OP: &str = "completing a queue's trace";
        let now = now_ms();
        let mut tx = self.begin_write(OP).await?;
        let completed = sqlx::query(COMPLETE)
            .bind(queue_id.to_string())
            .bind(run_id.to_string())
            .bind(reviewer.author.clone())
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db(OP))?;
        if completed.rows_affected() == 0 {
            drop(tx);
            let item: Option<(Option<String>, Option<i64>, Option<String>)> = sqlx::query_as(ITEM)
                .bind(queue_id.to_string())
                .bind(run_id.to_string())
                .fetch_optional(self.pool())
                .await
                .map_err(db(OP))?;
            return Ok(match item {
                None => CompleteOutcome::NotInQueue,
                Some((_, _, Some(by))) => CompleteOutcome::AlreadyCompleted { by },
                Some((leased_by, _, None)) => CompleteOutcome::HeldByOther {
                    reviewer: leased_by.unwrap_or_default(),
                },
            });
        }
        let change = Change {
            project_id,
            run_id,
            subject: ReviewSubject::Review,
            item_id: queue_id,
            action: ReviewAction::Completed,
            reviewer,
            at_ms: now,
        };
        change.record::<(), ()>(&mut tx, None, None).await?;
        tx.commit().await.map_err(db(OP))?;
        Ok(CompleteOutcome::Completed)
    }

    /// Gives back a trace the reviewer holds (to skip it); false if they did not hold it.
    pub async fn release_review_item(
        &self,
        queue_id: &str,
        run_id: &str,
        reviewer: &str,
    ) -> Result<bool> {
        let released = sqlx::query(RELEASE)
            .bind(queue_id.to_string())
            .bind(run_id.to_string())
            .bind(reviewer.to_string())
            .execute(self.pool())
            .await
            .map_err(db("releasing a queue's trace"))?;
        Ok(released.rows_affected() > 0)
    }

    /// Done of total, held now, and per reviewer (by name).
    pub async fn review_queue_progress(&self, queue_id: &str) -> Result<QueueProgress> {
        const OP: &str = "reading a queue's progress";
        let now = now_ms();
        let (total, done, in_review): (i64, i64, i64) = sqlx::query_as(COUNTS)
            .bind(queue_id.to_string())
            .bind(now)
            .fetch_one(self.pool())
            .await
            .map_err(db(OP))?;
        let done_by: Vec<(String, i64)> = sqlx::query_as(DONE_BY)
            .bind(queue_id.to_string())
            .fetch_all(self.pool())
            .await
            .map_err(db(OP))?;
        let held_by: Vec<(String, i64)> = sqlx::query_as(HELD_BY)
            .bind(queue_id.to_string())
            .bind(now)
            .fetch_all(self.pool())
            .await
            .map_err(db(OP))?;
        let mut reviewers: Vec<ReviewerProgress> = Vec::new();
        for (reviewer, count) in done_by {
            reviewers.push(ReviewerProgress {
                reviewer,
                done: count,
                in_review: 0,
            });
        }
        for (reviewer, count) in held_by {
            match reviewers.iter_mut().find(|r| r.reviewer == reviewer) {
                Some(entry) => entry.in_review = count,
                None => reviewers.push(ReviewerProgress {
                    reviewer,
                    done: 0,
                    in_review: count,
                }),
            }
        }
        reviewers.sort_by(|a, b| a.reviewer.cmp(&b.reviewer));
        Ok(QueueProgress {
            total,
            done,
            in_review,
            reviewers,
        })
    }
}
