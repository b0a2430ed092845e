//! Cancellation of a running run: the API flags the run in the store and, in the same
//! process, also notifies the worker at once; workers of other processes see the flag by
//! polling. The worker then drops the run's future (stopping the model call in flight and
//! killing the environment's process group) and only afterwards writes `cancelled`.

use crate::notifier::RunNotifier;
use crate::sink::StoreSink;
use rollout_domain::{RunId, RunStatus};
use rollout_store::{FinishRun, Store};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

/// Cancels `token` once cancellation of `run_id` is requested, seen either through this
/// process's notifier or by polling the store every `poll`. Runs until aborted.
pub(crate) async fn watch_cancel(
    store: Store,
    notifier: Arc<RunNotifier>,
    run_id: RunId,
    poll: Duration,
    token: CancellationToken,
) {
    let mut requests = notifier.subscribe_cancel();
    loop {
        match store.is_cancel_requested(&run_id).await {
            Ok(true) => {
                tracing::info!(run = %run_id, "cancellation requested; stopping the run");
                token.cancel();
                return;
            }
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(run = %run_id, %error, "could not read the cancellation flag")
            }
        }
        let notified = async {
            loop {
                match requests.recv().await {
                    Ok(id) if id == run_id => return,
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
    }
}

/// The terminal state of a cancelled run, with the steps and tokens used until then.
pub(crate) fn cancelled_finish(sink: &StoreSink) -> FinishRun {
    let (steps, usage) = sink.totals();
    FinishRun {
        status: RunStatus::Cancelled,
        outcome: None,
        reward: None,
        evaluation: None,
        final_response: None,
        steps,
        usage,
        error: Some("cancelled by request".into()),
    }
}
