//! Worker settings. Defaults suit one server on one machine.

use std::time::Duration;

/// How a worker claims and executes runs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Names this process in leases and logs. Fencing does not rely on it: each claim has a
    /// token of its own (see `rollout_store::Lease`).
    pub worker_id: String,
    /// Runs executed at once by this process.
    pub max_concurrent_runs: usize,
    /// How long a claim stays valid without a heartbeat.
    pub lease: Duration,
    /// How often a running run renews its lease. A run whose lease could not be renewed
    /// for `lease` (the store unreachable, the process stopped) is abandoned: another
    /// process may already have claimed it.
    pub heartbeat: Duration,
    /// How often an idle worker looks for queued runs (another process may have added some).
    pub poll_interval: Duration,
    /// How many times a run is started before a lost worker fails it for good.
    pub max_attempts: i64,
    /// Budget to start an environment and complete the MCP handshake.
    pub connect_timeout: Duration,
    /// Budget for scenario setup (`prompts/get`) and the tool listing.
    pub setup_timeout: Duration,
    /// On shutdown, how long in-flight runs may go on before they are released to the queue.
    pub shutdown_grace: Duration,
    /// How often a running run checks the store for a cancellation request made by another
    /// process (requests made in this process arrive at once).
    pub cancel_poll: Duration,
    /// How run callbacks are delivered.
    pub callbacks: crate::CallbackConfig,
    /// The sandbox environment processes start in.
    pub sandbox: rollout_mcp::Sandbox,
    /// Pre-started sessions kept ready per stdio environment version (0: none).
    pub warm_pool_size: usize,
    /// The replicas of served (HTTP bundle) environments, when shared with the gateway;
    /// the worker makes its own otherwise.
    pub replicas: Option<crate::ReplicaManager>,
    /// Metrics of runs, and their spans when exported.
    pub telemetry: rollout_telemetry::Telemetry,
}

impl WorkerConfig {
    /// The same settings, counting into (and exporting through) `telemetry`; callbacks
    /// included.
    pub fn with_telemetry(mut self, telemetry: rollout_telemetry::Telemetry) -> Self {
        self.callbacks.telemetry = telemetry.clone();
        self.telemetry = telemetry;
        self
    }
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            worker_id: format!("worker-{}", rollout_domain::new_id()),
            max_concurrent_runs: 8,
            lease: Duration::from_secs(30),
            heartbeat: Duration::from_secs(10),
            poll_interval: Duration::from_millis(500),
            max_attempts: 3,
            connect_timeout: Duration::from_secs(60),
            setup_timeout: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(10),
            cancel_poll: Duration::from_secs(1),
            callbacks: crate::CallbackConfig::default(),
            sandbox: rollout_mcp::Sandbox::unconfined(),
            warm_pool_size: 0,
            replicas: None,
            telemetry: rollout_telemetry::Telemetry::default(),
        }
    }
}
