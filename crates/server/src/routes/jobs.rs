//! Jobs: evaluate models on a taskset. A job queues taskset × models × repeats ordinary runs
//! linked to it; its progress and metrics are read from those runs.

use super::runs::RunRequest;
use super::{checks, projects, runs, tasksets};
use crate::auth::Caller;
use crate::error::{ApiError, problem};
use crate::json::{ApiJson, ApiQuery};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use rollout_api::jobs::{
    Counts, Job, JobComparison, JobHeader, JobLine, JobList, JobWithMetrics,
    ModelProgress as ModelProgressView, ModelSummary, RetriedJob,
};
pub(crate) use rollout_api::jobs::{CreateJob as CreateRequest, ListQuery, MetricsQuery};
use rollout_domain::metrics::{self, DEFAULT_SUCCESS_THRESHOLD, Sample};
use rollout_domain::run::DEFAULT_MAX_STEPS;
use rollout_domain::time::rfc3339_from_ms;
use rollout_domain::{RunId, RunStatus};
use rollout_store::{JobCounts, JobRecord, JobRun, JobSpec, ModelProgress, NewJobRun};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

/// Most repeats of each task per model.
const MAX_REPEATS: i64 = 100;
/// Most runs one job may queue.
const MAX_JOB_RUNS: usize = 20_000;

/// `POST /v1/jobs`: checks everything (every task against its scenario, every model), then
/// queues all runs in one transaction. 201 with the job's progress.
pub(crate) async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(request): ApiJson<CreateRequest>,
) -> Result<(StatusCode, Json<Job>), ApiError> {
    let taskset = tasksets::find(&state, &caller, &request.taskset).await?;
    let tasks = state.store.taskset_tasks(&taskset.id).await?;
    let settings = projects::caller_settings(&state, &caller).await?;
    let mut problems = Vec::new();
    if tasks.is_empty() {
        problems.push(problem(
            "taskset",
            format!("taskset '{}' has no tasks", request.taskset),
        ));
    }
    if request.models.is_empty() {
        problems.push(problem("models", "give at least one model"));
    }
    let mut seen = Vec::new();
    for model in &request.models {
        if model.trim().is_empty() {
            problems.push(problem("models", "a model name is empty"));
        } else if seen.contains(&model) {
            problems.push(problem(
                "models",
                format!("model '{model}' is listed twice"),
            ));
        }
        seen.push(model);
    }
    if !(1..=MAX_REPEATS).contains(&request.repeats) {
        problems.push(problem(
            "repeats",
            format!(
                "repeats must be between 1 and {MAX_REPEATS}, got {}",
                request.repeats
            ),
        ));
    }
    if let Some(limit) = request.max_concurrency
        && limit < 1
    {
        problems.push(problem(
            "max_concurrency",
            format!("max_concurrency must be at least 1, got {limit}"),
        ));
    }
    let max_steps =
        projects::max_steps(&settings, request.max_steps).unwrap_or(i64::from(DEFAULT_MAX_STEPS));
    let total = tasks.len() * request.models.len() * request.repeats.clamp(0, MAX_REPEATS) as usize;
    if total > MAX_JOB_RUNS {
        problems.push(problem(
            "repeats",
            format!("the job would queue {total} runs; at most {MAX_JOB_RUNS}"),
        ));
    }
    // Each task's run is checked as `POST /v1/agent/run` checks a run, once per model: the
    // environment may have changed since the import.
    let mut specs = Vec::new();
    let mut tasks_problems = TaskProblems::default();
    for stored in &tasks {
        let task = &stored.task;
        let mut metadata = task.metadata.clone();
        metadata.extend(request.metadata.clone());
        metadata.insert("task_id".into(), json!(stored.id));
        let mut run = RunRequest {
            env_name: task.env.clone(),
            scenario_name: task.scenario.clone(),
            scenario_args: task.args.clone(),
            max_steps: request.max_steps,
            metadata,
            validation: task.validation.clone(),
            system_prompt: request
                .system_prompt
                .clone()
                .or_else(|| task.system_prompt().map(str::to_string)),
            ..RunRequest::default()
        };
        let version =
            checks::serving_version(&state.store, &caller.project_id, &task.env, None, None);
        let found = match version.await {
            Ok(version) => checks::find_scenario(&version, &task.scenario).map(|s| (version, s)),
            Err(error) => Err(error),
        };
        let (version, scenario) = match found {
            Ok(found) => found,
            Err(error) => {
                tasks_problems.add(&stored.id, None, error);
                continue;
            }
        };
        let mut task_spec = None;
        for model in &request.models {
            run.model = Some(model.clone());
            match runs::validate(&state, &caller, &run, &version, &scenario, &settings).await {
                Ok(spec) => task_spec = task_spec.or(Some(spec)),
                Err(error) => tasks_problems.add(&stored.id, Some(model), error),
            }
        }
        if let Some(mut spec) = task_spec {
            spec.key_id = Some(caller.key_id.clone());
            specs.push(spec);
        }
    }
    problems.extend(tasks_problems.into_problems());
    if !problems.is_empty() {
        return Err(ApiError::invalid(problems));
    }
    let new_runs = i64::try_from(total).unwrap_or(i64::MAX);
    projects::admit(&state, &caller.project_id, &settings, new_runs).await?;

    let job_id = rollout_domain::new_id();
    let mut runs = Vec::with_capacity(total);
    for (task_index, spec) in specs.iter().enumerate() {
        for model in &request.models {
            for repeat in 0..request.repeats {
                let mut spec = spec.clone();
                spec.model = model.clone();
                spec.metadata.insert("job_id".into(), json!(job_id));
                runs.push(NewJobRun {
                    id: RunId::generate(),
                    spec,
                    task_index: task_index as i64,
                    repeat_index: repeat,
                });
            }
        }
    }
    let job_spec = JobSpec {
        taskset: taskset.name.clone(),
        models: request.models.clone(),
        repeats: request.repeats,
        max_concurrency: request.max_concurrency,
        max_steps: u32::try_from(max_steps).unwrap_or(DEFAULT_MAX_STEPS),
        system_prompt: request.system_prompt.clone(),
        metadata: request.metadata.clone(),
        task_ids: tasks.iter().map(|t| t.id.clone()).collect(),
    };
    let job = state
        .store
        .create_job(&job_id, &caller.project_id, &job_spec, &runs)
        .await?;
    state.notifier.run_queued();
    tracing::info!(job = %job_id, taskset = %taskset.name, runs = runs.len(), "job queued");
    let progress = state.store.job_progress(&job.id).await?;
    Ok((StatusCode::CREATED, Json(job_view(&job, &progress))))
}

/// The problems of a job's tasks, each as the run route reports it. A model that does not
/// resolve is one `models` problem (its first task named); every other problem is the run
/// route's own (field, code, message) with the task's id, listed once however many models
/// share it.
#[derive(Default)]
struct TaskProblems {
    models: Vec<(String, Value)>,
    others: Vec<Value>,
}

impl TaskProblems {
    /// Adds what checking task `task_id`'s run (for `model`, once its scenario was found)
    /// answered.
    fn add(&mut self, task_id: &str, model: Option<&String>, error: ApiError) {
        let listed = error.details["errors"].as_array().cloned();
        let Some(listed) = listed.filter(|_| error.status == StatusCode::UNPROCESSABLE_ENTITY)
        else {
            // The environment or the scenario: the run route's 404 or 409, as one problem.
            let mut found = problem("taskset", error.message);
            found["code"] = json!(error.code);
            self.push_other(task_id, found);
            return;
        };
        for mut listed in listed {
            if listed["field"] == "model"
                && let Some(model) = model
            {
                if !self.models.iter().any(|(known, _)| known == model) {
                    let message = listed["message"].as_str().unwrap_or_default();
                    let message = format!("model '{model}' (task '{task_id}'): {message}");
                    self.models
                        .push((model.clone(), problem("models", message)));
                }
                continue;
            }
            listed["code"] = json!(error.code);
            self.push_other(task_id, listed);
        }
    }

    fn push_other(&mut self, task_id: &str, mut found: Value) {
        let known = self
            .others
            .iter()
            .any(|other| other["field"] == found["field"] && other["message"] == found["message"]);
        if !known {
            found["task"] = json!(task_id);
            self.others.push(found);
        }
    }

    fn into_problems(self) -> Vec<Value> {
        let models = self.models.into_iter().map(|(_, problem)| problem);
        models.chain(self.others).collect()
    }
}

/// `GET /v1/jobs`: newest first.
pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<JobList>, ApiError> {
    let limit = query.limit.unwrap_or(50).clamp(1, 500);
    let jobs = state
        .store
        .list_jobs(&caller.project_id, query.cursor.as_deref(), limit)
        .await?;
    let mut views = Vec::with_capacity(jobs.len());
    for job in &jobs {
        let counts = state.store.job_counts(&job.id).await?;
        views.push(JobLine {
            header: job_header(job),
            status: job_status(job, &counts).to_string(),
            counts: counts_view(&counts),
        });
    }
    let next_cursor = (jobs.len() as i64 == limit)
        .then(|| jobs.last().map(|j| j.id.clone()))
        .flatten();
    Ok(Json(JobList {
        jobs: views,
        next_cursor,
    }))
}

/// `GET /v1/jobs/{id}`: the job with its progress, overall and per model.
pub(crate) async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Job>, ApiError> {
    let job = find(&state, &caller, &id).await?;
    let progress = state.store.job_progress(&job.id).await?;
    Ok(Json(job_view(&job, &progress)))
}

/// `POST /v1/jobs/{id}/cancel`: queued runs are cancelled, running runs asked to stop.
pub(crate) async fn cancel(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Job>, ApiError> {
    let job = state
        .store
        .cancel_job(&caller.project_id, &id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    let progress = state.store.job_progress(&job.id).await?;
    Ok(Json(job_view(&job, &progress)))
}

/// `POST /v1/jobs/{id}/retry`: the failed runs (only those) go back to the queue, if the
/// project admits them as it would new runs (models resolving in the project; runs in
/// flight and daily quotas counting each retried run as one more), else 422 or 429 and
/// nothing is retried.
pub(crate) async fn retry(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<RetriedJob>, ApiError> {
    let job = find(&state, &caller, &id).await?;
    let failed: i64 = state
        .store
        .job_progress(&job.id)
        .await?
        .iter()
        .map(|progress| progress.counts.failed)
        .sum();
    if failed > 0 {
        let problems: Vec<Value> = job
            .spec
            .models
            .iter()
            .filter_map(|model| {
                let error = state.catalog.resolve(&caller.project_id, model).err()?;
                Some(problem("models", format!("model '{model}': {error}")))
            })
            .collect();
        if !problems.is_empty() {
            return Err(ApiError::invalid(problems));
        }
        let settings = projects::caller_settings(&state, &caller).await?;
        projects::admit(&state, &caller.project_id, &settings, failed).await?;
    }
    let retried = state
        .store
        .retry_failed_runs(&caller.project_id, &id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    if retried > 0 {
        state.notifier.run_queued();
    }
    let job = find(&state, &caller, &id).await?;
    let progress = state.store.job_progress(&job.id).await?;
    Ok(Json(RetriedJob {
        job: job_view(&job, &progress),
        retried,
    }))
}

/// `GET /v1/jobs/{id}/metrics?threshold=`: overall, per model, per task.
pub(crate) async fn metrics(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<MetricsQuery>,
) -> Result<Json<JobWithMetrics>, ApiError> {
    let threshold = threshold(&query)?;
    let job = find(&state, &caller, &id).await?;
    let overrides = reward_overrides(&state, &job, &query).await?;
    let runs = state.store.job_runs(&job.id).await?;
    let samples = samples(&job, &runs, &state.catalog, &overrides);
    let metrics = metrics::job_metrics(&samples, threshold);
    let progress = state.store.job_progress(&job.id).await?;
    Ok(Json(JobWithMetrics {
        job: job_view(&job, &progress),
        reward: reward_source(&query)?.to_string(),
        overridden_runs: overrides.len(),
        metrics,
    }))
}

/// `GET /v1/jobs/{id}/compare?a=MODEL&b=MODEL`: paired by task. With two models in the job,
/// `a` and `b` default to them in order.
pub(crate) async fn compare(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<MetricsQuery>,
) -> Result<Json<JobComparison>, ApiError> {
    let threshold = threshold(&query)?;
    let job = find(&state, &caller, &id).await?;
    let models = &job.spec.models;
    let pick = |given: &Option<String>, index: usize, field: &str| -> Result<String, ApiError> {
        let model = match given {
            Some(model) => model.clone(),
            None if models.len() == 2 => models[index].clone(),
            None => {
                return Err(ApiError::invalid(vec![problem(
                    field,
                    format!(
                        "give ?a=MODEL&b=MODEL; the job's models: {}",
                        models.join(", ")
                    ),
                )]));
            }
        };
        if models.contains(&model) {
            Ok(model)
        } else {
            Err(ApiError::invalid(vec![problem(
                field,
                format!(
                    "model '{model}' is not in the job; its models: {}",
                    models.join(", ")
                ),
            )]))
        }
    };
    let a = pick(&query.a, 0, "a")?;
    let b = pick(&query.b, 1, "b")?;
    let overrides = reward_overrides(&state, &job, &query).await?;
    let runs = state.store.job_runs(&job.id).await?;
    let samples = samples(&job, &runs, &state.catalog, &overrides);
    let comparison = metrics::compare(&samples, &a, &b);
    let metrics = metrics::job_metrics(&samples, threshold);
    let summary = |model: &str| {
        metrics
            .models
            .iter()
            .find(|m| m.model == model)
            .map(|m| ModelSummary {
                model: m.model.clone(),
                scored: m.summary.scored,
                failed: m.summary.failed,
                mean_reward: m.summary.mean_reward,
                reward_stderr: m.summary.reward_stderr,
                success_rate: m.summary.success_rate,
            })
    };
    Ok(Json(JobComparison {
        a: summary(&a),
        b: summary(&b),
        job_id: job.id,
        threshold,
        reward: reward_source(&query)?.to_string(),
        comparison,
    }))
}

async fn find(state: &AppState, caller: &Caller, id: &str) -> Result<JobRecord, ApiError> {
    state
        .store
        .get_job(&caller.project_id, id)
        .await?
        .ok_or_else(|| not_found(id))
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found("job_not_found", format!("job '{id}' not found"))
}

fn threshold(query: &MetricsQuery) -> Result<f64, ApiError> {
    let threshold = query.threshold.unwrap_or(DEFAULT_SUCCESS_THRESHOLD);
    if threshold.is_finite() {
        Ok(threshold)
    } else {
        Err(ApiError::invalid(vec![problem(
            "threshold",
            "threshold must be a number",
        )]))
    }
}

/// `?reward=`: `override` (the default) or `grader`; 422 for anything else.
fn reward_source(query: &MetricsQuery) -> Result<&'static str, ApiError> {
    match query.reward.as_deref().map(str::trim) {
        None | Some("") | Some("override") => Ok("override"),
        Some("grader") => Ok("grader"),
        Some(other) => Err(ApiError::invalid(vec![problem(
            "reward",
            format!("reward must be 'override' or 'grader', got '{other}'"),
        )])),
    }
}

/// The reward overrides the metrics read, by run id: the job's, or none with
/// `?reward=grader`.
async fn reward_overrides(
    state: &AppState,
    job: &JobRecord,
    query: &MetricsQuery,
) -> Result<HashMap<String, f64>, ApiError> {
    match reward_source(query)? {
        "grader" => Ok(HashMap::new()),
        _ => Ok(state.store.job_reward_overrides(&job.id).await?),
    }
}

/// The finished runs of a job that metrics count: graded runs (completed, timed out) with
/// their reward, failed runs without one. Queued, running and cancelled runs are left out.
/// A finished run whose reward a person overrode counts with the override (a failed run
/// too: the person graded it). Ordered by the job's model order, then task order.
pub(crate) fn samples(
    job: &JobRecord,
    runs: &[JobRun],
    catalog: &rollout_models::ModelCatalog,
    overrides: &HashMap<String, f64>,
) -> Vec<Sample> {
    let mut runs: Vec<&JobRun> = runs.iter().collect();
    runs.sort_by_key(|r| {
        let model = job.spec.models.iter().position(|m| *m == r.run.spec.model);
        (model, r.task_index, r.repeat_index)
    });
    runs.into_iter()
        .filter_map(|job_run| {
            let run = &job_run.run;
            let overridden = overrides.get(run.id.as_str()).copied();
            let reward = match run.status {
                RunStatus::Completed | RunStatus::TimedOut => {
                    Some(overridden.or(run.reward).unwrap_or(0.0))
                }
                RunStatus::Failed => overridden,
                RunStatus::Queued | RunStatus::Running | RunStatus::Cancelled => return None,
            };
            let duration_seconds = match (run.started_at_ms, run.finished_at_ms) {
                (Some(started), Some(finished)) => Some((finished - started) as f64 / 1000.0),
                _ => None,
            };
            Some(Sample {
                model: run.spec.model.clone(),
                task: task_label(job, job_run.task_index),
                reward,
                duration_seconds,
                steps: run.steps,
                tokens: run.usage.total(),
                cost_usd: catalog
                    .price(&run.project_id, &run.spec.model)
                    .map(|price| price.cost(&run.usage)),
            })
        })
        .collect()
}

fn task_label(job: &JobRecord, index: i64) -> String {
    usize::try_from(index)
        .ok()
        .and_then(|i| job.spec.task_ids.get(i))
        .cloned()
        .unwrap_or_else(|| format!("#{index}"))
}

fn job_header(job: &JobRecord) -> JobHeader {
    JobHeader {
        id: job.id.clone(),
        taskset: job.spec.taskset.clone(),
        models: job.spec.models.clone(),
        repeats: job.spec.repeats,
        max_concurrency: job.spec.max_concurrency,
        max_steps: job.spec.max_steps,
        system_prompt: job.spec.system_prompt.clone(),
        metadata: job.spec.metadata.clone(),
        task_count: job.spec.task_ids.len(),
        created_at: rfc3339_from_ms(job.created_at_ms),
        cancelled_at: job.cancelled_at_ms.map(rfc3339_from_ms),
    }
}

/// `running` while runs are queued or running (`cancelling` once cancelled), then
/// `cancelled` or `finished`.
fn job_status(job: &JobRecord, counts: &JobCounts) -> &'static str {
    let open = counts.queued + counts.running > 0;
    match (open, job.cancelled_at_ms.is_some()) {
        (true, false) => "running",
        (true, true) => "cancelling",
        (false, true) => "cancelled",
        (false, false) => "finished",
    }
}

/// Counts with `done` = completed + timed out (graded runs).
fn counts_view(counts: &JobCounts) -> Counts {
    Counts {
        total: counts.total(),
        queued: counts.queued,
        running: counts.running,
        done: counts.completed + counts.timed_out,
        failed: counts.failed,
        cancelled: counts.cancelled,
    }
}

/// The job with its progress: counts, an ETA, and per model done/total, failures and the
/// mean reward so far.
///
/// ETA: `elapsed / finished × remaining`, with `elapsed` since the job was created,
/// `finished` the runs that ended and `remaining` the queued and running ones; `null` before
/// the first run ends or once none remain.
pub(crate) fn job_view(job: &JobRecord, progress: &[ModelProgress]) -> Job {
    let mut counts = JobCounts::default();
    for model in progress {
        for status in RunStatus::ALL {
            counts.add(status, model.counts.count(status));
        }
    }
    let remaining = counts.queued + counts.running;
    let finished = counts.finished();
    let eta_seconds = (finished > 0 && remaining > 0).then(|| {
        let elapsed = (now_ms() - job.created_at_ms).max(0) as f64 / 1000.0;
        elapsed / finished as f64 * remaining as f64
    });
    let models = job
        .spec
        .models
        .iter()
        .map(|model| {
            let found = progress.iter().find(|p| p.model == *model);
            ModelProgressView {
                counts: counts_view(&found.map(|p| p.counts).unwrap_or_default()),
                model: model.clone(),
                mean_reward: found.and_then(ModelProgress::mean_reward),
            }
        })
        .collect();
    Job {
        line: JobLine {
            header: job_header(job),
            status: job_status(job, &counts).to_string(),
            counts: counts_view(&counts),
        },
        eta_seconds,
        progress: models,
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
