//! `GET /v1/traces/{id}/events`: a run's events as Server-Sent Events, as they happen.
//!
//! The stream replays the stored events after `Last-Event-ID` (or `?after=`), then follows
//! new ones: woken by this process's notifier (events appended here, and on PostgreSQL those
//! appended by any process, relayed from LISTEN/NOTIFY), and reading the store again at least
//! every second (other processes on SQLite, a missed notification); each SSE `id` is the
//! event's `seq`, so a client that reconnects gets every event exactly once, in order. The
//! stream ends after the `finished` event, when its key is revoked, or when the server shuts
//! down: then with a `retry:` hint, so that the client reconnects (to another server, with
//! `Last-Event-ID`). A key holds a bounded number of streams at once (`crate::streams`).

use crate::auth::Caller;
use crate::error::ApiError;
use crate::json::ApiQuery;
use crate::state::AppState;
use crate::views;
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use rollout_domain::{RunEvent, RunId};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::broadcast;

/// How often a live stream reads the store without being woken.
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Events read per store query.
const PAGE: i64 = 500;
/// The reconnection delay a stream ended by a shutdown asks for.
const RETRY_AFTER_SHUTDOWN: Duration = Duration::from_secs(1);

/// Options of the event stream.
use rollout_api::runs::EventStreamQuery as StreamQuery;

struct Cursor {
    state: AppState,
    /// Announcements of appended events (subscribed before the first read).
    appended: broadcast::Receiver<RunId>,
    run_id: String,
    project_id: String,
    last_seq: i64,
    buffer: VecDeque<RunEvent>,
    done: bool,
}

/// The SSE stream of a run's events.
pub(crate) async fn stream(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(streams): Extension<std::sync::Arc<crate::streams::EventStreams>>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<StreamQuery>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let slot = streams.open(&caller.key_id)?;
    let run = state
        .store
        .get_run(&caller.project_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("trace_not_found", format!("trace '{id}' not found")))?;
    let last_event_id = match headers.get("last-event-id") {
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|text| text.trim().parse::<i64>().ok())
                .filter(|seq| *seq >= 0)
                .ok_or_else(|| {
                    ApiError::bad_request("Last-Event-ID must be the seq of an event (a number)")
                })?,
        ),
        None => None,
    };
    let store = state.store.clone();
    let cursor = Cursor {
        appended: state.notifier.subscribe_events(),
        state,
        run_id: run.id.0,
        project_id: caller.project_id,
        last_seq: last_event_id.or(query.after).unwrap_or(0).max(0),
        buffer: VecDeque::new(),
        done: false,
    };
    let events = futures::stream::unfold(cursor, next_event);
    let events = crate::streams::guard(events, slot, store);
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

/// The next event of the stream, waiting for it if needed; `None` ends the stream.
async fn next_event(mut cursor: Cursor) -> Option<(Result<Event, Infallible>, Cursor)> {
    loop {
        if cursor.done {
            return None;
        }
        if cursor.state.shutdown.is_cancelled() {
            cursor.done = true;
            let goodbye = Event::default()
                .comment("server shutting down; reconnect with Last-Event-ID")
                .retry(RETRY_AFTER_SHUTDOWN);
            return Some((Ok(goodbye), cursor));
        }
        if let Some(event) = cursor.buffer.pop_front() {
            cursor.last_seq = event.seq;
            if event.kind.name() == "finished" {
                cursor.done = true;
            }
            let data = serde_json::to_string(&views::event(&event)).unwrap_or_default();
            let sse = Event::default()
                .id(event.seq.to_string())
                .event(event.kind.name())
                .data(data);
            return Some((Ok(sse), cursor));
        }
        match cursor
            .state
            .store
            .list_events(&cursor.run_id, cursor.last_seq, PAGE)
            .await
        {
            Ok(events) if !events.is_empty() => {
                cursor.buffer.extend(events);
                continue;
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, run = %cursor.run_id, "event stream: reading events failed");
            }
        }
        // Nothing new: a run that ended without a `finished` event after the cursor (the
        // client already saw it) ends the stream; otherwise wait and look again.
        match cursor
            .state
            .store
            .get_run(&cursor.project_id, &cursor.run_id)
            .await
        {
            Ok(Some(run)) if run.status.is_terminal() => {
                // Events written between the two reads would be lost otherwise.
                match cursor
                    .state
                    .store
                    .list_events(&cursor.run_id, cursor.last_seq, PAGE)
                    .await
                {
                    Ok(events) if !events.is_empty() => cursor.buffer.extend(events),
                    _ => return None,
                }
            }
            Ok(None) => return None,
            Ok(Some(_)) | Err(_) => {
                let run_id = RunId(cursor.run_id.clone());
                tokio::select! {
                    () = cursor.state.shutdown.cancelled() => {}
                    () = rollout_worker::appended_to(&mut cursor.appended, &run_id) => {}
                    () = tokio::time::sleep(POLL_INTERVAL) => {}
                }
            }
        }
    }
}
