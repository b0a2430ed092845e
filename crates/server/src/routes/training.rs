//! Training jobs: `{dataset, base_model, backend, name, params}` → a checkpoint named
//! `name`, callable like any model once the job has succeeded. Status, log and cancel.

use super::datasets;
use crate::auth::Caller;
use crate::error::{ApiError, problem};
use crate::json::{ApiJson, ApiQuery};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use rollout_domain::time::rfc3339_from_ms;
use rollout_store::TrainingJobRecord;
use serde_json::Value;

/// The backends a job may name.
pub(crate) const BACKENDS: [&str; 3] = ["fewshot", "command", "openai"];
/// Longest checkpoint name.
const MAX_NAME: usize = 100;

pub(crate) use rollout_api::datasets::LimitQuery as ListQuery;
pub(crate) use rollout_api::training::CreateTraining as CreateRequest;
use rollout_api::training::{TrainingJob, TrainingList};

/// `POST /v1/training`: checks the request, stores the job, starts it. 201.
pub(crate) async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(request): ApiJson<CreateRequest>,
) -> Result<(StatusCode, Json<TrainingJob>), ApiError> {
    let mut problems = Vec::new();
    let dataset = match datasets::find(&state, &caller, &request.dataset).await {
        Ok(dataset) => Some(dataset),
        Err(error) if error.status == StatusCode::NOT_FOUND => {
            problems.push(problem("dataset", error.message));
            None
        }
        Err(error) => return Err(error),
    };
    if !BACKENDS.contains(&request.backend.as_str()) {
        problems.push(problem(
            "backend",
            format!(
                "backend must be one of {}, got '{}'",
                BACKENDS.join(", "),
                request.backend
            ),
        ));
    } else if let Some(message) = crate::training::backend_problem(&state, &request.backend) {
        problems.push(problem("backend", message));
    }
    if let Err(error) = state
        .catalog
        .resolve(&caller.project_id, &request.base_model)
    {
        problems.push(problem("base_model", error.to_string()));
    }
    let name = request.name.trim();
    let valid_name = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
    if !valid_name {
        problems.push(problem(
            "name",
            format!(
                "name must be 1 to {MAX_NAME} characters of letters, digits, '-', '_', '.', ':'"
            ),
        ));
    } else if state.catalog.is_builtin_name(name) {
        problems.push(problem(
            "name",
            format!("'{name}' is already a model name (GET /v1/models); choose another"),
        ));
    } else if state.catalog.checkpoint(&caller.project_id, name).is_some()
        || state
            .store
            .checkpoint_name_taken(&caller.project_id, name)
            .await?
    {
        problems.push(problem(
            "name",
            format!("a checkpoint named '{name}' exists or is being trained"),
        ));
    }
    if request.backend == "fewshot"
        && let Some(k) = request.params.get("k")
        && !k
            .as_u64()
            .is_some_and(|k| (1..=rollout_training::fewshot::MAX_K as u64).contains(&k))
    {
        problems.push(problem(
            "params.k",
            format!(
                "k must be an integer between 1 and {}",
                rollout_training::fewshot::MAX_K
            ),
        ));
    }
    let Some(dataset) = dataset.filter(|_| problems.is_empty()) else {
        return Err(ApiError::invalid(problems));
    };
    let job = TrainingJobRecord {
        id: rollout_domain::new_id(),
        project_id: caller.project_id.clone(),
        name: name.to_string(),
        dataset_id: dataset.id.clone(),
        base_model: request.base_model.clone(),
        backend: request.backend.clone(),
        params: Value::Object(request.params.clone()),
        status: "queued".into(),
        error: None,
        log: String::new(),
        created_at_ms: now_ms(),
        started_at_ms: None,
        finished_at_ms: None,
    };
    state.store.insert_training_job(&job).await?;
    tracing::info!(job = %job.id, name = %job.name, backend = %job.backend, "training job queued");
    crate::training::spawn(state.clone(), job.clone());
    Ok((StatusCode::CREATED, Json(job_view(&job, false))))
}

/// `GET /v1/training`: newest first, without logs.
pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<TrainingList>, ApiError> {
    let limit = query.limit.unwrap_or(50).clamp(1, 500);
    let jobs = state
        .store
        .list_training_jobs(&caller.project_id, limit)
        .await?;
    let training_jobs = jobs.iter().map(|job| job_view(job, false)).collect();
    Ok(Json(TrainingList { training_jobs }))
}

/// `GET /v1/training/{id}`: status and log.
pub(crate) async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<TrainingJob>, ApiError> {
    Ok(Json(job_view(&find(&state, &caller, &id).await?, true)))
}

/// `GET /v1/training/{id}/log`: the log as plain text.
pub(crate) async fn log(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let job = find(&state, &caller, &id).await?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        job.log,
    )
        .into_response())
}

/// `POST /v1/training/{id}/cancel`: 200 with the job; 409 if it had already ended.
pub(crate) async fn cancel(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<TrainingJob>, ApiError> {
    let job = find(&state, &caller, &id).await?;
    if !state
        .store
        .cancel_training_job(&caller.project_id, &id)
        .await?
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "training_finished",
            format!("training job '{id}' already ended ({})", job.status),
        ));
    }
    crate::training::log(&state, &id, "cancel requested\n").await;
    let job = find(&state, &caller, &id).await?;
    Ok(Json(job_view(&job, false)))
}

async fn find(state: &AppState, caller: &Caller, id: &str) -> Result<TrainingJobRecord, ApiError> {
    state
        .store
        .get_training_job(&caller.project_id, id)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(
                "training_job_not_found",
                format!("training job '{id}' not found"),
            )
        })
}

fn job_view(job: &TrainingJobRecord, with_log: bool) -> TrainingJob {
    TrainingJob {
        id: job.id.clone(),
        name: job.name.clone(),
        dataset: job.dataset_id.clone(),
        base_model: job.base_model.clone(),
        backend: job.backend.clone(),
        params: job.params.clone(),
        status: job.status.clone(),
        error: job.error.clone(),
        checkpoint: (job.status == "succeeded").then(|| job.name.clone()),
        created_at: rfc3339_from_ms(job.created_at_ms),
        started_at: job.started_at_ms.map(rfc3339_from_ms),
        finished_at: job.finished_at_ms.map(rfc3339_from_ms),
        log: with_log.then(|| job.log.clone()),
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
