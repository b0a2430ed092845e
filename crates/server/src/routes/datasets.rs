//! Datasets: a selection of finished traces turned into an immutable set of records, in
//! the chat fine-tuning format (OpenAI's, with tools) and the trajectory format for RL.
//! The records are rendered once, at creation; later changes to traces do not move them.

use super::traces::ListQuery;
use crate::auth::Caller;
use crate::error::{ApiError, problem};
use crate::json::ApiJson;
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use rollout_domain::time::rfc3339_from_ms;
use rollout_store::{DatasetLine, DatasetRecord, RunRecord, ScoreFilter, TraceQuery};
use rollout_training::{
    DatasetStats, DatasetTrace, StatsBuilder, chat_example, trajectory_example,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// Most traces in one dataset.
pub(crate) const MAX_DATASET_TRACES: usize = 10_000;
/// Most events read per trace.
const MAX_EVENTS: i64 = 10_000;
/// Traces read, rendered and written together.
const TRACES_PER_PAGE: usize = 100;

/// The body of `POST /v1/datasets`: every given filter narrows the selection.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    /// A job id: its runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    job: Option<String>,
    /// A taskset name: the runs of every job over it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    taskset: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "environment"
    )]
    env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scenario: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    model: Option<String>,
    /// RFC 3339 time, date or unix milliseconds (runs created at or after).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    from: Option<Value>,
    /// RFC 3339 time, date or unix milliseconds (runs created before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    to: Option<Value>,
    /// Explicit traces (still narrowed by the other filters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    trace_ids: Option<Vec<String>>,
    /// The reward threshold: only runs with a reward of at least this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reward_min: Option<f64>,
    /// Only traces with at least one of these labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    labels_any: Option<Vec<String>>,
    /// Only traces with none of these labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    labels_none: Option<Vec<String>>,
    /// Only traces whose score of each name (the mean over reviewers) is at least the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    score_min: Option<BTreeMap<String, f64>>,
    /// Run status to keep (default `completed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<String>,
    /// Most traces (newest first), up to 10000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    limit: Option<usize>,
}

/// `?format=` of the download.
#[derive(Debug, Deserialize)]
pub(crate) struct DownloadQuery {
    format: Option<String>,
}

/// `?limit=` of the list.
#[derive(Debug, Deserialize)]
pub(crate) struct ListQueryParams {
    limit: Option<i64>,
}

fn text(value: &Option<Value>) -> Option<String> {
    value.as_ref().map(|v| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

/// `POST /v1/datasets`: selects the traces, renders both formats, stores the dataset.
pub(crate) async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(request): ApiJson<CreateRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let mut problems = Vec::new();
    let limit = request.limit.unwrap_or(MAX_DATASET_TRACES);
    if !(1..=MAX_DATASET_TRACES).contains(&limit) {
        problems.push(problem(
            "limit",
            format!("limit must be between 1 and {MAX_DATASET_TRACES}, got {limit}"),
        ));
    }
    if let Some(threshold) = request.reward_min
        && !threshold.is_finite()
    {
        problems.push(problem("reward_min", "reward_min must be a number"));
    }
    let filters = ListQuery {
        status: Some(request.status.clone().unwrap_or_else(|| "completed".into())),
        env_name: request.env.clone(),
        scenario_name: request.scenario.clone(),
        model: request.model.clone(),
        reward_min: request.reward_min.map(|r| r.to_string()),
        from: text(&request.from),
        to: text(&request.to),
        job_id: request.job.clone(),
        ..ListQuery::default()
    };
    let query = match filters.to_query() {
        Ok(query) => TraceQuery {
            labels_any: request.labels_any.clone().unwrap_or_default(),
            labels_none: request.labels_none.clone().unwrap_or_default(),
            scores: score_filters(&request, &mut problems),
            ..query
        },
        Err(error) => {
            problems.extend(
                error.details["errors"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
            );
            TraceQuery::default()
        }
    };
    if !problems.is_empty() {
        return Err(ApiError::invalid(problems));
    }
    let runs = select_runs(&state, &caller, &request, query, limit).await?;
    if runs.is_empty() {
        return Err(ApiError::invalid(vec![problem(
            "selection",
            "no finished trace matches the selection",
        )]));
    }
    let id = rollout_domain::new_id();
    let mut dataset = DatasetRecord {
        name: request
            .name
            .clone()
            .unwrap_or_else(|| format!("dataset-{id}")),
        id,
        project_id: caller.project_id.clone(),
        selection: serde_json::to_value(&request).map_err(ApiError::internal)?,
        stats: Value::Null,
        trace_ids: runs.iter().map(|run| run.id.to_string()).collect(),
        created_at_ms: now_ms(),
    };
    state.store.begin_dataset(&dataset).await?;
    let stats = match write_records(&state, &dataset.id, runs).await {
        Ok(stats) => stats,
        Err(error) => {
            if let Err(error) = state.store.discard_dataset(&dataset.id).await {
                tracing::warn!(dataset = %dataset.id, %error, "could not discard a failed dataset");
            }
            return Err(error);
        }
    };
    dataset.stats = serde_json::to_value(&stats).map_err(ApiError::internal)?;
    state.store.complete_dataset(&dataset).await?;
    tracing::info!(dataset = %dataset.id, traces = dataset.trace_ids.len(), "dataset created");
    Ok((StatusCode::CREATED, Json(dataset_view(&dataset))))
}

/// `score_min` as score filters; a bound that is not a finite number is a problem.
fn score_filters(request: &CreateRequest, problems: &mut Vec<Value>) -> Vec<ScoreFilter> {
    let mut filters = Vec::new();
    for (name, min) in request.score_min.iter().flatten() {
        if !min.is_finite() {
            problems.push(problem(
                &format!("score_min.{name}"),
                "score_min values must be numbers",
            ));
        }
        filters.push(ScoreFilter {
            name: name.clone(),
            min: Some(*min),
            max: None,
        });
    }
    filters
}

/// Renders the records of `runs` and appends them to the dataset being written, a page of
/// traces at a time: only one page's events are held at once, and each page is one short
/// write (SQLite's write lock is never held long enough to fail other runs' appends).
async fn write_records(
    state: &AppState,
    dataset_id: &str,
    runs: Vec<RunRecord>,
) -> Result<DatasetStats, ApiError> {
    let mut stats = StatsBuilder::default();
    let mut position = 0;
    let mut runs = runs.into_iter().peekable();
    while runs.peek().is_some() {
        let mut lines = Vec::with_capacity(TRACES_PER_PAGE);
        let page: Vec<RunRecord> = runs.by_ref().take(TRACES_PER_PAGE).collect();
        let project_id = page
            .first()
            .map(|run| run.project_id.clone())
            .unwrap_or_default();
        let ids: Vec<String> = page.iter().map(|run| run.id.to_string()).collect();
        // A person's reward override is the reward the records carry.
        let reviews = state.store.review_summaries(&project_id, &ids).await?;
        for mut run in page {
            if let Some(reward) = reviews
                .get(run.id.as_str())
                .and_then(|review| review.reward_override)
            {
                run.reward = Some(reward);
            }
            let events = state
                .store
                .list_events(run.id.as_str(), 0, MAX_EVENTS)
                .await?;
            let trace = dataset_trace(run, events);
            stats.add(&trace);
            lines.push(DatasetLine {
                trace_id: trace.trace_id.clone(),
                chat: serde_json::to_string(&chat_example(&trace)).map_err(ApiError::internal)?,
                trajectory: serde_json::to_string(&trajectory_example(&trace))
                    .map_err(ApiError::internal)?,
            });
        }
        state
            .store
            .append_dataset_records(dataset_id, position, &lines)
            .await?;
        position += lines.len();
    }
    Ok(stats.finish())
}

/// The runs of the selection, oldest first, at most `limit` (the newest).
async fn select_runs(
    state: &AppState,
    caller: &Caller,
    request: &CreateRequest,
    query: TraceQuery,
    limit: usize,
) -> Result<Vec<RunRecord>, ApiError> {
    // Which jobs: the given one, or every job over the taskset.
    let job_ids: Vec<Option<String>> = match &request.taskset {
        Some(taskset) => {
            let mut ids = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let page = state
                    .store
                    .list_jobs(&caller.project_id, cursor.as_deref(), 500)
                    .await?;
                for job in &page {
                    if &job.spec.taskset == taskset
                        && request.job.as_ref().is_none_or(|id| id == &job.id)
                    {
                        ids.push(Some(job.id.clone()));
                    }
                }
                if page.len() < 500 {
                    break;
                }
                cursor = page.last().map(|job| job.id.clone());
            }
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            ids
        }
        None => vec![query.job_id.clone()],
    };
    let wanted: Option<BTreeSet<&String>> =
        request.trace_ids.as_ref().map(|ids| ids.iter().collect());
    let mut runs = Vec::new();
    if let Some(ids) = &wanted {
        // The same SQL filters as a search, over the ids a page at a time.
        let ids: Vec<String> = ids.iter().map(|id| (*id).clone()).collect();
        for chunk in ids.chunks(500) {
            for job_id in &job_ids {
                let page_query = TraceQuery {
                    job_id: job_id.clone(),
                    ids: chunk.to_vec(),
                    limit: 500,
                    ..query.clone()
                };
                runs.extend(
                    state
                        .store
                        .search_runs(&caller.project_id, &page_query)
                        .await?,
                );
            }
        }
        runs.sort_by(|a, b| b.id.as_str().cmp(a.id.as_str()));
        runs.dedup_by(|a, b| a.id == b.id);
        runs.truncate(limit);
    } else {
        for job_id in job_ids {
            let mut page_query = TraceQuery {
                job_id,
                limit: 500,
                ..query.clone()
            };
            loop {
                let page = state
                    .store
                    .search_runs(&caller.project_id, &page_query)
                    .await?;
                let full = page.len() == 500;
                page_query.before = page.last().map(|run| run.id.to_string());
                runs.extend(page);
                if !full || runs.len() >= limit {
                    break;
                }
            }
        }
        runs.sort_by(|a, b| b.id.as_str().cmp(a.id.as_str()));
        runs.truncate(limit);
    }
    runs.reverse();
    Ok(runs)
}

fn dataset_trace(run: RunRecord, events: Vec<rollout_domain::RunEvent>) -> DatasetTrace {
    let metadata = &run.spec.metadata;
    let job_id = metadata
        .get("job_id")
        .and_then(Value::as_str)
        .map(str::to_string);
    let task_id = metadata
        .get("task_id")
        .and_then(Value::as_str)
        .map(str::to_string);
    DatasetTrace {
        trace_id: run.id.to_string(),
        reward: run.reward,
        evaluation: run.evaluation,
        usage: run.usage,
        job_id,
        task_id,
        spec: run.spec,
        events,
    }
}

/// `GET /v1/datasets`: newest first.
pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<ListQueryParams>,
) -> Result<Json<Value>, ApiError> {
    let limit = query.limit.unwrap_or(50).clamp(1, 500);
    let datasets = state.store.list_datasets(&caller.project_id, limit).await?;
    let views: Vec<Value> = datasets
        .iter()
        .map(|d| {
            let mut view = dataset_view(d);
            if let Some(object) = view.as_object_mut() {
                object.remove("trace_ids");
            }
            view
        })
        .collect();
    Ok(Json(json!({ "datasets": views })))
}

/// `GET /v1/datasets/{id}`: lineage and statistics.
pub(crate) async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(dataset_view(&find(&state, &caller, &id).await?)))
}

/// `GET /v1/datasets/{id}/download?format=chat|trajectory`: JSONL.
pub(crate) async fn download(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Query(query): Query<DownloadQuery>,
) -> Result<Response, ApiError> {
    let format = query.format.as_deref().unwrap_or("chat");
    if !["chat", "trajectory"].contains(&format) {
        return Err(ApiError::invalid(vec![problem(
            "format",
            format!("format must be 'chat' or 'trajectory', got '{format}'"),
        )]));
    }
    let dataset = find(&state, &caller, &id).await?;
    let body = render(&state, &dataset.id, format).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-ndjson".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}-{format}.jsonl\"", dataset.id),
            ),
        ],
        body,
    )
        .into_response())
}

/// A dataset's records in `format` (`chat` or `trajectory`), one JSON object per line.
pub(crate) async fn render(state: &AppState, id: &str, format: &str) -> Result<String, ApiError> {
    let lines = state.store.dataset_lines(id).await?;
    let mut body = String::new();
    for line in &lines {
        body.push_str(if format == "trajectory" {
            &line.trajectory
        } else {
            &line.chat
        });
        body.push('\n');
    }
    Ok(body)
}

/// A dataset of the caller's project, or 404.
pub(crate) async fn find(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<DatasetRecord, ApiError> {
    state
        .store
        .get_dataset(&caller.project_id, id)
        .await?
        .ok_or_else(|| {
            ApiError::not_found("dataset_not_found", format!("dataset '{id}' not found"))
        })
}

fn dataset_view(dataset: &DatasetRecord) -> Value {
    json!({
        "id": dataset.id,
        "name": dataset.name,
        "created_at": rfc3339_from_ms(dataset.created_at_ms),
        "selection": dataset.selection,
        "stats": dataset.stats,
        "trace_count": dataset.trace_ids.len(),
        "trace_ids": dataset.trace_ids,
        "formats": ["chat", "trajectory"],
    })
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
