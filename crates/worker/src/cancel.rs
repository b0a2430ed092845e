//! Cancellation of a running run: the API flags the run in the store and, in the same
//! process, also notifies the worker at once; workers of other processes see the flag by
//! polling. The worker then drops the run's future (stopping the model call in flight and
//! killing the environment's process group) and only afterwards writes `cancelled`. The
//! watch is a future polled beside the execution, so it ends with it.

use crate::notifier::RunNotifier;
use crate::sink::StoreSink;
use rollout_domain::{RunId, RunStatus};
use rollout_store::{FinishRun, Store};
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

/// Returns once cancellation of `run_id` is requested, seen either through this process's
/// notifier or by polling the store every `poll`.
pub(crate) async fn requested(
    store: &Store,
    notifier: &RunNotifier,
    run_id: &RunId,
    poll: Duration,
) {
    let mut requests = notifier.subscribe_cancel();
    // The flag is read after the first wait, not before: a claim takes only queued runs, and
    // a queued run's cancel ends it at once, so a run flagged before its claim is rare (one
    // recovered after its worker was lost) and waits at most one `poll`. A read per run saved.
    loop {
        let notified = async {
            loop {
                match requests.recv().await {
                    Ok(id) if &id == run_id => return,
                    Ok(_) => {}
                    Err(RecvError::Lagged(_)) => return,
                    Err(RecvError::Closed) => std::future::pending::<()>().await,
                }
            }
        };
        tokio::select! {
            _ = notified => {}
            _ = tokio::time::sleep(poll) => {}
        }
        match store.is_cancel_requested(run_id).await {
            Ok(true) => {
                tracing::info!(run = %run_id, "cancellation requested; stopping the run");
                return;
            }
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(run = %run_id, %error, "could not read the cancellation flag")
            }
        }
    }
}

/// The terminal state of a cancelled run, with the steps and tokens used until then.
pub(crate) fn cancelled_finish(sink: &StoreSink) -> FinishRun {
    sink.ended_early(RunStatus::Cancelled, "cancelled by request")
}
