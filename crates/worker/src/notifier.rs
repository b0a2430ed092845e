//! In-process notifications: new runs wake idle workers at once, and finished runs wake
//! API requests waiting for them. Other processes are reached by polling the store.

use rollout_domain::{RunId, RunStatus};
use tokio::sync::{Notify, broadcast};

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
}

impl Default for RunNotifier {
    fn default() -> Self {
        Self {
            queued: Notify::new(),
            finished: broadcast::channel(1024).0,
            cancel: broadcast::channel(256).0,
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
