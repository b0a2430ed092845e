//! Follows an environment's stderr: every line goes to the logs, tagged, and the last
//! lines are kept so that a crash can be explained in the run's error.
//!
//! The environment is untrusted: its stderr is read as bytes, a line is cut at
//! [`MAX_LINE`] bytes (the rest of it is counted, not kept), invalid UTF-8 is replaced, and
//! reading goes on after anything short of the end of the stream. A reader that stopped
//! would leave the pipe unread, and the environment would then block on, or die of, its
//! next write.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::watch;

/// How many stderr lines are kept for error messages.
const KEPT_LINES: usize = 40;
/// Longest line kept (a runaway line must not fill memory).
const MAX_LINE: usize = 2000;
/// Read errors in a row after which the stream is given up.
const MAX_ERRORS: usize = 3;

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
        let tail = self.clone();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stream);
            let mut line = Line::default();
            let mut errors = 0;
            loop {
                let chunk = match reader.fill_buf().await {
                    Ok([]) => break,
                    Ok(chunk) => chunk,
                    Err(error) => {
                        errors += 1;
                        tracing::warn!(target: "rollout::env", env = %label, %error, "reading the environment's stderr failed");
                        if errors >= MAX_ERRORS {
                            break;
                        }
                        continue;
                    }
                };
                errors = 0;
                let newline = chunk.iter().position(|byte| *byte == b'\n');
                let taken = newline.unwrap_or(chunk.len());
                line.push(&chunk[..taken]);
                reader.consume(taken + usize::from(newline.is_some()));
                if newline.is_some() {
                    tail.keep(&label, line.finish());
                }
            }
            if !line.is_empty() {
                tail.keep(&label, line.finish());
            }
            tail.ended.send_replace(true);
        });
    }

    fn keep(&self, label: &str, line: String) {
        tracing::info!(target: "rollout::env", env = %label, "{line}");
        if let Ok(mut kept) = self.lines.lock() {
            if kept.len() == KEPT_LINES {
                kept.pop_front();
            }
            kept.push_back(line);
        }
    }
}

/// One line being read: its first [`MAX_LINE`] bytes, and how many more there were.
#[derive(Default)]
struct Line {
    bytes: Vec<u8>,
    cut: usize,
}

impl Line {
    fn push(&mut self, bytes: &[u8]) {
        let room = MAX_LINE.saturating_sub(self.bytes.len());
        let kept = bytes.len().min(room);
        self.bytes.extend_from_slice(&bytes[..kept]);
        self.cut += bytes.len() - kept;
    }

    fn is_empty(&self) -> bool {
        self.bytes.is_empty() && self.cut == 0
    }

    /// The line as text (invalid UTF-8 replaced), marked when it was cut; resets.
    fn finish(&mut self) -> String {
        let mut text = String::from_utf8_lossy(&self.bytes).into_owned();
        if text.ends_with('\r') {
            text.pop();
        }
        if self.cut > 0 {
            text.push_str(&format!(" [{} more bytes not kept]", self.cut));
        }
        self.bytes.clear();
        self.cut = 0;
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn invalid_utf8_and_a_huge_line_do_not_stop_the_reader() {
        let (mut writer, reader) = tokio::io::duplex(64 * 1024);
        let tail = StderrTail::default();
        tail.follow(reader, "test".into());
        writer.write_all(b"not utf-8: \xff\xfe\n").await.unwrap();
        let huge = vec![b'x'; 10 * 1024 * 1024];
        writer.write_all(&huge).await.unwrap();
        writer.write_all(b"\nstill here\n").await.unwrap();
        let read = tokio::time::timeout(Duration::from_secs(30), async {
            while !tail.text().contains("still here") {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        assert!(read.is_ok(), "the reader stopped: {:?}", tail.text());
        let lines: Vec<String> = tail.text().lines().map(String::from).collect();
        assert_eq!(lines[0], "not utf-8: \u{fffd}\u{fffd}");
        let cut = 10 * 1024 * 1024 - MAX_LINE;
        assert_eq!(
            lines[1],
            format!("{} [{cut} more bytes not kept]", "x".repeat(MAX_LINE))
        );
        assert_eq!(lines[2], "still here");
        // A last line without a newline is kept when the stream ends.
        writer.write_all(b"bye").await.unwrap();
        drop(writer);
        let ended = tokio::time::timeout(Duration::from_secs(30), async {
            while !tail.text().ends_with("bye") {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        assert!(ended.is_ok(), "{:?}", tail.text());
    }
}
