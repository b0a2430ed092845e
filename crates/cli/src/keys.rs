//! `rollout keys create|list|revoke`: manage the API keys of a running server (admin key).

use crate::api::Api;
use anyhow::Context;
use clap::{Args, Subcommand};
use rollout_api::keys::{CreateKey, CreatedKey, KeyList};
use serde_json::Value;
use std::io::Write;

/// The server and the admin key to use.
#[derive(Debug, Args)]
pub(crate) struct KeysTarget {
    /// URL of the rollout server.
    #[arg(long, env = "ROLLOUT_URL", default_value = "http://127.0.0.1:8300")]
    url: String,
    /// An admin API key of that server.
    #[arg(long, env = "ROLLOUT_KEY", hide_env_values = true)]
    key: String,
    /// The project to act on (default: the admin key's own project).
    #[arg(long)]
    project: Option<String>,
}

/// `rollout keys ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Create a key; its secret is printed once.
    Create {
        /// A name to tell the key apart, e.g. ci-nightly.
        #[arg(long)]
        name: String,
        /// admin or member.
        #[arg(long, default_value = "member")]
        role: String,
        #[command(flatten)]
        target: KeysTarget,
    },
    /// List the active keys (never their secrets).
    List {
        #[command(flatten)]
        target: KeysTarget,
    },
    /// Revoke a key at once.
    Revoke {
        /// The key's id (from `rollout keys list`).
        id: String,
        #[command(flatten)]
        target: KeysTarget,
    },
}

/// Runs a `keys` subcommand.
pub(crate) async fn run(command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Create { name, role, target } => {
            let api = Api::new(&target.url, &target.key)?;
            let body = CreateKey {
                name,
                role: Some(role),
                project: target.project.clone(),
            };
            let created: CreatedKey = api.post("/v1/keys", &body).await?;
            let key = &created.key;
            out(&format!(
                "Created {} key '{}' ({}) in project '{}'. Its secret, shown only now:\n\n    {}\n",
                key.role, key.name, key.id, key.project, created.secret,
            ))
        }
        KeysCommand::List { target } => {
            let api = Api::new(&target.url, &target.key)?;
            let list: KeyList = api.get(&with_project("/v1/keys", &target)).await?;
            let mut lines = format!("{} key(s) in project '{}'\n", list.keys.len(), list.project);
            for key in &list.keys {
                lines.push_str(&format!(
                    "{}  {:<6}  {}...  {}  {}\n",
                    key.id, key.role, key.prefix, key.created_at, key.name,
                ));
            }
            out(&lines)
        }
        KeysCommand::Revoke { id, target } => {
            let api = Api::new(&target.url, &target.key)?;
            let _: Value = api
                .delete(&with_project(&format!("/v1/keys/{id}"), &target))
                .await?;
            out(&format!("Revoked key {id}.\n"))
        }
    }
}

fn with_project(path: &str, target: &KeysTarget) -> String {
    match &target.project {
        Some(project) => format!("{path}?project={project}"),
        None => path.to_string(),
    }
}

fn out(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout();
    stdout
        .write_all(text.as_bytes())
        .context("writing to stdout")?;
    stdout.flush().context("writing to stdout")
}
