//! Runs: insert, read, list, cancel. The queue operations are in `queue.rs`.

use crate::Result;
use crate::error::{db, encode};
use crate::store::traces::TraceQuery;
use crate::store::{RunRow, Store, now_ms, retry_on_conflict, written_row};
use crate::types::{CancelOutcome, RunFilter, RunRecord};
use rollout_domain::{EventKind, RunId, RunSpec, RunStatus};
use sqlx::any::AnyArguments;
use sqlx::query::QueryAs;

/// The one statement that creates a run, for every way a run is made (the API, jobs,
/// schedule ticks, gateway sessions); bound by [`insert_run_query`] only, so no caller can
/// leave out a column.
const INSERT_RUN: &str = concat!(
    "INSERT INTO runs (id, project_id, spec, env_name, env_version, scenario, model, status, \
     attempts, lease_owner, lease_expires_at, lease_token, created_at, started_at, key_id, \
     job_id, task_index, repeat_index) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18) \
     RETURNING ",
    run_columns!()
);
const GET_RUN: &str = concat!(
    "SELECT ",
    run_columns!(),
    " FROM runs WHERE project_id = $1 AND id = $2"
);
/// Every filter is a bound parameter that is either NULL (no constraint) or a value, so that
/// one constant statement serves every combination.
const CANCEL_QUEUED: &str = "UPDATE runs SET status = 'cancelled', finished_at = $3 \
     WHERE project_id = $1 AND id = $2 AND status = 'queued' RETURNING attempts";
const REQUEST_CANCEL: &str = "UPDATE runs SET cancel_requested = 1 \
     WHERE project_id = $1 AND id = $2 AND status = 'running'";
const CANCEL_REQUESTED: &str = "SELECT cancel_requested FROM runs WHERE id = $1";

impl Store {
    /// Stores a new run, `queued`. The spec is kept whole, and its environment, scenario and
    /// model also in their own columns for filtering.
    pub async fn insert_run(
        &self,
        id: &RunId,
        project_id: &str,
        spec: &RunSpec,
    ) -> Result<RunRecord> {
        const OP: &str = "inserting a run";
        let rows = insert_run_query(id, project_id, spec, now_ms(), &Placement::Queued)?
            .fetch_all(self.writer())
            .await
            .map_err(db(OP))?;
        written_row(rows, OP)?.into_record()
    }

    /// A run of the project, or `None` if it does not exist there.
    pub async fn get_run(&self, project_id: &str, id: &str) -> Result<Option<RunRecord>> {
        sqlx::query_as::<_, RunRow>(GET_RUN)
            .bind(project_id.to_string())
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await
            .map_err(db("reading a run"))?
            .map(RunRow::into_record)
            .transpose()
    }

    /// The project's runs matching `filter`, newest first. Pass the last id of a page as
    /// `before` to get the next page. The trace search's query with these filters only: its
    /// SQL names just the conditions given, so each walks its index (a fixed statement of
    /// `($2 IS NULL OR status = $2)` conditions could not, and read from the newest run down to
    /// the cursor or the rare status asked for).
    pub async fn list_runs(&self, project_id: &str, filter: &RunFilter) -> Result<Vec<RunRecord>> {
        let query = TraceQuery {
            status: filter.status,
            env_name: filter.env_name.clone(),
            scenario: filter.scenario.clone(),
            model: filter.model.clone(),
            before: filter.before.clone(),
            limit: filter.effective_limit(),
            ..TraceQuery::default()
        };
        self.search_runs(project_id, &query).await
    }

    /// Cancels a run: a queued run becomes `cancelled` at once, with its `finished` event in
    /// the same transaction; a running run is flagged, and its worker stops it when it sees
    /// [`Store::is_cancel_requested`]. `None` if the run does not exist in the project.
    pub async fn cancel_run(&self, project_id: &str, id: &str) -> Result<Option<CancelOutcome>> {
        let run_id = RunId(id.to_string());
        // A run moves between the statements below only by being claimed (queued to
        // running) or released (running to queued); each retry sees it in its new state.
        for _ in 0..3 {
            if retry_on_conflict(|| self.cancel_queued(project_id, &run_id)).await? {
                return Ok(Some(CancelOutcome::Cancelled));
            }
            let flagged = sqlx::query(REQUEST_CANCEL)
                .bind(project_id.to_string())
                .bind(id.to_string())
                .execute(self.pool())
                .await
                .map_err(db("requesting cancellation of a run"))?;
            if flagged.rows_affected() > 0 {
                return Ok(Some(CancelOutcome::Requested));
            }
            match self.get_run(project_id, id).await? {
                None => return Ok(None),
                Some(run) if run.status.is_terminal() => {
                    return Ok(Some(CancelOutcome::Ended(run.status)));
                }
                Some(_) => {}
            }
        }
        Ok(self
            .get_run(project_id, id)
            .await?
            .map(|run| CancelOutcome::Ended(run.status)))
    }

    /// Cancels the run if it is queued, with its `finished` event, in one transaction.
    async fn cancel_queued(&self, project_id: &str, run_id: &RunId) -> Result<bool> {
        const OP: &str = "cancelling a queued run";
        let mut tx = self.pool().begin().await.map_err(db(OP))?;
        let cancelled: Option<i64> = sqlx::query_scalar(CANCEL_QUEUED)
            .bind(project_id.to_string())
            .bind(run_id.0.clone())
            .bind(now_ms())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db(OP))?;
        let Some(attempts) = cancelled else {
            return Ok(false);
        };
        let finished = EventKind::Finished {
            status: RunStatus::Cancelled.as_str().into(),
            error: None,
        };
        self.insert_event(&mut tx, run_id, attempts, &finished)
            .await?;
        tx.commit().await.map_err(db(OP))?;
        Ok(true)
    }

    /// True once cancellation of the run was requested. Workers poll it with their heartbeat.
    pub async fn is_cancel_requested(&self, run_id: &RunId) -> Result<bool> {
        let flag: Option<i64> = sqlx::query_scalar(CANCEL_REQUESTED)
            .bind(run_id.0.clone())
            .fetch_optional(self.pool())
            .await
            .map_err(db("reading a run's cancellation flag"))?;
        Ok(flag.unwrap_or(0) != 0)
    }
}

/// Where a new run starts.
pub(crate) enum Placement<'a> {
    /// In the queue, for a worker to claim.
    Queued,
    /// In the queue, as one run of a job.
    InJob {
        job_id: &'a str,
        task_index: i64,
        repeat_index: i64,
    },
    /// Already running (attempt 1), leased to `owner` under `token`: a run whose agent is
    /// the client (MCP gateway sessions).
    Running {
        owner: &'a str,
        lease_expires_at_ms: i64,
        token: &'a str,
    },
}

/// The statement that stores a new run (see [`INSERT_RUN`]).
pub(crate) fn insert_run_query<'q>(
    id: &RunId,
    project_id: &str,
    spec: &RunSpec,
    created_at_ms: i64,
    placement: &Placement<'_>,
) -> Result<QueryAs<'q, sqlx::Any, RunRow, AnyArguments>> {
    let spec_json = serde_json::to_string(spec).map_err(encode("run spec"))?;
    let (status, attempts, started_at) = match placement {
        Placement::Running { .. } => (RunStatus::Running, 1_i64, Some(created_at_ms)),
        Placement::Queued | Placement::InJob { .. } => (RunStatus::Queued, 0, None),
    };
    let (owner, lease_expires_at, token) = match placement {
        Placement::Running {
            owner,
            lease_expires_at_ms,
            token,
        } => (
            Some(owner.to_string()),
            Some(*lease_expires_at_ms),
            Some(token.to_string()),
        ),
        _ => (None, None, None),
    };
    let (job_id, task_index, repeat_index) = match placement {
        Placement::InJob {
            job_id,
            task_index,
            repeat_index,
        } => (
            Some(job_id.to_string()),
            Some(*task_index),
            Some(*repeat_index),
        ),
        _ => (None, None, None),
    };
    Ok(sqlx::query_as::<_, RunRow>(INSERT_RUN)
        .bind(id.0.clone())
        .bind(project_id.to_string())
        .bind(spec_json)
        .bind(spec.env_name.clone())
        .bind(spec.env_version)
        .bind(spec.scenario_name.clone())
        .bind(spec.model.clone())
        .bind(status.as_str())
        .bind(attempts)
        .bind(owner)
        .bind(lease_expires_at)
        .bind(token)
        .bind(created_at_ms)
        .bind(started_at)
        .bind(spec.key_id.clone())
        .bind(job_id)
        .bind(task_index)
        .bind(repeat_index))
}
