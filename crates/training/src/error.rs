//! Why a training job failed. The messages are shown to API users as they are.

/// A training failure.
#[derive(Debug, thiserror::Error)]
pub enum TrainingError {
    /// The backend is misconfigured on the server.
    #[error("{0}")]
    Config(String),
    /// The backend ran and failed.
    #[error("{0}")]
    Failed(String),
}
