#![doc = include_str!("../README.md")]

mod auth;
mod cors;
mod cron;
mod error;
mod gateway;
mod headers;
mod http;
mod json;
mod metrics;
mod rate_limit;
mod routes;
mod runtime;
mod scheduler;
mod state;
mod streams;
mod training;
mod ui;
mod views;

pub use error::ApiError;
pub use gateway::GatewayConfig;
pub use http::HttpLimits;
pub use rate_limit::RateLimit;
pub use routes::router;
pub use scheduler::run_scheduler;
pub use state::{AppState, DEFAULT_BIND, ServerConfig};

/// Serves the API on `listener` until `shutdown` resolves, then lets requests in flight end:
/// event streams and `sync` waits end at once (`AppState::shutdown`), others finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    training::start(&state).await;
    let gateway = std::sync::Arc::new(gateway::Gateway::new(&state.config));
    let limits = state.config.http;
    let stopping = state.shutdown.clone();
    let app = routes::router_with_gateway(state, gateway.clone());
    http::serve(listener, app, limits, async move {
        shutdown.await;
        stopping.cancel();
        // Open MCP sessions hold response streams; close them rather than wait.
        gateway.shutdown().await;
    })
    .await
}
