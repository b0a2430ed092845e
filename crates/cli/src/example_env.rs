//! `rollout example-env NAME`: the bundled example environments, served over stdio, so
//! that a fresh server has something to run without Python or any other install.

use anyhow::{Context, anyhow};

/// Serves the named bundled environment on stdin/stdout until the client goes away.
pub(crate) async fn run(name: &str) -> anyhow::Result<()> {
    let env = rollout_envs::by_name(name).ok_or_else(|| {
        anyhow!(
            "no bundled environment named '{name}'; bundled: {}",
            rollout_envs::NAMES.join(", ")
        )
    })?;
    env.serve_stdio()
        .await
        .with_context(|| format!("serving environment '{name}' over stdio"))
}
