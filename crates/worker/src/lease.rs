//! Keeping a claim alive while its run executes. The heartbeat is a future polled beside
//! the execution (not a task of its own), so that it ends with the execution however that
//! ends, panics included.

use crate::config::WorkerConfig;
use rollout_store::{Lease, Store};
use tokio::time::Instant;

/// Renews `lease` every `config.heartbeat`; returns once the claim is lost: refused by the
/// store (recovered, perhaps claimed again by another execution), or not renewed for a
/// whole lease (the store unreachable, or this process stopped for longer than the lease).
/// Either way another execution may own the run: the caller must drop this one.
pub(crate) async fn hold(store: &Store, lease: &Lease, config: &WorkerConfig) {
    let mut renewed = Instant::now();
    loop {
        tokio::time::sleep(config.heartbeat).await;
        let result = if crate::failpoints::heartbeat_fails(lease.attempt) {
            Err("failpoint worker::heartbeat".to_string())
        } else {
            store
                .heartbeat(lease, config.lease)
                .await
                .map_err(|error| error.to_string())
        };
        match result {
            Ok(true) => renewed = Instant::now(),
            Ok(false) => {
                tracing::warn!(run = %lease.run_id, attempt = lease.attempt, "lease lost; abandoning the run");
                return;
            }
            Err(error) if renewed.elapsed() >= config.lease => {
                tracing::warn!(run = %lease.run_id, attempt = lease.attempt, %error, "lease not renewed for a whole lease; abandoning the run");
                return;
            }
            // A passing store error: try again on the next beat, the lease has slack.
            Err(error) => tracing::warn!(run = %lease.run_id, %error, "heartbeat failed"),
        }
    }
}
