//! The end of a held run, written in one place: the worker's executions and the MCP gateway's
//! recorder (`rollout-server`) both finish the runs whose lease they hold through
//! [`RunFinisher::finish`], so that a run ends the same way whoever played it: the terminal
//! row and its `finished` event (one transaction, fenced by the lease), then its telemetry,
//! the wake-up of `sync` requests and event streams, and its callback.

use crate::callback::{CallbackConfig, CallbackDeliverer};
use crate::notifier::RunNotifier;
use rollout_domain::RunId;
use rollout_store::{FinishRun, Lease, RunRecord, Store};
use rollout_telemetry::{RunEnd, RunObserver};
use std::sync::Arc;

/// Writes the terminal state of runs and announces it.
#[derive(Clone)]
pub struct RunFinisher {
    store: Store,
    notifier: Arc<RunNotifier>,
    callbacks: CallbackConfig,
}

/// A run being finished by the claim that holds it.
pub struct HeldRun<'a> {
    /// The run's project (its callback is read in it).
    pub project_id: &'a str,
    /// The claim: the end is written only while its token still holds.
    pub lease: &'a Lease,
    /// Who holds the claim (a worker's id, or `gateway`), for the log.
    pub owner: &'a str,
    /// Whether the run asked for a callback (`RunSpec::callback`).
    pub callback: bool,
    /// The run's metrics and spans, ended with it.
    pub observer: &'a RunObserver,
    /// The run as its claim returned it, when the holder has it: the finish then hands the
    /// ended run to whoever waits for it in this process, who need not read it again.
    pub claimed: Option<&'a RunRecord>,
}

impl RunFinisher {
    /// Finishes runs in `store`, waking this process through `notifier` and delivering
    /// callbacks with `callbacks`.
    pub fn new(store: Store, notifier: Arc<RunNotifier>, callbacks: CallbackConfig) -> Self {
        Self {
            store,
            notifier,
            callbacks,
        }
    }

    /// Writes `finish` for `run` and, once written, ends its telemetry, wakes whoever waits
    /// for it and delivers its callback in the background. Returns whether it was written:
    /// not when the claim was taken over (another holder owns the result) or the store
    /// failed (the lease's expiry then recovers the run).
    pub async fn finish(&self, run: HeldRun<'_>, finish: &FinishRun) -> bool {
        let run_id = &run.lease.run_id;
        let status = finish.status;
        // `Some(record)`: written, and the run as it ended when the holder had its claim's.
        let written = match run.claimed {
            Some(claimed) => self
                .store
                .finish_claimed_run(claimed, run.lease, finish)
                .await
                .map(|ended| ended.map(|record| Some(Arc::new(record)))),
            None => self
                .store
                .finish_run(run.lease, finish)
                .await
                .map(|written| written.then_some(None)),
        };
        match written {
            Ok(Some(ended)) => {
                tracing::info!(run = %run_id, owner = run.owner, status = %status, reward = ?finish.reward, "run finished");
                run.observer.finish(&RunEnd {
                    status,
                    outcome: finish.outcome.clone(),
                    reward: finish.reward,
                    evaluation: finish.evaluation.clone(),
                    error: finish.error.clone(),
                    steps: finish.steps,
                    usage: finish.usage,
                    ended_at_ms: rollout_domain::time::now_ms(),
                });
                match &ended {
                    Some(record) => self.notifier.run_ended(record.clone()),
                    None => self.notifier.run_finished(run_id.clone(), status),
                }
                if run.callback {
                    self.spawn_callback(run.project_id, run_id, ended);
                }
                true
            }
            Ok(None) => {
                tracing::warn!(run = %run_id, owner = run.owner, "run was taken over by another claim; result dropped");
                false
            }
            Err(error) => {
                tracing::error!(run = %run_id, owner = run.owner, %error, "could not store the end of a run; it will be recovered when its lease expires");
                false
            }
        }
    }

    /// Delivers a finished run's callback in the background: it never delays the caller.
    /// `ended` is the run as it ended, when known (else it is read first).
    pub(crate) fn spawn_callback(
        &self,
        project_id: &str,
        run_id: &RunId,
        ended: Option<Arc<RunRecord>>,
    ) {
        let store = self.store.clone();
        let deliverer = CallbackDeliverer::new(store.clone(), self.callbacks.clone());
        let (project_id, run_id) = (project_id.to_string(), run_id.to_string());
        tokio::spawn(async move {
            let run = match ended {
                Some(record) => record,
                None => match store.get_run(&project_id, &run_id).await {
                    Ok(Some(run)) => Arc::new(run),
                    Ok(None) => return,
                    Err(error) => {
                        tracing::warn!(run = %run_id, %error, "could not read a run to deliver its callback");
                        return;
                    }
                },
            };
            deliverer.deliver(&run, "auto").await;
        });
    }
}
