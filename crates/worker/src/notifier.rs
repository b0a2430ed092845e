//! In-process notifications: new runs wake idle workers at once, appended events wake the
//! event streams following them, and finished runs wake API requests waiting for them. On
//! PostgreSQL, [`follow_store`] also relays what other processes write (LISTEN/NOTIFY);
//! otherwise other processes are reached by polling the store.

use rollout_domain::{RunId, RunStatus};
use rollout_store::{Store, StoreNotification};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, broadcast};
use tokio_util::sync::CancellationToken;

/// A run reached a terminal status.
#[derive(Debug, Clone, PartialEq)]
pub struct RunUpdate {
    pub run_id: RunId,
    pub status: RunStatus,
}

/// Shared between the server (which queues runs and waits for them) and the worker.
#[derive(Debug)]
pub struct RunNotifier {
    queued: Notify,
    finished: broadcast::Sender<RunUpdate>,
    cancel: broadcast::Sender<RunId>,
    appended: broadcast::Sender<RunId>,
}

impl Default for RunNotifier {
    fn default() -> Self {
        Self {
            queued: Notify::new(),
            finished: broadcast::channel(1024).0,
            cancel: broadcast::channel(256).0,
            appended: broadcast::channel(1024).0,
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

    /// Announces that a run finished.
    pub fn run_finished(&self, run_id: RunId, status: RunStatus) {
        // No receiver is fine: nobody is waiting for this run.
        let _ = self.finished.send(RunUpdate { run_id, status });
    }

    /// Subscribes to finished runs; subscribe before checking the store to avoid a race.
    pub fn subscribe(&self) -> broadcast::Receiver<RunUpdate> {
        self.finished.subscribe()
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

/// Waits on `finished` (from [`RunNotifier::subscribe`]) until `run_id` finishes in this
/// process. Returns early when notifications were missed (check the store then), and never
/// when the notifier is gone (callers also poll the store, for runs of other processes).
pub async fn finished_here(finished: &mut broadcast::Receiver<RunUpdate>, run_id: &RunId) {
    loop {
        match finished.recv().await {
            Ok(update) if &update.run_id == run_id => return,
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(_)) => return,
            Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
        }
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
