//! Running a bundle's build command: `sh -c COMMAND` in the bundle directory, in the
//! environment's sandbox (its bundle writable), its output (stdout and stderr, line by
//! line) streamed to the server's log and kept for the version.

use rollout_mcp::{EnvSandbox, ProcessLimits, ProcessRole, ProcessSpec};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::mpsc;

/// How much of a build log is kept: its last 64 KiB.
pub const BUILD_LOG_TAIL_BYTES: usize = 64 * 1024;

/// How a build ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildOutcome {
    /// `None` on success, else why it failed (exit status, timeout, could not start).
    pub failure: Option<String>,
    /// The output's tail (see [`BUILD_LOG_TAIL_BYTES`]).
    pub log: String,
}

/// A log that keeps only its tail.
#[derive(Debug, Default)]
pub(crate) struct LogTail {
    text: String,
    cut: bool,
}

impl LogTail {
    /// Appends one line.
    pub(crate) fn push_line(&mut self, line: &str) {
        self.text.push_str(line);
        self.text.push('\n');
        if self.text.len() > 2 * BUILD_LOG_TAIL_BYTES {
            self.trim();
        }
    }

    fn trim(&mut self) {
        if self.text.len() <= BUILD_LOG_TAIL_BYTES {
            return;
        }
        let mut start = self.text.len() - BUILD_LOG_TAIL_BYTES;
        while !self.text.is_char_boundary(start) {
            start += 1;
        }
        self.text.drain(..start);
        self.cut = true;
    }

    /// The kept text, marked when earlier output was cut.
    pub(crate) fn finish(mut self) -> String {
        self.trim();
        if self.cut {
            format!("[earlier build output cut]\n{}", self.text)
        } else {
            self.text
        }
    }
}

/// What a build runs and where.
#[derive(Debug, Clone)]
pub struct BuildSpec<'a> {
    /// A shell command (`sh -c`).
    pub command: &'a str,
    /// The bundle directory, the working directory (writable during the build).
    pub dir: &'a Path,
    pub env: &'a BTreeMap<String, String>,
    pub limits: Option<&'a ProcessLimits>,
    pub timeout: Duration,
    /// Tags the log lines (environment and content hash).
    pub label: &'a str,
}

/// Runs the build with `sh -c` in its directory, in `sandbox`, within its timeout. Lines go
/// to the log as they come. On timeout the build's whole process group is killed. When the
/// sandbox runs it as a user of its own, the bundle is that user's during the build (the
/// caller seals it afterwards).
pub async fn run_build(spec: &BuildSpec<'_>, sandbox: &EnvSandbox) -> BuildOutcome {
    let BuildSpec {
        command,
        dir,
        timeout,
        label,
        ..
    } = *spec;
    let mut log = LogTail::default();
    let argv = ["sh".to_string(), "-c".into(), command.to_string()];
    let mut env: Vec<(String, String)> = spec
        .env
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    env.push(("ROLLOUT_BUNDLE_DIR".into(), dir.display().to_string()));
    let process = ProcessSpec {
        role: ProcessRole::Build,
        command: &argv,
        cwd: Some(dir),
        env,
        limits: spec.limits,
    };
    let not_started = |error: std::io::Error, log: LogTail| BuildOutcome {
        failure: Some(format!("the build command could not start: {error}")),
        log: log.finish(),
    };
    let sandboxed = match sandbox.command(&process) {
        Ok(sandboxed) => sandboxed,
        Err(error) => return not_started(error, log),
    };
    if let Some(user) = sandboxed.user
        && let Err(error) = super::tree::give(dir, user, user)
    {
        return not_started(error, log);
    }
    let _work_dir = sandboxed.work_dir;
    let mut child = sandboxed.command;
    child
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match child.spawn() {
        Ok(child) => child,
        Err(error) => return not_started(error, log),
    };
    let group = child.id();
    let (lines_tx, mut lines) = mpsc::unbounded_channel::<String>();
    if let Some(stdout) = child.stdout.take() {
        forward_lines(stdout, lines_tx.clone());
    }
    if let Some(stderr) = child.stderr.take() {
        forward_lines(stderr, lines_tx.clone());
    }
    drop(lines_tx);
    tracing::info!(env = label, command, "build started");
    let waited = tokio::time::timeout(timeout, async {
        while let Some(line) = lines.recv().await {
            tracing::info!(env = label, "build: {line}");
            log.push_line(&line);
        }
        child.wait().await
    })
    .await;
    let failure = match waited {
        Ok(Ok(status)) if status.success() => None,
        Ok(Ok(status)) => Some(format!("the build command failed ({status})")),
        Ok(Err(error)) => Some(format!("waiting for the build command: {error}")),
        Err(_) => {
            kill_group(group);
            Some(format!(
                "the build did not finish within {} s",
                timeout.as_secs()
            ))
        }
    };
    match &failure {
        None => tracing::info!(env = label, "build finished"),
        Some(reason) => tracing::warn!(env = label, "build failed: {reason}"),
    }
    BuildOutcome {
        failure,
        log: log.finish(),
    }
}

fn forward_lines(
    stream: impl AsyncRead + Unpin + Send + 'static,
    tx: mpsc::UnboundedSender<String>,
) {
    tokio::spawn(async move {
        let mut reader = BufReader::new(stream);
        let mut buffer = Vec::new();
        loop {
            buffer.clear();
            match reader.read_until(b'\n', &mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buffer);
                    let line = line.trim_end_matches(['\n', '\r']).to_string();
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            }
        }
    });
}

/// Kills a build's process group (the shell and everything it started).
fn kill_group(group: Option<u32>) {
    use nix::sys::signal::{Signal, killpg};
    use nix::unistd::Pid;
    if let Some(raw) = group.and_then(|g| i32::try_from(g).ok()).filter(|g| *g > 1) {
        let _ = killpg(Pid::from_raw(raw), Signal::SIGKILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build<'a>(
        command: &'a str,
        dir: &'a Path,
        env: &'a BTreeMap<String, String>,
        timeout: Duration,
    ) -> BuildSpec<'a> {
        BuildSpec {
            command,
            dir,
            env,
            limits: None,
            timeout,
            label: "test",
        }
    }

    fn sandbox() -> EnvSandbox {
        rollout_mcp::Sandbox::unconfined().for_env("default", "test")
    }

    #[tokio::test]
    async fn output_of_both_streams_is_kept_and_failure_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let env = BTreeMap::from([("GREETING".to_string(), "hello".to_string())]);
        let command = "echo out; echo err >&2; echo \"$GREETING\" > made.txt";
        let outcome = run_build(
            &build(command, dir.path(), &env, Duration::from_secs(30)),
            &sandbox(),
        )
        .await;
        assert_eq!(outcome.failure, None);
        assert!(outcome.log.contains("out\n"), "{}", outcome.log);
        assert!(outcome.log.contains("err\n"), "{}", outcome.log);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("made.txt")).unwrap(),
            "hello\n"
        );

        let none = BTreeMap::new();
        let outcome = run_build(
            &build(
                "echo about to fail; exit 3",
                dir.path(),
                &none,
                Duration::from_secs(30),
            ),
            &sandbox(),
        )
        .await;
        assert!(outcome.failure.unwrap().contains("exit status: 3"));
        assert_eq!(outcome.log, "about to fail\n");
    }

    #[tokio::test]
    async fn a_build_past_its_timeout_is_killed() {
        let dir = tempfile::tempdir().unwrap();
        let none = BTreeMap::new();
        let outcome = run_build(
            &build(
                "echo started; sleep 600",
                dir.path(),
                &none,
                Duration::from_millis(500),
            ),
            &sandbox(),
        )
        .await;
        assert!(outcome.failure.unwrap().contains("did not finish"));
    }

    #[test]
    fn the_log_keeps_its_tail() {
        let mut log = LogTail::default();
        for i in 0..20_000 {
            log.push_line(&format!("line {i}"));
        }
        let text = log.finish();
        assert!(text.starts_with("[earlier build output cut]\n"));
        assert!(text.ends_with("line 19999\n"));
        assert!(text.len() <= BUILD_LOG_TAIL_BYTES + 64);
    }
}
