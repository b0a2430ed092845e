//! `[sandbox]`, `[deploy]` and the per-environment settings of `rollout.toml`, and the
//! sandbox they make: found bubblewrap (tried once at start), the users of their own when
//! the server runs as root, the limits, the allowed variables, and the secrets the operator
//! grants, read from the server's environment here, once.

use crate::config::{EnvironmentSection, Settings};
use anyhow::{Context, bail};
use rollout_mcp::{
    EnvPolicy, LimitPolicy, Network, ProcessLimits, ProcessRole, ProcessSpec, Sandbox,
    SandboxConfig, Secret, UidRange,
};
use rollout_worker::deploy::GitConfig;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The project environments belong to unless their key names another (`"PROJECT/NAME"`).
const DEFAULT_PROJECT: &str = crate::serve::DEFAULT_PROJECT;
/// First user of the sandboxes of a root server: above the ranges systems and container
/// managers hand out (systemd-nspawn stops at 1879048191).
const FIRST_UID: u32 = 2_000_000_000;
const UID_COUNT: u32 = 65_536;
/// Budget of the start-up check that bubblewrap works here.
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// `[sandbox]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SandboxSection {
    /// Refuse to start without a working bubblewrap (default false: warn and go on).
    pub(crate) required: Option<bool>,
    /// The default network of environments: `host` or `none`.
    pub(crate) network: Option<Network>,
    /// The bubblewrap program (default: `bwrap` in `PATH`).
    pub(crate) bwrap: Option<PathBuf>,
    /// Host paths shown read-only in every sandbox (a shared toolchain, a model cache).
    #[serde(default)]
    pub(crate) read_only_paths: Vec<PathBuf>,
    /// First user id of the sandboxes of a root server, and how many there are.
    pub(crate) first_uid: Option<u32>,
    pub(crate) uid_count: Option<u32>,
    /// `[sandbox.limits]`: the defaults of every environment process.
    #[serde(default)]
    pub(crate) limits: ProcessLimits,
    /// `[sandbox.max_limits]`: the most a manifest's `[limits]` may ask for.
    #[serde(default)]
    pub(crate) max_limits: ProcessLimits,
}

/// `[deploy]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeploySection {
    /// Accept git deploys from `file://` URLs and local paths (they read this machine's
    /// disk; default false).
    pub(crate) allow_local_git: Option<bool>,
}

/// The sandbox of this server. Without a working bubblewrap it warns once (or fails when
/// `[sandbox] required = true`) and environments run without isolation.
pub(crate) async fn sandbox(settings: &Settings) -> anyhow::Result<Sandbox> {
    let section = &settings.sandbox;
    let required = section.required.unwrap_or(false);
    let data_dir = std::fs::canonicalize(&settings.data_dir)
        .with_context(|| format!("resolving {}", settings.data_dir.display()))?;
    let limits = LimitPolicy::with(&section.limits, &section.max_limits)
        .map_err(|problems| anyhow::anyhow!("{problems}"))?;
    let root = nix::unistd::geteuid().is_root();
    let uids = root.then(|| UidRange {
        first: section.first_uid.unwrap_or(FIRST_UID),
        count: section.uid_count.unwrap_or(UID_COUNT).max(1),
    });
    let config = SandboxConfig {
        program: Some(std::env::current_exe().context("locating the rollout binary")?),
        bwrap: section.bwrap.clone().or_else(|| find_in_path("bwrap")),
        work_root: data_dir.join("work"),
        hidden: vec![data_dir.clone()],
        bundles: Some(data_dir.join("envs")),
        read_only_paths: section.read_only_paths.clone(),
        uids,
        limits,
        network: section.network.unwrap_or_default(),
        base_env: allowed_variables(|name| {
            matches!(name, "PATH" | "LANG" | "TZ") || name.starts_with("LC_")
        }),
        environments: policies(&settings.environments)?,
    };
    let Some(bwrap) = config.bwrap.clone() else {
        let why = "bubblewrap (bwrap) is not installed";
        if required {
            bail!("{why}, and [sandbox] required = true: install the `bubblewrap` package");
        }
        warn_unsandboxed(why, root);
        return Ok(Sandbox::new(config));
    };
    let sandbox = Sandbox::new(config.clone());
    match probe(&sandbox).await {
        Ok(()) => {
            tracing::info!(bwrap = %bwrap.display(), own_users = root, "environment processes run in a sandbox");
            Ok(sandbox)
        }
        Err(reason) => {
            let why = format!(
                "bubblewrap ({}) cannot make a sandbox here: {reason}",
                bwrap.display()
            );
            if required {
                bail!("{why}; [sandbox] required = true");
            }
            warn_unsandboxed(&why, root);
            Ok(Sandbox::new(SandboxConfig {
                bwrap: None,
                ..config
            }))
        }
    }
}

/// What git deploys may reach and run with.
pub(crate) fn git(settings: &Settings) -> GitConfig {
    GitConfig {
        allow_local: settings.deploy.allow_local_git.unwrap_or(false),
        env: allowed_variables(|name| {
            matches!(name, "PATH" | "HOME" | "SSH_AUTH_SOCK" | "LANG") || name.starts_with("LC_")
        }),
    }
}

/// The one warning of a server whose environments run without a sandbox.
fn warn_unsandboxed(why: &str, root: bool) {
    let user = if root { "root" } else { "the server's user" };
    tracing::warn!(
        "{why}: environment processes run WITHOUT a sandbox, as {user}, seeing this machine's files \
         and processes (they still get a cleared environment and resource limits). Install \
         bubblewrap, or set [sandbox] required = true to refuse to start without it."
    );
}

/// Starts `true` in a sandbox, as an environment would be: the reason when it fails.
async fn probe(sandbox: &Sandbox) -> Result<(), String> {
    let command = ["true".to_string()];
    let spec = ProcessSpec {
        role: ProcessRole::Session,
        command: &command,
        cwd: None,
        env: Vec::new(),
        limits: None,
    };
    let sandboxed = sandbox
        .for_env(DEFAULT_PROJECT, "sandbox-check")
        .command(&spec)
        .map_err(|e| e.to_string())?;
    let mut command = sandboxed.command;
    command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(PROBE_TIMEOUT, command.output())
        .await
        .map_err(|_| {
            format!(
                "a test sandbox did not finish within {} s",
                PROBE_TIMEOUT.as_secs()
            )
        })?
        .map_err(|e| e.to_string())?;
    drop(sandboxed.work_dir);
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).trim().to_string())
    }
}

/// What the operator decided per environment, with the granted secrets read from the
/// server's environment (a missing one is a configuration mistake).
fn policies(environments: &[EnvironmentSection]) -> anyhow::Result<Vec<EnvPolicy>> {
    let mut policies = Vec::new();
    for section in environments {
        let mut secrets = Vec::new();
        for name in &section.secrets {
            let Some(value) = crate::config::read_env(name) else {
                bail!(
                    "{} grants the secret {name}, which is not set in the server's environment",
                    section.title()
                );
            };
            secrets.push(Secret::new(name, value));
        }
        policies.push(EnvPolicy {
            project: section.project.clone(),
            name: section.name.clone(),
            isolated: section.sandbox.unwrap_or(true),
            network: section.network,
            secrets,
        });
    }
    Ok(policies)
}

/// The server's variables whose names pass `allowed`.
#[allow(clippy::disallowed_methods)]
fn allowed_variables(allowed: impl Fn(&str) -> bool) -> Vec<(String, String)> {
    std::env::vars().filter(|(name, _)| allowed(name)).collect()
}

/// `program` in the server's `PATH`.
fn find_in_path(program: &str) -> Option<PathBuf> {
    let path = crate::config::read_env("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use crate::config::{FileConfig, ServeArgs, Settings};

    #[test]
    fn environments_are_tables_or_entries() {
        let file: FileConfig = toml::from_str(
            r#"
            [environments.inbox]
            secrets = ["SERP_API_KEY"]
            network = "none"

            [environments."acme/search"]
            sandbox = false
            command = ["python", "env.py"]
            "#,
        )
        .unwrap();
        let find = |name: &str| {
            file.environments
                .0
                .iter()
                .find(|section| section.name == name)
                .unwrap()
        };
        assert_eq!(find("inbox").project, "default");
        assert_eq!(find("inbox").network, Some(rollout_mcp::Network::None));
        assert_eq!(find("search").project, "acme");
        assert_eq!(find("search").sandbox, Some(false));
        assert_eq!(find("search").title(), "[environments.\"acme/search\"]");

        let file: FileConfig =
            toml::from_str("[[environments]]\nname = \"x\"\nurl = \"http://127.0.0.1:1/mcp\"\n")
                .unwrap();
        assert_eq!(file.environments.0[0].name, "x");
        let error = toml::from_str::<FileConfig>("[[environments]]\nurl = \"http://h/mcp\"\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("needs a name"), "{error}");
        assert!(toml::from_str::<FileConfig>("[environments.x]\nbogus = 1\n").is_err());
    }

    #[test]
    fn a_short_admin_key_is_refused() {
        let error = Settings::resolve(ServeArgs {
            admin_key: Some("too-short".into()),
            ..ServeArgs::default()
        })
        .unwrap_err()
        .to_string();
        assert!(error.contains("at least 32"), "{error}");
        let long = "k".repeat(32);
        assert!(
            Settings::resolve(ServeArgs {
                admin_key: Some(long),
                ..ServeArgs::default()
            })
            .is_ok()
        );
    }
}
