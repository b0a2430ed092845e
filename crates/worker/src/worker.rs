//! The worker loop: claim, execute with a heartbeat, finish; recover lost runs; shut
//! down without losing a run.

use crate::config::WorkerConfig;
use crate::execute::Executor;
use crate::notifier::RunNotifier;
use crate::pool::WarmPool;
use crate::replicas::ReplicaManager;
use crate::sink::StoreSink;
use rollout_domain::{EventKind, EventSink, RunStatus};
use rollout_models::ModelCatalog;
use rollout_store::{ClaimedRun, Store};
use std::sync::Arc;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Executes queued runs until shut down.
#[derive(Clone)]
pub struct Worker {
    store: Store,
    catalog: Arc<ModelCatalog>,
    notifier: Arc<RunNotifier>,
    config: Arc<WorkerConfig>,
    pool: WarmPool,
    replicas: ReplicaManager,
}

impl Worker {
    /// A worker over this store and model catalog.
    pub fn new(
        store: Store,
        catalog: Arc<ModelCatalog>,
        notifier: Arc<RunNotifier>,
        config: WorkerConfig,
    ) -> Self {
        let pool = WarmPool::new(config.warm_pool_size);
        let replicas = config.replicas.clone().unwrap_or_default();
        Self {
            store,
            catalog,
            notifier,
            config: Arc::new(config),
            pool,
            replicas,
        }
    }

    /// Claims and executes runs until `shutdown` is cancelled. In-flight runs then get
    /// `shutdown_grace` to finish; the rest are released back to the queue and their
    /// environments killed.
    pub async fn run(self, shutdown: CancellationToken) {
        let slots = Arc::new(Semaphore::new(self.config.max_concurrent_runs.max(1)));
        let stop_runs = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let recovery = tokio::spawn(self.clone().recover_lost_runs(shutdown.clone()));
        tracing::info!(worker = %self.config.worker_id, slots = self.config.max_concurrent_runs, "worker started");
        loop {
            let permit = tokio::select! {
                _ = shutdown.cancelled() => break,
                permit = slots.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
            };
            match self
                .store
                .claim_next_run(&self.config.worker_id, self.config.lease)
                .await
            {
                Ok(Some(claimed)) => {
                    let worker = self.clone();
                    let stop = stop_runs.child_token();
                    tasks.spawn(async move {
                        worker.execute_claimed(claimed, stop).await;
                        drop(permit);
                    });
                    continue;
                }
                Ok(None) => drop(permit),
                Err(error) => {
                    drop(permit);
                    tracing::error!(%error, "could not claim a run; retrying");
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.notifier.wait_queued() => {}
                _ = tokio::time::sleep(self.config.poll_interval) => {}
            }
            // Reap finished tasks so the set does not grow without bound.
            while tasks.try_join_next().is_some() {}
        }
        tracing::info!("worker stopping; waiting for in-flight runs");
        let grace = tokio::time::sleep(self.config.shutdown_grace);
        tokio::pin!(grace);
        while !tasks.is_empty() {
            tokio::select! {
                _ = &mut grace => {
                    stop_runs.cancel();
                    break;
                }
                _ = tasks.join_next() => {}
            }
        }
        while tasks.join_next().await.is_some() {}
        let _ = recovery.await;
        self.pool.clear();
        self.replicas.shutdown();
        tracing::info!("worker stopped");
    }

    /// Executes one claimed run, renewing its lease, and writes its terminal state.
    async fn execute_claimed(&self, claimed: ClaimedRun, stop: CancellationToken) {
        let run = claimed.run;
        let run_id = run.id.clone();
        let worker_id = self.config.worker_id.clone();
        let sink = StoreSink::new(
            self.store.clone(),
            run_id.clone(),
            claimed.attempt,
            worker_id.clone(),
        )
        .with_token_budget(run.spec.max_total_tokens)
        .with_cost_budget(
            run.spec.max_cost_usd,
            self.catalog.price(&run.project_id, &run.spec.model),
        );
        tracing::info!(run = %run_id, attempt = claimed.attempt, env = %run.spec.env_name, model = %run.spec.model, "run started");
        let started = EventKind::AttemptStarted {
            attempt: claimed.attempt,
            worker: worker_id.clone(),
        };
        if let Err(error) = sink.record(started).await {
            tracing::error!(run = %run_id, %error, "could not record the start of a run");
        }
        let lease_lost = CancellationToken::new();
        let heartbeat = tokio::spawn(heartbeat(
            self.store.clone(),
            run_id.clone(),
            worker_id.clone(),
            self.config.clone(),
            lease_lost.clone(),
        ));
        let cancel = CancellationToken::new();
        let cancel_watch = tokio::spawn(crate::cancel::watch_cancel(
            self.store.clone(),
            self.notifier.clone(),
            run_id.clone(),
            self.config.cancel_poll,
            cancel.clone(),
        ));
        let executor = Executor {
            store: &self.store,
            catalog: &self.catalog,
            config: &self.config,
            pool: &self.pool,
            replicas: &self.replicas,
        };
        let mut cancelled = false;
        let finish = tokio::select! {
            finish = executor.execute(&run, &sink) => Some(finish),
            _ = lease_lost.cancelled() => None,
            // The run's future (model call in flight, environment session) is dropped here,
            // which kills the environment's process group, before `cancelled` is written.
            _ = cancel.cancelled() => {
                cancelled = true;
                None
            }
            _ = stop.cancelled() => {
                // Shutting down: the environment session was dropped with the future above.
                let message = "server shutting down; run released back to the queue";
                let _ = sink.record(EventKind::Error { phase: "shutdown".into(), message: message.into() }).await;
                match self.store.release_run(&run_id, &worker_id).await {
                    Ok(_) => tracing::info!(run = %run_id, "run released for another worker"),
                    Err(error) => tracing::error!(run = %run_id, %error, "could not release a run; it will be recovered when its lease expires"),
                }
                None
            }
        };
        heartbeat.abort();
        cancel_watch.abort();
        let finish = if cancelled {
            Some(crate::cancel::cancelled_finish(&sink))
        } else {
            finish
        };
        let Some(finish) = finish else {
            return;
        };
        let status = finish.status;
        let ended = EventKind::Finished {
            status: status.as_str().into(),
            error: finish.error.clone(),
        };
        if let Err(error) = sink.record(ended).await {
            tracing::error!(run = %run_id, %error, "could not record the end of a run");
        }
        match self.store.finish_run(&run_id, &worker_id, &finish).await {
            Ok(true) => {
                tracing::info!(run = %run_id, status = %status, reward = ?finish.reward, "run finished");
                self.notifier.run_finished(run_id.clone(), status);
                if run.spec.callback.is_some() {
                    self.spawn_callback(&run.project_id, &run_id);
                }
            }
            Ok(false) => {
                tracing::warn!(run = %run_id, "run was taken over by another worker; result dropped")
            }
            Err(error) => {
                tracing::error!(run = %run_id, %error, "could not store the end of a run; it will be recovered when its lease expires")
            }
        }
    }

    /// Delivers a finished run's callback in the background: it never delays the worker.
    fn spawn_callback(&self, project_id: &str, run_id: &rollout_domain::RunId) {
        let store = self.store.clone();
        let deliverer = crate::CallbackDeliverer::new(store.clone(), self.config.callbacks.clone());
        let (project_id, run_id) = (project_id.to_string(), run_id.to_string());
        tokio::spawn(async move {
            match store.get_run(&project_id, &run_id).await {
                Ok(Some(run)) => {
                    deliverer.deliver(&run, "auto").await;
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(run = %run_id, %error, "could not read a run to deliver its callback")
                }
            }
        });
    }

    /// Periodically re-queues (or fails) runs whose worker stopped renewing its lease.
    async fn recover_lost_runs(self, shutdown: CancellationToken) {
        let every = (self.config.lease / 2).max(std::time::Duration::from_millis(100));
        loop {
            match self
                .store
                .recover_expired_leases(self.config.max_attempts)
                .await
            {
                Ok(recovered) => {
                    for (run_id, status) in recovered {
                        tracing::warn!(run = %run_id, status = %status, "recovered a run whose worker was lost");
                        match status {
                            RunStatus::Queued => self.notifier.run_queued(),
                            other => {
                                self.notifier.run_finished(run_id.clone(), other);
                                // A run failed for good still gets its callback.
                                if let Ok(Some(project_id)) =
                                    self.store.run_project(run_id.as_str()).await
                                {
                                    self.spawn_callback(&project_id, &run_id);
                                }
                            }
                        }
                    }
                }
                Err(error) => tracing::error!(%error, "could not recover lost runs"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
        }
    }
}

/// Renews the lease of a run until aborted; cancels `lost` if the lease was taken away.
async fn heartbeat(
    store: Store,
    run_id: rollout_domain::RunId,
    worker_id: String,
    config: Arc<WorkerConfig>,
    lost: CancellationToken,
) {
    loop {
        tokio::time::sleep(config.heartbeat).await;
        match store.heartbeat(&run_id, &worker_id, config.lease).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(run = %run_id, "lease lost; abandoning the run");
                lost.cancel();
                return;
            }
            // A passing store error: try again on the next beat, the lease has slack.
            Err(error) => tracing::warn!(run = %run_id, %error, "heartbeat failed"),
        }
    }
}
