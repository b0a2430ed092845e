//! `/shared/{token}`: one shared trace, signed out. The page holds the trace alone (no
//! navigation, no project, no keys, no metadata, no links to anything else); an unknown,
//! revoked or expired token, or a project that turned sharing off, is the same 404. Every
//! answer asks not to be indexed (`X-Robots-Tag`, `<meta name="robots">`), sends no
//! referrer (the URL is the credential) and is not cached.

use super::html;
use crate::state::AppState;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rollout_domain::{EventKind, RunEvent};
use rollout_store::RunRecord;

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

/// `shared.html`.
#[derive(Template)]
#[template(path = "shared.html")]
struct SharedPage<'a> {
    title: &'a str,
    trace: Shown<'a>,
}

/// What the shared page shows.
enum Shown<'a> {
    /// The trace: what ran, how it ended, the timeline. Worker names (attempt events) are
    /// the server's, not the trace's, and are left out.
    Trace {
        run: &'a RunRecord,
        events: Vec<RunEvent>,
    },
    NotFound,
    Unavailable,
}

fn document(status: StatusCode, title: &str, trace: Shown<'_>) -> Response {
    match html::render(&SharedPage { title, trace }) {
        Ok(page) => (status, page).into_response(),
        Err(error) => error.into_response(),
    }
}

/// `GET /shared/{token}`.
pub(crate) async fn page(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let run = match state.store.shared_run(&token).await {
        Ok(Some(run)) => run,
        Ok(None) => return private(not_found()),
        Err(error) => {
            tracing::error!(%error, "reading a shared trace");
            return private(document(
                StatusCode::SERVICE_UNAVAILABLE,
                "Unavailable",
                Shown::Unavailable,
            ));
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
    let events = events
        .into_iter()
        .filter(|event| !matches!(event.kind, EventKind::AttemptStarted { .. }))
        .collect();
    private(document(
        StatusCode::OK,
        "Shared trace",
        Shown::Trace { run: &run, events },
    ))
}

fn not_found() -> Response {
    document(StatusCode::NOT_FOUND, "Not found", Shown::NotFound)
}
