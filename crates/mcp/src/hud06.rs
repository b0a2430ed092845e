//! hud 0.6 environments, run unmodified (task protocol, `hud-0.6-task-protocol.md` §12).
//!
//! A 0.6 environment is not an MCP server: it is a process that announces a TCP port
//! (`HUD_SERVE_PORT=`) and speaks line-delimited JSON-RPC there (`hello`, `tasks.list`,
//! `tasks.start`, `tasks.grade`, `tasks.cancel`, `bye`). Its tools are a capability: its own
//! MCP server, reached through `tunnel.open` connections to the same port, which rollout's
//! ordinary MCP client ([`EnvSession`] over streamable HTTP) uses through a loopback
//! [`tunnel::Tunnel`]. One process per session: tool state in a 0.6 process is shared by
//! all its sessions (§5.2), so sharing would leak one run's tool state into another.

mod control;
mod sniff;
mod tunnel;
mod wire;

pub use sniff::ControlSniffer;

use crate::client::{EnvSession, EnvTarget, Setup, StderrTail, kill_process_group};
use crate::error::EnvError;
use crate::sandbox::{EnvSandbox, ProcessLimits, ProcessRole, ProcessSpec, WorkDir};
use control::{CallError, ControlChannel};
use process_wrap::tokio::{CommandWrap, KillOnDrop, ProcessGroup};
use rollout_domain::{EnvDescription, Evaluation, ScenarioSpec, ToolCall, ToolResult, ToolSpec};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tunnel::Tunnel;

/// The `protocol` value that marks a hud 0.6 target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Hud06Protocol {
    #[serde(rename = "hud-0.6")]
    Hud06,
}

/// The line that announces the control port on stdout.
const PORT_LINE: &str = "HUD_SERVE_PORT=";
/// The longest stdout line read while waiting for the announcement.
const MAX_STDOUT_LINE: u64 = 64 * 1024;
/// How long a failed start waits for the environment's last stderr lines.
const STDERR_SETTLE: Duration = Duration::from_secs(2);
/// How long a session's end waits for `bye` before the process group is killed.
const BYE_WAIT: Duration = Duration::from_secs(2);

/// The environment's process: its group (killed at the end) and work directory.
struct Process {
    group: Option<u32>,
    work_dir: WorkDir,
    /// Keeps the child handle (and its kill-on-drop) alive.
    _child: Box<dyn process_wrap::tokio::ChildWrapper>,
}

/// A hud 0.6 environment's control port: a process started for it (killed, with its whole
/// group, when this is dropped) or the address of one that runs on its own.
pub struct Hud06Process {
    address: SocketAddr,
    process: Option<Process>,
    stderr: StderrTail,
}

impl Drop for Hud06Process {
    fn drop(&mut self) {
        end_process(self.process.take());
    }
}

impl Hud06Process {
    /// Starts the environment of a `Hud06Command` target in `sandbox` and waits for the
    /// port it announces, or resolves a `Hud06Address`.
    pub async fn start(
        target: &EnvTarget,
        label: &str,
        sandbox: &EnvSandbox,
    ) -> Result<Self, EnvError> {
        let stderr = StderrTail::default();
        let (address, process) = match target {
            EnvTarget::Hud06Command {
                command,
                cwd,
                env,
                limits,
                ..
            } => {
                let (address, process) = start(
                    command,
                    cwd.as_deref(),
                    env,
                    limits.as_ref(),
                    sandbox,
                    label,
                    &stderr,
                )
                .await?;
                (address, Some(process))
            }
            EnvTarget::Hud06Address { address, .. } => (resolve(address).await?, None),
            other => {
                return Err(EnvError::Connect {
                    message: format!("'{}' is not a hud 0.6 environment", other.describe()),
                    stderr_tail: String::new(),
                });
            }
        };
        Ok(Self {
            address,
            process,
            stderr,
        })
    }

    /// Where the control channel (and every tunnel) is reached.
    pub fn address(&self) -> SocketAddr {
        self.address
    }
}

/// One episode with a hud 0.6 environment: a control session plus the MCP session of its
/// `tools` capability. Dropping it (run end, cancel, deadline) sends `bye`, which cancels a
/// task still active, so that an environment reached by address does not park it, and then
/// kills the process group of a started one.
pub struct Hud06Session {
    control: Arc<ControlChannel>,
    env_name: String,
    env_version: String,
    tools: EnvSession,
    _tunnel: Tunnel,
    stderr: StderrTail,
    process: Option<Hud06Process>,
}

impl Drop for Hud06Session {
    fn drop(&mut self) {
        let control = self.control.clone();
        let process = self.process.take();
        let say_bye = async move {
            let _ = tokio::time::timeout(BYE_WAIT, control.call("bye", json!({}))).await;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    say_bye.await;
                    drop(process);
                });
            }
            Err(_) => drop(process),
        }
    }
}

fn end_process(process: Option<Process>) {
    if let Some(process) = process {
        if let Some(group) = process.group {
            kill_process_group(group);
        }
        // The work directory goes after its processes.
        drop(process.work_dir);
    }
}

impl Hud06Session {
    /// Starts (a command, in `sandbox`) or reaches (an address) the environment, says
    /// `hello`, and connects rollout's MCP client to its tools capability.
    pub async fn connect(
        target: &EnvTarget,
        label: &str,
        sandbox: &EnvSandbox,
    ) -> Result<Self, EnvError> {
        let process = Hud06Process::start(target, label, sandbox).await?;
        let address = process.address;
        let stderr = process.stderr.clone();
        let fail = |message: String, stderr: &StderrTail| {
            let stderr = stderr.clone();
            async move {
                EnvError::Connect {
                    message,
                    stderr_tail: stderr.settled_text(STDERR_SETTLE).await,
                }
            }
        };
        let stream = match tokio::net::TcpStream::connect(address).await {
            Ok(stream) => stream,
            Err(e) => {
                let error = fail(format!("could not reach {address}: {e}"), &stderr).await;
                drop(process);
                return Err(error);
            }
        };
        let control = Arc::new(ControlChannel::new(stream));
        let connected = async {
            let hello = control
                .call("hello", json!({}))
                .await
                .map_err(|e| format!("hello: {e}"))?;
            let bindings = wire::bindings(&hello);
            let binding = wire::tools_binding(&bindings)?.clone();
            let tunnel = Tunnel::open(address, &binding.name)
                .await
                .map_err(|e| format!("could not open a local tunnel: {e}"))?;
            let url = format!(
                "http://{}{}",
                tunnel.local_addr(),
                wire::url_path(&binding.url)
            );
            let mut headers = Map::new();
            if let Some(token) = binding.params.get("auth_token").and_then(Value::as_str) {
                headers.insert("Authorization".into(), json!(format!("Bearer {token}")));
            }
            let tools = EnvSession::connect(&EnvTarget::Url { url, headers }, label, sandbox)
                .await
                .map_err(|e| format!("the '{}' capability: {e}", binding.name))?;
            let name = |key: &str| {
                hello
                    .pointer(&format!("/env/{key}"))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            Ok::<_, String>((name("name"), name("version"), tools, tunnel))
        }
        .await;
        match connected {
            Ok((env_name, env_version, tools, tunnel)) => Ok(Self {
                control,
                env_name,
                env_version,
                tools,
                _tunnel: tunnel,
                stderr,
                process: Some(process),
            }),
            Err(message) => {
                let error = fail(message, &stderr).await;
                drop(process);
                Err(error)
            }
        }
    }

    /// The environment's name from `hello`.
    pub fn server_name(&self) -> &str {
        &self.env_name
    }

    /// The last lines the environment wrote to stderr.
    pub fn stderr_tail(&self) -> String {
        self.stderr.text()
    }

    /// The templates (`tasks.list`) as scenarios, and the tools of the MCP capability.
    pub async fn describe(&self) -> Result<EnvDescription, EnvError> {
        let list = self
            .request("task listing (tasks.list)", "tasks.list", json!({}))
            .await?;
        let tools = self.visible_tools().await?;
        Ok(EnvDescription {
            server_name: self.env_name.clone(),
            server_version: self.env_version.clone(),
            tools,
            scenarios: wire::scenarios(&list),
        })
    }

    /// Starts the task (`tasks.start` with the arguments as JSON) and returns its prompt.
    pub async fn setup(
        &self,
        scenario: &ScenarioSpec,
        args: &Map<String, Value>,
    ) -> Result<Setup, EnvError> {
        let operation = "task start (tasks.start)";
        let params = json!({"id": scenario.id, "args": args});
        let result = self.request(operation, "tasks.start", params).await?;
        let prompt = wire::prompt_text(&result);
        if prompt.trim().is_empty() {
            return Err(EnvError::InvalidResponse {
                operation,
                message: format!("task '{}' returned an empty prompt", scenario.id),
            });
        }
        let mut meta = result.as_object().cloned().unwrap_or_default();
        meta.remove("prompt");
        Ok(Setup {
            prompt,
            arguments: args.clone(),
            meta,
        })
    }

    /// The tools of the MCP capability.
    pub async fn visible_tools(&self) -> Result<Vec<ToolSpec>, EnvError> {
        match self.tools.visible_tools().await {
            Ok(tools) => Ok(tools),
            Err(error) => Err(self.with_stderr(error).await),
        }
    }

    /// Calls a tool of the MCP capability; a broken connection carries the environment's
    /// stderr (the tunnel's own client knows nothing of the process).
    pub async fn call(&self, call: &ToolCall) -> Result<ToolResult, EnvError> {
        match self.tools.call(call).await {
            Ok(result) => Ok(result),
            Err(error) => Err(self.with_stderr(error).await),
        }
    }

    /// Grades the answer (`tasks.grade {"answer": text}`, as the hud SDK sends the agent's
    /// final text); the task is consumed either way.
    pub async fn grade(&self, answer: &str) -> Result<Evaluation, EnvError> {
        let operation = "grading (tasks.grade)";
        let result = self
            .request(operation, "tasks.grade", json!({"answer": answer}))
            .await?;
        wire::evaluation(&result)
            .map_err(|message| EnvError::InvalidResponse { operation, message })
    }

    async fn request(
        &self,
        operation: &'static str,
        method: &str,
        params: Value,
    ) -> Result<Value, EnvError> {
        match self.control.call(method, params).await {
            Ok(result) => Ok(result),
            Err(error @ CallError::Rpc { .. }) => Err(EnvError::Request {
                operation,
                message: error.to_string(),
            }),
            Err(CallError::Closed(message)) => Err(EnvError::Transport {
                operation,
                message,
                stderr_tail: self.stderr.settled_text(STDERR_SETTLE).await,
            }),
        }
    }

    /// A transport failure of the tools' MCP session, with the environment's stderr.
    async fn with_stderr(&self, error: EnvError) -> EnvError {
        match error {
            EnvError::Transport {
                operation, message, ..
            } => EnvError::Transport {
                operation,
                message,
                stderr_tail: self.stderr.settled_text(STDERR_SETTLE).await,
            },
            other => other,
        }
    }
}

/// `tcp://host:port` or `host:port` → an address.
async fn resolve(address: &str) -> Result<SocketAddr, EnvError> {
    let bare = address.strip_prefix("tcp://").unwrap_or(address);
    let invalid = |message: String| EnvError::Connect {
        message,
        stderr_tail: String::new(),
    };
    tokio::net::lookup_host(bare)
        .await
        .map_err(|e| invalid(format!("invalid hud 0.6 address '{address}': {e}")))?
        .next()
        .ok_or_else(|| invalid(format!("'{address}' resolves to no address")))
}

/// Starts the environment in its sandbox and its own process group, and waits for the
/// port it announces on stdout. Both pipes are read on afterwards (a pipe left unread would
/// block the environment).
async fn start(
    command: &[String],
    cwd: Option<&Path>,
    env: &Map<String, Value>,
    limits: Option<&ProcessLimits>,
    sandbox: &EnvSandbox,
    label: &str,
    stderr: &StderrTail,
) -> Result<(SocketAddr, Process), EnvError> {
    let shown = command.join(" ");
    let spec = ProcessSpec {
        // On the host's network, like an HTTP replica: the server must reach its port.
        role: ProcessRole::Replica,
        command,
        cwd,
        env: crate::sandbox::variables(env),
        limits,
    };
    let sandboxed = sandbox.command(&spec).map_err(|source| EnvError::Spawn {
        command: shown.clone(),
        source,
    })?;
    let mut wrapped = CommandWrap::from(sandboxed.command);
    wrapped.wrap(KillOnDrop).wrap(ProcessGroup::leader());
    wrapped
        .command_mut()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = wrapped.spawn().map_err(|source| EnvError::Spawn {
        command: shown.clone(),
        source,
    })?;
    let group = child.id();
    if let Some(child_stderr) = child.stderr().take() {
        stderr.follow(child_stderr, label.to_string());
    }
    let process = Process {
        group,
        work_dir: sandboxed.work_dir,
        _child: child,
    };
    let mut process = process;
    let stdout = process._child.stdout().take();
    let Some(stdout) = stdout else {
        end_process(Some(process));
        return Err(EnvError::Connect {
            message: "the environment's stdout could not be read".into(),
            stderr_tail: String::new(),
        });
    };
    let mut reader = BufReader::new(stdout);
    let port = loop {
        let mut line = Vec::new();
        let read = tokio::io::AsyncReadExt::take(&mut reader, MAX_STDOUT_LINE)
            .read_until(b'\n', &mut line)
            .await;
        let line = match read {
            Ok(0) | Err(_) => {
                let stderr_tail = stderr.settled_text(STDERR_SETTLE).await;
                end_process(Some(process));
                return Err(EnvError::Connect {
                    message: format!(
                        "'{shown}' exited before announcing its port ({PORT_LINE}<port> on stdout)"
                    ),
                    stderr_tail,
                });
            }
            Ok(_) => String::from_utf8_lossy(&line).trim().to_string(),
        };
        if let Some(port) = line.strip_prefix(PORT_LINE) {
            match port.trim().parse::<u16>() {
                Ok(port) if port != 0 => break port,
                _ => {
                    end_process(Some(process));
                    return Err(EnvError::Connect {
                        message: format!("the environment announced an invalid port: '{line}'"),
                        stderr_tail: String::new(),
                    });
                }
            }
        }
        tracing::info!(env = label, line, "environment stdout");
    };
    StderrTail::default().follow(reader, format!("{label} (stdout)"));
    Ok((SocketAddr::from(([127, 0, 0, 1], port)), process))
}
