//! The configurations of the server and the worker, assembled from resolved [`Settings`]:
//! the one place `serve`, `worker` and the embedded server of `eval` get them from, so that
//! a setting means the same in each.

use super::Settings;
use rollout_mcp::Sandbox;
use rollout_server::{GatewayConfig, RateLimit, ServerConfig};
use rollout_worker::{CallbackConfig, ReplicaManager, WorkerConfig};
use std::time::Duration;

impl Settings {
    /// The API server's configuration; `public_url` is where this server is reached (the
    /// configured one, else the bound address).
    pub(crate) fn server_config(
        &self,
        public_url: String,
        sandbox: &Sandbox,
        replicas: Option<&ReplicaManager>,
    ) -> anyhow::Result<ServerConfig> {
        let mut callbacks = self.callback_config();
        callbacks.public_url = Some(public_url.clone());
        let gateway = GatewayConfig::default();
        Ok(ServerConfig {
            public_url,
            max_body_bytes: self.max_body_bytes,
            data_dir: Some(self.data_dir.clone()),
            max_upload_bytes: self.max_upload_bytes,
            build_timeout: Duration::from_secs(self.build_timeout_seconds),
            sandbox: sandbox.clone(),
            git: crate::sandbox_config::git(self),
            replicas: replicas.cloned(),
            agent_timeout_seconds: self.agent_timeout_seconds,
            grading_timeout_seconds: self.grading_timeout_seconds,
            max_timeout_seconds: self.max_timeout_seconds,
            idempotency_ttl: Duration::from_secs(self.idempotency_ttl_seconds),
            callbacks,
            rate_limit: self
                .rate_limit
                .map(|(per_minute, burst)| RateLimit { per_minute, burst }),
            sign_in_limit: RateLimit {
                per_minute: self.sign_in_failures_per_minute,
                burst: self.sign_in_failures_per_minute,
            },
            max_event_streams_per_key: self.max_event_streams_per_key,
            http: self.http,
            cors_origins: self.cors_origins.clone(),
            training: self.training.to_config(&self.data_dir)?,
            gateway: GatewayConfig {
                idle_timeout: self
                    .gateway
                    .idle_timeout_seconds
                    .map_or(gateway.idle_timeout, |s| Duration::from_secs(s.max(1))),
                max_sessions_per_key: self
                    .gateway
                    .max_sessions_per_key
                    .unwrap_or(gateway.max_sessions_per_key),
                allowed_hosts: self.gateway.allowed_hosts.clone(),
                ..gateway
            },
            metrics_public: self.metrics_public,
            ..ServerConfig::default()
        })
    }

    /// How this process's worker claims and executes runs.
    pub(crate) fn worker_config(
        &self,
        sandbox: &Sandbox,
        replicas: Option<&ReplicaManager>,
        callbacks: CallbackConfig,
    ) -> WorkerConfig {
        let lease = Duration::from_secs(self.lease_seconds);
        WorkerConfig {
            max_concurrent_runs: self.max_concurrent_runs,
            lease,
            heartbeat: lease / 3,
            shutdown_grace: Duration::from_secs(self.shutdown_grace_seconds),
            warm_pool_size: self.warm_pool_size,
            sandbox: sandbox.clone(),
            replicas: replicas.cloned(),
            callbacks,
            ..WorkerConfig::default()
        }
    }

    /// How run callbacks are delivered (the public URL is the configured one, if any).
    pub(crate) fn callback_config(&self) -> CallbackConfig {
        CallbackConfig {
            allow_private: self.allow_private_callbacks,
            public_url: self.public_url.clone(),
            first_backoff: Duration::from_millis(self.callback_first_backoff_ms),
            request_timeout: Duration::from_secs(self.callback_timeout_seconds),
            ..CallbackConfig::default()
        }
    }
}
