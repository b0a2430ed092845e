//! Follows an environment's stderr: every line goes to the logs, tagged, and the last
//! lines are kept so that a crash can be explained in the run's error.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::watch;

/// How many stderr lines are kept for error messages.
const KEPT_LINES: usize = 40;
/// Longest line kept (a runaway line must not fill memory).
const MAX_LINE: usize = 2000;

/// The last lines an environment wrote to stderr.
#[derive(Clone)]
pub struct StderrTail {
    lines: Arc<Mutex<VecDeque<String>>>,
    /// True once the stream has closed (the process and its guard are gone).
    ended: Arc<watch::Sender<bool>>,
}

impl Default for StderrTail {
    fn default() -> Self {
        Self {
            lines: Arc::default(),
            ended: Arc::new(watch::Sender::new(false)),
        }
    }
}

impl StderrTail {
    /// The kept lines, joined.
    pub fn text(&self) -> String {
        self.lines
            .lock()
            .map(|lines| lines.iter().cloned().collect::<Vec<_>>().join("\n"))
            .unwrap_or_default()
    }

    /// The kept lines once the stream has closed, or after `limit`: a process that just
    /// died may still be writing why (the guard names the limit that stopped it).
    pub(crate) async fn settled_text(&self, limit: Duration) -> String {
        let mut ended = self.ended.subscribe();
        let _ = tokio::time::timeout(limit, ended.wait_for(|ended| *ended)).await;
        self.text()
    }

    /// Reads `stream` line by line until it closes, logging each line under `label`.
    pub(crate) fn follow(&self, stream: impl AsyncRead + Unpin + Send + 'static, label: String) {
        let lines = self.lines.clone();
        let ended = self.ended.clone();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stream).lines();
            while let Ok(Some(mut line)) = reader.next_line().await {
                if line.len() > MAX_LINE {
                    let mut cut = MAX_LINE;
                    while !line.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    line.truncate(cut);
                }
                tracing::info!(target: "rollout::env", env = %label, "{line}");
                if let Ok(mut kept) = lines.lock() {
                    if kept.len() == KEPT_LINES {
                        kept.pop_front();
                    }
                    kept.push_back(line);
                }
            }
            ended.send_replace(true);
        });
    }
}
