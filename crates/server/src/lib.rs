#![doc = include_str!("../README.md")]

mod auth;
mod cors;
mod cron;
mod error;
mod gateway;
mod json;
mod rate_limit;
mod routes;
mod scheduler;
mod state;
mod training;
mod ui;
mod views;

pub use error::ApiError;
pub use gateway::GatewayConfig;
pub use rate_limit::RateLimit;
pub use routes::router;
pub use scheduler::run_scheduler;
pub use state::{AppState, ServerConfig};

/// Serves the API on `listener` until `shutdown` resolves, then lets requests in flight end.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    training::start(&state).await;
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
