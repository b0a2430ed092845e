//! Why the loop stopped without an outcome. Tool errors and refusals are outcomes, not
//! errors: they go back to the model and into the trace.

use rollout_domain::{ModelError, RecordError, ToolError};
use thiserror::Error;

/// An infrastructure failure that ends the run as `failed`.
#[derive(Debug, Error)]
pub enum AgentError {
    /// The model could not be called (after the client's retries).
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The environment failed while executing a tool call.
    #[error(transparent)]
    Tool(#[from] ToolError),
    /// The trace could not be written.
    #[error(transparent)]
    Record(#[from] RecordError),
}
