//! `rollout example-env NAME [--http ADDR]`: the bundled example environments, served over
//! stdio (what the server spawns for each run) or streamable HTTP at `/mcp`, so that a fresh
//! server has something to run without Python or any other install.

use anyhow::{Context, anyhow};
use std::net::SocketAddr;

/// Serves the named bundled environment until the client goes away (stdio) or forever (HTTP).
pub(crate) async fn run(name: &str, http: Option<SocketAddr>) -> anyhow::Result<()> {
    let env = rollout_envs::by_name(name).ok_or_else(|| {
        anyhow!(
            "no bundled environment named '{name}'; bundled: {}",
            rollout_envs::NAMES.join(", ")
        )
    })?;
    match http {
        Some(address) => env
            .serve_http(address)
            .await
            .with_context(|| format!("serving environment '{name}' over HTTP on {address}")),
        None => env
            .serve_stdio()
            .await
            .with_context(|| format!("serving environment '{name}' over stdio")),
    }
}
