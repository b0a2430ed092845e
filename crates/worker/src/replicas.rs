//! Replicas of HTTP environments started by the server (`EnvTarget::Served`, from a
//! bundle whose `[run]` has a `port`): each version gets `replicas` long-lived processes,
//! each serving many MCP sessions at once. A supervisor task per replica starts it, waits
//! until it accepts connections, checks its health every few seconds, and restarts it (with
//! backoff) when it exits or stops answering. Runs get the URL of a live replica, in turn.

use rollout_mcp::sandbox::variables;
use rollout_mcp::{EnvSandbox, EnvTarget, ProcessRole, ProcessSpec, WorkDir};
use std::collections::HashMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::net::TcpStream;
use tokio::process::Child;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How long a replica may take to accept connections after it starts.
const STARTUP: Duration = Duration::from_secs(60);
/// How often a running replica's port is checked.
const HEALTH_EVERY: Duration = Duration::from_secs(5);
/// Failed checks in a row before a replica is restarted.
const HEALTH_FAILURES: u32 = 3;

/// The replicas of every served environment version of this process, shared by the worker
/// and the MCP gateway.
#[derive(Clone, Default)]
pub struct ReplicaManager {
    sets: Arc<Mutex<HashMap<String, Arc<ReplicaSet>>>>,
    shutdown: CancellationToken,
}

impl std::fmt::Debug for ReplicaManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicaManager").finish_non_exhaustive()
    }
}

/// The replicas of one version: the URL of each, `None` while it is not serving.
struct ReplicaSet {
    urls: Vec<watch::Receiver<Option<String>>>,
    next: AtomicUsize,
}

impl ReplicaManager {
    /// A manager without replicas yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The target a session connects to: a served environment becomes the URL of one of its
    /// live replicas (started on first use, in `sandbox`); any other target is returned
    /// unchanged.
    pub async fn resolve(
        &self,
        key: &str,
        target: &EnvTarget,
        sandbox: &EnvSandbox,
    ) -> Result<EnvTarget, String> {
        let EnvTarget::Served { path, .. } = target else {
            return Ok(target.clone());
        };
        let set = self.set(key, target, sandbox);
        let url = set.live_url().await?;
        Ok(EnvTarget::Url {
            url: format!("{url}{path}"),
            headers: Default::default(),
        })
    }

    fn set(&self, key: &str, target: &EnvTarget, sandbox: &EnvSandbox) -> Arc<ReplicaSet> {
        let mut sets = self.sets.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(set) = sets.get(key) {
            return set.clone();
        }
        let replicas = match target {
            EnvTarget::Served { replicas, .. } => (*replicas).max(1),
            EnvTarget::Command { .. }
            | EnvTarget::Url { .. }
            | EnvTarget::Hud06Command { .. }
            | EnvTarget::Hud06Address { .. } => 1,
        };
        let mut urls = Vec::new();
        for index in 0..replicas {
            let (sender, receiver) = watch::channel(None);
            urls.push(receiver);
            let label = format!("{key} replica {}", index + 1);
            tokio::spawn(supervise(
                target.clone(),
                sandbox.clone(),
                label,
                sender,
                self.shutdown.clone(),
            ));
        }
        let set = Arc::new(ReplicaSet {
            urls,
            next: AtomicUsize::new(0),
        });
        sets.insert(key.to_string(), set.clone());
        set
    }

    /// Stops every replica.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Stops every replica when the returned guard is dropped.
    pub(crate) fn stop_on_drop(&self) -> tokio_util::sync::DropGuard {
        self.shutdown.clone().drop_guard()
    }
}

impl ReplicaSet {
    /// The base URL of a live replica, in turn; waits for one to come up.
    async fn live_url(&self) -> Result<String, String> {
        let wait = async {
            loop {
                let start = self.next.fetch_add(1, Ordering::Relaxed);
                for offset in 0..self.urls.len() {
                    let receiver = &self.urls[(start + offset) % self.urls.len()];
                    if let Some(url) = receiver.borrow().clone() {
                        return url;
                    }
                }
                let mut changed = self.urls[start % self.urls.len()].clone();
                let _ = tokio::time::timeout(Duration::from_millis(200), changed.changed()).await;
            }
        };
        tokio::time::timeout(STARTUP, wait).await.map_err(|_| {
            format!(
                "no replica of the environment was serving after {} s",
                STARTUP.as_secs()
            )
        })
    }
}

/// Keeps one replica running until shutdown: start, wait healthy, watch, restart.
async fn supervise(
    target: EnvTarget,
    sandbox: EnvSandbox,
    label: String,
    url: watch::Sender<Option<String>>,
    shutdown: CancellationToken,
) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let port = match target_port(&target) {
            Ok(port) => port,
            Err(error) => {
                tracing::error!(env = %label, %error, "cannot start the replica");
                return;
            }
        };
        match start(&target, &sandbox, port, &label) {
            Ok((mut child, work_dir)) => {
                let healthy = tokio::select! {
                    up = wait_listening(port, STARTUP) => up,
                    _ = shutdown.cancelled() => return,
                };
                if healthy {
                    tracing::info!(env = %label, port, "replica serving");
                    backoff = Duration::from_secs(1);
                    let _ = url.send(Some(format!("http://127.0.0.1:{port}")));
                    watch_replica(&mut child, port, &label, &shutdown).await;
                    let _ = url.send(None);
                } else {
                    tracing::warn!(env = %label, port, "replica did not start listening; restarting");
                }
                kill(&mut child).await;
                drop(work_dir);
            }
            Err(error) => tracing::error!(env = %label, %error, "could not start the replica"),
        }
        if shutdown.is_cancelled() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.cancelled() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

/// Returns when the replica exits, stops answering health checks, or on shutdown.
async fn watch_replica(child: &mut Child, port: u16, label: &str, shutdown: &CancellationToken) {
    let mut failures = 0;
    loop {
        tokio::select! {
            status = child.wait() => {
                tracing::warn!(env = %label, ?status, "replica exited; restarting");
                return;
            }
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(HEALTH_EVERY) => {
                if wait_listening(port, Duration::from_secs(2)).await {
                    failures = 0;
                } else {
                    failures += 1;
                    tracing::warn!(env = %label, failures, "replica failed a health check");
                    if failures >= HEALTH_FAILURES {
                        return;
                    }
                }
            }
        }
    }
}

/// The port a replica listens on: the fixed one, or a free one picked now.
fn target_port(target: &EnvTarget) -> Result<u16, String> {
    match target {
        EnvTarget::Served { port, .. } if *port != 0 => Ok(*port),
        _ => std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|address| address.port())
            .map_err(|e| format!("no free port: {e}")),
    }
}

/// Starts one replica process in its sandbox and its own process group.
fn start(
    target: &EnvTarget,
    sandbox: &EnvSandbox,
    port: u16,
    label: &str,
) -> Result<(Child, WorkDir), String> {
    let EnvTarget::Served {
        command,
        cwd,
        env,
        limits,
        ..
    } = target
    else {
        return Err("not a served environment".into());
    };
    let command: Vec<String> = command
        .iter()
        .map(|part| part.replace("{port}", &port.to_string()))
        .collect();
    let mut env = variables(env);
    env.push(("PORT".into(), port.to_string()));
    let spec = ProcessSpec {
        role: ProcessRole::Replica,
        command: &command,
        cwd: cwd.as_deref(),
        env,
        limits: limits.as_ref(),
    };
    let shown = command.join(" ");
    let sandboxed = sandbox
        .command(&spec)
        .map_err(|e| format!("starting {shown}: {e}"))?;
    let mut process = sandboxed.command;
    process
        .process_group(0)
        .kill_on_drop(true)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = process
        .spawn()
        .map_err(|e| format!("starting {shown}: {e}"))?;
    if let Some(stdout) = child.stdout.take() {
        log_lines(stdout, label.to_string());
    }
    if let Some(stderr) = child.stderr.take() {
        log_lines(stderr, label.to_string());
    }
    Ok((child, sandboxed.work_dir))
}

fn log_lines(stream: impl AsyncRead + Unpin + Send + 'static, label: String) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            tracing::info!(target: "rollout::env", env = %label, "{line}");
        }
    });
}

/// True once something accepts connections on the port (within `budget`).
async fn wait_listening(port: u16, budget: Duration) -> bool {
    tokio::time::timeout(budget, async {
        while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .is_ok()
}

/// Kills a replica's whole process group.
async fn kill(child: &mut Child) {
    if let Some(pid) = child.id().and_then(|pid| i32::try_from(pid).ok()) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let _ = child.kill().await;
}
