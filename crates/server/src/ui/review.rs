//! The review panel of a trace page (scores from the project's configs, with keys 1–9 for
//! the first categorical score's categories; labels with completion; notes; the reward
//! override) and `/review/{queue}`, which walks a review queue trace by trace. The panel's
//! buttons call the review API through cookie-authenticated `/ui/...` routes
//! (`assets/review.js`); after each change the page reloads from the server.

use super::Page;
use super::html::{esc, layout, reward, time, url_encode};
use super::traces::{load, trace_body};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::routes::review_queues::queue_of;
use crate::state::AppState;
use axum::Extension;
use axum::extract::{Path, Query, State};
use rollout_store::{RunRecord, ScoreKind, ScoreValue};
use serde::Deserialize;
use std::fmt::Write as _;

/// The review panel of `run`, for the trace page and the queue page. `reviewer`: the name
/// the panel records under (none: the key's name).
pub(crate) async fn panel(
    state: &AppState,
    caller: &Caller,
    run: &RunRecord,
) -> Result<String, ApiError> {
    panel_as(state, caller, run, None).await
}

async fn panel_as(
    state: &AppState,
    caller: &Caller,
    run: &RunRecord,
    reviewer: Option<&str>,
) -> Result<String, ApiError> {
    let review = state
        .store
        .trace_review(&caller.project_id, run.id.as_str())
        .await?;
    let configs = state.store.score_configs(&caller.project_id).await?;
    let known = state.store.project_labels(&caller.project_id).await?;
    let mut html = format!(
        "<section class=\"card\" id=\"review\" data-trace=\"{}\"{}><div class=\"head\"><h2>Review</h2><span class=\"small muted\" id=\"reviewed-marker\">{}</span></div><div class=\"review-grid\">",
        esc(run.id.as_str()),
        reviewer
            .map(|r| format!(" data-reviewer=\"{}\"", esc(r)))
            .unwrap_or_default(),
        if review.reviewed_at_ms.is_some() {
            "✓ reviewed"
        } else {
            "not reviewed yet"
        }
    );

    // Scores: one control per config, then what was given.
    html.push_str("<div id=\"review-scores\"><h3>Scores</h3>");
    let mut first_categorical = true;
    for config in &configs {
        let name = esc(&config.name);
        let description = config
            .description
            .as_deref()
            .map(|d| format!(" <span class=\"small muted\">{}</span>", esc(d)))
            .unwrap_or_default();
        match &config.kind {
            ScoreKind::Categorical { categories } => {
                let _ = write!(
                    html,
                    "<div class=\"score-config\"><div class=\"small\"><strong>{name}</strong>{description}</div>"
                );
                for (index, category) in categories.iter().enumerate() {
                    // Keys 1–9 pick the first categorical score's categories.
                    let (key, hint) = if first_categorical && index < 9 {
                        (
                            format!(" data-key=\"{}\"", index + 1),
                            format!("<kbd>{}</kbd> ", index + 1),
                        )
                    } else {
                        (String::new(), String::new())
                    };
                    let _ = write!(
                        html,
                        "<button type=\"button\" class=\"score-cat\" data-score=\"{name}\" data-value=\"{value}\"{key}>{hint}{value}</button> ",
                        value = esc(category)
                    );
                }
                html.push_str("</div>");
                first_categorical = false;
            }
            ScoreKind::Numeric { min, max } => {
                let range = match (min, max) {
                    (Some(min), Some(max)) => format!(" ({min} to {max})"),
                    (Some(min), None) => format!(" (≥ {min})"),
                    (None, Some(max)) => format!(" (≤ {max})"),
                    (None, None) => String::new(),
                };
                let _ = write!(
                    html,
                    "<div class=\"score-config\"><label for=\"score-{name}\">{name}{range}{description}</label><input id=\"score-{name}\" class=\"score-number\" data-score=\"{name}\" inputmode=\"decimal\"> <button type=\"button\" class=\"score-save\" data-score=\"{name}\">Save</button></div>"
                );
            }
        }
    }
    if configs.is_empty() {
        html.push_str("<p class=\"small muted\">No score configs in this project (POST /v1/score-configs).</p>");
    }
    html.push_str("<ul id=\"score-list\" class=\"small\">");
    for score in &review.scores {
        let value = match &score.value {
            ScoreValue::Number(number) => number.to_string(),
            ScoreValue::Category(category) => category.clone(),
        };
        let _ = write!(
            html,
            "<li data-score=\"{}\"><strong>{}</strong>: {} <span class=\"muted\">— {}{}</span></li>",
            esc(&score.name),
            esc(&score.name),
            esc(&value),
            esc(&score.author),
            score
                .comment
                .as_deref()
                .map(|c| format!(": {}", esc(c)))
                .unwrap_or_default()
        );
    }
    html.push_str("</ul></div>");

    // Labels, with completion from the project's labels.
    html.push_str("<div id=\"review-labels\"><h3>Labels</h3><div id=\"label-chips\">");
    for label in &review.labels {
        let _ = write!(
            html,
            "<span class=\"chip\" data-label=\"{0}\">{0} <button type=\"button\" class=\"link remove-label\" data-label=\"{0}\" title=\"remove\">×</button></span> ",
            esc(&label.label)
        );
    }
    html.push_str("</div><input id=\"label-input\" list=\"known-labels\" placeholder=\"wrong-tool\" autocomplete=\"off\"> <button type=\"button\" id=\"label-add\">Add</button><datalist id=\"known-labels\">");
    for label in &known {
        let _ = write!(html, "<option value=\"{}\"></option>", esc(label));
    }
    html.push_str("</datalist></div>");

    // Notes.
    html.push_str("<div id=\"review-notes\"><h3>Notes</h3>");
    for note in &review.notes {
        let edited = note
            .updated_by
            .as_deref()
            .map(|by| format!(" · edited by {}", esc(by)))
            .unwrap_or_default();
        let _ = write!(
            html,
            "<div class=\"note\"><div class=\"small muted\">{} · {}{edited}</div><div class=\"text\">{}</div></div>",
            esc(&note.author),
            time(note.created_at_ms),
            esc(&note.body)
        );
    }
    html.push_str("<textarea id=\"note-body\" rows=\"2\" placeholder=\"What went wrong?\"></textarea><button type=\"button\" id=\"note-add\">Add note</button></div>");

    // The reward override.
    let current = review
        .reward_override
        .as_ref()
        .map(|o| {
            format!(
                "<p class=\"small\" id=\"override-current\">Overridden to <strong>{}</strong> by {}: {} (grader: {})</p>",
                o.reward,
                esc(&o.author),
                esc(&o.reason),
                reward(run.reward)
            )
        })
        .unwrap_or_else(|| {
            format!(
                "<p class=\"small muted\" id=\"override-current\">Grader's reward: {}</p>",
                reward(run.reward)
            )
        });
    let _ = write!(
        html,
        "<div id=\"review-override\"><h3>Reward override</h3>{current}<label for=\"override-reward\">Reward</label><input id=\"override-reward\" inputmode=\"decimal\"><label for=\"override-reason\">Reason</label><input id=\"override-reason\"> <button type=\"button\" id=\"override-save\">Override</button></div>"
    );
    html.push_str("</div><p id=\"review-error\" class=\"small error-text\"></p></section>");
    html.push_str(&super::assets::script("review.js"));
    Ok(html)
}

/// `?reviewer=` of the queue page.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ReviewerParams {
    reviewer: Option<String>,
}

/// `GET /review/{queue}`: the reviewer's next trace of the queue (held for them), its
/// review panel and "Complete and next"; "all done" at the end.
pub(crate) async fn queue_page(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(queue): Path<String>,
    Query(params): Query<ReviewerParams>,
) -> Page {
    let queue = queue_of(&state, &caller, &queue).await?;
    let mut problems = Vec::new();
    let given = params.reviewer.as_deref().filter(|r| !r.trim().is_empty());
    let reviewer =
        crate::routes::reviews::named_reviewer(&caller, "reviewer", given, &mut problems);
    crate::routes::reviews::done(problems)?;
    let item = state
        .store
        .next_review_item(
            &queue.id,
            &reviewer.author,
            queue.lease_seconds.saturating_mul(1000),
        )
        .await?;
    let progress = state.store.review_queue_progress(&queue.id).await?;
    let mut body = format!(
        "<p class=\"small\"><a href=\"/traces\">← Traces</a></p><section class=\"card\" id=\"queue\" data-queue=\"{id}\"><div class=\"head\"><h1>Review · {name}</h1><span id=\"queue-progress\">{done} / {total} done</span></div>{description}<p class=\"small muted\">reviewing as <strong id=\"queue-reviewer\">{reviewer}</strong></p></section>",
        id = esc(&queue.id),
        name = esc(&queue.name),
        done = progress.done,
        total = progress.total,
        description = queue
            .description
            .as_deref()
            .map(|d| format!("<p>{}</p>", esc(d)))
            .unwrap_or_default(),
        reviewer = esc(&reviewer.author),
    );
    let Some(item) = item else {
        body.push_str("<section class=\"card\" id=\"queue-done\"><h2>All done</h2><p>No trace of this queue is left to review.</p></section>");
        return Ok(layout("Review", "/traces", &body));
    };
    let (run, events) = load(&state, &caller, &item.run_id).await?;
    let next_href = match given {
        Some(name) => format!(
            "/review/{}?reviewer={}",
            url_encode(&queue.id),
            url_encode(name)
        ),
        None => format!("/review/{}", url_encode(&queue.id)),
    };
    let _ = write!(
        body,
        "<p><button type=\"button\" id=\"review-complete\" data-queue=\"{}\" data-next=\"{}\">Complete and next →</button> <span class=\"small muted\">held for you until {}</span></p>",
        esc(&queue.id),
        esc(&next_href),
        time(item.lease_expires_at_ms)
    );
    body.push_str(&panel_as(&state, &caller, &run, given).await?);
    body.push_str(&trace_body(&state, &run, &events));
    Ok(layout("Review", "/traces", &body))
}
