//! Human review of traces: score configs (`/v1/score-configs`), and on a trace its scores,
//! labels, notes, reward override, the whole review and its history
//! (`/v1/traces/{id}/...`).
//!
//! A score is checked against its config (422 listing every problem); a score of a name
//! with no config must be a number. Every change names its author: the API key's name, or
//! the reviewer name the request gives (`author`). A trace of another project is 404, as
//! if it did not exist.

use crate::auth::Caller;
use crate::error::{ApiError, problem};
use crate::json::{ApiJson, ApiQuery};
use crate::state::AppState;
use crate::views::reviews as views;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, patch};
use axum::{Extension, Json, Router};
use rollout_api::reviews::{
    AuthorQuery, Deleted, HistoryList, LabelList, LabelsRequest, NoteList, NoteRequest, NoteView,
    ReviewView, RewardOverrideRequest, RewardOverrideView, ScoreConfigList, ScoreConfigRequest,
    ScoreConfigView, ScoreList, ScoreRequest, ScoreView,
};
use rollout_store::{NewScore, Reviewer, RunRecord, ScoreConfig, ScoreKind, ScoreValue};
use serde_json::Value;

/// Longest score, label or reviewer name.
const MAX_NAME_CHARS: usize = 100;
/// Longest note, comment or reason.
const MAX_TEXT_CHARS: usize = 20_000;
/// Most categories of a categorical score.
const MAX_CATEGORIES: usize = 50;
/// Most labels added by one request.
const MAX_LABELS_PER_REQUEST: usize = 50;

/// The routes of this module (behind the API key, like the rest of `/v1`).
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/score-configs", get(list_configs).post(create_config))
        .route(
            "/v1/score-configs/{name}",
            get(get_config).put(put_config).delete(delete_config),
        )
        .route("/v1/traces/{id}/review", get(review))
        .route("/v1/traces/{id}/history", get(history))
        .route("/v1/traces/{id}/scores", get(list_scores).post(add_score))
        .route("/v1/traces/{id}/scores/{score_id}", delete(delete_score))
        .route("/v1/traces/{id}/labels", get(list_labels).post(add_labels))
        .route("/v1/traces/{id}/labels/{label}", delete(remove_label))
        .route("/v1/traces/{id}/notes", get(list_notes).post(add_note))
        .route(
            "/v1/traces/{id}/notes/{note_id}",
            patch(edit_note).delete(delete_note),
        )
        .route(
            "/v1/traces/{id}/reward-override",
            get(get_override).put(put_override).delete(clear_override),
        )
}

/// The trace of the caller's project, or 404.
pub(crate) async fn trace_of(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<RunRecord, ApiError> {
    state
        .store
        .get_run(&caller.project_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("trace_not_found", format!("trace '{id}' not found")))
}

/// A name (score, label, reviewer): 1 to 100 characters, no control characters, no commas
/// (lists of them are comma-separated in query strings), not only spaces.
pub(crate) fn check_name(field: &str, name: &str, problems: &mut Vec<Value>) {
    let chars = name.chars().count();
    if name.trim().is_empty() || chars > MAX_NAME_CHARS {
        problems.push(problem(
            field,
            format!("{field} must have 1 to {MAX_NAME_CHARS} characters, got {chars}"),
        ));
    } else if name.chars().any(|c| c.is_control() || c == ',') {
        problems.push(problem(
            field,
            format!("{field} must not contain commas or control characters"),
        ));
    } else if name.trim() != name {
        problems.push(problem(
            field,
            format!("{field} must not start or end with spaces"),
        ));
    }
}

fn check_text(field: &str, text: &str, required: bool, problems: &mut Vec<Value>) {
    let chars = text.chars().count();
    if required && text.trim().is_empty() {
        problems.push(problem(field, format!("{field} must not be empty")));
    } else if chars > MAX_TEXT_CHARS {
        problems.push(problem(
            field,
            format!("{field} must have at most {MAX_TEXT_CHARS} characters, got {chars}"),
        ));
    }
}

/// Who the change is by: the reviewer named, else the key's name.
pub(crate) fn reviewer(
    caller: &Caller,
    author: Option<&str>,
    problems: &mut Vec<Value>,
) -> Reviewer {
    named_reviewer(caller, "author", author, problems)
}

/// [`reviewer`], with the name given in `field`.
pub(crate) fn named_reviewer(
    caller: &Caller,
    field: &str,
    author: Option<&str>,
    problems: &mut Vec<Value>,
) -> Reviewer {
    let author = match author {
        Some(author) => {
            check_name(field, author, problems);
            author.to_string()
        }
        None => caller.key_name.clone(),
    };
    Reviewer {
        author,
        key_id: caller.key_id.clone(),
    }
}

pub(crate) fn done(problems: Vec<Value>) -> Result<(), ApiError> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(problems))
    }
}

fn config_not_found(name: &str) -> ApiError {
    ApiError::not_found(
        "score_config_not_found",
        format!("score config '{name}' not found"),
    )
}

/// The config a request describes, or 422 listing every problem.
fn config_from(name: &str, request: &ScoreConfigRequest) -> Result<ScoreConfig, ApiError> {
    let mut problems = Vec::new();
    check_name("name", name, &mut problems);
    let kind = match &request.categories {
        Some(categories) => {
            if request.min.is_some() || request.max.is_some() {
                problems.push(problem(
                    "categories",
                    "a score has either categories or a numeric range (min, max), not both",
                ));
            }
            if categories.is_empty() || categories.len() > MAX_CATEGORIES {
                problems.push(problem(
                    "categories",
                    format!("give 1 to {MAX_CATEGORIES} categories"),
                ));
            }
            for (index, category) in categories.iter().enumerate() {
                check_name(&format!("categories[{index}]"), category, &mut problems);
                if categories[..index].contains(category) {
                    problems.push(problem(
                        &format!("categories[{index}]"),
                        format!("category '{category}' is given twice"),
                    ));
                }
            }
            ScoreKind::Categorical {
                categories: categories.clone(),
            }
        }
        None => {
            for (field, bound) in [("min", request.min), ("max", request.max)] {
                if bound.is_some_and(|b| !b.is_finite()) {
                    problems.push(problem(field, format!("{field} must be a finite number")));
                }
            }
            if let (Some(min), Some(max)) = (request.min, request.max)
                && min > max
            {
                problems.push(problem(
                    "max",
                    format!("max ({max}) must not be below min ({min})"),
                ));
            }
            ScoreKind::Numeric {
                min: request.min,
                max: request.max,
            }
        }
    };
    if let Some(description) = &request.description {
        check_text("description", description, false, &mut problems);
    }
    done(problems)?;
    Ok(ScoreConfig {
        name: name.to_string(),
        kind,
        description: request.description.clone(),
        created_at_ms: 0,
        updated_at_ms: 0,
    })
}

/// `GET /v1/score-configs`.
async fn list_configs(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<ScoreConfigList>, ApiError> {
    let configs = state.store.score_configs(&caller.project_id).await?;
    Ok(Json(ScoreConfigList {
        score_configs: configs.iter().map(views::score_config).collect(),
    }))
}

async fn saved_config(
    state: &AppState,
    caller: &Caller,
    name: &str,
) -> Result<ScoreConfigView, ApiError> {
    let config = state
        .store
        .score_config(&caller.project_id, name)
        .await?
        .ok_or_else(|| config_not_found(name))?;
    Ok(views::score_config(&config))
}

/// `POST /v1/score-configs` (admin): 201, or 409 when the name is taken.
async fn create_config(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(request): ApiJson<ScoreConfigRequest>,
) -> Result<(StatusCode, Json<ScoreConfigView>), ApiError> {
    caller.require_admin("defining scores")?;
    let Some(name) = request.name.clone() else {
        return Err(ApiError::invalid(vec![problem("name", "name is required")]));
    };
    let config = config_from(&name, &request)?;
    if state
        .store
        .score_config(&caller.project_id, &name)
        .await?
        .is_some()
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "score_config_exists",
            format!("score config '{name}' exists; change it with PUT /v1/score-configs/{name}"),
        ));
    }
    state
        .store
        .put_score_config(&caller.project_id, &config)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(saved_config(&state, &caller, &name).await?),
    ))
}

/// `GET /v1/score-configs/{name}`.
async fn get_config(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Json<ScoreConfigView>, ApiError> {
    Ok(Json(saved_config(&state, &caller, &name).await?))
}

/// `PUT /v1/score-configs/{name}` (admin): creates or replaces. Scores already recorded
/// stay as they were.
async fn put_config(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    ApiJson(request): ApiJson<ScoreConfigRequest>,
) -> Result<(StatusCode, Json<ScoreConfigView>), ApiError> {
    caller.require_admin("defining scores")?;
    if let Some(given) = &request.name
        && *given != name
    {
        return Err(ApiError::invalid(vec![problem(
            "name",
            format!("the body's name '{given}' is not the path's '{name}'"),
        )]));
    }
    let config = config_from(&name, &request)?;
    let created = state
        .store
        .put_score_config(&caller.project_id, &config)
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(saved_config(&state, &caller, &name).await?)))
}

/// `DELETE /v1/score-configs/{name}` (admin). Scores of that name stay.
async fn delete_config(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Json<Deleted>, ApiError> {
    caller.require_admin("defining scores")?;
    if !state
        .store
        .delete_score_config(&caller.project_id, &name)
        .await?
    {
        return Err(config_not_found(&name));
    }
    Ok(Json(Deleted { deleted: true }))
}

/// `GET /v1/traces/{id}/review`: scores, labels, notes, override, reviewed.
async fn review(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<ReviewView>, ApiError> {
    let run = trace_of(&state, &caller, &id).await?;
    let review = state
        .store
        .trace_review(&caller.project_id, run.id.as_str())
        .await?;
    Ok(Json(views::review(run.id.as_str(), run.reward, &review)))
}

/// `GET /v1/traces/{id}/history`: every change, oldest first.
async fn history(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<HistoryList>, ApiError> {
    let run = trace_of(&state, &caller, &id).await?;
    let history = state
        .store
        .review_history(&caller.project_id, run.id.as_str())
        .await?;
    Ok(Json(HistoryList {
        trace_id: run.id.to_string(),
        history: history.iter().map(views::history_entry).collect(),
    }))
}

/// `GET /v1/traces/{id}/scores`.
async fn list_scores(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<ScoreList>, ApiError> {
    let run = trace_of(&state, &caller, &id).await?;
    let scores = state
        .store
        .trace_scores(&caller.project_id, run.id.as_str())
        .await?;
    Ok(Json(ScoreList {
        scores: scores.iter().map(views::score).collect(),
    }))
}

/// The value of a score, checked against its config (`None`: no config, a number only).
fn score_value(
    config: Option<&ScoreConfig>,
    value: &Value,
    problems: &mut Vec<Value>,
) -> ScoreValue {
    let name = config.map_or("this score", |c| c.name.as_str());
    match (config.map(|c| &c.kind), value) {
        (None | Some(ScoreKind::Numeric { .. }), Value::Number(number)) => {
            let number = number.as_f64().unwrap_or(f64::NAN);
            if let Some(ScoreKind::Numeric { min, max }) = config.map(|c| &c.kind)
                && (min.is_some_and(|min| number < min) || max.is_some_and(|max| number > max))
            {
                let bound = |b: &Option<f64>| b.map_or("any".to_string(), |b| b.to_string());
                problems.push(problem(
                    "value",
                    format!(
                        "{name} must be between {} and {}, got {number}",
                        bound(min),
                        bound(max)
                    ),
                ));
            }
            ScoreValue::Number(number)
        }
        (None, _) => {
            problems.push(problem(
                "value",
                "a score without a score config must be a number (define categories with \
                 POST /v1/score-configs)",
            ));
            ScoreValue::Number(0.0)
        }
        (Some(ScoreKind::Numeric { .. }), other) => {
            problems.push(problem(
                "value",
                format!("{name} is numeric: give a number, got {other}"),
            ));
            ScoreValue::Number(0.0)
        }
        (Some(ScoreKind::Categorical { categories }), Value::String(category)) => {
            if !categories.contains(category) {
                problems.push(problem(
                    "value",
                    format!(
                        "'{category}' is not a category of {name}; its categories: {}",
                        categories.join(", ")
                    ),
                ));
            }
            ScoreValue::Category(category.clone())
        }
        (Some(ScoreKind::Categorical { categories }), other) => {
            problems.push(problem(
                "value",
                format!(
                    "{name} is categorical: give one of {}, got {other}",
                    categories.join(", ")
                ),
            ));
            ScoreValue::Number(0.0)
        }
    }
}

/// `POST /v1/traces/{id}/scores`: 201 for a new score, 200 when the author's score of that
/// name was edited (the old value is in the history).
pub(crate) async fn add_score(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<ScoreRequest>,
) -> Result<(StatusCode, Json<ScoreView>), ApiError> {
    let run = trace_of(&state, &caller, &id).await?;
    let mut problems = Vec::new();
    check_name("name", &request.name, &mut problems);
    let config = if problems.is_empty() {
        state
            .store
            .score_config(&caller.project_id, &request.name)
            .await?
    } else {
        None
    };
    let value = score_value(config.as_ref(), &request.value, &mut problems);
    if let Some(comment) = &request.comment {
        check_text("comment", comment, false, &mut problems);
    }
    let reviewer = reviewer(&caller, request.author.as_deref(), &mut problems);
    done(problems)?;
    let score = NewScore {
        name: request.name.clone(),
        value,
        comment: request.comment.clone(),
    };
    let (record, created) = state
        .store
        .record_score(&caller.project_id, run.id.as_str(), &reviewer, &score)
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(views::score(&record))))
}

/// `DELETE /v1/traces/{id}/scores/{score_id}`.
async fn delete_score(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((id, score_id)): Path<(String, String)>,
    ApiQuery(query): ApiQuery<AuthorQuery>,
) -> Result<Json<Deleted>, ApiError> {
    let run = trace_of(&state, &caller, &id).await?;
    let mut problems = Vec::new();
    let reviewer = reviewer(&caller, query.author.as_deref(), &mut problems);
    done(problems)?;
    if !state
        .store
        .delete_score(&caller.project_id, run.id.as_str(), &score_id, &reviewer)
        .await?
    {
        return Err(ApiError::not_found(
            "score_not_found",
            format!("trace '{id}' has no score '{score_id}'"),
        ));
    }
    Ok(Json(Deleted { deleted: true }))
}

async fn label_list(
    state: &AppState,
    caller: &Caller,
    run: &RunRecord,
    added: Option<Vec<String>>,
) -> Result<LabelList, ApiError> {
    let labels = state
        .store
        .trace_labels(&caller.project_id, run.id.as_str())
        .await?;
    Ok(LabelList {
        trace_id: run.id.to_string(),
        labels: labels.iter().map(views::label).collect(),
        added,
    })
}

/// `GET /v1/traces/{id}/labels`.
async fn list_labels(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<LabelList>, ApiError> {
    let run = trace_of(&state, &caller, &id).await?;
    Ok(Json(label_list(&state, &caller, &run, None).await?))
}

/// `POST /v1/traces/{id}/labels`: adds the labels not there yet; answers every label.
pub(crate) async fn add_labels(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<LabelsRequest>,
) -> Result<Json<LabelList>, ApiError> {
    let run = trace_of(&state, &caller, &id).await?;
    let mut labels: Vec<String> = request.label.iter().cloned().collect();
    labels.extend(request.labels.iter().flatten().cloned());
    let mut problems = Vec::new();
    if labels.is_empty() || labels.len() > MAX_LABELS_PER_REQUEST {
        problems.push(problem(
            "labels",
            format!("give 1 to {MAX_LABELS_PER_REQUEST} labels (label or labels)"),
        ));
    }
    for (index, label) in labels.iter().enumerate() {
        check_name(&format!("labels[{index}]"), label, &mut problems);
    }
    let reviewer = reviewer(&caller, request.author.as_deref(), &mut problems);
    done(problems)?;
    let mut added = Vec::new();
    for label in labels {
        let (_, created) = state
            .store
            .add_label(&caller.project_id, run.id.as_str(), &label, &reviewer)
            .await?;
        if created {
            added.push(label);
        }
    }
    Ok(Json(label_list(&state, &caller, &run, Some(added)).await?))
}

/// `DELETE /v1/traces/{id}/labels/{label}`.
pub(crate) async fn remove_label(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((id, label)): Path<(String, String)>,
    ApiQuery(query): ApiQuery<AuthorQuery>,
) -> Result<Json<Deleted>, ApiError> {
    let run = trace_of(&state, &caller, &id).await?;
    let mut problems = Vec::new();
    let reviewer = reviewer(&caller, query.author.as_deref(), &mut problems);
    done(problems)?;
    if !state
        .store
        .remove_label(&caller.project_id, run.id.as_str(), &label, &reviewer)
        .await?
    {
        return Err(ApiError::not_found(
            "label_not_found",
            format!("trace '{id}' has no label '{label}'"),
        ));
    }
    Ok(Json(Deleted { deleted: true }))
}

/// `GET /v1/traces/{id}/notes`.
async fn list_notes(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<NoteList>, ApiError> {
    let run = trace_of(&state, &caller, &id).await?;
    let notes = state
        .store
        .trace_notes(&caller.project_id, run.id.as_str())
        .await?;
    Ok(Json(NoteList {
        notes: notes.iter().map(views::note).collect(),
    }))
}

/// `POST /v1/traces/{id}/notes`: 201.
pub(crate) async fn add_note(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<NoteRequest>,
) -> Result<(StatusCode, Json<NoteView>), ApiError> {
    let run = trace_of(&state, &caller, &id).await?;
    let mut problems = Vec::new();
    check_text("body", &request.body, true, &mut problems);
    let reviewer = reviewer(&caller, request.author.as_deref(), &mut problems);
    done(problems)?;
    let note = state
        .store
        .add_note(
            &caller.project_id,
            run.id.as_str(),
            &request.body,
            &reviewer,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(views::note(&note))))
}

fn note_not_found(id: &str, note_id: &str) -> ApiError {
    ApiError::not_found(
        "note_not_found",
        format!("trace '{id}' has no note '{note_id}'"),
    )
}

/// `PATCH /v1/traces/{id}/notes/{note_id}`: new text; the old one stays in the history.
async fn edit_note(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((id, note_id)): Path<(String, String)>,
    ApiJson(request): ApiJson<NoteRequest>,
) -> Result<Json<NoteView>, ApiError> {
    let run = trace_of(&state, &caller, &id).await?;
    let mut problems = Vec::new();
    check_text("body", &request.body, true, &mut problems);
    let reviewer = reviewer(&caller, request.author.as_deref(), &mut problems);
    done(problems)?;
    let note = state
        .store
        .edit_note(
            &caller.project_id,
            run.id.as_str(),
            &note_id,
            &request.body,
            &reviewer,
        )
        .await?
        .ok_or_else(|| note_not_found(&id, &note_id))?;
    Ok(Json(views::note(&note)))
}

/// `DELETE /v1/traces/{id}/notes/{note_id}`.
async fn delete_note(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((id, note_id)): Path<(String, String)>,
    ApiQuery(query): ApiQuery<AuthorQuery>,
) -> Result<Json<Deleted>, ApiError> {
    let run = trace_of(&state, &caller, &id).await?;
    let mut problems = Vec::new();
    let reviewer = reviewer(&caller, query.author.as_deref(), &mut problems);
    done(problems)?;
    if !state
        .store
        .delete_note(&caller.project_id, run.id.as_str(), &note_id, &reviewer)
        .await?
    {
        return Err(note_not_found(&id, &note_id));
    }
    Ok(Json(Deleted { deleted: true }))
}

fn no_override(id: &str) -> ApiError {
    ApiError::not_found(
        "reward_override_not_found",
        format!("trace '{id}' has no reward override"),
    )
}

/// `GET /v1/traces/{id}/reward-override`.
async fn get_override(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<RewardOverrideView>, ApiError> {
    let run = trace_of(&state, &caller, &id).await?;
    let review = state
        .store
        .trace_review(&caller.project_id, run.id.as_str())
        .await?;
    let record = review.reward_override.ok_or_else(|| no_override(&id))?;
    Ok(Json(views::reward_override(&record, run.reward)))
}

/// `PUT /v1/traces/{id}/reward-override`: a finite reward and a reason. Metrics and
/// datasets use it from now on; the grader's reward stays as it was.
pub(crate) async fn put_override(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<RewardOverrideRequest>,
) -> Result<Json<RewardOverrideView>, ApiError> {
    let run = trace_of(&state, &caller, &id).await?;
    let mut problems = Vec::new();
    if !request.reward.is_finite() {
        problems.push(problem("reward", "reward must be a finite number"));
    }
    check_text("reason", &request.reason, true, &mut problems);
    let reviewer = reviewer(&caller, request.author.as_deref(), &mut problems);
    done(problems)?;
    let record = state
        .store
        .set_reward_override(
            &caller.project_id,
            run.id.as_str(),
            request.reward,
            &request.reason,
            &reviewer,
        )
        .await?;
    Ok(Json(views::reward_override(&record, run.reward)))
}

/// `DELETE /v1/traces/{id}/reward-override`: back to the grader's reward.
async fn clear_override(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<AuthorQuery>,
) -> Result<Json<Deleted>, ApiError> {
    let run = trace_of(&state, &caller, &id).await?;
    let mut problems = Vec::new();
    let reviewer = reviewer(&caller, query.author.as_deref(), &mut problems);
    done(problems)?;
    if !state
        .store
        .clear_reward_override(&caller.project_id, run.id.as_str(), &reviewer)
        .await?
    {
        return Err(no_override(&id));
    }
    Ok(Json(Deleted { deleted: true }))
}
