//! The scheduler: every second, fires the ticks of due schedules. Every server process runs
//! one; a tick is claimed in the database (see `Store::fire_schedule`), so it starts
//! exactly one run however many processes share the database.
//!
//! Missed ticks (all servers down, or a schedule overdue for longer than a poll): a
//! schedule fires once for the oldest missed tick, then continues with the first tick after
//! now; the ticks in between are skipped (coalesced), never replayed one by one.
//!
//! A tick is admitted like `POST /v1/agent/run` (see `admit_tick`): a tick the project may
//! not run now (quota used up, too many runs in flight, model or environment not usable)
//! starts no run and records why on the schedule (`last_skip_reason`).

use crate::error::ApiError;
use crate::routes::schedules::next_tick;
use crate::routes::{checks, projects};
use crate::state::AppState;
use chrono::Utc;
use rollout_domain::{RunId, RunSpec};
use rollout_store::{ScheduleRecord, TickAction};
use std::future::Future;
use std::time::Duration;

/// How often due schedules are looked for.
const POLL: Duration = Duration::from_secs(1);
/// Most schedules fired per poll.
const BATCH: i64 = 100;

/// Fires due schedules until `shutdown` resolves.
pub async fn run_scheduler(state: AppState, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        if let Err(error) = fire_due(&state).await {
            tracing::warn!(%error, "could not fire due schedules; retrying");
        }
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

async fn fire_due(state: &AppState) -> Result<(), rollout_store::StoreError> {
    let now = Utc::now().timestamp_millis();
    for schedule in state.store.due_schedules(now, BATCH).await? {
        fire(state, &schedule, now).await?;
    }
    Ok(())
}

async fn fire(
    state: &AppState,
    schedule: &ScheduleRecord,
    now: i64,
) -> Result<(), rollout_store::StoreError> {
    let Some(tick) = schedule.next_run_at_ms else {
        return Ok(());
    };
    let next = next_tick(&schedule.cron, &schedule.timezone, tick.max(now));
    let mut spec = schedule.spec.clone();
    let run_id = RunId::generate();
    let refusal = match admit_tick(state, schedule, &mut spec).await {
        Ok(refusal) => refusal,
        Err(error) => {
            // Admission could not be checked (the store): the tick stays due.
            tracing::warn!(schedule = %schedule.id, error = %error.message, "schedule tick postponed");
            return Ok(());
        }
    };
    let action = match &refusal {
        None => TickAction::Run(&run_id, &spec),
        Some(reason) => {
            tracing::warn!(schedule = %schedule.id, %reason, "schedule tick skipped");
            TickAction::Skip(reason)
        }
    };
    if let Some(run) = state
        .store
        .fire_schedule(schedule, tick, next, action)
        .await?
    {
        tracing::info!(schedule = %schedule.id, run = %run.id, "schedule fired");
        state.notifier.run_queued();
    }
    Ok(())
}

/// The checks `POST /v1/agent/run` makes before it queues a run, made again at each tick
/// with the schedule's project: a serving environment version (pinned into `spec`), the
/// model resolving in the project (its own checkpoints only), and the project's admission
/// (runs in flight, daily quotas). `Some(reason)` when the tick must start no run; `Err`
/// when the checks could not be made.
async fn admit_tick(
    state: &AppState,
    schedule: &ScheduleRecord,
    spec: &mut RunSpec,
) -> Result<Option<String>, ApiError> {
    let project = schedule.project_id.as_str();
    let version = checks::serving_version(
        &state.store,
        project,
        &spec.env_name,
        schedule.pinned_version,
    )
    .await;
    match version {
        Ok(version) => spec.env_version = version.version,
        Err(error) if error.status.is_server_error() => return Err(error),
        Err(error) => {
            return Ok(Some(format!(
                "its environment is not usable: {}",
                error.message
            )));
        }
    }
    if let Err(error) = state.catalog.resolve(project, &spec.model) {
        let loaded = rollout_worker::load_checkpoints_if_unknown(
            &state.catalog,
            &state.store,
            project,
            &spec.model,
        )
        .await?;
        if !loaded || state.catalog.resolve(project, &spec.model).is_err() {
            return Ok(Some(format!("its model is not usable: {error}")));
        }
    }
    let settings = projects::settings_of(state, project).await?;
    match projects::admit(state, project, &settings, 1).await {
        Ok(()) => Ok(None),
        Err(error) if error.status.is_server_error() => Err(error),
        Err(error) => Ok(Some(error.message)),
    }
}
