//! Datasets, training jobs and checkpoints. A dataset is written once, in batches of records
//! (see [`Store::begin_dataset`]), and only read once complete;
//! a training job moves `queued` → `running` → `succeeded` | `failed` | `cancelled`, and the
//! checkpoint of a successful job is inserted in the same transaction as its success.

use crate::Result;
use crate::error::{corrupt, db, encode};
use crate::store::{Store, now_ms};
use crate::training::{DatasetLine, DatasetRecord, TrainingJobRecord};
use rollout_domain::Checkpoint;

/// Records written per transaction.
pub(crate) const DATASET_BATCH: usize = 100;

const INSERT_DATASET: &str = "INSERT INTO datasets (id, project_id, name, selection, stats, \
     trace_ids, created_at, complete) VALUES ($1, $2, $3, $4, $5, $6, $7, 0)";
const COMPLETE_DATASET: &str = "UPDATE datasets SET stats = $2, trace_ids = $3, complete = 1 \
     WHERE id = $1";
const DELETE_DATASET: &str = "DELETE FROM datasets WHERE id = $1";
const INSERT_DATASET_RECORD: &str = "INSERT INTO dataset_records (dataset_id, position, \
     trace_id, chat, trajectory) VALUES ($1, $2, $3, $4, $5)";
const GET_DATASET: &str = "SELECT id, project_id, name, selection, stats, trace_ids, created_at \
     FROM datasets WHERE project_id = $1 AND id = $2 AND complete = 1";
const LIST_DATASETS: &str = "SELECT id, project_id, name, selection, stats, trace_ids, \
     created_at FROM datasets WHERE project_id = $1 AND complete = 1 ORDER BY id DESC LIMIT $2";
const DATASET_RECORDS: &str = "SELECT trace_id, chat, trajectory FROM dataset_records \
     WHERE dataset_id = $1 ORDER BY position";
const INSERT_TRAINING_JOB: &str = "INSERT INTO training_jobs (id, project_id, name, dataset_id, \
     base_model, backend, params, status, error, log, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', NULL, '', $8)";
const GET_TRAINING_JOB: &str = "SELECT id, project_id, name, dataset_id, base_model, backend, \
     params, status, error, log, created_at, started_at, finished_at FROM training_jobs \
     WHERE project_id = $1 AND id = $2";
const LIST_TRAINING_JOBS: &str = "SELECT id, project_id, name, dataset_id, base_model, backend, \
     params, status, error, log, created_at, started_at, finished_at FROM training_jobs \
     WHERE project_id = $1 ORDER BY id DESC LIMIT $2";
const NAME_TAKEN: &str = "SELECT id FROM training_jobs WHERE project_id = $1 AND name = $2 \
     AND status IN ('queued', 'running', 'succeeded') \
     UNION SELECT training_job_id FROM checkpoints WHERE project_id = $1 AND name = $2";
const START_TRAINING_JOB: &str = "UPDATE training_jobs SET status = 'running', started_at = $2, \
     heartbeat_at = $2 WHERE id = $1 AND status = 'queued'";
const HEARTBEAT_TRAINING_JOB: &str = "UPDATE training_jobs SET heartbeat_at = $2 \
     WHERE id = $1 AND status IN ('queued', 'running')";
const FAIL_STALE: &str = "UPDATE training_jobs SET status = 'failed', error = $1, \
     finished_at = $2 WHERE status IN ('queued', 'running') \
     AND COALESCE(heartbeat_at, started_at, created_at) < $3";
const APPEND_LOG: &str = "UPDATE training_jobs SET log = log || $2 WHERE id = $1";
const END_TRAINING_JOB: &str = "UPDATE training_jobs SET status = $2, error = $3, \
     finished_at = $4 WHERE id = $1 AND status IN ('queued', 'running')";
const CANCEL_TRAINING_JOB: &str = "UPDATE training_jobs SET status = 'cancelled', \
     finished_at = $3 WHERE project_id = $1 AND id = $2 AND status IN ('queued', 'running')";
const FAIL_INTERRUPTED: &str = "UPDATE training_jobs SET status = 'failed', error = $1, \
     finished_at = $2 WHERE status IN ('queued', 'running')";
const INSERT_CHECKPOINT: &str = "INSERT INTO checkpoints (name, project_id, training_job_id, \
     dataset_id, base_model, backend, target, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
const LIST_CHECKPOINTS: &str = "SELECT name, project_id, training_job_id, dataset_id, \
     base_model, backend, target, created_at FROM checkpoints ORDER BY created_at, name";

#[derive(sqlx::FromRow)]
struct DatasetRow {
    id: String,
    project_id: String,
    name: String,
    selection: String,
    stats: String,
    trace_ids: String,
    created_at: i64,
}

impl DatasetRow {
    fn into_record(self) -> Result<DatasetRecord> {
        Ok(DatasetRecord {
            id: self.id,
            project_id: self.project_id,
            name: self.name,
            selection: serde_json::from_str(&self.selection)
                .map_err(corrupt("dataset selection"))?,
            stats: serde_json::from_str(&self.stats).map_err(corrupt("dataset stats"))?,
            trace_ids: serde_json::from_str(&self.trace_ids)
                .map_err(corrupt("dataset trace ids"))?,
            created_at_ms: self.created_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct TrainingRow {
    id: String,
    project_id: String,
    name: String,
    dataset_id: String,
    base_model: String,
    backend: String,
    params: String,
    status: String,
    error: Option<String>,
    log: String,
    created_at: i64,
    started_at: Option<i64>,
    finished_at: Option<i64>,
}

impl TrainingRow {
    fn into_record(self) -> Result<TrainingJobRecord> {
        Ok(TrainingJobRecord {
            id: self.id,
            project_id: self.project_id,
            name: self.name,
            dataset_id: self.dataset_id,
            base_model: self.base_model,
            backend: self.backend,
            params: serde_json::from_str(&self.params).map_err(corrupt("training params"))?,
            status: self.status,
            error: self.error,
            log: self.log,
            created_at_ms: self.created_at,
            started_at_ms: self.started_at,
            finished_at_ms: self.finished_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct CheckpointRow {
    name: String,
    project_id: String,
    training_job_id: String,
    dataset_id: String,
    base_model: String,
    backend: String,
    target: String,
    created_at: i64,
}

impl Store {
    /// Stores a dataset and all its records (see [`Store::begin_dataset`]).
    pub async fn insert_dataset(
        &self,
        dataset: &DatasetRecord,
        lines: &[DatasetLine],
    ) -> Result<()> {
        self.begin_dataset(dataset).await?;
        let written = async {
            for (batch, records) in lines.chunks(DATASET_BATCH).enumerate() {
                self.append_dataset_records(&dataset.id, batch * DATASET_BATCH, records)
                    .await?;
            }
            self.complete_dataset(dataset).await
        };
        match written.await {
            Ok(()) => Ok(()),
            Err(error) => {
                let _ = self.discard_dataset(&dataset.id).await;
                Err(error)
            }
        }
    }

    /// Starts writing a dataset: its row, not visible until [`Store::complete_dataset`].
    /// Records go in with [`Store::append_dataset_records`], each call a short write; a
    /// creation that fails is undone with [`Store::discard_dataset`].
    pub async fn begin_dataset(&self, dataset: &DatasetRecord) -> Result<()> {
        let selection = serde_json::to_string(&dataset.selection).map_err(encode("selection"))?;
        sqlx::query(INSERT_DATASET)
            .bind(dataset.id.clone())
            .bind(dataset.project_id.clone())
            .bind(dataset.name.clone())
            .bind(selection)
            .bind("{}")
            .bind("[]")
            .bind(dataset.created_at_ms)
            .execute(self.pool())
            .await
            .map_err(db("creating a dataset"))?;
        Ok(())
    }

    /// Appends records to a dataset being written, at positions from `first_position`, in
    /// one transaction.
    pub async fn append_dataset_records(
        &self,
        dataset_id: &str,
        first_position: usize,
        lines: &[DatasetLine],
    ) -> Result<()> {
        const OP: &str = "writing dataset records";
        let mut tx = self.begin_write(OP).await?;
        for (offset, line) in lines.iter().enumerate() {
            sqlx::query(INSERT_DATASET_RECORD)
                .bind(dataset_id.to_string())
                .bind(i64::try_from(first_position + offset).unwrap_or(i64::MAX))
                .bind(line.trace_id.clone())
                .bind(line.chat.clone())
                .bind(line.trajectory.clone())
                .execute(&mut *tx)
                .await
                .map_err(db(OP))?;
        }
        tx.commit().await.map_err(db(OP))?;
        Ok(())
    }

    /// Writes a dataset's stats and trace ids and makes it visible.
    pub async fn complete_dataset(&self, dataset: &DatasetRecord) -> Result<()> {
        let stats = serde_json::to_string(&dataset.stats).map_err(encode("dataset stats"))?;
        let trace_ids = serde_json::to_string(&dataset.trace_ids).map_err(encode("trace ids"))?;
        sqlx::query(COMPLETE_DATASET)
            .bind(dataset.id.clone())
            .bind(stats)
            .bind(trace_ids)
            .execute(self.pool())
            .await
            .map_err(db("completing a dataset"))?;
        Ok(())
    }

    /// Deletes a dataset being written, and its records.
    pub async fn discard_dataset(&self, dataset_id: &str) -> Result<()> {
        sqlx::query(DELETE_DATASET)
            .bind(dataset_id.to_string())
            .execute(self.pool())
            .await
            .map_err(db("discarding a dataset"))?;
        Ok(())
    }

    /// A dataset of the project.
    pub async fn get_dataset(&self, project_id: &str, id: &str) -> Result<Option<DatasetRecord>> {
        sqlx::query_as::<_, DatasetRow>(GET_DATASET)
            .bind(project_id.to_string())
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await
            .map_err(db("reading a dataset"))?
            .map(DatasetRow::into_record)
            .transpose()
    }

    /// The project's datasets, newest first, at most `limit`.
    pub async fn list_datasets(&self, project_id: &str, limit: i64) -> Result<Vec<DatasetRecord>> {
        sqlx::query_as::<_, DatasetRow>(LIST_DATASETS)
            .bind(project_id.to_string())
            .bind(limit)
            .fetch_all(self.pool())
            .await
            .map_err(db("listing datasets"))?
            .into_iter()
            .map(DatasetRow::into_record)
            .collect()
    }

    /// A dataset's records, in order.
    pub async fn dataset_lines(&self, dataset_id: &str) -> Result<Vec<DatasetLine>> {
        let rows: Vec<(String, String, String)> = sqlx::query_as(DATASET_RECORDS)
            .bind(dataset_id.to_string())
            .fetch_all(self.pool())
            .await
            .map_err(db("reading dataset records"))?;
        Ok(rows
            .into_iter()
            .map(|(trace_id, chat, trajectory)| DatasetLine {
                trace_id,
                chat,
                trajectory,
            })
            .collect())
    }

    /// Stores a queued training job.
    pub async fn insert_training_job(&self, job: &TrainingJobRecord) -> Result<()> {
        let params = serde_json::to_string(&job.params).map_err(encode("training params"))?;
        sqlx::query(INSERT_TRAINING_JOB)
            .bind(job.id.clone())
            .bind(job.project_id.clone())
            .bind(job.name.clone())
            .bind(job.dataset_id.clone())
            .bind(job.base_model.clone())
            .bind(job.backend.clone())
            .bind(params)
            .bind(job.created_at_ms)
            .execute(self.pool())
            .await
            .map_err(db("creating a training job"))?;
        Ok(())
    }

    /// True when a checkpoint, or a training job that may still register one, has `name`.
    pub async fn checkpoint_name_taken(&self, project_id: &str, name: &str) -> Result<bool> {
        let rows: Vec<(String,)> = sqlx::query_as(NAME_TAKEN)
            .bind(project_id.to_string())
            .bind(name.to_string())
            .fetch_all(self.pool())
            .await
            .map_err(db("checking a checkpoint name"))?;
        Ok(!rows.is_empty())
    }

    /// A training job of the project.
    pub async fn get_training_job(
        &self,
        project_id: &str,
        id: &str,
    ) -> Result<Option<TrainingJobRecord>> {
        sqlx::query_as::<_, TrainingRow>(GET_TRAINING_JOB)
            .bind(project_id.to_string())
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await
            .map_err(db("reading a training job"))?
            .map(TrainingRow::into_record)
            .transpose()
    }

    /// The project's training jobs, newest first, at most `limit`.
    pub async fn list_training_jobs(
        &self,
        project_id: &str,
        limit: i64,
    ) -> Result<Vec<TrainingJobRecord>> {
        sqlx::query_as::<_, TrainingRow>(LIST_TRAINING_JOBS)
            .bind(project_id.to_string())
            .bind(limit)
            .fetch_all(self.pool())
            .await
            .map_err(db("listing training jobs"))?
            .into_iter()
            .map(TrainingRow::into_record)
            .collect()
    }

    /// `queued` → `running`; false if the job was cancelled meanwhile.
    pub async fn start_training_job(&self, id: &str) -> Result<bool> {
        let done = sqlx::query(START_TRAINING_JOB)
            .bind(id.to_string())
            .bind(now_ms())
            .execute(self.pool())
            .await
            .map_err(db("starting a training job"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Appends text to a training job's log.
    pub async fn append_training_log(&self, id: &str, text: &str) -> Result<()> {
        sqlx::query(APPEND_LOG)
            .bind(id.to_string())
            .bind(text.to_string())
            .execute(self.pool())
            .await
            .map_err(db("appending to a training log"))?;
        Ok(())
    }

    /// Ends an unfinished job as `failed` (with `error`) or `cancelled`; false if it had
    /// already ended.
    pub async fn end_training_job(
        &self,
        id: &str,
        status: &str,
        error: Option<&str>,
    ) -> Result<bool> {
        let done = sqlx::query(END_TRAINING_JOB)
            .bind(id.to_string())
            .bind(status.to_string())
            .bind(error.map(str::to_string))
            .bind(now_ms())
            .execute(self.pool())
            .await
            .map_err(db("ending a training job"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Marks the job `succeeded` and registers its checkpoint, atomically; false (and no
    /// checkpoint) if the job had already ended, e.g. cancelled.
    pub async fn succeed_training_job(&self, id: &str, checkpoint: &Checkpoint) -> Result<bool> {
        const OP: &str = "registering a checkpoint";
        let target = serde_json::to_string(&checkpoint.target).map_err(encode("checkpoint"))?;
        let mut tx = self.begin_write(OP).await?;
        let done = sqlx::query(END_TRAINING_JOB)
            .bind(id.to_string())
            .bind("succeeded".to_string())
            .bind(None::<String>)
            .bind(now_ms())
            .execute(&mut *tx)
            .await
            .map_err(db(OP))?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        sqlx::query(INSERT_CHECKPOINT)
            .bind(checkpoint.name.clone())
            .bind(checkpoint.project_id.clone())
            .bind(checkpoint.training_job_id.clone())
            .bind(checkpoint.dataset_id.clone())
            .bind(checkpoint.base_model.clone())
            .bind(checkpoint.backend.clone())
            .bind(target)
            .bind(checkpoint.created_at_ms)
            .execute(&mut *tx)
            .await
            .map_err(db(OP))?;
        tx.commit().await.map_err(db(OP))?;
        Ok(true)
    }

    /// Cancels an unfinished training job; false if it was not found or had ended.
    pub async fn cancel_training_job(&self, project_id: &str, id: &str) -> Result<bool> {
        let done = sqlx::query(CANCEL_TRAINING_JOB)
            .bind(project_id.to_string())
            .bind(id.to_string())
            .bind(now_ms())
            .execute(self.pool())
            .await
            .map_err(db("cancelling a training job"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Fails every unfinished training job (at start-up: their process is gone). Returns
    /// how many.
    pub async fn fail_interrupted_training_jobs(&self) -> Result<u64> {
        let done = sqlx::query(FAIL_INTERRUPTED)
            .bind("the server stopped while the job was running".to_string())
            .bind(now_ms())
            .execute(self.pool())
            .await
            .map_err(db("failing interrupted training jobs"))?;
        Ok(done.rows_affected())
    }

    /// Notes that the job's process is alive (see [`Store::fail_stale_training_jobs`]).
    pub async fn heartbeat_training_job(&self, id: &str) -> Result<bool> {
        let done = sqlx::query(HEARTBEAT_TRAINING_JOB)
            .bind(id.to_string())
            .bind(now_ms())
            .execute(self.pool())
            .await
            .map_err(db("renewing a training job's heartbeat"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Fails the unfinished training jobs whose process last showed signs of life before
    /// `stale_before_ms` (their process is gone). Returns how many.
    pub async fn fail_stale_training_jobs(&self, stale_before_ms: i64) -> Result<u64> {
        let done = sqlx::query(FAIL_STALE)
            .bind("the server running the job stopped".to_string())
            .bind(now_ms())
            .bind(stale_before_ms)
            .execute(self.pool())
            .await
            .map_err(db("failing stale training jobs"))?;
        Ok(done.rows_affected())
    }

    /// Every checkpoint of every project (the model catalog is global).
    pub async fn list_checkpoints(&self) -> Result<Vec<Checkpoint>> {
        sqlx::query_as::<_, CheckpointRow>(LIST_CHECKPOINTS)
            .fetch_all(self.pool())
            .await
            .map_err(db("listing checkpoints"))?
            .into_iter()
            .map(|row| {
                Ok(Checkpoint {
                    name: row.name,
                    project_id: row.project_id,
                    base_model: row.base_model,
                    backend: row.backend,
                    dataset_id: row.dataset_id,
                    training_job_id: row.training_job_id,
                    created_at_ms: row.created_at,
                    target: serde_json::from_str(&row.target).map_err(corrupt("checkpoint"))?,
                })
            })
            .collect()
    }
}
