//! The control channel of a hud 0.6 environment: newline-delimited JSON-RPC 2.0 over one
//! TCP connection (task protocol §3–4).
//!
//! A reader task matches replies to requests by id (replies may come out of order, and a
//! `tasks.cancel` or `bye` is sent while a `tasks.start` or `tasks.grade` is still waiting),
//! so requests share the connection without a call lock.

use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::oneshot;

/// The largest frame the environment may send (hud's `CONTROL_FRAME_LIMIT_BYTES`).
pub(crate) const FRAME_LIMIT: u64 = 16 * 1024 * 1024;

/// Why a control request did not produce a result.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum CallError {
    /// The environment answered with a JSON-RPC error (its code and text).
    Rpc { code: i64, message: String },
    /// The connection closed (the environment exited, or closed it on a bad frame).
    Closed(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Rpc { code, message } => write!(f, "{message} (JSON-RPC error {code})"),
            CallError::Closed(reason) => write!(f, "the control connection closed: {reason}"),
        }
    }
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Result<Value, CallError>>>>>;

/// One control connection.
pub(crate) struct ControlChannel {
    writer: tokio::sync::Mutex<OwnedWriteHalf>,
    pending: Pending,
    next_id: AtomicU64,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for ControlChannel {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl ControlChannel {
    /// Wraps a connected stream and starts reading its replies.
    pub(crate) fn new(stream: TcpStream) -> Self {
        let (read, write) = stream.into_split();
        let pending: Pending = Arc::default();
        let reader = tokio::spawn(read_replies(read, pending.clone()));
        Self {
            writer: tokio::sync::Mutex::new(write),
            pending,
            next_id: AtomicU64::new(1),
            reader,
        }
    }

    /// Sends `method` with `params` and waits for its reply's `result` (a JSON object).
    pub(crate) async fn call(&self, method: &str, params: Value) -> Result<Value, CallError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(id, tx);
        let frame = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let mut line = frame.to_string().into_bytes();
        line.push(b'\n');
        let written = {
            let mut writer = self.writer.lock().await;
            writer.write_all(&line).await
        };
        if let Err(error) = written {
            lock(&self.pending).remove(&id);
            return Err(CallError::Closed(error.to_string()));
        }
        match rx.await {
            Ok(result) => result,
            Err(_) => Err(CallError::Closed(
                "no reply before the connection ended".into(),
            )),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Reads reply frames until the connection ends, handing each to its request; then fails
/// every request still waiting.
async fn read_replies(read: impl AsyncRead + Unpin, pending: Pending) {
    let mut reader = BufReader::new(read);
    let reason = loop {
        match read_frame(&mut reader).await {
            Ok(Some(frame)) => dispatch(&frame, &pending),
            Ok(None) => break "the environment closed it".to_string(),
            Err(reason) => break reason,
        }
    };
    for (_, tx) in lock(&pending).drain() {
        let _ = tx.send(Err(CallError::Closed(reason.clone())));
    }
}

/// One line (at most [`FRAME_LIMIT`] bytes) parsed as JSON; `None` at the end of the stream.
pub(crate) async fn read_frame(
    reader: &mut (impl AsyncBufReadExt + Unpin),
) -> Result<Option<Value>, String> {
    let mut line = Vec::new();
    let read = tokio::io::AsyncReadExt::take(&mut *reader, FRAME_LIMIT + 1)
        .read_until(b'\n', &mut line)
        .await
        .map_err(|e| e.to_string())?;
    if read == 0 {
        return Ok(None);
    }
    if !line.ends_with(b"\n") {
        return Err(if line.len() as u64 > FRAME_LIMIT {
            "the environment sent a frame over 16 MiB".into()
        } else {
            "the environment closed it mid-frame".into()
        });
    }
    serde_json::from_slice(&line)
        .map(Some)
        .map_err(|e| format!("the environment sent a frame that is not JSON: {e}"))
}

fn dispatch(frame: &Value, pending: &Pending) {
    let Some(id) = frame.get("id").and_then(Value::as_u64) else {
        // An error frame without id (an oversized request) or a notification: nothing waits.
        tracing::debug!(%frame, "hud 0.6 control frame without a request id");
        return;
    };
    let Some(tx) = lock(pending).remove(&id) else {
        return;
    };
    let _ = tx.send(reply_result(frame));
}

/// The `result` of a reply frame, or its error.
pub(crate) fn reply_result(frame: &Value) -> Result<Value, CallError> {
    if let Some(error) = frame.get("error") {
        return Err(CallError::Rpc {
            code: error.get("code").and_then(Value::as_i64).unwrap_or(0),
            message: error
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| error.to_string()),
        });
    }
    match frame.get("result") {
        Some(Value::Object(result)) => Ok(Value::Object(result.clone())),
        Some(other) => Err(CallError::Rpc {
            code: 0,
            message: format!("the result is not a JSON object: {other}"),
        }),
        None => Ok(Value::Object(Map::new())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_become_results_or_errors() {
        let ok = json!({"jsonrpc": "2.0", "id": 1, "result": {"cancelled": true}});
        assert_eq!(reply_result(&ok).unwrap(), json!({"cancelled": true}));
        let error = json!({"id": 2, "error": {"code": -32602, "message": "unknown task: 'nope'"}});
        assert_eq!(
            reply_result(&error).unwrap_err(),
            CallError::Rpc {
                code: -32602,
                message: "unknown task: 'nope'".into()
            }
        );
        assert!(reply_result(&json!({"id": 3, "result": 5})).is_err());
    }

    #[tokio::test]
    async fn frames_are_lines_of_json_with_a_limit() {
        let mut input: &[u8] = b"{\"id\":1}\nnot json\n{\"id\":2}";
        let mut reader = BufReader::new(&mut input);
        assert_eq!(
            read_frame(&mut reader).await.unwrap(),
            Some(json!({"id": 1}))
        );
        assert!(read_frame(&mut reader).await.is_err());
        assert!(read_frame(&mut reader).await.is_err());
    }
}
