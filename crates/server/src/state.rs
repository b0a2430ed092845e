//! What every handler can reach.

use rollout_models::ModelCatalog;
use rollout_store::Store;
use rollout_worker::RunNotifier;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

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
    /// Largest agent or grading budget a run may ask for, in seconds.
    pub max_timeout_seconds: u64,
    /// How long an `Idempotency-Key` of `POST /v1/agent/run` stands for its run.
    pub idempotency_ttl: Duration,
    /// Callback delivery (destinations allowed, backoff) for manual redelivery and for
    /// queued runs cancelled through the API.
    pub callbacks: rollout_worker::CallbackConfig,
    /// Requests per API key (none: unlimited).
    pub rate_limit: Option<crate::RateLimit>,
    /// Origins allowed to call the API from a browser (CORS); `*` for any; empty: none.
    pub cors_origins: Vec<String>,
    /// Where deployed bundles are unpacked and built (`DATA_DIR/envs/PROJECT/NAME/HASH/`);
    /// deploys are refused without it.
    pub data_dir: Option<std::path::PathBuf>,
    /// Largest accepted bundle upload (`POST /v1/environments/{name}/deploy`).
    pub max_upload_bytes: usize,
    /// Budget of a deploy's clone and build.
    pub build_timeout: Duration,
    /// The sandbox every environment process starts in (registration, builds, gateway).
    pub sandbox: rollout_mcp::Sandbox,
    /// What git deploys may reach (`[deploy] allow_local_git`) and run with.
    pub git: rollout_worker::deploy::GitConfig,
    /// The replicas of served (HTTP bundle) environments, shared with the worker, so that
    /// the MCP gateway can open sessions on them.
    pub replicas: Option<rollout_worker::ReplicaManager>,
    /// Serialises deploys of one environment.
    pub deploy_locks: rollout_worker::deploy::DeployLocks,
    /// The MCP gateway: idle timeout, sessions per key, allowed hosts.
    pub gateway: crate::GatewayConfig,
    /// Training backends (`command`, `openai`) and where jobs keep their files.
    pub training: rollout_training::TrainingConfig,
    /// Failed sign-ins per client address (`POST /login`).
    pub sign_in_limit: crate::RateLimit,
    /// Event streams (SSE) a key may hold open at once.
    pub max_event_streams_per_key: usize,
    /// Timeouts and the connection cap of the HTTP server.
    pub http: crate::HttpLimits,
    /// The process's metrics (`GET /metrics`), shared with its worker and scheduler.
    pub telemetry: rollout_telemetry::Telemetry,
    /// `GET /metrics` without a key (`[metrics] public = true`); else an operator key.
    pub metrics_public: bool,
}

/// Where `rollout serve` listens unless told otherwise.
pub const DEFAULT_BIND: &str = "127.0.0.1:8300";

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            public_url: format!("http://{DEFAULT_BIND}"),
            max_body_bytes: 1024 * 1024,
            agent_timeout_seconds: 1800,
            grading_timeout_seconds: 300,
            introspect_timeout: Duration::from_secs(60),
            max_timeout_seconds: 86_400,
            idempotency_ttl: Duration::from_secs(86_400),
            callbacks: rollout_worker::CallbackConfig::default(),
            rate_limit: None,
            cors_origins: Vec::new(),
            data_dir: None,
            max_upload_bytes: 100 * 1024 * 1024,
            build_timeout: Duration::from_secs(900),
            sandbox: rollout_mcp::Sandbox::unconfined(),
            git: rollout_worker::deploy::GitConfig::default(),
            replicas: None,
            deploy_locks: rollout_worker::deploy::DeployLocks::default(),
            gateway: crate::GatewayConfig::default(),
            training: rollout_training::TrainingConfig::default(),
            sign_in_limit: crate::RateLimit {
                per_minute: 10,
                burst: 10,
            },
            max_event_streams_per_key: 16,
            http: crate::HttpLimits::default(),
            telemetry: rollout_telemetry::Telemetry::default(),
            metrics_public: false,
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
    /// Cancelled by [`crate::serve`] when the server starts shutting down: long requests
    /// (event streams, `sync` waits) end at once instead of holding the shutdown up.
    pub shutdown: CancellationToken,
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
