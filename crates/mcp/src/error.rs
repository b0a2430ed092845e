//! Errors of the client side: an environment that cannot be started, reached or understood.

use thiserror::Error;

/// Why talking to an environment failed. Tool-level failures are not errors: they are
/// tool results with `is_error` (the model sees them).
#[derive(Debug, Error)]
pub enum EnvError {
    /// The command of a stdio environment could not be started.
    #[error("could not start environment command '{command}': {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    /// The MCP handshake failed.
    #[error(
        "could not connect to environment: {message}{}",
        tail_suffix(stderr_tail)
    )]
    Connect {
        message: String,
        stderr_tail: String,
    },
    /// The environment answered a request with a JSON-RPC error.
    #[error("{operation} failed: {message}")]
    Request {
        operation: &'static str,
        message: String,
    },
    /// The connection broke (the process exited, the server went away).
    #[error(
        "environment connection lost during {operation}: {message}{}",
        tail_suffix(stderr_tail)
    )]
    Transport {
        operation: &'static str,
        message: String,
        stderr_tail: String,
    },
    /// The environment answered something we cannot use.
    #[error("invalid response to {operation}: {message}")]
    InvalidResponse {
        operation: &'static str,
        message: String,
    },
    /// A request to the environment took too long.
    #[error("{operation} timed out after {seconds} s")]
    Timeout {
        operation: &'static str,
        seconds: u64,
    },
}

fn tail_suffix(tail: &str) -> String {
    if tail.trim().is_empty() {
        String::new()
    } else {
        format!("\n--- environment stderr (tail) ---\n{tail}")
    }
}
