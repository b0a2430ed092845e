//! The scheduler: every second, fires the ticks of due schedules. Every server process runs
//! one; a tick is claimed in the database (see `Store::fire_schedule`), so it starts
//! exactly one run however many processes share the database.
//!
//! Missed ticks (all servers down, or a schedule overdue for longer than a poll): a
//! schedule fires once for the oldest missed tick, then continues with the first tick after
//! now; the ticks in between are skipped (coalesced), never replayed one by one.

use crate::routes::checks;
use crate::routes::schedules::next_tick;
use crate::state::AppState;
use chrono::Utc;
use rollout_domain::RunId;
use rollout_store::ScheduleRecord;
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
    let version = checks::serving_version(
        &state.store,
        &schedule.project_id,
        &spec.env_name,
        schedule.pinned_version,
    )
    .await;
    let run_id = RunId::generate();
    let run = match version {
        Ok(version) => {
            spec.env_version = version.version;
            Some((&run_id, &spec))
        }
        Err(error) => {
            tracing::warn!(schedule = %schedule.id, error = %error.message, "schedule tick skipped: its environment is not usable");
            None
        }
    };
    if let Some(run) = state.store.fire_schedule(schedule, tick, next, run).await? {
        tracing::info!(schedule = %schedule.id, run = %run.id, "schedule fired");
        state.notifier.run_queued();
    }
    Ok(())
}
