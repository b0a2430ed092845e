//! `rollout env deploy|list|delete`: deploy a bundle directory or a git repository to a
//! running server, list its environments, delete one.

use crate::api::Api;
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use rollout_api::environments::{Deleted, Deployed, EnvironmentList, GitRequest, RegisterRequest};
use rollout_worker::deploy::{MANIFEST_FILE, Manifest, pack_directory};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

/// How long a deploy (upload, build, start, introspection) may take.
const DEPLOY_TIMEOUT: Duration = Duration::from_secs(3600);

/// The server and the key to use.
#[derive(Debug, Args)]
pub(crate) struct EnvTarget {
    /// URL of the rollout server.
    #[arg(long, env = "ROLLOUT_URL", default_value = "http://127.0.0.1:8300")]
    url: String,
    /// An API key of that server (deploy and delete need an admin key).
    #[arg(long, env = "ROLLOUT_KEY", hide_env_values = true)]
    key: String,
}

/// `rollout env ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum EnvCommand {
    /// Deploy a bundle directory (with a rollout.toml) or a git repository: the server
    /// builds it, starts it, reads its tools and scenarios, and serves new runs with it.
    Deploy {
        /// The bundle directory (packed as a tar.gz, without .git, .venv, __pycache__
        /// and node_modules).
        #[arg(required_unless_present = "git", conflicts_with = "git")]
        dir: Option<PathBuf>,
        /// Deploy this git repository instead (any URL git takes; file:// and local paths).
        #[arg(long)]
        git: Option<String>,
        /// The git branch, tag or commit (default: the default branch).
        #[arg(long = "ref", requires = "git")]
        reference: Option<String>,
        /// The environment's name (default: `name` of the directory's rollout.toml).
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        target: EnvTarget,
    },
    /// List the environments and their newest versions.
    List {
        #[command(flatten)]
        target: EnvTarget,
    },
    /// Delete an environment and its versions (runs and traces stay).
    Delete {
        name: String,
        /// Cancel its queued and running runs instead of refusing.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        target: EnvTarget,
    },
}

/// Runs an `env` subcommand.
pub(crate) async fn run(command: EnvCommand) -> anyhow::Result<()> {
    match command {
        EnvCommand::Deploy {
            dir,
            git,
            reference,
            name,
            target,
        } => {
            let api = Api::new(&target.url, &target.key)?;
            let response = match (dir, git) {
                (Some(dir), None) => {
                    let manifest_path = dir.join(MANIFEST_FILE);
                    let text = std::fs::read_to_string(&manifest_path)
                        .with_context(|| format!("reading {}", manifest_path.display()))?;
                    let manifest = Manifest::parse(&text)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
                    let Some(name) = name.or(manifest.name) else {
                        bail!(
                            "name the environment: `name = \"...\"` in {MANIFEST_FILE}, or --name"
                        );
                    };
                    let packed = pack_directory(&dir)
                        .with_context(|| format!("packing {}", dir.display()))?;
                    say(&format!(
                        "Deploying {} as '{name}' ({} KiB)...\n",
                        dir.display(),
                        packed.len().div_ceil(1024)
                    ))?;
                    api.post_bytes(
                        &format!("/v1/environments/{name}/deploy"),
                        "application/gzip",
                        packed,
                        DEPLOY_TIMEOUT,
                    )
                    .await?
                }
                (None, Some(url)) => {
                    let Some(name) = name else {
                        bail!("--name is required with --git");
                    };
                    say(&format!("Deploying {url} as '{name}'...\n"))?;
                    let body = RegisterRequest {
                        name,
                        git: Some(GitRequest { url, reference }),
                        ..RegisterRequest::default()
                    };
                    api.post_slow("/v1/environments", &body, DEPLOY_TIMEOUT)
                        .await?
                }
                _ => bail!("give a directory or --git URL"),
            };
            report_deploy(&response)
        }
        EnvCommand::List { target } => {
            let api = Api::new(&target.url, &target.key)?;
            let list: EnvironmentList = api.get("/v1/environments").await?;
            let mut lines = String::new();
            for env in &list.environments {
                lines.push_str(&format!(
                    "{:<24} v{:<4} {:<7} {}\n",
                    env.name,
                    env.latest_version,
                    env.status,
                    names(env.scenarios.iter().cloned()),
                ));
            }
            if lines.is_empty() {
                lines.push_str("no environments\n");
            }
            say(&lines)
        }
        EnvCommand::Delete {
            name,
            force,
            target,
        } => {
            let api = Api::new(&target.url, &target.key)?;
            let path = if force {
                format!("/v1/environments/{name}?force=true")
            } else {
                format!("/v1/environments/{name}")
            };
            let deleted: Deleted = api.delete(&path).await?;
            say(&format!(
                "Deleted '{name}' ({} version(s)); {} run(s) cancelled.\n",
                deleted.deleted_versions,
                deleted.cancelled_runs.len(),
            ))
        }
    }
}

/// Prints a deploy's build log and outcome.
fn report_deploy(response: &Deployed) -> anyhow::Result<()> {
    let log = &response.build_log;
    let env = &response.environment;
    let mut text_out = String::new();
    if response.unchanged {
        text_out.push_str(&format!(
            "Unchanged: version {} of '{}' already has this content.\n",
            response.deployed_version, env.name,
        ));
    } else {
        if !log.is_empty() {
            text_out.push_str("--- build log ---\n");
            text_out.push_str(log);
            if !log.ends_with('\n') {
                text_out.push('\n');
            }
            text_out.push_str("---\n");
        }
        text_out.push_str(&format!(
            "Version {} of '{}' is ready: scenarios {}; tools {}.\n",
            response.deployed_version,
            env.name,
            names(env.scenarios.iter().map(|s| s.name.clone())),
            names(env.tools.iter().map(|t| t.name.clone())),
        ));
    }
    say(&text_out)
}

fn names(list: impl Iterator<Item = String>) -> String {
    let names: Vec<String> = list.collect();
    if names.is_empty() {
        "(none)".into()
    } else {
        names.join(", ")
    }
}

fn say(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout();
    stdout
        .write_all(text.as_bytes())
        .context("writing to stdout")?;
    stdout.flush().context("writing to stdout")
}
