//! `/training` (training jobs and the checkpoints they made) and `/training/{id}`: one
//! checkpoint's lineage (dataset, its selection, the source job and taskset, base model,
//! backend), status and log, and "Evaluate on the same taskset" (a job over the taskset with
//! the checkpoint and its base model).

use super::Page;
use super::html::render;
use crate::auth::Caller;
use crate::routes::training;
use crate::state::AppState;
use askama::Template;
use axum::extract::{Path, State};
use axum::{Extension, Json};
use rollout_api::datasets::CreateDataset;
use rollout_api::training::{TrainingJob, TrainingList};
use serde_json::{Value, json};

/// `training_list.html`.
#[derive(Template)]
#[template(path = "training_list.html")]
struct ListPage<'a> {
    section: &'a str,
    jobs: &'a [TrainingJob],
}

/// Training jobs, newest first.
pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Page {
    let Json(listed): Json<TrainingList> = training::list(
        State(state),
        Extension(caller),
        crate::json::ApiQuery(rollout_api::datasets::LimitQuery { limit: Some(200) }),
    )
    .await?;
    render(&ListPage {
        section: "/training",
        jobs: &listed.training_jobs,
    })
}

/// `training.html`.
#[derive(Template)]
#[template(path = "training.html")]
struct CheckpointPage<'a> {
    section: &'a str,
    view: &'a TrainingJob,
    live: bool,
    dataset: Option<rollout_store::DatasetRecord>,
    source_job: Option<rollout_store::JobRecord>,
    taskset: Option<String>,
    /// For evaluate.js: the job to create.
    evaluate: Value,
}

/// One training job and its checkpoint.
pub(crate) async fn page(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Page {
    let Json(view) =
        training::get(State(state.clone()), Extension(caller.clone()), Path(id)).await?;
    let dataset = state
        .store
        .get_dataset(&caller.project_id, &view.dataset)
        .await?;
    // The source job and its taskset, through the dataset's selection (the request that
    // made it).
    let selection: Option<CreateDataset> = dataset
        .as_ref()
        .and_then(|d| serde_json::from_value(d.selection.clone()).ok());
    let source_job = match selection.as_ref().and_then(|s| s.job.clone()) {
        Some(job_id) => state.store.get_job(&caller.project_id, &job_id).await?,
        None => None,
    };
    let taskset = source_job
        .as_ref()
        .map(|j| j.spec.taskset.clone())
        .or_else(|| selection.as_ref().and_then(|s| s.taskset.clone()));
    let evaluate = json!({
        "taskset": taskset,
        "models": [view.name, view.base_model],
        "metadata": {"checkpoint": view.name, "training_job": view.id},
    });
    render(&CheckpointPage {
        section: "/training",
        live: matches!(view.status.as_str(), "queued" | "running"),
        view: &view,
        dataset,
        source_job,
        taskset,
        evaluate,
    })
}

/// Whether the training job was given parameters.
pub(crate) fn has_params(view: &TrainingJob) -> bool {
    view.params.as_object().is_some_and(|p| !p.is_empty())
}
