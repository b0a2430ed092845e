//! `/shared/{token}`: one shared trace, signed out. The page holds the trace alone (no
//! navigation, no project, no keys, no metadata, no links to anything else); an unknown,
//! revoked or expired token, or a project that turned sharing off, is the same 404. Every
//! answer asks not to be indexed (`X-Robots-Tag`, `<meta name="robots">`), sends no
//! referrer (the URL is the credential) and is not cached.

use super::html::{duration_ms, esc, pretty, reward, status_badge, time};
use super::traces::render_timeline;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use rollout_domain::{EventKind, RunEvent};
use rollout_store::RunRecord;
use std::fmt::Write as _;

/// Most events shown.
const MAX_EVENTS: i64 = 10_000;

/// The headers of every answer of a shared page.
fn private(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        HeaderName::from_static("x-robots-tag"),
        HeaderValue::from_static("noindex, nofollow, noarchive"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn document(title: &str, body: &str) -> Html<String> {
    Html(format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow, noarchive">
<meta name="referrer" content="no-referrer">
<title>{title}</title>
<link rel="stylesheet" href="/assets/ui.css"></head>
<body><header class="top"><span class="brand">rollout</span><span class="muted small">shared trace (read-only)</span></header><main>{body}</main></body></html>"#,
        title = esc(title)
    ))
}

/// `GET /shared/{token}`.
pub(crate) async fn page(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let run = match state.store.shared_run(&token).await {
        Ok(Some(run)) => run,
        Ok(None) => return private(not_found()),
        Err(error) => {
            tracing::error!(%error, "reading a shared trace");
            return private(
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    document(
                        "Unavailable",
                        "<section class=\"card\"><h1>Try again later</h1></section>",
                    ),
                )
                    .into_response(),
            );
        }
    };
    let events = match state
        .store
        .list_events(run.id.as_str(), 0, MAX_EVENTS)
        .await
    {
        Ok(events) => events,
        Err(error) => {
            tracing::error!(%error, "reading a shared trace's events");
            Vec::new()
        }
    };
    private(document("Shared trace", &render(&run, &events)).into_response())
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        document(
            "Not found",
            "<section class=\"card\"><h1>Not found</h1><p>This link does not exist, was revoked or has expired.</p></section>",
        ),
    )
        .into_response()
}

/// The trace: what ran, how it ended, the timeline. Worker names (attempt events) are the
/// server's, not the trace's, and are left out.
fn render(run: &RunRecord, events: &[RunEvent]) -> String {
    let mut body = format!(
        "<h1 id=\"shared-title\">{env} · {scenario} {status}</h1><p class=\"muted small\">trace <code>{id}</code> · created {created}</p>",
        env = esc(&run.spec.env_name),
        scenario = esc(&run.spec.scenario_name),
        status = status_badge(run.status.as_str()),
        id = esc(run.id.as_str()),
        created = time(run.created_at_ms),
    );
    let stat = |label: &str, value: String, id: &str| {
        format!(
            "<div class=\"stat\" id=\"stat-{id}\"><div class=\"label\">{label}</div><div class=\"value\">{value}</div></div>"
        )
    };
    body.push_str("<section class=\"card\"><div class=\"stats\">");
    body.push_str(&stat("Reward", reward(run.reward), "reward"));
    body.push_str(&stat("Model", esc(&run.spec.model), "model"));
    body.push_str(&stat("Steps", run.steps.to_string(), "steps"));
    if let (Some(started), Some(finished)) = (run.started_at_ms, run.finished_at_ms) {
        body.push_str(&stat(
            "Duration",
            duration_ms(finished - started),
            "duration",
        ));
    }
    if let Some(outcome) = &run.outcome {
        body.push_str(&stat("Outcome", esc(outcome), "outcome"));
    }
    body.push_str("</div>");
    let _ = write!(
        body,
        "<details><summary class=\"small\">Arguments</summary><pre class=\"light\">{}</pre></details></section>",
        pretty(&serde_json::Value::Object(run.spec.scenario_args.clone()))
    );
    if let Some(final_response) = &run.final_response {
        let _ = write!(
            body,
            "<section class=\"card\"><h3>Final answer</h3><div class=\"text\" id=\"final-response\">{}</div></section>",
            esc(final_response)
        );
    }
    let shown: Vec<RunEvent> = events
        .iter()
        .filter(|event| !matches!(event.kind, EventKind::AttemptStarted { .. }))
        .cloned()
        .collect();
    let _ = write!(
        body,
        "<h2>Timeline</h2><div id=\"timeline\">{}</div>",
        render_timeline(&shown)
    );
    body
}
