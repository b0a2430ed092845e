//! Why a run failed. Each variant's message is what the run's `error` field shows.

use rollout_agent::AgentError;
use rollout_mcp::EnvError;
use rollout_store::StoreError;
use thiserror::Error;

/// An infrastructure failure that ends a run as `failed` (or `timed_out`).
#[derive(Debug, Error)]
pub enum RunError {
    #[error("environment '{name}' version {version} no longer exists")]
    MissingVersion { name: String, version: i64 },
    #[error("environment version {version} of '{name}' has an unusable source: {message}")]
    BadSource {
        name: String,
        version: i64,
        message: String,
    },
    #[error("scenario '{scenario}' is not offered by environment '{name}' version {version}")]
    MissingScenario {
        name: String,
        version: i64,
        scenario: String,
    },
    #[error("{0}")]
    Model(String),
    #[error(transparent)]
    Env(#[from] EnvError),
    #[error(transparent)]
    Agent(#[from] AgentError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{phase} took longer than {seconds} s")]
    Timeout { phase: &'static str, seconds: u64 },
}

impl RunError {
    /// The phase name recorded in the trace's error event.
    pub fn phase(&self) -> &'static str {
        match self {
            RunError::MissingVersion { .. } | RunError::BadSource { .. } => "environment",
            RunError::MissingScenario { .. } => "setup",
            RunError::Model(_) => "model",
            RunError::Env(_) => "environment",
            RunError::Agent(AgentError::Model(_)) => "model",
            RunError::Agent(AgentError::Tool(_)) => "tool",
            RunError::Agent(AgentError::Record(_)) | RunError::Store(_) => "store",
            RunError::Timeout { phase, .. } => phase,
        }
    }
}
