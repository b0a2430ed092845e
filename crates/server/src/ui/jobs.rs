//! `/jobs` (the list of evaluation jobs) and `/jobs/{id}`: progress, the metrics per model
//! and per task, the paired comparison of two models, the runs with links to their traces,
//! and the "Train model" form (a dataset of the job's successful runs, then a training job).
//! The page reads the API handlers' own views, so it shows exactly what the API returns.

use super::Page;
use super::html::{duration_ms, render};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::json::ApiQuery;
use crate::routes::{jobs, training};
use crate::state::AppState;
use askama::Template;
use axum::extract::{Path, State};
use axum::{Extension, Json};
use rollout_api::jobs::{Counts, JobComparison, ListQuery, MetricsQuery};
use rollout_api::jobs::{JobLine, JobWithMetrics};
use serde_json::{Value, json};
use std::borrow::Borrow;
use std::fmt::Write as _;

/// Most runs listed on a job page; the rest are one click away in `/traces?job_id=`.
const MAX_LISTED_RUNS: usize = 300;

/// A number with three decimals, or a dash.
pub(super) fn num(value: impl Borrow<Option<f64>>) -> String {
    value
        .borrow()
        .map_or_else(|| "–".into(), |v| format!("{v:.3}"))
}

/// A fraction as a percentage, or a dash.
pub(super) fn percent(value: impl Borrow<Option<f64>>) -> String {
    value
        .borrow()
        .map_or_else(|| "–".into(), |v| format!("{:.1}%", v * 100.0))
}

/// Seconds as a duration, or a dash.
pub(super) fn seconds(value: impl Borrow<Option<f64>>) -> String {
    value
        .borrow()
        .map_or_else(|| "–".into(), |s| duration_ms((s * 1000.0).round() as i64))
}

/// A count-like value (p50 of steps, tokens) without decimals, or a dash.
pub(super) fn whole(value: impl Borrow<Option<f64>>) -> String {
    value
        .borrow()
        .map_or_else(|| "–".into(), |v| format!("{}", v.round() as i64))
}

/// The counts of a view as `done/total`, with failures and cancellations when any.
pub(super) fn counts_text(counts: &Counts) -> String {
    let mut text = format!("{}/{}", counts.done + counts.failed, counts.total);
    if counts.failed > 0 {
        let _ = write!(text, " · {} failed", counts.failed);
    }
    if counts.cancelled > 0 {
        let _ = write!(text, " · {} cancelled", counts.cancelled);
    }
    text
}

/// `jobs.html`.
#[derive(Template)]
#[template(path = "jobs.html")]
struct ListPage<'a> {
    section: &'a str,
    jobs: &'a [JobLine],
}

/// The list of jobs, newest first.
pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Page {
    let Json(listed) = jobs::list(
        State(state),
        Extension(caller),
        ApiQuery(ListQuery {
            limit: Some(200),
            cursor: None,
        }),
    )
    .await?;
    render(&ListPage {
        section: "/jobs",
        jobs: &listed.jobs,
    })
}

/// `job.html`.
#[derive(Template)]
#[template(path = "job.html")]
struct JobPage<'a> {
    section: &'a str,
    job: &'a rollout_store::JobRecord,
    view: &'a JobWithMetrics,
    status: &'a str,
    live: bool,
    counts: &'a Counts,
    total: i64,
    ended: i64,
    eta: Option<String>,
    compared: Option<JobComparison>,
    train: TrainForm,
    runs: Vec<RunRow<'a>>,
    /// How many runs the job has (`runs` shows the first [`MAX_LISTED_RUNS`]).
    all_runs: usize,
}

/// A run of the job.
struct RunRow<'a> {
    run: &'a rollout_store::RunRecord,
    task: String,
    /// From 1.
    repeat: i64,
}

/// One job: progress, metrics, comparison, the train form and the runs.
pub(crate) async fn page(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Page {
    let Json(view) = jobs::metrics(
        State(state.clone()),
        Extension(caller.clone()),
        Path(id.clone()),
        ApiQuery(MetricsQuery::default()),
    )
    .await?;
    let job = state
        .store
        .get_job(&caller.project_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("job_not_found", format!("job '{id}' not found")))?;
    let runs = state.store.job_runs(&job.id).await?;
    let status = view.job.line.status.as_str();
    let counts = &view.job.line.counts;
    let total = counts.total.max(1);
    let compared = if job.spec.models.len() == 2 {
        let Json(compared) = jobs::compare(
            State(state.clone()),
            Extension(caller.clone()),
            Path(id.clone()),
            ApiQuery(MetricsQuery::default()),
        )
        .await?;
        Some(compared)
    } else {
        None
    };
    let rows = runs
        .iter()
        .take(MAX_LISTED_RUNS)
        .map(|job_run| RunRow {
            run: &job_run.run,
            task: usize::try_from(job_run.task_index)
                .ok()
                .and_then(|i| job.spec.task_ids.get(i))
                .cloned()
                .unwrap_or_else(|| format!("#{}", job_run.task_index)),
            repeat: job_run.repeat_index + 1,
        })
        .collect();
    render(&JobPage {
        section: "/jobs",
        job: &job,
        view: &view,
        status,
        live: matches!(status, "running" | "cancelling"),
        counts,
        total,
        ended: total - counts.queued - counts.running,
        eta: view
            .job
            .eta_seconds
            .map(|s| duration_ms((s * 1000.0) as i64)),
        compared,
        train: train_form(&state, &job, &runs),
        runs: rows,
        all_runs: runs.len(),
    })
}

/// The "Train model" form: successful runs of the job (reward ≥ threshold) become a dataset,
/// then a training job on a base model with a backend.
struct TrainForm {
    models: Vec<ModelChoice>,
    backends: Vec<BackendChoice>,
    /// The checkpoint's default name.
    name: String,
    /// For train.js: the job's id and the rewards of its completed runs (the live count of
    /// the selection).
    data: Value,
}

struct ModelChoice {
    name: String,
    available: bool,
    selected: bool,
}

struct BackendChoice {
    name: &'static str,
    /// Why it cannot be used here.
    problem: Option<String>,
}

fn train_form(
    state: &AppState,
    job: &rollout_store::JobRecord,
    runs: &[rollout_store::JobRun],
) -> TrainForm {
    let models = state.catalog.list(&job.project_id);
    let preferred = job
        .spec
        .models
        .iter()
        .find(|name| {
            name.as_str() != "replay"
                && models.iter().any(|m| m.name == **name && m.available)
                && state.catalog.checkpoint(&job.project_id, name).is_none()
        })
        .cloned()
        .or_else(|| {
            models
                .iter()
                .find(|m| m.available && m.name != "replay")
                .map(|m| m.name.clone())
        });
    let rewards: Vec<Value> = runs
        .iter()
        .filter(|r| r.run.status == rollout_domain::RunStatus::Completed)
        .map(|r| json!(r.run.reward.unwrap_or(0.0)))
        .collect();
    let short: String = job.id.chars().take(8).collect();
    TrainForm {
        models: models
            .iter()
            .map(|m| ModelChoice {
                name: m.name.clone(),
                available: m.available,
                selected: Some(&m.name) == preferred.as_ref(),
            })
            .collect(),
        backends: training::BACKENDS
            .iter()
            .map(|backend| BackendChoice {
                name: backend,
                problem: crate::training::backend_problem(state, backend),
            })
            .collect(),
        name: format!("{}-{short}", job.spec.taskset),
        data: json!({"job": job.id, "rewards": rewards}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_formatted_for_people() {
        assert_eq!(num(Some(0.5)), "0.500");
        assert_eq!(num(None), "–");
        assert_eq!(percent(Some(0.4)), "40.0%");
        assert_eq!(seconds(Some(0.25)), "250 ms");
        assert_eq!(seconds(Some(2.5)), "2.5 s");
        assert_eq!(whole(Some(120.4)), "120");
        assert_eq!(
            counts_text(&Counts {
                done: 3,
                failed: 1,
                total: 6,
                cancelled: 2,
                ..Counts::default()
            }),
            "4/6 · 1 failed · 2 cancelled"
        );
    }
}
