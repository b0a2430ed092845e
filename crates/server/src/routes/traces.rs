//! Traces: one run with its events, and the list of runs.

use crate::auth::Caller;
use crate::error::{ApiError, problem};
use crate::state::AppState;
use crate::views;
use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use rollout_domain::RunStatus;
use rollout_store::{RewardSource, ScoreFilter, TraceQuery};
use serde::Deserialize;
use serde_json::{Value, json};

/// Most events one request may ask for; longer traces are paged with `events_after`.
const MAX_EVENTS: i64 = 10_000;
/// Events returned by default: a page, not the whole trace.
const DEFAULT_EVENTS: i64 = 500;
/// A page also ends once it holds about this much event JSON (at least one event), so that
/// a trace of long events is fetched in bounded responses.
const PAGE_BYTES: usize = 8 * 1024 * 1024;

/// Options of `GET /v1/traces/{id}`.
#[derive(Debug, Deserialize)]
pub(crate) struct GetQuery {
    /// Comma-separated parts to include; without it, events are included.
    include: Option<String>,
    /// Only events with a `seq` above this (a page's `events_next_after`).
    events_after: Option<i64>,
    /// Most events to return, 1 to 10000 (default 500); a page also ends at about 8 MiB.
    events_limit: Option<i64>,
}

/// `GET /v1/traces/{id}`: the run and a page of its events (`events_next_after` names the
/// next page, `null` after the last).
pub(crate) async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Query(query): Query<GetQuery>,
) -> Result<Json<Value>, ApiError> {
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
    let mut trace = views::trace(&state, &run, &events, position);
    if let Some(object) = trace.as_object_mut() {
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
            let next = if more { last } else { None };
            object.insert("events_next_after".into(), json!(next));
        } else {
            object.remove("events");
        }
    }
    Ok(Json(trace))
}

/// Filters of `GET /v1/traces`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListQuery {
    pub(crate) status: Option<String>,
    #[serde(alias = "environment")]
    pub(crate) env_name: Option<String>,
    #[serde(alias = "scenario")]
    pub(crate) scenario_name: Option<String>,
    pub(crate) model: Option<String>,
    pub(crate) reward_min: Option<String>,
    pub(crate) reward_max: Option<String>,
    /// RFC 3339 time, date, or unix milliseconds.
    pub(crate) from: Option<String>,
    pub(crate) to: Option<String>,
    pub(crate) metadata_key: Option<String>,
    pub(crate) metadata_value: Option<String>,
    pub(crate) job_id: Option<String>,
    /// Total tokens (input + output) bounds.
    pub(crate) tokens_min: Option<String>,
    pub(crate) tokens_max: Option<String>,
    /// Duration bounds in seconds (finished runs).
    pub(crate) duration_min: Option<String>,
    pub(crate) duration_max: Option<String>,
    pub(crate) limit: Option<String>,
    pub(crate) cursor: Option<String>,
    /// Comma-separated labels the trace must all have.
    pub(crate) label: Option<String>,
    /// Comma-separated labels of which the trace must have one.
    pub(crate) labels_any: Option<String>,
    /// Comma-separated labels the trace must not have.
    pub(crate) labels_none: Option<String>,
    /// A score name: the trace has such a score (within `score_min`/`score_max`, compared
    /// with the mean over reviewers).
    pub(crate) score_name: Option<String>,
    pub(crate) score_min: Option<String>,
    pub(crate) score_max: Option<String>,
    /// `true`: only traces someone reviewed; `false`: only the others.
    pub(crate) reviewed: Option<String>,
    /// `true`: only traces whose reward is overridden; `false`: only the others.
    pub(crate) overridden: Option<String>,
    /// Which reward `reward_min`/`reward_max` compare: `override` (default: the override
    /// where there is one) or `grader`.
    pub(crate) reward: Option<String>,
}

impl ListQuery {
    /// The store query, or 422 listing every invalid filter. Empty values mean "any".
    pub(crate) fn to_query(&self) -> Result<TraceQuery, ApiError> {
        let mut problems = Vec::new();
        let given = |value: &Option<String>| value.clone().filter(|v| !v.trim().is_empty());
        let status = given(&self.status).and_then(|status| match status.parse::<RunStatus>() {
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
        let reward_min = float("reward_min", &self.reward_min);
        let reward_max = float("reward_max", &self.reward_max);
        let tokens_min = float("tokens_min", &self.tokens_min).map(|f| f.ceil() as i64);
        let tokens_max = float("tokens_max", &self.tokens_max).map(|f| f.floor() as i64);
        let duration_min_ms =
            float("duration_min", &self.duration_min).map(|f| (f * 1000.0).ceil() as i64);
        let duration_max_ms =
            float("duration_max", &self.duration_max).map(|f| (f * 1000.0).floor() as i64);
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
        let from_ms = time("from", &self.from);
        let to_ms = time("to", &self.to);
        let limit = match given(&self.limit) {
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
        if self.metadata_value.is_some() && given(&self.metadata_key).is_none() {
            problems.push(problem("metadata_key", "metadata_value needs metadata_key"));
        }
        let review = self.review_filters(&mut problems);
        if !problems.is_empty() {
            return Err(ApiError::invalid(problems));
        }
        Ok(TraceQuery {
            status,
            env_name: given(&self.env_name),
            scenario: given(&self.scenario_name),
            model: given(&self.model),
            reward_min,
            reward_max,
            from_ms,
            to_ms,
            metadata_key: given(&self.metadata_key),
            metadata_value: self.metadata_value.clone(),
            job_id: given(&self.job_id),
            tokens_min,
            tokens_max,
            duration_min_ms,
            duration_max_ms,
            before: given(&self.cursor),
            limit,
            ..review
        })
    }

    /// The filters on what people recorded: labels, scores, reviewed, overridden, and
    /// which reward the reward bounds read.
    fn review_filters(&self, problems: &mut Vec<Value>) -> TraceQuery {
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
        let reviewed = flag("reviewed", &self.reviewed);
        let overridden = flag("overridden", &self.overridden);
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
        let score_min = bound("score_min", &self.score_min);
        let score_max = bound("score_max", &self.score_max);
        let score_name = self
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
        let reward_source = match self.reward.as_deref().map(str::trim) {
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
            labels_all: list(&self.label),
            labels_any: list(&self.labels_any),
            labels_none: list(&self.labels_none),
            scores,
            reviewed,
            overridden,
            reward_source,
            ..TraceQuery::default()
        }
    }
}

/// `GET /v1/traces`: newest first, with a cursor for the next page.
pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let query = query.to_query()?;
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
    let traces: Vec<Value> = runs
        .iter()
        .map(|run| {
            let mut summary = views::run_summary(&state, run);
            let review = reviews.get(run.id.as_str()).cloned().unwrap_or_default();
            if let Some(object) = summary.as_object_mut() {
                object.insert("labels".into(), json!(review.labels));
                object.insert("reviewed".into(), json!(review.reviewed));
                object.insert("reward_override".into(), json!(review.reward_override));
            }
            summary
        })
        .collect();
    Ok(Json(
        json!({ "traces": traces, "next_cursor": next_cursor }),
    ))
}
