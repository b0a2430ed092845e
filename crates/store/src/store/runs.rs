//! Runs: insert, read, list, cancel. The queue operations are in `queue.rs`.

use crate::Result;
use crate::error::{db, encode};
use crate::store::traces::TraceQuery;
use crate::store::{RunRow, Store, now_ms, retry_on_conflict, written_row};
use crate::types::{Backend, CancelOutcome, RunFilter, RunRecord};
use rollout_domain::{EventKind, RunId, RunSpec, RunStatus};
use serde::Serialize;
use sqlx::any::AnyArguments;
use sqlx::query::QueryAs;

/// The columns a new run is stored with, in the order of [`NewRun::columns`]. A macro so that
/// `concat!` can build the statements below from it.
macro_rules! new_run_columns {
    () => {
        "id, project_id, spec, env_name, env_version, scenario, model, status, attempts, \
         lease_owner, lease_expires_at, lease_token, created_at, started_at, key_id, job_id, \
         task_index, repeat_index"
    };
}
/// The one statement that creates a run, for every way a run is made (the API, jobs,
/// schedule ticks, gateway sessions); bound by [`NewRun::bind`] only, so no caller can leave
/// out a column.
macro_rules! insert_run {
    () => {
        concat!(
            "INSERT INTO runs (",
            new_run_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
             $17, $18)"
        )
    };
}
/// [`insert_run!`] as it is, for writes that need nothing back.
pub(crate) const INSERT_RUN_ONLY: &str = insert_run!();
/// [`insert_run!`] giving back the row as stored.
const INSERT_RUN: &str = concat!(insert_run!(), " RETURNING ", run_columns!());
/// SQLite: the same insert for any number of runs, `$1` a JSON array of their
/// [`NewRun::columns`] ([`NewRun::json_array`]). One statement whatever the number, so that
/// the appender's batches keep one shape per number of appends and ends.
pub(crate) const INSERT_RUNS_SQLITE: &str = concat!(
    "INSERT INTO runs (",
    new_run_columns!(),
    ") SELECT r ->> 0, r ->> 1, r ->> 2, r ->> 3, r ->> 4, r ->> 5, r ->> 6, r ->> 7, r ->> 8, \
     r ->> 9, r ->> 10, r ->> 11, r ->> 12, r ->> 13, r ->> 14, r ->> 15, r ->> 16, r ->> 17 \
     FROM (SELECT value AS r FROM json_each($1))"
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
    /// model also in their own columns for filtering. On SQLite the insert rides in the
    /// appender's next batch ([`appender`](crate::store::appender)): it shares the batch's
    /// commit with the events of the runs in flight instead of paying a transaction of its
    /// own, and the run is given back as inserted (a new run's row is known without reading
    /// it back). On PostgreSQL it is one statement.
    pub async fn insert_run(
        &self,
        id: &RunId,
        project_id: &str,
        spec: &RunSpec,
    ) -> Result<RunRecord> {
        const OP: &str = "inserting a run";
        let created_at_ms = now_ms();
        let run = NewRun::new(id, project_id, spec, created_at_ms, &Placement::Queued)?;
        match self.backend() {
            Backend::Sqlite => {
                self.appender().insert(self.writer(), run).await?;
                Ok(RunRecord::queued(id, project_id, spec, created_at_ms))
            }
            Backend::Postgres => {
                let rows = run
                    .bind(sqlx::query_as::<_, RunRow>(INSERT_RUN))
                    .fetch_all(self.writer())
                    .await
                    .map_err(db(OP))?;
                written_row(rows, OP)?.into_record()
            }
        }
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
        let mut tx = self.begin_write(OP).await?;
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

/// A new run's columns as [`insert_run!`] stores them, encoded and ready to bind.
#[derive(Debug)]
pub(crate) struct NewRun {
    id: String,
    project_id: String,
    spec: String,
    env_name: String,
    env_version: i64,
    scenario: String,
    model: String,
    status: &'static str,
    attempts: i64,
    lease_owner: Option<String>,
    lease_expires_at: Option<i64>,
    lease_token: Option<String>,
    created_at: i64,
    started_at: Option<i64>,
    key_id: Option<String>,
    job_id: Option<String>,
    task_index: Option<i64>,
    repeat_index: Option<i64>,
}

/// One column of a [`NewRun`]: a JSON string, number or null in [`NewRun::json_array`].
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Column<'a> {
    Text(Option<&'a str>),
    Number(Option<i64>),
}

impl NewRun {
    /// The columns of run `id` of `spec`, created at `created_at_ms` and placed by
    /// `placement`.
    pub(crate) fn new(
        id: &RunId,
        project_id: &str,
        spec: &RunSpec,
        created_at_ms: i64,
        placement: &Placement<'_>,
    ) -> Result<NewRun> {
        let (status, attempts, started_at) = match placement {
            Placement::Running { .. } => (RunStatus::Running, 1_i64, Some(created_at_ms)),
            Placement::Queued | Placement::InJob { .. } => (RunStatus::Queued, 0, None),
        };
        let (lease_owner, lease_expires_at, lease_token) = match placement {
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
        Ok(NewRun {
            id: id.0.clone(),
            project_id: project_id.to_string(),
            spec: serde_json::to_string(spec).map_err(encode("run spec"))?,
            env_name: spec.env_name.clone(),
            env_version: spec.env_version,
            scenario: spec.scenario_name.clone(),
            model: spec.model.clone(),
            status: status.as_str(),
            attempts,
            lease_owner,
            lease_expires_at,
            lease_token,
            created_at: created_at_ms,
            started_at,
            key_id: spec.key_id.clone(),
            job_id,
            task_index,
            repeat_index,
        })
    }

    /// The columns in the order of [`new_run_columns!`]: the one list both ways of storing a
    /// run ([`NewRun::bind`], [`NewRun::json_array`]) read.
    fn columns(&self) -> [Column<'_>; 18] {
        use Column::{Number, Text};
        [
            Text(Some(&self.id)),
            Text(Some(&self.project_id)),
            Text(Some(&self.spec)),
            Text(Some(&self.env_name)),
            Number(Some(self.env_version)),
            Text(Some(&self.scenario)),
            Text(Some(&self.model)),
            Text(Some(self.status)),
            Number(Some(self.attempts)),
            Text(self.lease_owner.as_deref()),
            Number(self.lease_expires_at),
            Text(self.lease_token.as_deref()),
            Number(Some(self.created_at)),
            Number(self.started_at),
            Text(self.key_id.as_deref()),
            Text(self.job_id.as_deref()),
            Number(self.task_index),
            Number(self.repeat_index),
        ]
    }

    /// Binds the columns as the next 18 arguments of `query` ([`insert_run!`]'s).
    pub(crate) fn bind<'q, O>(
        &self,
        query: QueryAs<'q, sqlx::Any, O, AnyArguments>,
    ) -> QueryAs<'q, sqlx::Any, O, AnyArguments> {
        self.columns()
            .into_iter()
            .fold(query, |query, column| match column {
                Column::Text(text) => query.bind(text.map(str::to_owned)),
                Column::Number(number) => query.bind(number),
            })
    }

    /// `runs` as the argument of [`INSERT_RUNS_SQLITE`]: an array of their columns.
    pub(crate) fn json_array(runs: &[NewRun]) -> Result<String> {
        let rows: Vec<[Column<'_>; 18]> = runs.iter().map(NewRun::columns).collect();
        serde_json::to_string(&rows).map_err(encode("new runs"))
    }
}

/// The statement that stores a new run and gives it back (see [`INSERT_RUN`]).
pub(crate) fn insert_run_query<'q>(
    id: &RunId,
    project_id: &str,
    spec: &RunSpec,
    created_at_ms: i64,
    placement: &Placement<'_>,
) -> Result<QueryAs<'q, sqlx::Any, RunRow, AnyArguments>> {
    let run = NewRun::new(id, project_id, spec, created_at_ms, placement)?;
    Ok(run.bind(sqlx::query_as::<_, RunRow>(INSERT_RUN)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec() -> RunSpec {
        serde_json::from_value(json!({
            "env_name": "alpha", "env_version": 3, "scenario_name": "answer",
            "scenario_args": {"q": "it's \"quoted\"\n"}, "model": "m",
            "max_steps": 10, "agent_timeout_seconds": 60, "grading_timeout_seconds": 30,
            "key_id": "k-1"
        }))
        .unwrap()
    }

    /// Every column of a run read back as text, for comparing two rows whole.
    async fn row(store: &Store, id: &RunId) -> Vec<Option<String>> {
        let casts: Vec<String> = new_run_columns!()
            .split(',')
            .map(|column| format!("CAST({} AS TEXT)", column.trim()))
            .collect();
        let casts = casts.join(", ");
        let sql = format!("SELECT {casts} FROM runs WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.0.clone())
            .fetch_one(store.pool())
            .await
            .unwrap();
        (0..18)
            .map(|i| sqlx::Row::get::<Option<String>, _>(&row, i))
            .collect()
    }

    /// The SQLite batch's insert ([`INSERT_RUNS_SQLITE`], the columns as JSON) stores every
    /// column as [`INSERT_RUN`] does, for every placement; nulls stay nulls and text with
    /// quotes and newlines (the spec) comes back as it went in.
    #[tokio::test]
    async fn the_json_insert_stores_every_column_as_the_plain_insert() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
        let store = Store::connect(&url).await.unwrap();
        store.ensure_project("p", "P").await.unwrap();
        // `job_id` has no foreign key: the job need not exist for its column to be compared.
        let placements = [
            Placement::Queued,
            Placement::InJob {
                job_id: "job-1",
                task_index: 4,
                repeat_index: 2,
            },
            Placement::Running {
                owner: "w",
                lease_expires_at_ms: 99,
                token: "t",
            },
        ];
        for placement in &placements {
            let (plain, batched) = (RunId::generate(), RunId::generate());
            NewRun::new(&plain, "p", &spec(), 1234, placement)
                .unwrap()
                .bind(sqlx::query_as::<_, RunRow>(INSERT_RUN))
                .fetch_all(store.pool())
                .await
                .unwrap();
            let run = NewRun::new(&batched, "p", &spec(), 1234, placement).unwrap();
            sqlx::query(INSERT_RUNS_SQLITE)
                .bind(NewRun::json_array(std::slice::from_ref(&run)).unwrap())
                .execute(store.pool())
                .await
                .unwrap();
            let (mut expected, got) = (row(&store, &plain).await, row(&store, &batched).await);
            expected[0] = Some(batched.0.clone());
            assert_eq!(got, expected);
        }
        // A queued run reads back as `RunRecord::queued` says.
        let id = RunId::generate();
        let record = store.insert_run(&id, "p", &spec()).await.unwrap();
        assert_eq!(
            record,
            RunRecord::queued(&id, "p", &spec(), record.created_at_ms)
        );
        assert_eq!(store.get_run("p", id.as_str()).await.unwrap(), Some(record));
    }
}
