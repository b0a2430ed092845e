//! Serves a bundled environment, for manual checks and interop tests:
//! `cargo run -p rollout-envs --example serve -- my-assistant` (stdio) or
//! `cargo run -p rollout-envs --example serve -- my-assistant --http 127.0.0.1:8765` (at `/mcp`).

use std::error::Error;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "my-assistant".to_owned());
    match (args.next().as_deref(), args.next()) {
        (Some("--http"), Some(addr)) => {
            let environment = rollout_envs::by_name(&name).ok_or_else(|| {
                format!(
                    "unknown environment '{name}' (known: {:?})",
                    rollout_envs::NAMES
                )
            })?;
            environment.serve_http(addr.parse()?).await?;
        }
        (None, _) => rollout_envs::serve_stdio_by_name(&name).await?,
        _ => return Err("usage: serve [NAME] [--http HOST:PORT]".into()),
    }
    Ok(())
}
