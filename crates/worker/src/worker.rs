//! The worker loop: claim, execute under the claim's lease, finish; recover lost runs;
//! shut down without losing a run.

use crate::config::WorkerConfig;
use crate::execute::Executor;
use crate::finish::{HeldRun, RunFinisher};
use crate::notifier::RunNotifier;
use crate::pool::WarmPool;
use crate::replicas::ReplicaManager;
use crate::sink::StoreSink;
use crate::versions::Versions;
use futures::FutureExt;
use rollout_domain::{EventKind, EventSink, RunStatus};
use rollout_models::ModelCatalog;
use rollout_store::{ClaimedRun, FinishRun, Store};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// How often expired idempotency keys are purged.
const PURGE_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

/// Executes queued runs until shut down.
#[derive(Clone)]
pub struct Worker {
    store: Store,
    catalog: Arc<ModelCatalog>,
    notifier: Arc<RunNotifier>,
    config: Arc<WorkerConfig>,
    pool: WarmPool,
    replicas: ReplicaManager,
    /// The environment versions of the runs executed so far.
    versions: Arc<Versions>,
    /// Writes the end of each run (shared with the MCP gateway's recorder).
    finisher: RunFinisher,
}

impl Worker {
    /// A worker over this store and model catalog.
    pub fn new(
        store: Store,
        catalog: Arc<ModelCatalog>,
        notifier: Arc<RunNotifier>,
        config: WorkerConfig,
    ) -> Self {
        let pool = WarmPool::new(config.warm_pool_size, config.connect_timeout);
        let replicas = config.replicas.clone().unwrap_or_default();
        let finisher = RunFinisher::new(store.clone(), notifier.clone(), config.callbacks.clone());
        Self {
            finisher,
            store,
            catalog,
            notifier,
            config: Arc::new(config),
            pool,
            replicas,
            versions: Arc::default(),
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
                    let more_queued = claimed.more_queued;
                    let worker = self.clone();
                    let stop = stop_runs.child_token();
                    tasks.spawn(async move {
                        worker.execute_claimed(claimed, stop).await;
                        drop(permit);
                    });
                    if more_queued {
                        continue;
                    }
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

    /// Executes one claimed run, holding its lease, and writes its terminal state. The
    /// heartbeat and the cancel watch are polled beside the execution, so they end with it
    /// (a panic included); a panic fails the run and nothing else.
    async fn execute_claimed(&self, claimed: ClaimedRun, stop: CancellationToken) {
        let observer = Arc::new(self.observe(&claimed));
        // Every log line of the run carries its trace id (and the OpenTelemetry one when
        // spans are exported).
        let span = tracing::info_span!(
            "run",
            trace_id = %claimed.run.id,
            otel_trace_id = tracing::field::Empty
        );
        if let Some(otel_trace_id) = observer.otel_trace_id() {
            span.record("otel_trace_id", otel_trace_id);
        }
        self.execute_observed(claimed, stop, observer)
            .instrument(span)
            .await;
    }

    /// The run's telemetry: its metrics, and its spans when they are exported.
    fn observe(&self, claimed: &ClaimedRun) -> rollout_telemetry::RunObserver {
        let run = &claimed.run;
        let provider = self
            .catalog
            .resolve(&run.project_id, &run.spec.model)
            .map_or_else(
                |_| "unknown".to_string(),
                |model| model.provider().to_string(),
            );
        self.config
            .telemetry
            .start_run(rollout_telemetry::RunStart {
                run_id: run.id.to_string(),
                project: run.project_id.clone(),
                environment: run.spec.env_name.clone(),
                env_version: run.spec.env_version,
                scenario: run.spec.scenario_name.clone(),
                arguments: run.spec.scenario_args.clone(),
                model: run.spec.model.clone(),
                provider,
                attempt: claimed.lease.attempt,
                created_at_ms: run.created_at_ms,
                claimed_at_ms: rollout_domain::time::now_ms(),
                traceparent: run.spec.traceparent.clone(),
            })
    }

    async fn execute_observed(
        &self,
        claimed: ClaimedRun,
        stop: CancellationToken,
        observer: Arc<rollout_telemetry::RunObserver>,
    ) {
        let ClaimedRun {
            run,
            lease,
            started,
            env_version_id,
            ..
        } = claimed;
        let run_id = run.id.clone();
        let sink = StoreSink::new(self.store.clone(), lease.clone(), self.notifier.clone())
            .with_observer(observer.clone())
            .with_token_budget(run.spec.max_total_tokens)
            .with_cost_budget(
                run.spec.max_cost_usd,
                self.catalog.price(&run.project_id, &run.spec.model),
            );
        tracing::info!(run = %run_id, attempt = lease.attempt, env = %run.spec.env_name, model = %run.spec.model, "run started");
        // The claim stored the attempt's `attempt_started` event.
        if let Some(started) = &started {
            observer.event(started);
        }
        self.notifier.event_appended(run_id.clone());
        let executor = Executor {
            store: &self.store,
            catalog: &self.catalog,
            config: &self.config,
            pool: &self.pool,
            replicas: &self.replicas,
            versions: &self.versions,
        };
        // Whichever ends first drops the others: the model call in flight and the
        // environment session (its process group is killed) go with the execution.
        let ending = tokio::select! {
            finish = AssertUnwindSafe(executor.execute(&run, env_version_id.as_deref(), &sink)).catch_unwind() => match finish {
                Ok(finish) => Ending::Finished(Box::new(finish)),
                Err(panic) => Ending::Panicked(panic_message(panic.as_ref())),
            },
            () = crate::lease::hold(&self.store, &lease, &self.config) => Ending::LeaseLost,
            () = sink.lease_lost().cancelled() => Ending::LeaseLost,
            () = crate::cancel::requested(&self.store, &self.notifier, &run_id, self.config.cancel_poll) => Ending::Cancelled,
            () = stop.cancelled() => Ending::Released,
        };
        let finish = match ending {
            Ending::Finished(finish) => *finish,
            Ending::Cancelled => crate::cancel::cancelled_finish(&sink),
            Ending::Panicked(message) => {
                tracing::error!(run = %run_id, panic = %message, "the execution of a run panicked; failing the run");
                let internal = EventKind::Error {
                    phase: "internal".into(),
                    message: format!("internal error: {message}"),
                };
                let _ = sink.record(internal).await;
                sink.ended_early(RunStatus::Failed, "internal error")
            }
            Ending::LeaseLost => {
                tracing::warn!(run = %run_id, attempt = lease.attempt, "execution abandoned: the lease was lost");
                return;
            }
            Ending::Released => {
                // The events recorded so far are stored before the run goes back to the queue.
                let _ = sink.flush().await;
                let message = "server shutting down; run released back to the queue";
                match self.store.release_run(&lease, message).await {
                    Ok(true) => tracing::info!(run = %run_id, "run released for another worker"),
                    Ok(false) => {
                        tracing::warn!(run = %run_id, "run not released: its lease was already lost")
                    }
                    Err(error) => {
                        tracing::error!(run = %run_id, %error, "could not release a run; it will be recovered when its lease expires")
                    }
                }
                return;
            }
        };
        // Every event is stored before the run's end (its `finished` event comes last); a
        // writer that failed leaves the end to the finish's own lease check.
        if let Err(error) = sink.flush().await {
            tracing::warn!(run = %run_id, %error, "not every event of the run was stored");
        }
        let held = HeldRun {
            project_id: &run.project_id,
            lease: &lease,
            owner: &self.config.worker_id,
            callback: run.spec.callback.is_some(),
            observer: &observer,
            claimed: Some(&run),
        };
        self.finisher.finish(held, &finish).await;
    }

    /// Periodically re-queues (or fails) runs whose worker stopped renewing its lease, and
    /// now and then purges expired idempotency keys.
    async fn recover_lost_runs(self, shutdown: CancellationToken) {
        let every = (self.config.lease / 2).max(std::time::Duration::from_millis(100));
        let mut purged_at: Option<tokio::time::Instant> = None;
        loop {
            if purged_at.is_none_or(|at| at.elapsed() >= PURGE_EVERY) {
                purged_at = Some(tokio::time::Instant::now());
                match self.store.purge_expired_idempotency_keys().await {
                    Ok(0) => {}
                    Ok(purged) => tracing::info!(purged, "purged expired idempotency keys"),
                    Err(error) => {
                        tracing::warn!(%error, "could not purge expired idempotency keys")
                    }
                }
            }
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
                                    self.finisher.spawn_callback(&project_id, &run_id, None);
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

/// How the execution of a claimed run ended.
enum Ending {
    Finished(Box<FinishRun>),
    Cancelled,
    Panicked(String),
    LeaseLost,
    Released,
}

/// The message of a panic payload (`panic!` with a literal or a formatted string).
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|text| (*text).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}
