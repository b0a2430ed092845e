//! Jobs: a job row plus ordinary runs linked to it (`runs.job_id`, `task_index`,
//! `repeat_index`). A job has no state of its own beyond `cancelled_at`: its progress is the
//! status of its runs, so it survives restarts like any run.

use crate::Result;
use crate::error::{corrupt, db, encode};
use crate::eval::{JobCounts, JobRecord, JobRun, JobSpec, ModelProgress, NewJobRun};
use crate::store::runs::{Placement, insert_run_query};
use crate::store::{RunRow, Store, now_ms, retry_on_conflict};
use rollout_domain::{EventKind, RunId, RunStatus};

const INSERT_JOB: &str = "INSERT INTO jobs (id, project_id, taskset_name, max_concurrency, spec, \
     created_at) VALUES ($1, $2, $3, $4, $5, $6)";
const GET_JOB: &str = "SELECT id, project_id, spec, created_at, cancelled_at FROM jobs \
     WHERE project_id = $1 AND id = $2";
const LIST_JOBS: &str = "SELECT id, project_id, spec, created_at, cancelled_at FROM jobs \
     WHERE project_id = $1 AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3";
const JOB_RUNS: &str = concat!(
    "SELECT ",
    run_columns!(),
    ", task_index, repeat_index FROM runs WHERE job_id = $1 \
     ORDER BY task_index, model, repeat_index, id"
);
const JOB_COUNTS: &str = "SELECT status, CAST(COUNT(*) AS BIGINT) FROM runs WHERE job_id = $1 \
     GROUP BY status";
const JOB_PROGRESS: &str = "SELECT model, status, CAST(COUNT(*) AS BIGINT), \
     CAST(COALESCE(SUM(reward), 0) AS DOUBLE PRECISION) FROM runs WHERE job_id = $1 \
     GROUP BY model, status ORDER BY model";
const MARK_CANCELLED: &str =
    "UPDATE jobs SET cancelled_at = COALESCE(cancelled_at, $3) WHERE project_id = $1 AND id = $2";
const UNFINISHED_RUNS: &str = "SELECT id FROM runs WHERE job_id = $1 \
     AND status IN ('queued', 'running') ORDER BY id";
const FAILED_RUNS: &str =
    "SELECT id, attempts FROM runs WHERE job_id = $1 AND status = 'failed' ORDER BY id";
/// Back to the queue with a clean result; events and the attempt count are kept.
const REQUEUE_FAILED: &str = "UPDATE runs SET status = 'queued', outcome = NULL, reward = NULL, \
     evaluation = NULL, final_response = NULL, error = NULL, steps = 0, input_tokens = 0, \
     output_tokens = 0, cache_read_tokens = 0, cache_write_tokens = 0, lease_owner = NULL, \
     lease_token = NULL, lease_expires_at = NULL, lost_attempts = 0, cancel_requested = 0, \
     started_at = NULL, finished_at = NULL \
     WHERE id = $1 AND status = 'failed'";
const UNCANCEL_JOB: &str = "UPDATE jobs SET cancelled_at = NULL WHERE id = $1";

#[derive(sqlx::FromRow)]
struct JobRow {
    id: String,
    project_id: String,
    spec: String,
    created_at: i64,
    cancelled_at: Option<i64>,
}

impl JobRow {
    fn into_record(self) -> Result<JobRecord> {
        Ok(JobRecord {
            id: self.id,
            project_id: self.project_id,
            spec: serde_json::from_str(&self.spec).map_err(corrupt("job spec"))?,
            created_at_ms: self.created_at,
            cancelled_at_ms: self.cancelled_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct JobRunRow {
    #[sqlx(flatten)]
    run: RunRow,
    task_index: Option<i64>,
    repeat_index: Option<i64>,
}

impl Store {
    /// Stores a job and queues all its runs, in one transaction.
    pub async fn create_job(
        &self,
        id: &str,
        project_id: &str,
        spec: &JobSpec,
        runs: &[NewJobRun],
    ) -> Result<JobRecord> {
        const OP: &str = "creating a job";
        let now = now_ms();
        let spec_json = serde_json::to_string(spec).map_err(encode("job spec"))?;
        let mut tx = self.begin_write(OP).await?;
        sqlx::query(INSERT_JOB)
            .bind(id.to_string())
            .bind(project_id.to_string())
            .bind(spec.taskset.clone())
            .bind(spec.max_concurrency)
            .bind(spec_json)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db(OP))?;
        for run in runs {
            let placement = Placement::InJob {
                job_id: id,
                task_index: run.task_index,
                repeat_index: run.repeat_index,
            };
            insert_run_query(&run.id, project_id, &run.spec, now, &placement)?
                .fetch_one(&mut *tx)
                .await
                .map_err(db(OP))?;
        }
        tx.commit().await.map_err(db(OP))?;
        Ok(JobRecord {
            id: id.to_string(),
            project_id: project_id.to_string(),
            spec: spec.clone(),
            created_at_ms: now,
            cancelled_at_ms: None,
        })
    }

    /// A job of the project.
    pub async fn get_job(&self, project_id: &str, id: &str) -> Result<Option<JobRecord>> {
        sqlx::query_as::<_, JobRow>(GET_JOB)
            .bind(project_id.to_string())
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await
            .map_err(db("reading a job"))?
            .map(JobRow::into_record)
            .transpose()
    }

    /// The project's jobs, newest first; `before` is a cursor (a job id).
    pub async fn list_jobs(
        &self,
        project_id: &str,
        before: Option<&str>,
        limit: i64,
    ) -> Result<Vec<JobRecord>> {
        sqlx::query_as::<_, JobRow>(LIST_JOBS)
            .bind(project_id.to_string())
            .bind(before.map(str::to_string))
            .bind(limit.clamp(1, 500))
            .fetch_all(self.pool())
            .await
            .map_err(db("listing jobs"))?
            .into_iter()
            .map(JobRow::into_record)
            .collect()
    }

    /// Every run of a job, by task, model and repeat.
    pub async fn job_runs(&self, job_id: &str) -> Result<Vec<JobRun>> {
        sqlx::query_as::<_, JobRunRow>(JOB_RUNS)
            .bind(job_id.to_string())
            .fetch_all(self.pool())
            .await
            .map_err(db("listing the runs of a job"))?
            .into_iter()
            .map(|row| {
                Ok(JobRun {
                    run: row.run.into_record()?,
                    task_index: row.task_index.unwrap_or(0),
                    repeat_index: row.repeat_index.unwrap_or(0),
                })
            })
            .collect()
    }

    /// How many runs of the job are in each status.
    pub async fn job_counts(&self, job_id: &str) -> Result<JobCounts> {
        let rows: Vec<(String, i64)> = sqlx::query_as(JOB_COUNTS)
            .bind(job_id.to_string())
            .fetch_all(self.pool())
            .await
            .map_err(db("counting the runs of a job"))?;
        let mut counts = JobCounts::default();
        for (status, count) in rows {
            let status: RunStatus = status.parse().map_err(corrupt("run status"))?;
            counts.add(status, count);
        }
        Ok(counts)
    }

    /// Per model: counts by status and the reward sum of graded runs, without loading the
    /// runs themselves (for progress polling).
    pub async fn job_progress(&self, job_id: &str) -> Result<Vec<ModelProgress>> {
        let rows: Vec<(String, String, i64, f64)> = sqlx::query_as(JOB_PROGRESS)
            .bind(job_id.to_string())
            .fetch_all(self.pool())
            .await
            .map_err(db("reading the progress of a job"))?;
        let mut progress: Vec<ModelProgress> = Vec::new();
        for (model, status, count, reward_sum) in rows {
            let status: RunStatus = status.parse().map_err(corrupt("run status"))?;
            let index = match progress.iter().position(|p| p.model == model) {
                Some(index) => index,
                None => {
                    progress.push(ModelProgress {
                        model,
                        ..ModelProgress::default()
                    });
                    progress.len() - 1
                }
            };
            let entry = &mut progress[index];
            entry.counts.add(status, count);
            if matches!(status, RunStatus::Completed | RunStatus::TimedOut) {
                entry.graded_reward_sum += reward_sum;
            }
        }
        Ok(progress)
    }

    /// Cancels a job: its queued runs become `cancelled`, its running runs are asked to stop
    /// (see [`Store::cancel_run`]). `None` when the job does not exist.
    pub async fn cancel_job(&self, project_id: &str, id: &str) -> Result<Option<JobRecord>> {
        let marked = sqlx::query(MARK_CANCELLED)
            .bind(project_id.to_string())
            .bind(id.to_string())
            .bind(now_ms())
            .execute(self.pool())
            .await
            .map_err(db("cancelling a job"))?;
        if marked.rows_affected() == 0 {
            return Ok(None);
        }
        let runs: Vec<String> = sqlx::query_scalar(UNFINISHED_RUNS)
            .bind(id.to_string())
            .fetch_all(self.pool())
            .await
            .map_err(db("listing the unfinished runs of a job"))?;
        for run_id in runs {
            self.cancel_run(project_id, &run_id).await?;
        }
        self.get_job(project_id, id).await
    }

    /// Puts the job's failed runs back in the queue (results cleared, trace kept, with an
    /// `error` event of phase `retry`). Returns how many, `None` when the job does not exist.
    pub async fn retry_failed_runs(&self, project_id: &str, id: &str) -> Result<Option<i64>> {
        if self.get_job(project_id, id).await?.is_none() {
            return Ok(None);
        }
        let failed: Vec<(String, i64)> = sqlx::query_as(FAILED_RUNS)
            .bind(id.to_string())
            .fetch_all(self.pool())
            .await
            .map_err(db("listing the failed runs of a job"))?;
        let mut requeued = 0;
        for (run_id, attempts) in failed {
            let run_id = RunId(run_id);
            if retry_on_conflict(|| self.requeue_failed(&run_id, attempts)).await? {
                requeued += 1;
            }
        }
        if requeued > 0 {
            sqlx::query(UNCANCEL_JOB)
                .bind(id.to_string())
                .execute(self.pool())
                .await
                .map_err(db("retrying a job"))?;
        }
        Ok(Some(requeued))
    }

    async fn requeue_failed(&self, run_id: &RunId, attempts: i64) -> Result<bool> {
        const OP: &str = "re-queueing a failed run";
        let mut tx = self.begin_write(OP).await?;
        let result = sqlx::query(REQUEUE_FAILED)
            .bind(run_id.0.clone())
            .execute(&mut *tx)
            .await
            .map_err(db(OP))?;
        if result.rows_affected() == 0 {
            return Ok(false);
        }
        let event = EventKind::Error {
            phase: "retry".into(),
            message: "failed run re-queued by a job retry".into(),
        };
        self.insert_event(&mut tx, run_id, attempts, &event).await?;
        tx.commit().await.map_err(db(OP))?;
        Ok(true)
    }
}
