//! Traces: one run with its events, and the list of runs.

use crate::auth::Caller;
use crate::error::{ApiError, problem};
use crate::json::ApiQuery;
use crate::state::AppState;
use crate::views;
use axum::extract::{Path, State};
use axum::{Extension, Json};
use rollout_api::runs::{Trace, TraceList, TraceListItem};
use rollout_domain::RunStatus;
use rollout_store::{RewardSource, ScoreFilter, TraceQuery};

/// Most events one request may ask for; longer traces are paged with `events_after`.
const MAX_EVENTS: i64 = 10_000;
/// Events returned by default: a page, not the whole trace.
const DEFAULT_EVENTS: i64 = 500;
/// A page also ends once it holds about this much event JSON (at least one event), so that
/// a trace of long events is fetched in bounded responses.
const PAGE_BYTES: usize = 8 * 1024 * 1024;

/// Options of `GET /v1/traces/{id}`.
pub(crate) use rollout_api::runs::TraceQuery as GetQuery;

/// `GET /v1/traces/{id}`: the run and a page of its events (`events_next_after` names the
/// next page, `null` after the last).
pub(crate) async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<GetQuery>,
) -> Result<Json<Trace>, ApiError> {
    let include_events = query
        .include
        .as_deref()
        .is_none_or(|include| include.split(',').any(|part| part.trim() == "events"));
    let after = query.events_after.unwrap_or(0);
    let limit = query.events_limit.unwrap_or(DEFAULT_EVENTS);
    let mut problems = Vec::new();
    if after < 0 {
        problems.push(problem("events_after", "events_after must be 0 or more"));
    }
    if !(1..=MAX_EVENTS).contains(&limit) {
        problems.push(problem(
            "events_limit",
            format!("events_limit must be between 1 and {MAX_EVENTS}, got {limit}"),
        ));
    }
    if !problems.is_empty() {
        return Err(ApiError::invalid(problems));
    }
    let run = state
        .store
        .get_run(&caller.project_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("trace_not_found", format!("trace '{id}' not found")))?;
    let events = if include_events {
        state
            .store
            .list_events_page(run.id.as_str(), after, limit, PAGE_BYTES)
            .await?
    } else {
        Vec::new()
    };
    let position = if run.status == RunStatus::Queued {
        state.store.queue_position(run.id.as_str()).await?
    } else {
        None
    };
    let mut trace = views::trace(
        &state,
        &run,
        include_events.then_some(&events[..]),
        position,
    );
    if include_events {
        // A full page, or one cut by its size: there may be more after it.
        let last = events.last().map(|event| event.seq);
        let more = match last {
            Some(seq) => {
                events.len() as i64 == limit
                    || !state
                        .store
                        .list_events(run.id.as_str(), seq, 1)
                        .await?
                        .is_empty()
            }
            None => false,
        };
        trace.events_next_after = Some(if more { last } else { None });
    }
    Ok(Json(trace))
}

/// Filters of `GET /v1/traces`.
pub(crate) use rollout_api::runs::TraceListQuery as ListQuery;

/// The store query, or 422 listing every invalid filter. Empty values mean "any".
pub(crate) fn to_query(query: &ListQuery) -> Result<TraceQuery, ApiError> {
    let mut problems = Vec::new();
    let given = |value: &Option<String>| value.clone().filter(|v| !v.trim().is_empty());
    let status = given(&query.status).and_then(|status| match status.parse::<RunStatus>() {
        Ok(status) => Some(status),
        Err(e) => {
            problems.push(problem("status", e));
            None
        }
    });
    let mut float = |field: &str, value: &Option<String>| {
        given(value).and_then(|v| match v.trim().parse::<f64>() {
            Ok(f) if f.is_finite() => Some(f),
            _ => {
                problems.push(problem(
                    field,
                    format!("{field} must be a number, got '{v}'"),
                ));
                None
            }
        })
    };
    let reward_min = float("reward_min", &query.reward_min);
    let reward_max = float("reward_max", &query.reward_max);
    let tokens_min = float("tokens_min", &query.tokens_min).map(|f| f.ceil() as i64);
    let tokens_max = float("tokens_max", &query.tokens_max).map(|f| f.floor() as i64);
    let duration_min_ms =
        float("duration_min", &query.duration_min).map(|f| (f * 1000.0).ceil() as i64);
    let duration_max_ms =
        float("duration_max", &query.duration_max).map(|f| (f * 1000.0).floor() as i64);
    let mut time = |field: &str, value: &Option<String>| {
        given(value).and_then(|v| match crate::routes::usage::parse_time(&v) {
            Some(ms) => Some(ms),
            None => {
                problems.push(problem(
                    field,
                    format!("{field} must be an RFC 3339 time, a date (YYYY-MM-DD) or unix milliseconds, got '{v}'"),
                ));
                None
            }
        })
    };
    let from_ms = time("from", &query.from);
    let to_ms = time("to", &query.to);
    let limit = match given(&query.limit) {
        None => 50,
        Some(v) => match v.trim().parse::<i64>() {
            Ok(limit) if (1..=500).contains(&limit) => limit,
            _ => {
                problems.push(problem(
                    "limit",
                    format!("limit must be between 1 and 500, got {v}"),
                ));
                50
            }
        },
    };
    if query.metadata_value.is_some() && given(&query.metadata_key).is_none() {
        problems.push(problem("metadata_key", "metadata_value needs metadata_key"));
    }
    let review = review_filters(query, &mut problems);
    if !problems.is_empty() {
        return Err(ApiError::invalid(problems));
    }
    Ok(TraceQuery {
        status,
        env_name: given(&query.env_name),
        scenario: given(&query.scenario_name),
        model: given(&query.model),
        reward_min,
        reward_max,
        from_ms,
        to_ms,
        metadata_key: given(&query.metadata_key),
        metadata_value: query.metadata_value.clone(),
        job_id: given(&query.job_id),
        tokens_min,
        tokens_max,
        duration_min_ms,
        duration_max_ms,
        before: given(&query.cursor),
        limit,
        ..review
    })
}

/// The filters on what people recorded: labels, scores, reviewed, overridden, and
/// which reward the reward bounds read.
fn review_filters(query: &ListQuery, problems: &mut Vec<serde_json::Value>) -> TraceQuery {
    let list = |value: &Option<String>| -> Vec<String> {
        value
            .iter()
            .flat_map(|v| v.split(','))
            .map(|label| label.trim().to_string())
            .filter(|label| !label.is_empty())
            .collect()
    };
    let mut flag = |field: &str, value: &Option<String>| match value.as_deref().map(str::trim) {
        None | Some("") => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(other) => {
            problems.push(problem(
                field,
                format!("{field} must be true or false, got '{other}'"),
            ));
            None
        }
    };
    let reviewed = flag("reviewed", &query.reviewed);
    let overridden = flag("overridden", &query.overridden);
    let mut bound = |field: &str, value: &Option<String>| {
        let text = value.as_deref().map(str::trim).filter(|v| !v.is_empty())?;
        match text.parse::<f64>() {
            Ok(number) if number.is_finite() => Some(number),
            _ => {
                problems.push(problem(
                    field,
                    format!("{field} must be a number, got '{text}'"),
                ));
                None
            }
        }
    };
    let score_min = bound("score_min", &query.score_min);
    let score_max = bound("score_max", &query.score_max);
    let score_name = query
        .score_name
        .as_deref()
        .map(str::trim)
        .filter(|name| !name.is_empty());
    let scores = match score_name {
        Some(name) => vec![ScoreFilter {
            name: name.to_string(),
            min: score_min,
            max: score_max,
        }],
        None => {
            if score_min.is_some() || score_max.is_some() {
                problems.push(problem(
                    "score_name",
                    "score_min and score_max need score_name",
                ));
            }
            Vec::new()
        }
    };
    let reward_source = match query.reward.as_deref().map(str::trim) {
        None | Some("") | Some("override") => RewardSource::Override,
        Some("grader") => RewardSource::Grader,
        Some(other) => {
            problems.push(problem(
                "reward",
                format!("reward must be 'override' or 'grader', got '{other}'"),
            ));
            RewardSource::Override
        }
    };
    TraceQuery {
        labels_all: list(&query.label),
        labels_any: list(&query.labels_any),
        labels_none: list(&query.labels_none),
        scores,
        reviewed,
        overridden,
        reward_source,
        ..TraceQuery::default()
    }
}

/// `GET /v1/traces`: newest first, with a cursor for the next page.
pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<TraceList>, ApiError> {
    let query = to_query(&query)?;
    let runs = state.store.search_runs(&caller.project_id, &query).await?;
    let next_cursor = if runs.len() as i64 == query.limit {
        runs.last().map(|r| r.id.to_string())
    } else {
        None
    };
    let ids: Vec<String> = runs.iter().map(|run| run.id.to_string()).collect();
    let reviews = state
        .store
        .review_summaries(&caller.project_id, &ids)
        .await?;
    let traces = runs
        .iter()
        .map(|run| {
            let review = reviews.get(run.id.as_str()).cloned().unwrap_or_default();
            TraceListItem {
                summary: views::run_summary(&state, run),
                labels: review.labels,
                reviewed: review.reviewed,
                reward_override: review.reward_override,
            }
        })
        .collect();
    Ok(Json(TraceList {
        traces,
        next_cursor,
    }))
}
