//! What every handler can reach.

use rollout_models::ModelCatalog;
use rollout_store::Store;
use rollout_worker::RunNotifier;
use std::sync::Arc;
use std::time::Duration;

/// Server settings, filled by the CLI from flags, environment and config file.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The URL users reach this server at; `trace_url`s are built from it.
    pub public_url: String,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Default agent-phase budget of a run, in seconds.
    pub agent_timeout_seconds: u64,
    /// Default grading budget of a run, in seconds.
    pub grading_timeout_seconds: u64,
    /// Budget to start and introspect an environment being registered.
    pub introspect_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            public_url: "http://127.0.0.1:8300".into(),
            max_body_bytes: 1024 * 1024,
            agent_timeout_seconds: 1800,
            grading_timeout_seconds: 300,
            introspect_timeout: Duration::from_secs(60),
        }
    }
}

/// Shared state of the handlers.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub catalog: Arc<ModelCatalog>,
    pub notifier: Arc<RunNotifier>,
    pub config: Arc<ServerConfig>,
}

impl AppState {
    /// The public URL of a trace.
    pub fn trace_url(&self, trace_id: &str) -> String {
        format!(
            "{}/traces/{trace_id}",
            self.config.public_url.trim_end_matches('/')
        )
    }
}
