//! A real `rollout serve` process for end-to-end tests: temp data directory, a fixed
//! admin key, a free port, stderr captured to a log file that failing tests print.

use anyhow::{Context, anyhow, bail};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The admin key every test server starts with.
pub const TEST_ADMIN_KEY: &str = "ro_test_admin_key_0123456789abcdef";

/// How to start a test server.
#[derive(Debug, Default, Clone)]
pub struct ServerOptions {
    /// Extra environment variables for the server process.
    pub env: Vec<(String, String)>,
    /// Extra command-line arguments after `serve`.
    pub args: Vec<String>,
    /// Contents of a rollout.toml to pass with `--config`.
    pub config_toml: Option<String>,
    /// Reuse this data directory (to restart a server on the same store).
    pub data_dir: Option<PathBuf>,
}

/// A running server. Killed on drop.
pub struct TestServer {
    pub base_url: String,
    pub admin_key: String,
    pub data_dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
    child: Child,
    client: reqwest::Client,
}

impl TestServer {
    /// Starts `binary serve` and waits until it listens.
    pub async fn start(binary: &str, options: ServerOptions) -> anyhow::Result<Self> {
        let mut extra = vec!["--bind".to_string(), "127.0.0.1:0".to_string()];
        extra.extend(options.args.iter().cloned());
        let started = spawn(binary, "serve", &extra, &options, "rollout listening on ").await?;
        let base_url = started
            .line
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string();
        let _ = rustls::crypto::ring::default_provider().install_default();
        Ok(Self {
            base_url,
            admin_key: TEST_ADMIN_KEY.into(),
            data_dir: started.data_dir,
            _temp: started.temp,
            child: started.child,
            client: reqwest::Client::new(),
        })
    }

    /// The server process id (for CPU and memory measurements).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        read_log(&self.data_dir)
    }

    /// Sends a request with the admin key; returns status and JSON body (Null if none).
    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base_url))
            .bearer_auth(&self.admin_key);
        if let Some(body) = body {
            request = request.json(body);
        }
        self.send(request).await
    }

    /// Sends a prepared request; returns status and JSON body (Null if none).
    pub async fn send(&self, request: reqwest::RequestBuilder) -> (u16, Value) {
        let response = request.timeout(Duration::from_secs(660)).send().await;
        let response = match response {
            Ok(response) => response,
            Err(error) => panic!("request failed: {error}\nserver log:\n{}", self.log()),
        };
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// A request builder for custom headers or bodies.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// `POST` with the admin key.
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.request(reqwest::Method::POST, path, Some(body)).await
    }

    /// `GET` with the admin key.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.request(reqwest::Method::GET, path, None).await
    }

    /// Polls a trace until its run is in a terminal status.
    pub async fn wait_for_trace(&self, trace_id: &str, timeout: Duration) -> Value {
        let waited = tokio::time::timeout(timeout, async {
            loop {
                let (status, trace) = self.get(&format!("/v1/traces/{trace_id}")).await;
                assert_eq!(status, 200, "GET trace: {trace}");
                let state = trace["status"].as_str().unwrap_or_default().to_string();
                if !matches!(state.as_str(), "queued" | "running") {
                    return trace;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        match waited {
            Ok(trace) => trace,
            Err(_) => panic!(
                "trace {trace_id} did not finish in {timeout:?}\nserver log:\n{}",
                self.log()
            ),
        }
    }

    /// Stops the server with SIGKILL (a crash) and waits for it to exit.
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }

    /// Sends a signal (`STOP`, `CONT`, `TERM`...) to the server process without waiting.
    pub async fn signal(&self, name: &str) -> anyhow::Result<()> {
        let pid = self
            .child
            .id()
            .ok_or_else(|| anyhow!("server already exited"))?;
        kill(name, pid).await
    }

    /// Asks the server to shut down gracefully (SIGTERM) and waits up to `timeout`.
    pub async fn terminate(&mut self, timeout: Duration) -> anyhow::Result<()> {
        self.signal("TERM").await?;
        tokio::time::timeout(timeout, self.child.wait())
            .await
            .context("server did not exit")??;
        Ok(())
    }
}

/// A `rollout` process started and ready.
pub(crate) struct Started {
    pub(crate) child: Child,
    pub(crate) data_dir: PathBuf,
    pub(crate) temp: Option<tempfile::TempDir>,
    /// The rest of the line that said it was ready.
    pub(crate) line: String,
}

/// Starts `binary COMMAND --data-dir DIR ARGS...` with the test environment (the admin key,
/// no provider keys unless given, stderr to `DIR/server.log`) and waits for a stdout line
/// starting with `ready`.
pub(crate) async fn spawn(
    binary: &str,
    command_name: &str,
    args: &[String],
    options: &ServerOptions,
    ready: &str,
) -> anyhow::Result<Started> {
    let (temp, data_dir) = match &options.data_dir {
        Some(dir) => (None, dir.clone()),
        None => {
            let temp = tempfile::tempdir().context("creating a temp data dir")?;
            let dir = temp.path().to_path_buf();
            (Some(temp), dir)
        }
    };
    std::fs::create_dir_all(&data_dir)?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(data_dir.join("server.log"))
        .context("opening the server log")?;
    let mut command = Command::new(binary);
    command.arg(command_name).arg("--data-dir").arg(&data_dir);
    if let Some(toml) = &options.config_toml {
        let path = data_dir.join("rollout.toml");
        std::fs::write(&path, toml)?;
        command.arg("--config").arg(path);
    }
    command.args(args);
    for name in [
        "ANTHROPIC_API_KEY",
        "OPENAI_API_KEY",
        "ANTHROPIC_BASE_URL",
        "OPENAI_BASE_URL",
    ] {
        command.env_remove(name);
    }
    command
        .env("ROLLOUT_ADMIN_KEY", TEST_ADMIN_KEY)
        .env("ROLLOUT_LOG", "info,rollout=debug")
        .envs(options.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(&data_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .kill_on_drop(true);
    let mut child = command
        .spawn()
        .with_context(|| format!("starting {binary} {command_name}"))?;
    let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(line) = lines.next_line().await? {
            if let Some(rest) = line.strip_prefix(ready) {
                return Ok::<_, anyhow::Error>(rest.to_string());
            }
        }
        bail!("the process exited before it was ready")
    })
    .await
    .map_err(|_| anyhow!("{command_name} was not ready within 120 s"))?
    .with_context(|| format!("log:\n{}", read_log(&data_dir)))?;
    // Keep draining stdout so the process never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(Started {
        child,
        data_dir,
        temp,
        line,
    })
}

/// `kill -NAME PID`.
pub(crate) async fn kill(name: &str, pid: u32) -> anyhow::Result<()> {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .await?;
    if !status.success() {
        bail!("kill -{name} failed");
    }
    Ok(())
}

pub(crate) fn read_log(data_dir: &Path) -> String {
    std::fs::read_to_string(data_dir.join("server.log")).unwrap_or_default()
}
