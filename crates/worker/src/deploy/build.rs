//! Running a bundle's build command: `sh -c COMMAND` in the bundle directory, its output
//! (stdout and stderr, line by line) streamed to the server's log and kept for the version.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;
use tokio::sync::mpsc;

/// How much of a build log is kept: its last 64 KiB.
pub const BUILD_LOG_TAIL_BYTES: usize = 64 * 1024;

/// Variables a build never sees: the server's own secrets.
const HIDDEN_VARIABLES: [&str; 5] = [
    "ROLLOUT_ADMIN_KEY",
    "ROLLOUT_DATABASE_URL",
    "ANTHROPIC_API_KEY",
    "OPENAI_API_KEY",
    "TEST_DATABASE_URL",
];

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

/// Runs `command` with `sh -c` in `dir`, within `timeout`. Lines go to the log as they
/// come, tagged with `label` (environment and content hash). On timeout the build's whole
/// process group is killed.
pub async fn run_build(
    command: &str,
    dir: &Path,
    env: &BTreeMap<String, String>,
    timeout: Duration,
    label: &str,
) -> BuildOutcome {
    let mut log = LogTail::default();
    let mut child = Command::new("sh");
    child
        .arg("-c")
        .arg(command)
        .current_dir(dir)
        .env("ROLLOUT_BUNDLE_DIR", dir)
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    for name in HIDDEN_VARIABLES {
        child.env_remove(name);
    }
    let mut child = match child.spawn() {
        Ok(child) => child,
        Err(error) => {
            return BuildOutcome {
                failure: Some(format!("the build command could not start: {error}")),
                log: log.finish(),
            };
        }
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

    #[tokio::test]
    async fn output_of_both_streams_is_kept_and_failure_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let outcome = run_build(
            "echo out; echo err >&2; echo \"$GREETING\" > made.txt",
            dir.path(),
            &BTreeMap::from([("GREETING".to_string(), "hello".to_string())]),
            Duration::from_secs(30),
            "test",
        )
        .await;
        assert_eq!(outcome.failure, None);
        assert!(outcome.log.contains("out\n"), "{}", outcome.log);
        assert!(outcome.log.contains("err\n"), "{}", outcome.log);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("made.txt")).unwrap(),
            "hello\n"
        );

        let outcome = run_build(
            "echo about to fail; exit 3",
            dir.path(),
            &BTreeMap::new(),
            Duration::from_secs(30),
            "test",
        )
        .await;
        assert!(outcome.failure.unwrap().contains("exit status: 3"));
        assert_eq!(outcome.log, "about to fail\n");
    }

    #[tokio::test]
    async fn a_build_past_its_timeout_is_killed() {
        let dir = tempfile::tempdir().unwrap();
        let outcome = run_build(
            "echo started; sleep 600",
            dir.path(),
            &BTreeMap::new(),
            Duration::from_millis(500),
            "test",
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
