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
//! Schedules are isolated from each other's errors: one whose cron, time zone or stored run
//! no longer parses is marked with its error and taken off the due list; one whose tick
//! fails to fire is marked and tried again at the next poll. The others keep firing.

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
    for due in state.store.due_schedules(now, BATCH).await? {
        let (id, error, stop) = match due {
            Ok(schedule) => match unparsable(&schedule) {
                Some(error) => (schedule.id, error, true),
                None => match fire(state, &schedule, now).await {
                    Ok(()) => continue,
                    Err(error) => (schedule.id, error.to_string(), false),
                },
            },
            Err(broken) => (broken.id, broken.error.to_string(), true),
        };
        tracing::warn!(schedule = %id, %error, stopped = stop, "a schedule could not fire; the others go on");
        if let Err(error) = state.store.mark_schedule_error(&id, &error, stop).await {
            tracing::warn!(schedule = %id, %error, "could not record a schedule's error");
        }
    }
    Ok(())
}

/// Why a stored schedule can no longer fire at all: its cron or time zone does not parse.
fn unparsable(schedule: &ScheduleRecord) -> Option<String> {
    if let Err(error) = crate::cron::Cron::parse(&schedule.cron) {
        return Some(format!(
            "the cron expression '{}' no longer parses: {error}",
            schedule.cron
        ));
    }
    crate::cron::parse_zone(&schedule.timezone)
        .err()
        .map(|error| {
            format!(
                "the time zone '{}' no longer parses: {error}",
                schedule.timezone
            )
        })
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
    let fired = state
        .store
        .fire_schedule(schedule, tick, next, action)
        .await?;
    let metrics = state.config.telemetry.metrics();
    if let Some(run) = fired {
        tracing::info!(schedule = %schedule.id, run = %run.id, "schedule fired");
        state.notifier.run_queued();
        metrics.schedule_tick("fired");
        metrics.schedule_ticks("missed", missed_ticks(schedule, tick, now));
    } else if refusal.is_some() {
        metrics.schedule_tick("skipped");
    }
    Ok(())
}

/// The ticks of `schedule` after `tick` and up to `now` that are coalesced into the one
/// fired late (see the module doc), for the `missed` count; at most a thousand are counted.
fn missed_ticks(schedule: &ScheduleRecord, tick: i64, now: i64) -> u64 {
    let mut missed = 0;
    let mut at = tick;
    while missed < 1000 {
        match next_tick(&schedule.cron, &schedule.timezone, at) {
            Some(next) if next <= now => {
                missed += 1;
                at = next;
            }
            _ => break,
        }
    }
    missed
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
        None,
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

#[cfg(test)]
mod tests {
    use super::*;
    use rollout_models::{CatalogConfig, ModelCatalog};
    use rollout_store::{NewSchedule, Store};
    use std::sync::Arc;

    fn schedule(cron: &str, timezone: &str, due_ms: i64) -> NewSchedule {
        let spec = serde_json::from_value(serde_json::json!({
            "env_name": "my-assistant",
            "env_version": 1,
            "scenario_name": "answer_question",
            "scenario_args": {"query": "What is 2 + 2?"},
            "model": "replay",
            "max_steps": 10,
            "agent_timeout_seconds": 60,
            "grading_timeout_seconds": 60
        }))
        .unwrap();
        NewSchedule {
            project_id: "p".into(),
            name: cron.into(),
            cron: cron.into(),
            timezone: timezone.into(),
            spec,
            pinned_version: None,
            next_run_at_ms: Some(due_ms),
        }
    }

    #[tokio::test]
    async fn a_schedule_that_no_longer_parses_is_marked_and_the_others_keep_firing() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
        let store = Store::connect(&url).await.unwrap();
        store.ensure_project("p", "Project").await.unwrap();
        let state = AppState {
            store: store.clone(),
            catalog: Arc::new(ModelCatalog::new(CatalogConfig::default())),
            notifier: Arc::default(),
            config: Arc::default(),
            shutdown: Default::default(),
        };
        let due = Utc::now().timestamp_millis() - 1_000;
        // Stored before a stricter parser (or by hand): they cannot fire any more.
        let bad_cron = store
            .insert_schedule("a", &schedule("every day at noon", "UTC", due))
            .await
            .unwrap();
        let bad_zone = store
            .insert_schedule("b", &schedule("0 * * * *", "Mars/Olympus", due))
            .await
            .unwrap();
        let good = store
            .insert_schedule("c", &schedule("0 * * * *", "Europe/Paris", due))
            .await
            .unwrap();

        fire_due(&state).await.unwrap();

        let good = store.get_schedule("p", &good.id).await.unwrap().unwrap();
        assert_eq!(good.last_run_at_ms, Some(due), "the good schedule fired");
        assert!(good.next_run_at_ms.unwrap() > due);
        assert_eq!(good.last_error, None);
        for broken in [bad_cron, bad_zone] {
            let broken = store.get_schedule("p", &broken.id).await.unwrap().unwrap();
            let error = broken.last_error.unwrap();
            assert!(error.contains("no longer parses"), "{error}");
            assert_eq!((broken.last_run_at_ms, broken.next_run_at_ms), (None, None));
        }
        // Off the due list: the next poll has nothing left to do.
        assert!(store.due_schedules(due + 1, 10).await.unwrap().is_empty());
    }
}
