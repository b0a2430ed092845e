//! Follows an environment's stderr: every line goes to the logs, tagged, and the last
//! lines are kept so that a crash can be explained in the run's error.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

/// How many stderr lines are kept for error messages.
const KEPT_LINES: usize = 40;
/// Longest line kept (a runaway line must not fill memory).
const MAX_LINE: usize = 2000;

/// The last lines an environment wrote to stderr.
#[derive(Clone, Default)]
pub struct StderrTail {
    lines: Arc<Mutex<VecDeque<String>>>,
}

impl StderrTail {
    /// The kept lines, joined.
    pub fn text(&self) -> String {
        self.lines
            .lock()
            .map(|lines| lines.iter().cloned().collect::<Vec<_>>().join("\n"))
            .unwrap_or_default()
    }

    /// Reads `stream` line by line until it closes, logging each line under `label`.
    pub(crate) fn follow(&self, stream: impl AsyncRead + Unpin + Send + 'static, label: String) {
        let lines = self.lines.clone();
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
        });
    }
}
