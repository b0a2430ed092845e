//! The router: every route, its middleware, and the JSON fallbacks.

mod cancel;
pub(crate) mod checks;
pub(crate) mod datasets;
mod deploy;
pub(crate) mod environments;
pub(crate) mod events;
pub(crate) mod jobs;
pub(crate) mod keys;
mod models;
pub(crate) mod projects;
pub(crate) mod review_queues;
pub(crate) mod reviews;
mod run_api;
pub(crate) mod runs;
pub(crate) mod schedules;
mod shares;
mod tasksets;
pub(crate) mod traces;
pub(crate) mod training;
pub(crate) mod usage;

use crate::auth::require_key;
use crate::error::ApiError;
use crate::state::AppState;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post};
use tower_http::trace::TraceLayer;

/// The whole HTTP API.
pub fn router(state: AppState) -> Router {
    let gateway = std::sync::Arc::new(crate::gateway::Gateway::new(&state.config));
    router_with_gateway(state, gateway)
}

/// The whole HTTP API, with the MCP gateway's state (closed by `serve` on shutdown).
pub(crate) fn router_with_gateway(
    state: AppState,
    gateway: std::sync::Arc<crate::gateway::Gateway>,
) -> Router {
    // One limiter for the API and the UI's session routes: a key's browser session counts
    // against the key's limit.
    let limiter = std::sync::Arc::new(crate::rate_limit::RateLimiter::new(state.config.rate_limit));
    let sign_in = std::sync::Arc::new(crate::ui::sign_in::SignInThrottle(
        crate::rate_limit::RateLimiter::new(Some(state.config.sign_in_limit)),
    ));
    let streams = std::sync::Arc::new(crate::streams::EventStreams::new(
        state.config.max_event_streams_per_key,
    ));
    let runtime = std::sync::Arc::new(crate::runtime::Runtime::default());
    let api = Router::new()
        .route("/v1/agent/run", post(runs::create))
        .route("/v1/traces", get(traces::list))
        .route("/v1/traces/{id}", get(traces::get))
        .route("/v1/traces/cancel", post(cancel::cancel_many))
        .route("/v1/traces/{id}/cancel", post(cancel::cancel_one))
        .route(
            "/v1/traces/{id}/deliveries",
            get(run_api::deliveries).post(run_api::redeliver),
        )
        .route("/v1/traces/{id}/events", get(events::stream))
        .route("/v1/usage", get(usage::get))
        .route("/v1/models", get(models::list))
        .route("/v1/keys", get(keys::list).post(keys::create))
        .route(
            "/v1/projects/{id}",
            get(projects::get).patch(projects::update),
        )
        .route(
            "/v1/schedules",
            get(schedules::list).post(schedules::create),
        )
        .route(
            "/v1/schedules/{id}",
            get(schedules::get).delete(schedules::delete),
        )
        .route("/v1/schedules/{id}/pause", post(schedules::pause))
        .route("/v1/schedules/{id}/resume", post(schedules::resume))
        .route("/v1/schedules/{id}/runs", get(schedules::runs))
        .route("/v1/keys/{id}", axum::routing::delete(keys::revoke))
        .route(
            "/v1/environments",
            get(environments::list).post(environments::register),
        )
        .route(
            "/v1/environments/{name}",
            get(environments::get).delete(deploy::delete),
        )
        .route("/v1/environments/{name}/deploy", post(deploy::bundle))
        .route(
            "/v1/environments/{name}/versions/{version}/log",
            get(deploy::build_log),
        )
        .route("/v1/tasksets", get(tasksets::list).post(tasksets::create))
        .route(
            "/v1/tasksets/{name}",
            get(tasksets::get).delete(tasksets::delete),
        )
        .route("/v1/tasksets/{name}/import", post(tasksets::import))
        .route("/v1/tasksets/{name}/export", get(tasksets::export))
        .route("/v1/tasksets/{name}/tasks", post(tasksets::add))
        .route(
            "/v1/tasksets/{name}/tasks/{task_id}",
            axum::routing::delete(tasksets::remove_task),
        )
        .route("/v1/jobs", get(jobs::list).post(jobs::create))
        .route("/v1/jobs/{id}", get(jobs::get))
        .route("/v1/jobs/{id}/cancel", post(jobs::cancel))
        .route("/v1/jobs/{id}/retry", post(jobs::retry))
        .route("/v1/jobs/{id}/metrics", get(jobs::metrics))
        .route("/v1/jobs/{id}/compare", get(jobs::compare))
        .route("/v1/datasets", get(datasets::list).post(datasets::create))
        .route("/v1/datasets/{id}", get(datasets::get))
        .route("/v1/datasets/{id}/download", get(datasets::download))
        .route("/v1/training", get(training::list).post(training::create))
        .route("/v1/training/{id}", get(training::get))
        .route("/v1/training/{id}/log", get(training::log))
        .route("/v1/training/{id}/cancel", post(training::cancel))
        .route(
            "/v1/environments/{name}/mcp",
            // MCP's streamable HTTP uses these three methods; others answer 405.
            get(crate::gateway::env_endpoint)
                .post(crate::gateway::env_endpoint)
                .delete(crate::gateway::env_endpoint)
                .layer(axum::Extension(gateway.clone())),
        )
        .route(
            "/v1/mcp",
            get(crate::gateway::hub_endpoint)
                .post(crate::gateway::hub_endpoint)
                .delete(crate::gateway::hub_endpoint)
                .layer(axum::Extension(gateway)),
        )
        .merge(reviews::routes())
        .merge(review_queues::routes())
        .merge(shares::routes())
        // hud 0.6 clients (HUD_RUNTIME_URL): `runtime.rs`.
        .route(
            "/runtime/sessions",
            post(crate::runtime::create).layer(axum::Extension(runtime.clone())),
        )
        .route(
            "/runtime/sessions/{id}",
            axum::routing::delete(crate::runtime::delete).layer(axum::Extension(runtime.clone())),
        )
        .route(
            "/runtime/tunnels/{id}",
            get(crate::runtime::tunnel).layer(axum::Extension(runtime)),
        )
        // Runs after require_key (layers wrap inward), which identifies the key.
        .route_layer(axum::middleware::from_fn_with_state(
            limiter.clone(),
            crate::rate_limit::limit_rate,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_key,
        ));
    let cors = crate::cors::layer(&state.config.cors_origins);
    let metrics = if state.config.metrics_public {
        Router::new().route("/metrics", get(crate::metrics::scrape))
    } else {
        Router::new()
            .route("/metrics", get(crate::metrics::scrape_with_key))
            .route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                require_key,
            ))
    };
    let router = Router::new()
        .route("/healthz", get(health))
        .merge(metrics)
        .route("/openapi.json", get(crate::openapi::serve))
        .route("/docs", get(crate::openapi::docs::page))
        .merge(api)
        .merge(crate::ui::router(state.clone(), limiter))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::Extension(sign_in))
        .layer(axum::Extension(streams))
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::metrics::count_request,
        ))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            state.config.http.request_body_timeout,
        ));
    let router = crate::headers::secure(router)
        .layer(TraceLayer::new_for_http())
        .with_state(state);
    match cors {
        // Outermost, so that preflight requests are answered before authentication.
        Some(cors) => router.layer(cors),
        None => router,
    }
}

async fn health() -> axum::Json<rollout_api::Health> {
    axum::Json(rollout_api::Health {
        status: "ok".into(),
    })
}

async fn not_found() -> ApiError {
    ApiError::not_found("not_found", "no such endpoint")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not accept that method",
    )
}
