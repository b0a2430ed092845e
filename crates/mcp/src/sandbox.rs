//! The sandbox every environment process starts in: stdio sessions (per run, warm pool,
//! gateway), HTTP replicas, introspection and builds all get their command from
//! [`EnvSandbox::command`], and nowhere else.
//!
//! What a process gets:
//! - a cleared environment: `PATH`, `LANG`, `LC_*`, `TZ` of the server, its own `HOME` and
//!   `TMPDIR`, the variables its target or manifest sets, and the secrets the operator
//!   granted to its environment by name; never the server's keys or database URL;
//! - `rollout env-guard` around it: resource limits (the server's defaults, or what the
//!   manifest asks within the maxima), a private work directory removed at the end, and the
//!   whole process tree killed when the server dies, even by SIGKILL;
//! - with bubblewrap, a sandbox: read-only system directories and only the trees its command
//!   needs, no view of the data directory (except its own bundle), private `/tmp` and home,
//!   its own PID, IPC and UTS namespaces, the network of the host or none; when the server
//!   runs as root, an unprivileged user of its own (so that `max_processes` counts its tree).

mod bwrap;
mod limits;
mod paths;

pub use limits::{LimitPolicy, ProcessLimits};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// `HOME` inside a sandbox (the private work directory's `home`).
pub const SANDBOX_HOME: &str = "/home/rollout";

/// How an environment reaches the network.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    /// The host's network (the default).
    #[default]
    Host,
    /// Loopback only, in a network namespace of its own.
    None,
}

/// A variable of the server's environment that the operator grants to an environment.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    pub name: String,
    value: String,
}

impl Secret {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({}=***)", self.name)
    }
}

/// What the operator decided for one environment (`[environments.NAME]` of `rollout.toml`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvPolicy {
    pub project: String,
    pub name: String,
    /// False: its processes run without bubblewrap (a command the operator trusts).
    pub isolated: bool,
    /// Overrides the server's default network.
    pub network: Option<Network>,
    /// Variables of the server's environment handed to its processes.
    pub secrets: Vec<Secret>,
}

/// The users environment processes run as when the server runs as root: each process tree
/// gets the next one, so that `RLIMIT_NPROC` (counted per user) bounds that tree alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UidRange {
    pub first: u32,
    pub count: u32,
}

/// The server-wide settings of the sandbox.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// The rollout binary (`env-guard`, and `sandbox-exec` inside a sandbox). `None`:
    /// processes start directly, with a cleared environment but no limits nor isolation
    /// (tests of the libraries).
    pub program: Option<PathBuf>,
    /// bubblewrap; `None`: no isolation (the server warned at start).
    pub bwrap: Option<PathBuf>,
    /// Where private work directories are made (`WORK_ROOT/ID`, removed at the end).
    pub work_root: PathBuf,
    /// Never visible in a sandbox (canonical): the data directory.
    pub hidden: Vec<PathBuf>,
    /// Where deployed bundles live: a working directory under it (the process's own
    /// bundle) is shown although it lies in a hidden root.
    pub bundles: Option<PathBuf>,
    /// Extra host paths shown read-only in every sandbox.
    pub read_only_paths: Vec<PathBuf>,
    /// Users of their own for sandboxes (the server runs as root).
    pub uids: Option<UidRange>,
    pub limits: LimitPolicy,
    /// The default network of environments.
    pub network: Network,
    /// The allowed variables of the server's environment (`PATH`, `LANG`, `LC_*`, `TZ`).
    pub base_env: Vec<(String, String)>,
    pub environments: Vec<EnvPolicy>,
}

/// The variables of a target (`env` of a registration or a manifest's `[run]`) as strings.
pub fn variables(env: &serde_json::Map<String, serde_json::Value>) -> Vec<(String, String)> {
    env.iter()
        .map(|(key, value)| {
            let value = match value {
                serde_json::Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            (key.clone(), value)
        })
        .collect()
}

/// The sandbox of this server. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Sandbox {
    config: Arc<SandboxConfig>,
    next_uid: Arc<AtomicU32>,
}

impl Sandbox {
    pub fn new(config: SandboxConfig) -> Self {
        // Start the users at a point of the range of its own, so that two servers on one
        // machine rarely hand out the same user at the same time.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.subsec_nanos())
            .unwrap_or_default();
        let start = nanos ^ std::process::id().wrapping_mul(2_654_435_761);
        Self {
            config: Arc::new(config),
            next_uid: Arc::new(AtomicU32::new(start)),
        }
    }

    /// Processes start directly with a cleared environment: no guard, limits or isolation.
    /// For tests of the libraries; a server always has a real sandbox.
    pub fn unconfined() -> Self {
        Self::new(SandboxConfig {
            program: None,
            bwrap: None,
            work_root: std::env::temp_dir().join("rollout-work"),
            hidden: Vec::new(),
            bundles: None,
            read_only_paths: Vec::new(),
            uids: None,
            limits: LimitPolicy::default(),
            network: Network::Host,
            base_env: Vec::new(),
            environments: Vec::new(),
        })
    }

    pub fn config(&self) -> &SandboxConfig {
        &self.config
    }

    /// The sandbox of one environment's processes, with what the operator decided for it.
    pub fn for_env(&self, project: &str, name: &str) -> EnvSandbox {
        let policy = self
            .config
            .environments
            .iter()
            .find(|policy| policy.project == project && policy.name == name)
            .cloned();
        EnvSandbox {
            sandbox: self.clone(),
            policy,
        }
    }

    fn next_uid(&self, range: UidRange) -> u32 {
        let n = self.next_uid.fetch_add(1, Ordering::Relaxed);
        range.first.saturating_add(n % range.count.max(1))
    }
}

/// What a process is for; it decides its network and whether its bundle is writable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessRole {
    /// A stdio environment (a run, the warm pool, a gateway session, introspection).
    Session,
    /// An HTTP replica: always on the host's network, so that the server reaches it.
    Replica,
    /// A bundle's build: its bundle directory writable, on the host's network (it fetches
    /// dependencies).
    Build,
}

/// One process to start.
#[derive(Debug, Clone)]
pub struct ProcessSpec<'a> {
    pub role: ProcessRole,
    pub command: &'a [String],
    /// The working directory (a bundle's directory); the private home when `None`.
    pub cwd: Option<&'a Path>,
    /// Variables the target or manifest sets.
    pub env: Vec<(String, String)>,
    /// What the manifest asks for (the server's defaults when `None`).
    pub limits: Option<&'a ProcessLimits>,
}

/// A command ready to spawn, with the private work directory it uses.
#[derive(Debug)]
pub struct SandboxedCommand {
    pub command: tokio::process::Command,
    pub work_dir: WorkDir,
    /// The user (and group) of its own the process runs as, when it has one.
    pub user: Option<u32>,
}

/// A private work directory, removed when dropped: drop it after its processes are gone.
#[derive(Debug)]
pub struct WorkDir {
    path: PathBuf,
}

impl WorkDir {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let path = std::mem::take(&mut self.path);
        let remove = move || {
            // A process killed a moment ago may still be finishing a write.
            for _ in 0..5 {
                match std::fs::remove_dir_all(&path) {
                    Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                        std::thread::sleep(std::time::Duration::from_millis(100));
                    }
                    _ => return,
                }
            }
            tracing::warn!(dir = %path.display(), "could not remove an environment's work directory");
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => drop(handle.spawn_blocking(remove)),
            Err(_) => remove(),
        }
    }
}

/// The sandbox of one environment.
#[derive(Debug, Clone)]
pub struct EnvSandbox {
    sandbox: Sandbox,
    policy: Option<EnvPolicy>,
}

impl EnvSandbox {
    /// True when this environment's processes run in bubblewrap.
    pub fn isolated(&self) -> bool {
        self.sandbox.config.bwrap.is_some() && self.policy.as_ref().is_none_or(|p| p.isolated)
    }

    /// The names of the secrets granted to this environment.
    pub fn granted_secrets(&self) -> Vec<&str> {
        self.policy
            .iter()
            .flat_map(|policy| policy.secrets.iter().map(|secret| secret.name.as_str()))
            .collect()
    }

    /// The command that starts `spec` in this environment's sandbox.
    pub fn command(&self, spec: &ProcessSpec<'_>) -> std::io::Result<SandboxedCommand> {
        let config = &self.sandbox.config;
        if spec
            .command
            .first()
            .is_none_or(|program| program.is_empty())
        {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the command is empty",
            ));
        }
        let work_dir = WorkDir {
            path: config.work_root.join(rollout_domain::new_id()),
        };
        let isolated = self.isolated();
        let user = match (isolated, config.uids, &config.program) {
            (true, Some(range), Some(_)) => Some(self.sandbox.next_uid(range)),
            _ => None,
        };
        let (home, tmp) = if isolated {
            (PathBuf::from(SANDBOX_HOME), PathBuf::from("/tmp"))
        } else {
            (work_dir.path.join("home"), work_dir.path.join("tmp"))
        };
        // Made here, private; the guard gives them to the sandbox's user.
        for dir in [work_dir.path.join("home"), work_dir.path.join("tmp")] {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
        let mut command = match &config.program {
            None => {
                let mut command = tokio::process::Command::new(&spec.command[0]);
                command.args(&spec.command[1..]);
                command
            }
            Some(program) => {
                let argv = self.guarded_argv(program, spec, &work_dir, isolated, user);
                let mut command = tokio::process::Command::new(&argv[0]);
                command.args(&argv[1..]);
                command
            }
        };
        command.env_clear();
        command.envs(config.base_env.iter().map(|(k, v)| (k, v)));
        command.envs(spec.env.iter().map(|(k, v)| (k, v)));
        for secret in self.policy.iter().flat_map(|policy| &policy.secrets) {
            command.env(&secret.name, &secret.value);
        }
        command.env("HOME", &home).env("TMPDIR", &tmp);
        if !isolated {
            command.current_dir(spec.cwd.unwrap_or(&home));
        }
        Ok(SandboxedCommand {
            command,
            work_dir,
            user,
        })
    }

    /// `rollout env-guard [LIMITS] --work-dir W [--work-owner U:G] [--sandboxed] -- ...`,
    /// then bubblewrap and the command.
    fn guarded_argv(
        &self,
        program: &Path,
        spec: &ProcessSpec<'_>,
        work_dir: &WorkDir,
        isolated: bool,
        uid: Option<u32>,
    ) -> Vec<String> {
        let config = &self.sandbox.config;
        let limits = config.limits.effective(spec.limits);
        let mut argv = vec![program.display().to_string(), "env-guard".to_string()];
        for (field, value) in limits.fields() {
            // Processes are counted per user: only a user of its own makes it this tree's.
            if field == "max_processes" && uid.is_none() {
                continue;
            }
            if let Some(value) = value {
                argv.push(format!("--{}", field.replace('_', "-")));
                argv.push(value.to_string());
            }
        }
        argv.push("--work-dir".into());
        argv.push(work_dir.path.display().to_string());
        if let Some(uid) = uid {
            argv.push("--work-owner".into());
            argv.push(format!("{uid}:{uid}"));
        }
        let Some(bwrap) = config.bwrap.as_ref().filter(|_| isolated) else {
            argv.push("--".into());
            argv.extend(spec.command.iter().cloned());
            return argv;
        };
        argv.push("--sandboxed".into());
        argv.push("--".into());
        argv.push(bwrap.display().to_string());
        let network = self.network(spec.role);
        argv.extend(bwrap::args(
            config,
            network,
            program,
            spec,
            &work_dir.path,
            uid,
        ));
        argv.push("--".into());
        if let Some(uid) = uid {
            argv.extend([
                bwrap::SANDBOX_EXEC.to_string(),
                "sandbox-exec".into(),
                "--uid".into(),
                uid.to_string(),
                "--gid".into(),
                uid.to_string(),
                "--chdir".into(),
                bwrap::working_dir(spec),
                "--".into(),
            ]);
        }
        argv.extend(spec.command.iter().cloned());
        argv
    }

    /// The network of a process: replicas and builds always the host's.
    fn network(&self, role: ProcessRole) -> Network {
        match role {
            ProcessRole::Replica | ProcessRole::Build => Network::Host,
            ProcessRole::Session => self
                .policy
                .as_ref()
                .and_then(|policy| policy.network)
                .unwrap_or(self.sandbox.config.network),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sandbox(bwrap: bool, uids: Option<UidRange>) -> Sandbox {
        Sandbox::new(SandboxConfig {
            program: Some("/opt/rollout/bin/rollout".into()),
            bwrap: bwrap.then(|| "/usr/bin/bwrap".into()),
            work_root: "/data/work".into(),
            hidden: vec!["/data".into()],
            bundles: Some("/data/envs".into()),
            read_only_paths: Vec::new(),
            uids,
            limits: LimitPolicy::default(),
            network: Network::Host,
            base_env: vec![("PATH".into(), "/usr/bin:/bin".into())],
            environments: vec![
                EnvPolicy {
                    project: "default".into(),
                    name: "search".into(),
                    isolated: true,
                    network: Some(Network::None),
                    secrets: vec![Secret::new("SERP_API_KEY", "serp-123")],
                },
                EnvPolicy {
                    project: "default".into(),
                    name: "trusted".into(),
                    isolated: false,
                    network: None,
                    secrets: Vec::new(),
                },
            ],
        })
    }

    fn argv(command: &SandboxedCommand) -> Vec<String> {
        let std = command.command.as_std();
        std::iter::once(std.get_program())
            .chain(std.get_args())
            .map(|part| part.to_string_lossy().into_owned())
            .collect()
    }

    fn env(command: &SandboxedCommand) -> Vec<(String, Option<String>)> {
        command
            .command
            .as_std()
            .get_envs()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.map(|v| v.to_string_lossy().into_owned()),
                )
            })
            .collect()
    }

    fn spec<'a>(command: &'a [String], role: ProcessRole) -> ProcessSpec<'a> {
        ProcessSpec {
            role,
            command,
            cwd: None,
            env: vec![("MODE".into(), "test".into())],
            limits: None,
        }
    }

    #[test]
    fn a_root_server_runs_each_sandbox_as_a_user_of_its_own_with_every_limit() {
        let sandbox = sandbox(
            true,
            Some(UidRange {
                first: 2_000_000_000,
                count: 2,
            }),
        );
        let command = ["sh".to_string(), "-c".into(), "env".into()];
        let search = sandbox.for_env("default", "search");
        let first = search
            .command(&spec(&command, ProcessRole::Session))
            .unwrap();
        let text = argv(&first).join(" ");
        assert!(text.starts_with("/opt/rollout/bin/rollout env-guard --max-memory-mb 4096"));
        assert!(
            text.contains("--max-processes 256 --max-file-size-mb 1024"),
            "{text}"
        );
        let user = first.user.unwrap();
        assert!((2_000_000_000..2_000_000_002).contains(&user), "{user}");
        assert!(
            text.contains(&format!(
                "--work-owner {user}:{user} --sandboxed -- /usr/bin/bwrap"
            )),
            "{text}"
        );
        assert!(text.contains("--unshare-net"), "{text}");
        assert!(text.contains("--cap-add CAP_SETUID"), "{text}");
        assert!(text.contains("--ro-bind /opt/rollout/bin/rollout /run/rollout/rollout"));
        assert!(text.ends_with(&format!(
            "-- /run/rollout/rollout sandbox-exec --uid {user} --gid {user} --chdir /home/rollout -- sh -c env"
        )));
        assert!(!text.contains("/data/envs"), "{text}");
        let vars = env(&first);
        assert!(vars.contains(&("SERP_API_KEY".into(), Some("serp-123".into()))));
        assert!(vars.contains(&("HOME".into(), Some(SANDBOX_HOME.into()))));
        assert!(vars.contains(&("MODE".into(), Some("test".into()))));

        // The next process gets the next user; another environment no secret.
        let other = sandbox.for_env("other-project", "search");
        let second = other
            .command(&spec(&command, ProcessRole::Session))
            .unwrap();
        let text = argv(&second).join(" ");
        let next = second.user.unwrap();
        assert_ne!(next, user);
        assert!(
            text.contains(&format!("--work-owner {next}:{next}")),
            "{text}"
        );
        assert!(!text.contains("--unshare-net"), "{text}");
        assert!(!env(&second).iter().any(|(k, _)| k == "SERP_API_KEY"));
    }

    #[test]
    fn without_bwrap_or_root_the_guard_still_limits_and_clears() {
        let command = ["python".to_string(), "env.py".into()];
        let plain = sandbox(false, None).for_env("default", "x");
        assert!(!plain.isolated());
        let spawned = plain
            .command(&spec(&command, ProcessRole::Session))
            .unwrap();
        let text = argv(&spawned).join(" ");
        assert!(!text.contains("bwrap"), "{text}");
        assert!(!text.contains("--max-processes"), "{text}");
        assert!(text.ends_with("-- python env.py"), "{text}");
        let home = spawned.work_dir.path().join("home");
        assert!(env(&spawned).contains(&("HOME".into(), Some(home.display().to_string()))));

        // The operator's opt-out for a command it trusts: guarded, not isolated.
        let trusted =
            sandbox(true, Some(UidRange { first: 5, count: 1 })).for_env("default", "trusted");
        assert!(!trusted.isolated());
        let spawned = trusted
            .command(&spec(&command, ProcessRole::Session))
            .unwrap();
        let text = argv(&spawned).join(" ");
        assert!(
            text.contains("env-guard") && !text.contains("bwrap"),
            "{text}"
        );
        assert!(!text.contains("--work-owner"), "{text}");

        let unprivileged = sandbox(true, None).for_env("default", "x");
        let spawned = unprivileged
            .command(&spec(&command, ProcessRole::Replica))
            .unwrap();
        let text = argv(&spawned).join(" ");
        assert!(
            text.contains("--unshare-user --disable-userns --uid 65534"),
            "{text}"
        );
        assert!(!text.contains("sandbox-exec"), "{text}");
        assert!(
            text.ends_with("--chdir /home/rollout -- python env.py"),
            "{text}"
        );
        assert!(
            sandbox(true, None)
                .for_env("default", "x")
                .command(&spec(&[], ProcessRole::Build))
                .is_err()
        );
    }
}
