//! In-process notifications: new runs wake idle workers at once, appended events wake the
//! event streams following them, and finished runs wake API requests waiting for them. On
//! PostgreSQL, [`follow_store`] also relays what other processes write (LISTEN/NOTIFY);
//! otherwise other processes are reached by polling the store.

use rollout_domain::{RunId, RunStatus};
use rollout_store::{RunRecord, Store, StoreNotification};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{Notify, broadcast, watch};
use tokio_util::sync::CancellationToken;

/// Shared between the server (which queues runs and waits for them) and the worker.
#[derive(Debug)]
pub struct RunNotifier {
    queued: Notify,
    finished: Arc<FinishWaiters>,
    cancel: broadcast::Sender<RunId>,
    appended: broadcast::Sender<RunId>,
}

impl Default for RunNotifier {
    fn default() -> Self {
        Self {
            queued: Notify::new(),
            finished: Arc::default(),
            cancel: broadcast::channel(256).0,
            appended: broadcast::channel(1024).0,
        }
    }
}

/// The runs someone waits for, each with its own flag: a finished run wakes its own waiters
/// only (a channel shared by every waiter woke all of them, a `sync` request per run in
/// flight, at every run's end).
#[derive(Debug, Default)]
struct FinishWaiters(Mutex<HashMap<RunId, watch::Sender<Ended>>>);

/// Where a watched run stands, as this process heard of it.
#[derive(Debug, Clone, Default)]
enum Ended {
    #[default]
    Not,
    /// It ended; read it from the store.
    Heard,
    /// It ended as this record (its finisher knew the row it wrote).
    As(Arc<RunRecord>),
}

impl FinishWaiters {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<RunId, watch::Sender<Ended>>> {
        // The map stays consistent whatever a panicking holder did: each step is one call.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Waits for one run to finish in this process, from [`RunNotifier::watch_finished`].
/// Made before the run can finish (before queueing or cancelling it), it cannot miss the end.
#[derive(Debug)]
pub struct FinishWatch {
    run_id: RunId,
    done: watch::Receiver<Ended>,
    waiters: Arc<FinishWaiters>,
}

impl FinishWatch {
    /// Returns once the run finished in this process (at once if it already has), with the
    /// run as it ended when whoever ended it knew (a `sync` request then answers without
    /// reading it again). Never returns for a run executed elsewhere: callers also poll the
    /// store.
    pub async fn finished(&mut self) -> Option<Arc<RunRecord>> {
        // The value is taken out of the channel's guard before anything else is awaited.
        let ended = self
            .done
            .wait_for(|ended| !matches!(ended, Ended::Not))
            .await
            .map(|ended| ended.clone());
        match ended {
            Ok(Ended::As(record)) => Some(record),
            Ok(Ended::Not | Ended::Heard) => None,
            Err(_) => std::future::pending().await,
        }
    }
}

impl Drop for FinishWatch {
    fn drop(&mut self) {
        let mut waiters = self.waiters.lock();
        // The last watch of a run takes its entry away (this one still counts).
        if waiters
            .get(&self.run_id)
            .is_some_and(|sender| sender.receiver_count() <= 1)
        {
            waiters.remove(&self.run_id);
        }
    }
}

impl RunNotifier {
    /// Tells an idle worker that a run was queued.
    pub fn run_queued(&self) {
        self.queued.notify_one();
    }

    /// Waits until a run is queued (or a spurious wake-up).
    pub async fn wait_queued(&self) {
        self.queued.notified().await;
    }

    /// Announces that a run finished (with `status`, kept for the log): wakes whoever
    /// watches this run.
    pub fn run_finished(&self, run_id: RunId, status: RunStatus) {
        tracing::trace!(run = %run_id, %status, "run finished");
        if let Some(sender) = self.finished.lock().get(&run_id) {
            // The record, when its finisher gave it, stays: on PostgreSQL the store's own
            // notification of the same end comes after it.
            sender.send_if_modified(|ended| {
                let first = matches!(ended, Ended::Not);
                if first {
                    *ended = Ended::Heard;
                }
                first
            });
        }
    }

    /// Announces that a run ended as `record` (terminal, as stored): its watchers get it.
    pub fn run_ended(&self, record: Arc<RunRecord>) {
        tracing::trace!(run = %record.id, status = %record.status, "run finished");
        if let Some(sender) = self.finished.lock().get(&record.id) {
            sender.send_replace(Ended::As(record));
        }
    }

    /// Watches a run's end; make it before checking the store to avoid a race.
    pub fn watch_finished(&self, run_id: &RunId) -> FinishWatch {
        let done = self
            .finished
            .lock()
            .entry(run_id.clone())
            .or_insert_with(|| watch::channel(Ended::Not).0)
            .subscribe();
        FinishWatch {
            run_id: run_id.clone(),
            done,
            waiters: self.finished.clone(),
        }
    }

    /// Announces that an event was appended to a run's trace.
    pub fn event_appended(&self, run_id: RunId) {
        let _ = self.appended.send(run_id);
    }

    /// Subscribes to appended events; subscribe before reading the store to avoid a race.
    pub fn subscribe_events(&self) -> broadcast::Receiver<RunId> {
        self.appended.subscribe()
    }

    /// Tells this process's worker that cancellation of a run was requested (already
    /// flagged in the store, which workers of other processes poll).
    pub fn cancel_requested(&self, run_id: RunId) {
        let _ = self.cancel.send(run_id);
    }

    /// Subscribes to cancellation requests made in this process.
    pub fn subscribe_cancel(&self) -> broadcast::Receiver<RunId> {
        self.cancel.subscribe()
    }
}

/// Waits on `appended` (from [`RunNotifier::subscribe_events`]) until an event of `run_id`
/// is announced. Returns early when notifications were missed (read the store then), and
/// never when the notifier is gone.
pub async fn appended_to(appended: &mut broadcast::Receiver<RunId>, run_id: &RunId) {
    loop {
        match appended.recv().await {
            Ok(id) if &id == run_id => return,
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(_)) => return,
            Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
        }
    }
}

/// Relays what every process writes to the database (PostgreSQL's LISTEN/NOTIFY) to this
/// process's notifier until `shutdown`: streams and `sync` requests here then follow runs
/// executed elsewhere at once. Returns at once on SQLite. A lost subscription is made again.
pub async fn follow_store(store: Store, notifier: Arc<RunNotifier>, shutdown: CancellationToken) {
    const RETRY: Duration = Duration::from_secs(1);
    loop {
        let mut notifications = match store.listen().await {
            Ok(Some(notifications)) => notifications,
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(%error, "could not listen for other processes' writes; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(RETRY) => continue,
                }
            }
        };
        loop {
            let received = tokio::select! {
                () = shutdown.cancelled() => return,
                received = notifications.recv() => received,
            };
            match received {
                Ok(StoreNotification::EventAppended(run_id)) => notifier.event_appended(run_id),
                Ok(StoreNotification::RunFinished(run_id, status)) => {
                    notifier.run_finished(run_id, status)
                }
                Err(error) => {
                    tracing::warn!(%error, "lost the notifications of other processes; listening again");
                    tokio::time::sleep(RETRY).await;
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A finished run wakes its own watches, at once even when it finished before the wait,
    /// and no other run's; the last watch of a run takes its entry away.
    #[tokio::test]
    async fn a_finished_run_wakes_only_its_own_watches() {
        let notifier = RunNotifier::default();
        let (one, two) = (RunId("run-1".into()), RunId("run-2".into()));
        let mut first = notifier.watch_finished(&one);
        let mut second = notifier.watch_finished(&one);
        let mut other = notifier.watch_finished(&two);
        notifier.run_finished(one.clone(), RunStatus::Completed);
        first.finished().await;
        second.finished().await;
        let unwoken = tokio::time::timeout(Duration::from_millis(50), other.finished()).await;
        assert!(unwoken.is_err(), "another run's end woke this watch");
        drop((first, second));
        assert!(!notifier.finished.lock().contains_key(&one));
        assert!(notifier.finished.lock().contains_key(&two));
        drop(other);
        assert!(notifier.finished.lock().is_empty());
    }

    /// A run ended with its record hands it to its watches, and the store's notification of
    /// the same end (PostgreSQL's, relayed after it) does not take it away.
    #[tokio::test]
    async fn a_run_ended_with_its_record_hands_it_to_its_watches() {
        let notifier = RunNotifier::default();
        let record = Arc::new(ended_run("run-1"));
        let mut watch = notifier.watch_finished(&record.id);
        notifier.run_ended(record.clone());
        notifier.run_finished(record.id.clone(), RunStatus::Completed);
        assert_eq!(watch.finished().await, Some(record));
        let mut heard = notifier.watch_finished(&RunId("run-2".into()));
        notifier.run_finished(RunId("run-2".into()), RunStatus::Failed);
        assert_eq!(heard.finished().await, None);
    }

    fn ended_run(id: &str) -> RunRecord {
        let spec = serde_json::json!({
            "env_name": "env", "env_version": 1, "scenario_name": "scenario", "model": "model",
            "max_steps": 2, "agent_timeout_seconds": 60, "grading_timeout_seconds": 60,
        });
        RunRecord {
            id: RunId(id.into()),
            project_id: "default".into(),
            spec: serde_json::from_value(spec).unwrap_or_else(|e| panic!("a spec: {e}")),
            status: RunStatus::Completed,
            outcome: Some("answered".into()),
            reward: Some(1.0),
            evaluation: None,
            final_response: Some("391".into()),
            error: None,
            steps: 2,
            usage: Default::default(),
            attempts: 1,
            created_at_ms: 1,
            started_at_ms: Some(2),
            finished_at_ms: Some(3),
        }
    }
}
