//! `rollout.toml`, the manifest of a bundle: its name, how to build it, how to run it, the
//! resource limits of its processes and the secrets it needs.

use super::DeployError;
use rollout_mcp::{EnvSandbox, EnvTarget, ProcessLimits, SandboxConfig};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// The manifest's file name, at the bundle's root.
pub const MANIFEST_FILE: &str = "rollout.toml";
/// Largest manifest read (a manifest is a few lines).
const MAX_MANIFEST_BYTES: u64 = 64 * 1024;

/// A parsed `rollout.toml`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The environment's name; when given, it must match the name deployed to.
    pub name: Option<String>,
    /// `[build]`: run once, in the unpacked bundle, before the first start.
    #[serde(default)]
    pub build: BuildSection,
    /// `[run]`: how each run starts the environment.
    #[serde(default)]
    pub run: RunSection,
    /// `[limits]`: resource limits of every process of the environment, within the
    /// server's maxima (the server's defaults for those not given).
    #[serde(default)]
    pub limits: ProcessLimits,
    /// Variables of the server's environment the environment needs (hud's
    /// `required_env_vars`); the operator must have granted each one to it.
    #[serde(default)]
    pub secrets: Vec<String>,
}

/// `[build]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildSection {
    /// A shell command (`sh -c`), run with the bundle directory as working directory.
    pub command: Option<String>,
    /// Extra environment variables of the build.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

/// `[run]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSection {
    /// The program and its arguments, spoken to over stdio. A program given as a relative
    /// path (`.venv/bin/python`, `./serve.sh`) is found in the bundle directory, which is
    /// also the working directory.
    pub command: Option<Vec<String>>,
    /// Makes the environment an HTTP one that the server keeps running: `command` serves
    /// streamable HTTP on this port of 127.0.0.1. `0` lets the server pick a free port per
    /// replica, passed as `{port}` in the command and the `PORT` variable.
    pub port: Option<u16>,
    /// The MCP path of an HTTP environment (default `/mcp`).
    pub path: Option<String>,
    /// How many processes of an HTTP environment serve sessions (default 1).
    pub replicas: Option<u32>,
    /// Extra environment variables of the environment's process.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The protocol `command` speaks: `hud-0.5-mcp` (MCP, the default) or `hud-0.6` (the
    /// task protocol: `command` announces `HUD_SERVE_PORT=`). Detected as `hud-0.6` when
    /// not given and the command runs `hud.environment.server`.
    pub protocol: Option<String>,
}

impl RunSection {
    /// Whether the environment speaks the hud 0.6 task protocol.
    pub fn is_hud06(&self) -> bool {
        match self.protocol.as_deref() {
            Some(protocol) => protocol == "hud-0.6",
            None => self
                .command
                .iter()
                .flatten()
                .any(|arg| arg == "hud.environment.server"),
        }
    }
}

impl Manifest {
    /// Reads and parses the manifest at a bundle's root: a regular file (a link to one
    /// inside the bundle is fine) of at most 64 KiB.
    pub async fn read(root: &Path) -> Result<Manifest, DeployError> {
        let path = root.join(MANIFEST_FILE);
        let missing = || {
            DeployError::InvalidBundle(format!(
                "the bundle has no {MANIFEST_FILE} at its root (name, [build] command, [run] command)"
            ))
        };
        let meta = tokio::fs::metadata(&path).await.map_err(|_| missing())?;
        if !meta.is_file() {
            return Err(missing());
        }
        if meta.len() > MAX_MANIFEST_BYTES {
            return Err(DeployError::InvalidBundle(format!(
                "{MANIFEST_FILE} is larger than {} KiB",
                MAX_MANIFEST_BYTES / 1024
            )));
        }
        let text = tokio::fs::read_to_string(&path)
            .await
            .map_err(|_| missing())?;
        Manifest::parse(&text).map_err(DeployError::InvalidBundle)
    }

    /// Checks the manifest against its deploy: the name it declares, its limits against the
    /// server's maxima, and that the operator granted every secret it needs.
    pub fn check(
        &self,
        name: &str,
        project_id: &str,
        sandbox: &EnvSandbox,
        config: &SandboxConfig,
    ) -> Result<(), String> {
        let mut problems = Vec::new();
        if let Some(declared) = &self.name
            && declared != name
        {
            problems.push(format!(
                "name = \"{declared}\", but the environment is deployed as '{name}'"
            ));
        }
        problems.extend(config.limits.check(&self.limits));
        let granted = sandbox.granted_secrets();
        let section = if project_id == "default" {
            format!("[environments.{name}]")
        } else {
            format!("[environments.\"{project_id}/{name}\"]")
        };
        for secret in &self.secrets {
            if !granted.contains(&secret.as_str()) {
                problems.push(format!(
                    "the environment needs the secret '{secret}', which the operator has not granted to it (the server's rollout.toml: {section} secrets = [\"{secret}\"])"
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(format!("{MANIFEST_FILE}: {}", problems.join("; ")))
        }
    }

    /// Parses a manifest, listing every problem in one message.
    pub fn parse(text: &str) -> Result<Manifest, String> {
        let manifest: Manifest =
            toml::from_str(text).map_err(|error| format!("{MANIFEST_FILE}: {error}"))?;
        let mut problems = Vec::new();
        match &manifest.run.command {
            Some(command) => {
                if command
                    .first()
                    .is_none_or(|program| program.trim().is_empty())
                {
                    problems.push(
                        "[run] command must name a program, e.g. [\"python\", \"env.py\"]"
                            .to_string(),
                    );
                }
            }
            None => problems.push(
                "[run] command is missing: the program that serves the environment (over stdio, \
                 or over HTTP with [run] port)"
                    .to_string(),
            ),
        }
        if let Some(protocol) = manifest.run.protocol.as_deref()
            && !matches!(protocol, "hud-0.5-mcp" | "hud-0.6")
        {
            problems.push(format!(
                "[run] protocol must be \"hud-0.5-mcp\" (MCP, the default) or \"hud-0.6\", got \"{protocol}\""
            ));
        }
        if manifest.run.is_hud06()
            && (manifest.run.port.is_some()
                || manifest.run.path.is_some()
                || manifest.run.replicas.is_some())
        {
            problems.push(
                "[run] port, path and replicas are for MCP environments over HTTP; a hud 0.6 \
                 environment announces its own port (python -m hud.environment.server env.py --port 0)"
                    .to_string(),
            );
        }
        if manifest.run.port.is_none()
            && (manifest.run.path.is_some() || manifest.run.replicas.is_some())
        {
            problems.push("[run] path and replicas go with port (an HTTP environment)".to_string());
        }
        match (manifest.run.port, manifest.run.replicas) {
            (_, Some(0)) => problems.push("[run] replicas must be at least 1".to_string()),
            (Some(port), Some(replicas)) if port != 0 && replicas > 1 => problems.push(
                "[run] several replicas cannot share a fixed port: use port = 0 and {port} in the command"
                    .to_string(),
            ),
            _ => {}
        }
        if manifest
            .run
            .path
            .as_deref()
            .is_some_and(|path| !path.starts_with('/'))
        {
            problems.push("[run] path must start with '/', e.g. \"/mcp\"".to_string());
        }
        if manifest
            .build
            .command
            .as_deref()
            .is_some_and(|c| c.trim().is_empty())
        {
            problems.push("[build] command is empty".to_string());
        }
        problems.extend(manifest.limits.zero_problems("[limits]"));
        if let Some(bad) = manifest.secrets.iter().find(|name| !is_variable_name(name)) {
            problems.push(format!("secrets: '{bad}' is not a variable name"));
        }
        if problems.is_empty() {
            Ok(manifest)
        } else {
            Err(format!("{MANIFEST_FILE}: {}", problems.join("; ")))
        }
    }

    /// How to reach the environment once the bundle sits, built, in `dir` (absolute).
    pub fn target(&self, dir: &Path) -> EnvTarget {
        let mut command = self.run.command.clone().unwrap_or_default();
        if let Some(program) = command.first_mut()
            && program.contains('/')
            && Path::new(program.as_str()).is_relative()
        {
            *program = dir.join(program.as_str()).display().to_string();
        }
        let env: Map<String, Value> = self
            .run
            .env
            .iter()
            .map(|(key, value)| (key.clone(), Value::String(value.clone())))
            .collect();
        let limits = (self.limits != ProcessLimits::default()).then(|| self.limits.clone());
        if self.run.is_hud06() {
            return EnvTarget::Hud06Command {
                protocol: rollout_mcp::Hud06Protocol::Hud06,
                command,
                cwd: Some(dir.to_path_buf()),
                env,
                limits,
            };
        }
        match self.run.port {
            Some(port) => EnvTarget::Served {
                command,
                port,
                path: self.run.path.clone().unwrap_or_else(|| "/mcp".into()),
                replicas: self.run.replicas.unwrap_or(1),
                cwd: Some(dir.to_path_buf()),
                env,
                limits,
            },
            None => EnvTarget::Command {
                command,
                cwd: Some(dir.to_path_buf()),
                env,
                limits,
            },
        }
    }
}

/// `[A-Za-z_][A-Za-z0-9_]*`.
fn is_variable_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hud06_bundle_runs_by_the_task_protocol() {
        let manifest = Manifest::parse(
            "[run]\nprotocol = \"hud-0.6\"\ncommand = [\"python\", \"-m\", \"hud.environment.server\", \"env.py\", \"--port\", \"0\"]\n",
        )
        .unwrap();
        let target = manifest.target(Path::new("/data/envs/e/abc"));
        assert!(target.is_hud06(), "{target:?}");
        let detected = Manifest::parse(
            "[run]\ncommand = [\"python\", \"-m\", \"hud.environment.server\", \"env.py\"]\n",
        )
        .unwrap();
        assert!(detected.target(Path::new("/d")).is_hud06());
        let error = Manifest::parse("[run]\nprotocol = \"hud-0.6\"\ncommand = [\"x\"]\nport = 0\n")
            .unwrap_err();
        assert!(error.contains("announces its own port"), "{error}");
        let error = Manifest::parse("[run]\nprotocol = \"mcp\"\ncommand = [\"x\"]\n").unwrap_err();
        assert!(error.contains("protocol must be"), "{error}");
    }

    #[test]
    fn parses_a_full_manifest_and_resolves_the_program_in_the_bundle() {
        let manifest = Manifest::parse(
            r#"
            name = "inbox"
            [build]
            command = "python3 -m venv .venv && .venv/bin/pip install -r requirements.txt"
            [run]
            command = [".venv/bin/python", "env.py"]
            env = { MODE = "test" }
            [limits]
            max_memory_mb = 512
            max_open_files = 256
            "#,
        )
        .unwrap();
        assert_eq!(manifest.name.as_deref(), Some("inbox"));
        let target = manifest.target(Path::new("/data/envs/inbox/abc"));
        let EnvTarget::Command {
            command,
            cwd,
            env,
            limits,
        } = target
        else {
            panic!("a stdio target");
        };
        assert_eq!(command, ["/data/envs/inbox/abc/.venv/bin/python", "env.py"]);
        assert_eq!(cwd.unwrap(), Path::new("/data/envs/inbox/abc"));
        assert_eq!(env["MODE"], "test");
        assert_eq!(
            limits.unwrap(),
            ProcessLimits {
                max_memory_mb: Some(512),
                max_open_files: Some(256),
                ..ProcessLimits::default()
            }
        );
    }

    #[test]
    fn a_program_on_the_path_is_left_alone_and_no_limits_means_none() {
        let manifest = Manifest::parse("[run]\ncommand = [\"python3\", \"env.py\"]\n").unwrap();
        let EnvTarget::Command {
            command, limits, ..
        } = manifest.target(Path::new("/b"))
        else {
            panic!("a stdio target");
        };
        assert_eq!(command, ["python3", "env.py"]);
        assert_eq!(limits, None);
    }

    #[test]
    fn problems_are_listed_together() {
        let error =
            Manifest::parse("[run]\nport = 8000\npath = \"/mcp\"\n[limits]\nmax_memory_mb = 0\n")
                .unwrap_err();
        assert!(error.contains("[run] command is missing"), "{error}");
        assert!(
            error.contains("max_memory_mb must be at least 1"),
            "{error}"
        );
        assert!(
            Manifest::parse("name = \"x\"\n")
                .unwrap_err()
                .contains("[run]")
        );
        assert!(
            Manifest::parse("[run]\ncommand = []\n")
                .unwrap_err()
                .contains("must name a program")
        );
        assert!(Manifest::parse("[run]\ncommand = [\"a\"]\nbogus = 1\n").is_err());
    }

    #[test]
    fn a_port_makes_an_http_environment_with_replicas() {
        let manifest = Manifest::parse(
            "[run]\ncommand = [\"./serve\", \"--port\", \"{port}\"]\nport = 0\nreplicas = 3\n",
        )
        .unwrap();
        let EnvTarget::Served {
            command,
            port,
            path,
            replicas,
            ..
        } = manifest.target(Path::new("/b"))
        else {
            panic!("not a served environment");
        };
        assert_eq!(command, ["/b/./serve", "--port", "{port}"]);
        assert_eq!((port, path.as_str(), replicas), (0, "/mcp", 3));
        let error =
            Manifest::parse("[run]\ncommand = [\"x\"]\nport = 8000\nreplicas = 2\n").unwrap_err();
        assert!(error.contains("cannot share a fixed port"), "{error}");
    }

    #[test]
    fn limits_above_the_maxima_and_secrets_not_granted_are_refused() {
        use rollout_mcp::{EnvPolicy, Sandbox, SandboxConfig, Secret};
        let manifest = Manifest::parse(
            "name = \"search\"\nsecrets = [\"SERP_API_KEY\", \"MAPS_KEY\"]\n[run]\ncommand = [\"a\"]\n[limits]\nmax_memory_mb = 999999\n",
        )
        .unwrap();
        let sandbox = Sandbox::new(SandboxConfig {
            environments: vec![EnvPolicy {
                project: "default".into(),
                name: "search".into(),
                isolated: true,
                network: None,
                secrets: vec![Secret::new("SERP_API_KEY", "value")],
            }],
            ..Sandbox::unconfined().config().clone()
        });
        let error = manifest
            .check(
                "search",
                "default",
                &sandbox.for_env("default", "search"),
                sandbox.config(),
            )
            .unwrap_err();
        assert!(error.contains("max_memory_mb = 999999 is above"), "{error}");
        assert!(error.contains("secret 'MAPS_KEY'"), "{error}");
        assert!(error.contains("[environments.search] secrets"), "{error}");
        assert!(!error.contains("SERP_API_KEY"), "{error}");
        // Another project's environment of the same name was granted nothing.
        let error = manifest
            .check(
                "search",
                "acme",
                &sandbox.for_env("acme", "search"),
                sandbox.config(),
            )
            .unwrap_err();
        assert!(error.contains("[environments.\"acme/search\"]"), "{error}");
        assert!(error.contains("secret 'SERP_API_KEY'"), "{error}");
        assert!(
            Manifest::parse("secrets = [\"1 bad\"]\n[run]\ncommand = [\"a\"]\n")
                .unwrap_err()
                .contains("not a variable name")
        );
    }
}
