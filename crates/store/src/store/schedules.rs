//! Schedules: a cron expression, a time zone and the run to start at each tick. The store
//! keeps `next_run_at`; firing a tick moves it forward with a compare-and-set in the same
//! transaction as the run's insert, so each tick starts exactly one run however many
//! processes poll (the `schedule_runs` primary key guards it a second time).

use crate::Result;
use crate::error::{corrupt, db, encode};
use crate::store::runs::{Placement, insert_run_query};
use crate::store::{Store, now_ms};
use crate::types::RunRecord;
use rollout_domain::{RunId, RunSpec};

/// The columns of a schedule row, in the order [`ScheduleRow`] reads them.
macro_rules! schedule_columns {
    () => {
        "id, project_id, name, cron, timezone, spec, pinned_version, paused, next_run_at, \
         last_run_at, created_at, last_skipped_at, last_skip_reason, last_error"
    };
}
const INSERT: &str = "INSERT INTO schedules (id, project_id, name, cron, timezone, spec, \
     pinned_version, paused, next_run_at, last_run_at, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, NULL, $9)";
const GET: &str = concat!(
    "SELECT ",
    schedule_columns!(),
    " FROM schedules WHERE project_id = $1 AND id = $2"
);
const LIST: &str = concat!(
    "SELECT ",
    schedule_columns!(),
    " FROM schedules WHERE project_id = $1 ORDER BY id"
);
const DUE: &str = concat!(
    "SELECT ",
    schedule_columns!(),
    " FROM schedules WHERE paused = 0 AND next_run_at IS NOT NULL AND next_run_at <= $1 \
     ORDER BY next_run_at LIMIT $2"
);
const DELETE: &str = "DELETE FROM schedules WHERE project_id = $1 AND id = $2";
const SET_PAUSED: &str = "UPDATE schedules SET paused = $3, next_run_at = $4, last_error = NULL \
     WHERE project_id = $1 AND id = $2";
/// The claim of one tick: only the process that still sees `next_run_at = tick` moves it.
const ADVANCE: &str = "UPDATE schedules SET next_run_at = $3, last_run_at = $2, last_error = NULL \
     WHERE id = $1 AND next_run_at = $2 AND paused = 0";
/// Why a claimed tick started no run.
const RECORD_SKIP: &str =
    "UPDATE schedules SET last_skipped_at = $2, last_skip_reason = $3 WHERE id = $1";
/// Records why a tick could not fire; `$3` true also takes the schedule off the due list.
const MARK_ERROR: &str = "UPDATE schedules SET last_error = $2, \
     next_run_at = CASE WHEN $3 = 1 THEN NULL ELSE next_run_at END WHERE id = $1";
const INSERT_TICK: &str = "INSERT INTO schedule_runs (schedule_id, tick_at, run_id, created_at) \
     VALUES ($1, $2, $3, $4)";
const TICKS: &str = "SELECT tick_at, run_id FROM schedule_runs WHERE schedule_id = $1 \
     ORDER BY tick_at DESC LIMIT $2";

/// A schedule to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSchedule {
    pub project_id: String,
    pub name: String,
    /// 5 fields (minute hour day month weekday) or 6 (seconds first).
    pub cron: String,
    /// An IANA time zone, e.g. `Europe/Paris`.
    pub timezone: String,
    pub spec: RunSpec,
    /// The environment version every run uses; `None`: the newest ready one at each tick.
    pub pinned_version: Option<i64>,
    /// The first tick (unix ms); `None` when the expression never fires.
    pub next_run_at_ms: Option<i64>,
}

/// A stored schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleRecord {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub cron: String,
    pub timezone: String,
    pub spec: RunSpec,
    pub pinned_version: Option<i64>,
    pub paused: bool,
    pub next_run_at_ms: Option<i64>,
    pub last_run_at_ms: Option<i64>,
    pub created_at_ms: i64,
    /// The last tick that started no run (unix ms), and why.
    pub last_skipped_at_ms: Option<i64>,
    pub last_skip_reason: Option<String>,
    /// Why the last tick could not fire, until one fires again.
    pub last_error: Option<String>,
}

/// What a claimed tick does.
#[derive(Debug, Clone, Copy)]
pub enum TickAction<'a> {
    /// Queue this run.
    Run(&'a RunId, &'a RunSpec),
    /// Start no run, for this reason (recorded on the schedule).
    Skip(&'a str),
}

/// A due schedule whose stored row cannot be read back (its run spec no longer parses).
#[derive(Debug)]
pub struct BrokenSchedule {
    pub id: String,
    pub error: crate::StoreError,
}

#[derive(sqlx::FromRow)]
struct ScheduleRow {
    id: String,
    project_id: String,
    name: String,
    cron: String,
    timezone: String,
    spec: String,
    pinned_version: Option<i64>,
    paused: i64,
    next_run_at: Option<i64>,
    last_run_at: Option<i64>,
    created_at: i64,
    last_skipped_at: Option<i64>,
    last_skip_reason: Option<String>,
    last_error: Option<String>,
}

impl ScheduleRow {
    fn into_record(self) -> Result<ScheduleRecord> {
        Ok(ScheduleRecord {
            spec: serde_json::from_str(&self.spec).map_err(corrupt("schedule spec"))?,
            id: self.id,
            project_id: self.project_id,
            name: self.name,
            cron: self.cron,
            timezone: self.timezone,
            pinned_version: self.pinned_version,
            paused: self.paused != 0,
            next_run_at_ms: self.next_run_at,
            last_run_at_ms: self.last_run_at,
            created_at_ms: self.created_at,
            last_skipped_at_ms: self.last_skipped_at,
            last_skip_reason: self.last_skip_reason,
            last_error: self.last_error,
        })
    }
}

impl Store {
    /// Stores a new schedule (not paused).
    pub async fn insert_schedule(&self, id: &str, new: &NewSchedule) -> Result<ScheduleRecord> {
        let spec = serde_json::to_string(&new.spec).map_err(encode("schedule spec"))?;
        sqlx::query(INSERT)
            .bind(id.to_string())
            .bind(new.project_id.clone())
            .bind(new.name.clone())
            .bind(new.cron.clone())
            .bind(new.timezone.clone())
            .bind(spec)
            .bind(new.pinned_version)
            .bind(new.next_run_at_ms)
            .bind(now_ms())
            .execute(self.pool())
            .await
            .map_err(db("creating a schedule"))?;
        self.get_schedule(&new.project_id, id)
            .await?
            .ok_or_else(|| crate::StoreError::Corrupt {
                what: "schedule",
                detail: format!("schedule '{id}' vanished after its insert"),
            })
    }

    /// A schedule of the project.
    pub async fn get_schedule(&self, project_id: &str, id: &str) -> Result<Option<ScheduleRecord>> {
        sqlx::query_as::<_, ScheduleRow>(GET)
            .bind(project_id.to_string())
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await
            .map_err(db("reading a schedule"))?
            .map(ScheduleRow::into_record)
            .transpose()
    }

    /// The project's schedules, oldest first.
    pub async fn list_schedules(&self, project_id: &str) -> Result<Vec<ScheduleRecord>> {
        sqlx::query_as::<_, ScheduleRow>(LIST)
            .bind(project_id.to_string())
            .fetch_all(self.pool())
            .await
            .map_err(db("listing schedules"))?
            .into_iter()
            .map(ScheduleRow::into_record)
            .collect()
    }

    /// Deletes a schedule (its runs stay). False if the project has no such schedule.
    pub async fn delete_schedule(&self, project_id: &str, id: &str) -> Result<bool> {
        let result = sqlx::query(DELETE)
            .bind(project_id.to_string())
            .bind(id.to_string())
            .execute(self.pool())
            .await
            .map_err(db("deleting a schedule"))?;
        Ok(result.rows_affected() > 0)
    }

    /// Pauses a schedule, or resumes it from `next_run_at_ms`. False if there is no such
    /// schedule in the project.
    pub async fn set_schedule_paused(
        &self,
        project_id: &str,
        id: &str,
        paused: bool,
        next_run_at_ms: Option<i64>,
    ) -> Result<bool> {
        let result = sqlx::query(SET_PAUSED)
            .bind(project_id.to_string())
            .bind(id.to_string())
            .bind(i64::from(paused))
            .bind(next_run_at_ms)
            .execute(self.pool())
            .await
            .map_err(db("pausing or resuming a schedule"))?;
        Ok(result.rows_affected() > 0)
    }

    /// Schedules whose next tick is at or before `now_ms`, most overdue first. A row that
    /// cannot be read back is returned as a [`BrokenSchedule`], so that one bad schedule does
    /// not keep the others from firing.
    pub async fn due_schedules(
        &self,
        now_ms: i64,
        limit: i64,
    ) -> Result<Vec<std::result::Result<ScheduleRecord, BrokenSchedule>>> {
        Ok(sqlx::query_as::<_, ScheduleRow>(DUE)
            .bind(now_ms)
            .bind(limit)
            .fetch_all(self.pool())
            .await
            .map_err(db("finding due schedules"))?
            .into_iter()
            .map(|row| {
                let id = row.id.clone();
                row.into_record()
                    .map_err(|error| BrokenSchedule { id, error })
            })
            .collect())
    }

    /// Records why a schedule's tick could not fire. With `stop`, the schedule also leaves
    /// the due list (it no longer parses: retrying every poll would fail the same way) until
    /// it is resumed.
    pub async fn mark_schedule_error(&self, id: &str, error: &str, stop: bool) -> Result<()> {
        sqlx::query(MARK_ERROR)
            .bind(id.to_string())
            .bind(error.to_string())
            .bind(i64::from(stop))
            .execute(self.pool())
            .await
            .map_err(db("recording a schedule's error"))?;
        Ok(())
    }

    /// Fires the tick `tick_ms` of a schedule: moves its next tick to `next_ms` and either
    /// inserts the run (queued) and links it to the tick, or records why the tick was
    /// skipped, all in one transaction. The run when one was queued; `None` when skipped or
    /// when another process fired this tick first (nothing is written then).
    pub async fn fire_schedule(
        &self,
        schedule: &ScheduleRecord,
        tick_ms: i64,
        next_ms: Option<i64>,
        action: TickAction<'_>,
    ) -> Result<Option<RunRecord>> {
        const OP: &str = "firing a schedule";
        let mut tx = self.begin_write(OP).await?;
        let claimed = sqlx::query(ADVANCE)
            .bind(schedule.id.clone())
            .bind(tick_ms)
            .bind(next_ms)
            .execute(&mut *tx)
            .await
            .map_err(db(OP))?
            .rows_affected();
        if claimed == 0 {
            return Ok(None);
        }
        let (run_id, spec) = match action {
            TickAction::Run(run_id, spec) => (run_id, spec),
            TickAction::Skip(reason) => {
                sqlx::query(RECORD_SKIP)
                    .bind(schedule.id.clone())
                    .bind(tick_ms)
                    .bind(reason.to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(db(OP))?;
                tx.commit().await.map_err(db(OP))?;
                return Ok(None);
            }
        };
        let now = now_ms();
        let record = insert_run_query(run_id, &schedule.project_id, spec, now, &Placement::Queued)?
            .fetch_one(&mut *tx)
            .await
            .map_err(db(OP))?
            .into_record()?;
        sqlx::query(INSERT_TICK)
            .bind(schedule.id.clone())
            .bind(tick_ms)
            .bind(run_id.0.clone())
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db(OP))?;
        tx.commit().await.map_err(db(OP))?;
        Ok(Some(record))
    }

    /// The schedule's runs with their ticks (unix ms), newest first.
    pub async fn schedule_runs(
        &self,
        project_id: &str,
        schedule_id: &str,
        limit: i64,
    ) -> Result<Vec<(i64, RunRecord)>> {
        let ticks: Vec<(i64, String)> = sqlx::query_as(TICKS)
            .bind(schedule_id.to_string())
            .bind(limit)
            .fetch_all(self.pool())
            .await
            .map_err(db("listing a schedule's runs"))?;
        let mut runs = Vec::with_capacity(ticks.len());
        for (tick, run_id) in ticks {
            if let Some(run) = self.get_run(project_id, &run_id).await? {
                runs.push((tick, run));
            }
        }
        Ok(runs)
    }
}
