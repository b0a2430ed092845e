//! `rollout worker`: a process that only claims and executes runs, with no HTTP API. Run
//! any number of them beside `rollout serve` processes on one PostgreSQL database to scale
//! execution apart from the API.

use crate::config::{Settings, WorkerArgs};
use crate::serve::{open_store, redact_url, say, wait_for_signal};
use anyhow::bail;
use rollout_models::ModelCatalog;
use rollout_store::Backend;
use rollout_worker::{ReplicaManager, RunNotifier, Worker};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Executes runs until SIGINT or SIGTERM, then lets runs in flight finish within the grace
/// period and releases the others to the queue.
pub(crate) async fn run(args: WorkerArgs) -> anyhow::Result<()> {
    let settings = Settings::resolve(args.into())?;
    crate::logging::init(&settings.log, settings.log_format);
    let _ = rustls::crypto::ring::default_provider().install_default();
    if settings.max_concurrent_runs == 0 {
        bail!("a worker with --max-concurrent-runs 0 would execute nothing");
    }
    let store = open_store(&settings).await?;
    if store.backend() == Backend::Sqlite {
        tracing::warn!(
            "rollout worker on SQLite: it shares the database file with the server on this \
             machine; use PostgreSQL to run workers on other machines"
        );
    }
    let sandbox = crate::sandbox_config::sandbox(&settings).await?;
    let replicas = ReplicaManager::new();
    let catalog = Arc::new(ModelCatalog::new(settings.catalog.clone()));
    let notifier = Arc::new(RunNotifier::default());
    let shutdown = CancellationToken::new();
    // Spans are exported from here too; the metrics of a worker-only process have no
    // endpoint (the queue gauges of any server's /metrics cover it).
    let telemetry = crate::serve::telemetry(&settings)?;
    let worker = Worker::new(
        store.clone(),
        catalog,
        notifier,
        settings
            .worker_config(&sandbox, Some(&replicas), settings.callback_config())
            .with_telemetry(telemetry.clone()),
    );
    let worker = tokio::spawn(worker.run(shutdown.clone()));
    say(&format!(
        "rollout worker started: {} runs at once (database: {})",
        settings.max_concurrent_runs,
        redact_url(&settings.database_url)
    ));
    wait_for_signal().await;
    tracing::info!("shutting down");
    shutdown.cancel();
    let _ = worker.await;
    telemetry.shutdown(std::time::Duration::from_secs(5)).await;
    store.close().await;
    Ok(())
}
