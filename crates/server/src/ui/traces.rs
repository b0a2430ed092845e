//! `/traces` (a filterable list) and `/traces/{id}` (header, prompt, timeline of steps,
//! evaluation; live while the run is in progress).

use super::Page;
use super::html::{render, url_encode};
use super::review::Panel;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::routes::traces::ListQuery;
use crate::state::AppState;
use askama::Template;
use axum::Extension;
use axum::extract::{Path, Query, State};
use rollout_domain::{EventKind, RunEvent, RunStatus};
use rollout_store::{ReviewSummary, RunRecord, ScoreKind};

/// How long a run took, once it has ended.
pub(crate) fn run_duration(run: &RunRecord) -> Option<i64> {
    Some(run.finished_at_ms? - run.started_at_ms?)
}

/// What a run was asked to do, as pretty JSON.
pub(crate) fn arguments(run: &RunRecord) -> String {
    super::html::pretty(&serde_json::json!({
        "scenario_args": run.spec.scenario_args,
        "max_steps": run.spec.max_steps,
        "metadata": run.spec.metadata,
        "env_version": run.spec.env_version,
    }))
}

/// `traces.html`.
#[derive(Template)]
#[template(path = "traces.html")]
struct ListPage<'a> {
    section: &'a str,
    query: &'a ListQuery,
    status_options: Vec<Choice<'a>>,
    reviewed_options: Vec<Choice<'a>>,
    /// The job the list is filtered by.
    job: Option<&'a str>,
    problem: Option<String>,
    rows: Vec<Row<'a>>,
    /// The next page's URL, when this one is full.
    older: Option<String>,
}

/// An option of a select.
struct Choice<'a> {
    value: &'a str,
    text: &'a str,
    selected: bool,
}

/// A trace of the list, with its review summary.
struct Row<'a> {
    run: &'a RunRecord,
    review: Option<&'a ReviewSummary>,
}

/// The filterable list of traces, newest first.
pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<ListQuery>,
) -> Page {
    let filter = crate::routes::traces::to_query(&query);
    let (runs, problem) = match &filter {
        Ok(filter) => (
            state.store.search_runs(&caller.project_id, filter).await?,
            None,
        ),
        Err(error) => (Vec::new(), Some(error.message.clone())),
    };
    let ids: Vec<String> = runs.iter().map(|run| run.id.to_string()).collect();
    let reviews = state
        .store
        .review_summaries(&caller.project_id, &ids)
        .await?;
    let choice = |current: &Option<String>, value: &'static str, text: &'static str| Choice {
        value,
        text,
        selected: current.as_deref().unwrap_or("") == value,
    };
    let status_options = std::iter::once(("", "any"))
        .chain(RunStatus::ALL.iter().map(|s| (s.as_str(), s.as_str())))
        .map(|(value, text)| choice(&query.status, value, text))
        .collect();
    let reviewed_options = [("", "any"), ("true", "reviewed"), ("false", "not reviewed")]
        .into_iter()
        .map(|(value, text)| choice(&query.reviewed, value, text))
        .collect();
    let older = match &filter {
        Ok(filter) if runs.len() as i64 == filter.limit => runs.last().map(|last| {
            let mut href = format!("/traces?cursor={}", url_encode(last.id.as_str()));
            for (key, value) in filter_params(&query) {
                href.push_str(&format!("&{key}={}", url_encode(value)));
            }
            href
        }),
        _ => None,
    };
    render(&ListPage {
        section: "/traces",
        query: &query,
        status_options,
        reviewed_options,
        job: query.job_id.as_deref().filter(|j| !j.is_empty()),
        problem,
        rows: runs
            .iter()
            .map(|run| Row {
                run,
                review: reviews.get(run.id.as_str()),
            })
            .collect(),
        older,
    })
}

/// The filters of `query` that are set, for the next page's URL.
fn filter_params(query: &ListQuery) -> Vec<(&'static str, &str)> {
    [
        ("status", &query.status),
        ("env_name", &query.env_name),
        ("scenario_name", &query.scenario_name),
        ("model", &query.model),
        ("reward_min", &query.reward_min),
        ("reward_max", &query.reward_max),
        ("tokens_min", &query.tokens_min),
        ("duration_max", &query.duration_max),
        ("job_id", &query.job_id),
        ("label", &query.label),
        ("reviewed", &query.reviewed),
    ]
    .into_iter()
    .filter_map(|(key, value)| Some((key, value.as_deref().filter(|v| !v.is_empty())?)))
    .collect()
}

pub(crate) async fn load(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<(RunRecord, Vec<RunEvent>), ApiError> {
    let run = state
        .store
        .get_run(&caller.project_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("trace_not_found", format!("trace '{id}' not found")))?;
    let events = state.store.list_events(run.id.as_str(), 0, 10_000).await?;
    Ok((run, events))
}

/// `timeline.html` alone.
#[derive(Template)]
#[template(path = "timeline.html")]
pub(crate) struct Timeline<'a> {
    pub(crate) events: &'a [RunEvent],
}

/// The timeline alone, for the live view to refresh.
pub(crate) async fn timeline(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Page {
    let (_, events) = load(&state, &caller, &id).await?;
    render(&Timeline { events: &events })
}

/// `trace.html`.
#[derive(Template)]
#[template(path = "trace.html")]
struct TracePage<'a> {
    section: &'a str,
    run: &'a RunRecord,
    events: &'a [RunEvent],
    cost: Option<f64>,
    panel: Panel,
}

/// One trace, with the review panel.
pub(crate) async fn page(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Page {
    let (run, events) = load(&state, &caller, &id).await?;
    let panel = Panel::load(&state, &caller, &run, None).await?;
    render(&TracePage {
        section: "/traces",
        run: &run,
        events: &events,
        cost: crate::views::cost_usd(&state, &run),
        panel,
    })
}
