//! Errors of the environment SDK: serving failed, not a tool or scenario outcome.

use thiserror::Error;

/// Serving an [`Environment`](super::Environment) failed.
///
/// Tool failures and scenario failures are not errors of this kind: they travel to the client
/// as MCP results (`isError` tool results, JSON-RPC errors of one request).
#[derive(Debug, Error)]
pub enum SdkError {
    /// Binding, accepting or reading/writing the transport failed.
    #[error("environment '{env}' transport failed: {source}")]
    Io {
        /// The normalized environment name.
        env: String,
        #[source]
        source: std::io::Error,
    },
    /// The MCP `initialize` handshake with the client failed.
    #[error("environment '{env}' could not initialize the mcp session: {message}")]
    Initialize {
        /// The normalized environment name.
        env: String,
        /// What rmcp reported.
        message: String,
    },
    /// The task running the MCP session ended abnormally (panicked or was cancelled).
    #[error("environment '{env}' mcp session task failed: {message}")]
    Session {
        /// The normalized environment name.
        env: String,
        /// What the runtime reported.
        message: String,
    },
}
