//! The MCP gateway's HTTP side: `/v1/environments/{name}/mcp` and the hud hub convention
//! `/v1/mcp` (environment from the `Environment-Name` header). Authentication is the usual
//! Bearer API key (the hud SDK sends `Authorization: Bearer $HUD_API_KEY` to the host of
//! `HUD_MCP_URL`); sessions belong to the project and environment that opened them, are
//! limited per key, and each scenario played in one is recorded as a run (its trace).
//!
//! The proxy itself (rmcp) is `rollout_mcp::gateway`; this module only sees its events.
//!
//! `endpoint.rs` is the HTTP side (the two routes, session ownership, opening a session),
//! `registry.rs` the sessions per project and per key (shared with the hud 0.6 runtime,
//! `runtime.rs`), and `recorder.rs` what turns a session's events into runs and their traces.

mod endpoint;
mod recorder;
mod registry;

pub(crate) use endpoint::{env_endpoint, hub_endpoint};
pub(crate) use recorder::spawn_recorder;
pub(crate) use registry::{SessionRegistry, Slot};

use crate::error::ApiError;
use crate::state::AppState;
use rollout_mcp::EnvTarget;
use rollout_mcp::gateway::{AllowedHosts, GatewayService, GatewaySettings};
use rollout_store::EnvVersion;
use std::sync::Arc;
use std::time::Duration;

/// Settings of the MCP gateway.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// A session without requests for this long is closed and its environment killed.
    pub idle_timeout: Duration,
    /// Open sessions per API key; more answer 429.
    pub max_sessions_per_key: usize,
    /// Accepted `Host` headers besides loopback and the public URL's host; `*` accepts any
    /// (for deployments behind a proxy that checks it).
    pub allowed_hosts: Vec<String>,
    /// Budget to start an environment when a session opens.
    pub connect_timeout: Duration,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(600),
            max_sessions_per_key: 16,
            allowed_hosts: Vec::new(),
            connect_timeout: Duration::from_secs(60),
        }
    }
}

/// The gateway's shared state: the MCP service and who owns which session (session id →
/// the environment's name, in the project that opened it).
pub(crate) struct Gateway {
    service: GatewayService,
    registry: Arc<SessionRegistry<String>>,
}

impl Gateway {
    /// The gateway of a server: hosts allowed are loopback, the public URL's host and the
    /// configured ones.
    pub(crate) fn new(config: &crate::ServerConfig) -> Self {
        let gateway = &config.gateway;
        let allowed_hosts = if gateway.allowed_hosts.iter().any(|host| host == "*") {
            AllowedHosts::Any
        } else {
            let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "::1", "[::1]"]
                .into_iter()
                .map(String::from)
                .collect();
            if let Some(host) = authority(&config.public_url) {
                hosts.push(host);
            }
            hosts.extend(gateway.allowed_hosts.iter().cloned());
            AllowedHosts::Only(hosts)
        };
        let allowed_origins = origin(&config.public_url).into_iter().collect();
        Self {
            service: GatewayService::new(&GatewaySettings {
                idle_timeout: gateway.idle_timeout,
                allowed_hosts,
                allowed_origins,
                connect_timeout: gateway.connect_timeout,
            }),
            registry: Arc::new(SessionRegistry::default()),
        }
    }

    /// Closes every session, for a graceful shutdown, and gives their recorders a moment to
    /// finish their runs (`cancelled`) while the store is still open.
    pub(crate) async fn shutdown(&self) {
        self.service.shutdown().await;
        let recorded = tokio::time::timeout(Duration::from_secs(5), async {
            while !self.registry.is_idle() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        if recorded.is_err() {
            tracing::warn!(
                "gateway sessions still recording at shutdown; their runs end when their leases expire"
            );
        }
    }
}

/// `host[:port]` of a URL.
fn authority(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    (!authority.is_empty()).then(|| authority.to_string())
}

/// `scheme://host[:port]` of a URL.
fn origin(url: &str) -> Option<String> {
    let scheme = url.split_once("://")?.0;
    Some(format!("{scheme}://{}", authority(url)?))
}

/// The newest ready version of `name` in `project_id` and its target: what a gateway or
/// runtime session starts (404 when there is none).
pub(crate) async fn ready_version(
    state: &AppState,
    project_id: &str,
    name: &str,
) -> Result<(EnvVersion, EnvTarget), ApiError> {
    let version = state
        .store
        .latest_ready_version(project_id, name)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(
                "environment_not_found",
                format!("environment '{name}' has no ready version"),
            )
        })?;
    let target: EnvTarget = serde_json::from_value(version.source.clone()).map_err(|e| {
        ApiError::internal(format!(
            "environment '{name}' has an unreadable source: {e}"
        ))
    })?;
    Ok((version, target))
}

/// The MCP URL of an environment on this server.
pub(crate) fn mcp_url(state: &AppState, name: &str) -> String {
    format!(
        "{}/v1/environments/{name}/mcp",
        state.config.public_url.trim_end_matches('/')
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authority_and_origin_of_urls() {
        assert_eq!(
            authority("http://127.0.0.1:8300/x").as_deref(),
            Some("127.0.0.1:8300")
        );
        assert_eq!(
            origin("https://rollout.example.com").as_deref(),
            Some("https://rollout.example.com")
        );
        assert_eq!(authority("nonsense"), None);
    }
}
