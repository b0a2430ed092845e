//! `GET /metrics` (Prometheus scrape) and the count of every HTTP request by route.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use axum::Extension;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rollout_telemetry::StoreGauges;

/// The scrape, behind an operator key (metrics cover every project), unless the operator
/// made it public (`[metrics] public = true`, then routed without authentication).
pub(crate) async fn scrape_with_key(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Response, ApiError> {
    caller.require_operator("reading /metrics")?;
    scrape(State(state)).await
}

/// The scrape: the process's counters and histograms, and the queue gauges read from the
/// store.
pub(crate) async fn scrape(State(state): State<AppState>) -> Result<Response, ApiError> {
    let (queued, running) = state.store.count_runs_in_flight().await?;
    let text = state
        .config
        .telemetry
        .metrics()
        .encode(StoreGauges { queued, running });
    Ok((
        [(
            header::CONTENT_TYPE,
            rollout_telemetry::metrics::CONTENT_TYPE,
        )],
        text,
    )
        .into_response())
}

/// Middleware: counts the request by its route pattern (one series per route, whatever
/// the ids in the path), method and status.
pub(crate) async fn count_request(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |path| path.as_str().to_string());
    let method = request.method().clone();
    let response = next.run(request).await;
    state.config.telemetry.metrics().http_request(
        &route,
        method.as_str(),
        response.status().as_u16(),
    );
    response
}
