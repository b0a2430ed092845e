//! The review panel of a trace page (scores from the project's configs, with keys 1–9 for
//! the first categorical score's categories; labels with completion; notes; the reward
//! override) and `/review/{queue}`, which walks a review queue trace by trace. The panel's
//! buttons call the review API through cookie-authenticated `/ui/...` routes
//! (`assets/review.js`); after each change the page reloads from the server.

use super::Page;
use super::html::{render, url_encode};
use super::traces::load;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::routes::review_queues::queue_of;
use crate::state::AppState;
use askama::Template;
use axum::Extension;
use axum::extract::{Path, Query, State};
use rollout_domain::{EventKind, RunEvent};
use rollout_store::{
    ReviewQueueRecord, RunRecord, ScoreConfig, ScoreKind, ScoreValue, TraceReview,
};
use serde::Deserialize;

/// What `review_panel.html` shows of a trace.
pub(crate) struct Panel {
    pub(crate) review: TraceReview,
    pub(crate) configs: Vec<ScoreConfig>,
    pub(crate) known_labels: Vec<String>,
    /// The config whose categories get keys 1–9: the first categorical one.
    pub(crate) keyed: Option<String>,
    /// The name the panel records under (none: the key's name).
    pub(crate) reviewer: Option<String>,
}

impl Panel {
    /// The review of `run` and the project's score configs and labels.
    pub(crate) async fn load(
        state: &AppState,
        caller: &Caller,
        run: &RunRecord,
        reviewer: Option<&str>,
    ) -> Result<Self, ApiError> {
        let review = state
            .store
            .trace_review(&caller.project_id, run.id.as_str())
            .await?;
        let configs = state.store.score_configs(&caller.project_id).await?;
        let known_labels = state.store.project_labels(&caller.project_id).await?;
        let keyed = configs
            .iter()
            .find(|c| matches!(c.kind, ScoreKind::Categorical { .. }))
            .map(|c| c.name.clone());
        Ok(Self {
            review,
            configs,
            known_labels,
            keyed,
            reviewer: reviewer.map(str::to_string),
        })
    }
}

/// A numeric score's range, as shown after its name.
pub(crate) fn range(min: &Option<f64>, max: &Option<f64>) -> String {
    match (min, max) {
        (Some(min), Some(max)) => format!(" ({min} to {max})"),
        (Some(min), None) => format!(" (≥ {min})"),
        (None, Some(max)) => format!(" (≤ {max})"),
        (None, None) => String::new(),
    }
}

/// A score's value as text.
pub(crate) fn score_value(value: &ScoreValue) -> String {
    match value {
        ScoreValue::Number(number) => number.to_string(),
        ScoreValue::Category(category) => category.clone(),
    }
}

/// `?reviewer=` of the queue page.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ReviewerParams {
    pub(crate) reviewer: Option<String>,
}

/// `review_queue.html`.
#[derive(Template)]
#[template(path = "review_queue.html")]
struct QueuePage<'a> {
    section: &'a str,
    queue: &'a ReviewQueueRecord,
    done: i64,
    total: i64,
    reviewer: &'a str,
    item: Option<Item>,
}

/// The trace held for the reviewer.
struct Item {
    run: RunRecord,
    events: Vec<RunEvent>,
    cost: Option<f64>,
    panel: Panel,
    /// The page after "Complete and next".
    next_href: String,
    lease_expires_at_ms: i64,
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
    let next = state
        .store
        .next_review_item(
            &queue.id,
            &reviewer.author,
            queue.lease_seconds.saturating_mul(1000),
        )
        .await?;
    let progress = state.store.review_queue_progress(&queue.id).await?;
    let item = match next {
        Some(item) => {
            let (run, events) = load(&state, &caller, &item.run_id).await?;
            let next_href = match given {
                Some(name) => format!(
                    "/review/{}?reviewer={}",
                    url_encode(&queue.id),
                    url_encode(name)
                ),
                None => format!("/review/{}", url_encode(&queue.id)),
            };
            Some(Item {
                panel: Panel::load(&state, &caller, &run, given).await?,
                cost: crate::views::cost_usd(&state, &run),
                run,
                events,
                next_href,
                lease_expires_at_ms: item.lease_expires_at_ms,
            })
        }
        None => None,
    };
    render(&QueuePage {
        section: "/traces",
        queue: &queue,
        done: progress.done,
        total: progress.total,
        reviewer: &reviewer.author,
        item,
    })
}
