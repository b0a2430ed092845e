//! `/training` (training jobs and the checkpoints they made) and `/training/{id}`: one
//! checkpoint's lineage (dataset, its selection, the source job and taskset, base model,
//! backend), status and log, and "Evaluate on the same taskset" (a job over the taskset with
//! the checkpoint and its base model).

use super::Page;
use super::html::{esc, layout, script_json, status_badge, url_encode};
use super::jobs::when;
use crate::auth::Caller;
use crate::routes::training;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::{Extension, Json};
use rollout_api::datasets::CreateDataset;
use serde_json::json;
use std::fmt::Write as _;

/// Training jobs, newest first.
pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Page {
    let Json(listed) = training::list(
        State(state),
        Extension(caller),
        crate::json::ApiQuery(rollout_api::datasets::LimitQuery { limit: Some(200) }),
    )
    .await?;
    let mut rows = String::new();
    for job in &listed.training_jobs {
        let _ = write!(
            rows,
            "<tr><td><a href=\"/training/{id}\">{name}</a></td><td>{status}</td><td>{base}</td><td>{backend}</td><td class=\"small muted\">{created}</td></tr>",
            id = esc(&job.id),
            name = esc(&job.name),
            status = status_badge(&job.status),
            base = esc(&job.base_model),
            backend = esc(&job.backend),
            created = when(Some(&job.created_at)),
        );
    }
    if rows.is_empty() {
        rows.push_str("<tr><td colspan=\"5\" class=\"muted\">No training job yet. Open a job and use <strong>Train model</strong>, or <code>POST /v1/training</code>.</td></tr>");
    }
    let body = format!(
        "<h1>Training</h1><p class=\"muted\">Each training job makes a checkpoint, callable like any model once it has succeeded.</p><div class=\"table-wrap card\"><table id=\"training\"><thead><tr><th>Checkpoint</th><th>Status</th><th>Base model</th><th>Backend</th><th>Created</th></tr></thead><tbody>{rows}</tbody></table></div>"
    );
    Ok(layout("Training", "/training", &body))
}

/// One training job and its checkpoint.
pub(crate) async fn page(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Page {
    let Json(view) =
        training::get(State(state.clone()), Extension(caller.clone()), Path(id)).await?;
    let status = view.status.as_str();
    let name = view.name.as_str();
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
    let live = matches!(status, "queued" | "running");
    let mut body = format!(
        "<h1>Checkpoint <code id=\"checkpoint-name\">{name}</code> <span id=\"training-status\">{badge}</span></h1>",
        name = esc(name),
        badge = status_badge(status),
    );
    if live {
        body.push_str("<p class=\"small\"><span class=\"live\" id=\"live\">● live</span> <span class=\"muted\">(the page refreshes until the training job ends)</span></p>");
    }
    if let Some(error) = view.error.as_deref() {
        let _ = write!(body, "<p class=\"error-text\">{}</p>", esc(error));
    }
    body.push_str("<h2>Lineage</h2><section class=\"card\"><table id=\"lineage\"><tbody>");
    let mut row = |label: &str, value: String| {
        let _ = write!(body, "<tr><th>{label}</th><td>{value}</td></tr>");
    };
    row("Base model", esc(&view.base_model));
    row("Backend", esc(&view.backend));
    if view.params.as_object().is_some_and(|p| !p.is_empty()) {
        row(
            "Params",
            format!("<code>{}</code>", esc(&view.params.to_string())),
        );
    }
    match &dataset {
        Some(dataset) => {
            row(
                "Dataset",
                format!(
                    "{} <span class=\"muted small\">({} traces · <code>{}</code>)</span>",
                    esc(&dataset.name),
                    dataset.trace_ids.len(),
                    esc(&dataset.id)
                ),
            );
            row(
                "Selection",
                format!("<code>{}</code>", esc(&dataset.selection.to_string())),
            );
        }
        None => row("Dataset", format!("<code>{}</code>", esc(&view.dataset))),
    }
    if let Some(job) = &source_job {
        row(
            "Job",
            format!(
                "<a id=\"source-job\" href=\"/jobs/{id}\">{short}</a> <span class=\"muted small\">({models})</span>",
                id = esc(&job.id),
                short = esc(job.id.get(..8).unwrap_or(&job.id)),
                models = esc(&job.spec.models.join(", ")),
            ),
        );
    }
    if let Some(taskset) = &taskset {
        row("Taskset", esc(taskset));
    }
    row("Created", when(Some(&view.created_at)));
    row("Started", when(view.started_at.as_deref()));
    row("Finished", when(view.finished_at.as_deref()));
    body.push_str("</tbody></table></section>");

    if status == "succeeded" {
        let _ = write!(
            body,
            "<section class=\"card\" id=\"evaluate\"><p>The checkpoint is a model: <code>{name}</code>. <a href=\"/traces?model={q}\">Its traces</a>.</p>",
            name = esc(name),
            q = url_encode(name),
        );
        match &taskset {
            Some(taskset) => {
                let _ = write!(
                    body,
                    "<button type=\"button\" id=\"evaluate-button\">Evaluate on the same taskset</button> <span class=\"small muted\">a job over <strong>{}</strong> with {} and {}</span> <span id=\"evaluate-result\" class=\"small\" role=\"status\"></span><script type=\"application/json\" id=\"evaluate-data\">{}</script>{}",
                    esc(taskset),
                    esc(name),
                    esc(&view.base_model),
                    script_json(&json!({
                        "taskset": taskset,
                        "models": [name, view.base_model],
                        "metadata": {"checkpoint": name, "training_job": view.id},
                    })),
                    super::assets::script("evaluate.js")
                );
            }
            None => body.push_str(
                "<p class=\"small muted\">The dataset was not selected from a job or a taskset: no taskset to evaluate on.</p>",
            ),
        }
        body.push_str("</section>");
    }
    let _ = write!(
        body,
        "<h2>Log</h2><pre id=\"training-log\">{}</pre>",
        esc(view.log.as_deref().unwrap_or_default())
    );
    if live {
        body.push_str(&super::assets::script("refresh.js"));
    }
    Ok(layout(&format!("Checkpoint {name}"), "/training", &body))
}
