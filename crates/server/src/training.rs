//! Training jobs run in the server process that accepted them: a task per job drives the
//! backend, stores its log, watches for cancellation, and on success registers the
//! checkpoint (store and catalog). At start-up the catalog is loaded with the stored
//! checkpoints.

use crate::state::AppState;
use rollout_domain::{Checkpoint, CheckpointTarget};
use rollout_store::{Backend, TrainingJobRecord};
use rollout_training::TrajectoryExample;
use std::time::Duration;

/// How often a running job checks whether it was cancelled.
const CANCEL_POLL: Duration = Duration::from_millis(500);
/// How often a running job renews its heartbeat.
const HEARTBEAT: Duration = Duration::from_secs(10);
/// A job without a heartbeat for this long is failed: its server is gone.
const STALE_AFTER: Duration = Duration::from_secs(120);

/// Loads every stored checkpoint into the catalog. On SQLite (one server process), jobs left
/// unfinished by a previous process are failed at once: nothing runs them any more. On any
/// backend, a sweeper fails the jobs whose process stopped renewing their heartbeat (a
/// server on PostgreSQL that died while others live).
pub(crate) async fn start(state: &AppState) {
    if state.store.backend() == Backend::Sqlite {
        match state.store.fail_interrupted_training_jobs().await {
            Ok(0) => {}
            Ok(count) => tracing::warn!(count, "failed training jobs interrupted by a restart"),
            Err(error) => tracing::error!(%error, "failing interrupted training jobs"),
        }
    }
    let sweeper = state.store.clone();
    tokio::spawn(async move {
        loop {
            let stale_before =
                now_ms() - i64::try_from(STALE_AFTER.as_millis()).unwrap_or(i64::MAX);
            match sweeper.fail_stale_training_jobs(stale_before).await {
                Ok(0) => {}
                Ok(count) => tracing::warn!(count, "failed training jobs whose server stopped"),
                Err(error) => tracing::warn!(%error, "sweeping stale training jobs"),
            }
            tokio::time::sleep(STALE_AFTER / 2).await;
        }
    });
    match state.store.list_checkpoints().await {
        Ok(checkpoints) => {
            for checkpoint in checkpoints {
                state.catalog.register_checkpoint(checkpoint);
            }
        }
        Err(error) => tracing::error!(%error, "loading checkpoints"),
    }
}

/// Runs a queued job in the background.
pub(crate) fn spawn(state: AppState, job: TrainingJobRecord) {
    tokio::spawn(async move { run(&state, &job).await });
}

async fn run(state: &AppState, job: &TrainingJobRecord) {
    match state.store.start_training_job(&job.id).await {
        Ok(true) => {}
        Ok(false) => return,
        Err(error) => {
            tracing::error!(%error, job = %job.id, "starting a training job");
            return;
        }
    }
    log(
        state,
        &job.id,
        &format!(
            "training '{}' from {} on dataset {} with the {} backend\n",
            job.name, job.base_model, job.dataset_id, job.backend
        ),
    )
    .await;
    let outcome = tokio::select! {
        outcome = execute(state, job) => outcome,
        () = cancelled(state, job) => {
            log(state, &job.id, "cancelled\n").await;
            return;
        }
    };
    match outcome {
        Ok(target) => {
            let checkpoint = Checkpoint {
                name: job.name.clone(),
                project_id: job.project_id.clone(),
                base_model: job.base_model.clone(),
                backend: job.backend.clone(),
                dataset_id: job.dataset_id.clone(),
                training_job_id: job.id.clone(),
                created_at_ms: now_ms(),
                target,
            };
            // Callable as soon as the job reads `succeeded`: registered first, withdrawn if
            // the job ended otherwise meanwhile.
            log(
                state,
                &job.id,
                &format!("registering checkpoint '{}'\n", job.name),
            )
            .await;
            state.catalog.register_checkpoint(checkpoint.clone());
            match state.store.succeed_training_job(&job.id, &checkpoint).await {
                Ok(true) => {
                    tracing::info!(job = %job.id, checkpoint = %job.name, "checkpoint registered");
                }
                Ok(false) => state.catalog.remove_checkpoint(&job.project_id, &job.name),
                Err(error) => {
                    state.catalog.remove_checkpoint(&job.project_id, &job.name);
                    tracing::error!(%error, job = %job.id, "registering a checkpoint");
                    fail(state, job, "the checkpoint could not be stored").await;
                }
            }
        }
        Err(message) => fail(state, job, &message).await,
    }
}

async fn fail(state: &AppState, job: &TrainingJobRecord, message: &str) {
    log(state, &job.id, &format!("failed: {message}\n")).await;
    if let Err(error) = state
        .store
        .end_training_job(&job.id, "failed", Some(message))
        .await
    {
        tracing::error!(%error, job = %job.id, "failing a training job");
    }
}

/// Resolves when the job has been cancelled (or has vanished).
async fn cancelled(state: &AppState, job: &TrainingJobRecord) {
    let mut last_heartbeat = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(CANCEL_POLL).await;
        // The job runs as long as this loop does: renew its heartbeat on the way.
        if last_heartbeat.elapsed() >= HEARTBEAT {
            last_heartbeat = tokio::time::Instant::now();
            if let Err(error) = state.store.heartbeat_training_job(&job.id).await {
                tracing::warn!(%error, job = %job.id, "renewing a training job's heartbeat");
            }
        }
        match state.store.get_training_job(&job.project_id, &job.id).await {
            Ok(Some(current)) if current.status == "cancelled" => return,
            Ok(Some(_)) | Err(_) => {}
            Ok(None) => return,
        }
    }
}

/// Appends to the job's log; a failure to do so is logged, not fatal.
pub(crate) async fn log(state: &AppState, id: &str, text: &str) {
    if let Err(error) = state.store.append_training_log(id, text).await {
        tracing::warn!(%error, job = %id, "appending to a training log");
    }
}

/// Runs the backend; `Err` is the message the job fails with.
async fn execute(state: &AppState, job: &TrainingJobRecord) -> Result<CheckpointTarget, String> {
    match job.backend.as_str() {
        "fewshot" => {
            let records = trajectories(state, &job.dataset_id).await?;
            let k = job.params["k"]
                .as_u64()
                .map_or(rollout_training::fewshot::DEFAULT_K, |k| k as usize);
            let target = rollout_training::fewshot::build_target(&records, k);
            if let CheckpointTarget::Fewshot { demonstrations, k } = &target {
                if demonstrations.is_empty() {
                    return Err("the dataset has no trajectory ending with an answer".into());
                }
                log(
                    state,
                    &job.id,
                    &format!(
                        "kept {} demonstrations of {} records; {k} shown per run\n",
                        demonstrations.len(),
                        records.len()
                    ),
                )
                .await;
            }
            Ok(target)
        }
        "command" => {
            let config = &state.config.training;
            let (Some(template), Some(work_dir)) = (&config.command, &config.work_dir) else {
                return Err("the 'command' backend is not configured on this server".into());
            };
            let (chat_jsonl, trajectory_jsonl) = dataset_jsonl(state, &job.dataset_id).await?;
            let command_job = rollout_training::command::CommandJob {
                dir: work_dir.join(&job.id),
                base_model: job.base_model.clone(),
                name: job.name.clone(),
                params: job.params.clone(),
                chat_jsonl,
                trajectory_jsonl,
            };
            let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
            let writer = tokio::spawn(write_log(state.clone(), job.id.clone(), receiver));
            let result = rollout_training::command::run(
                template,
                &command_job,
                config.command_timeout,
                sender,
            )
            .await;
            let _ = writer.await;
            result.map_err(|error| error.to_string())
        }
        "openai" => {
            let Some(config) = &state.config.training.openai else {
                return Err("the 'openai' backend is not configured on this server".into());
            };
            let base_model = state
                .catalog
                .resolve(&job.project_id, &job.base_model)
                .map_err(|error| error.to_string())?
                .upstream()
                .to_string();
            let (chat_jsonl, _) = dataset_jsonl(state, &job.dataset_id).await?;
            let openai_job = rollout_training::openai::OpenAiJob {
                base_model,
                name: job.name.clone(),
                params: job.params.clone(),
                chat_jsonl,
            };
            let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
            let writer = tokio::spawn(write_log(state.clone(), job.id.clone(), receiver));
            let result = rollout_training::openai::run(config, &openai_job, sender).await;
            let _ = writer.await;
            result.map_err(|error| error.to_string())
        }
        other => Err(format!("backend '{other}' is not available")),
    }
}

/// The dataset as chat and trajectory JSONL.
async fn dataset_jsonl(state: &AppState, dataset_id: &str) -> Result<(String, String), String> {
    let lines = state
        .store
        .dataset_lines(dataset_id)
        .await
        .map_err(|error| {
            tracing::error!(%error, "reading a dataset");
            "the dataset could not be read".to_string()
        })?;
    let mut chat_jsonl = String::new();
    let mut trajectory_jsonl = String::new();
    for line in &lines {
        chat_jsonl.push_str(&line.chat);
        chat_jsonl.push('\n');
        trajectory_jsonl.push_str(&line.trajectory);
        trajectory_jsonl.push('\n');
    }
    Ok((chat_jsonl, trajectory_jsonl))
}

/// Appends what a backend reports to the job's log, in order, until the sender is gone.
async fn write_log(
    state: AppState,
    id: String,
    mut receiver: tokio::sync::mpsc::UnboundedReceiver<String>,
) {
    while let Some(mut text) = receiver.recv().await {
        // Batch what is already waiting into one write.
        while let Ok(more) = receiver.try_recv() {
            text.push_str(&more);
        }
        log(&state, &id, &text).await;
    }
}

/// The dataset's trajectory records.
async fn trajectories(
    state: &AppState,
    dataset_id: &str,
) -> Result<Vec<TrajectoryExample>, String> {
    let lines = state
        .store
        .dataset_lines(dataset_id)
        .await
        .map_err(|error| {
            tracing::error!(%error, "reading a dataset");
            "the dataset could not be read".to_string()
        })?;
    lines
        .iter()
        .map(|line| {
            serde_json::from_str(&line.trajectory)
                .map_err(|error| format!("a dataset record is not readable: {error}"))
        })
        .collect()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Why `backend` cannot run on this server, if it cannot.
pub(crate) fn backend_problem(state: &AppState, backend: &str) -> Option<String> {
    let config = &state.config.training;
    let configured = match backend {
        "fewshot" => true,
        "command" => config.command.is_some() && config.work_dir.is_some(),
        "openai" => config.openai.is_some(),
        _ => false,
    };
    (!configured).then(|| {
        format!(
            "the '{backend}' backend is not configured on this server (see [training] in rollout.toml)"
        )
    })
}
