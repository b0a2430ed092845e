//! Why a model name could not be turned into a callable model.

use thiserror::Error;

/// A model name the catalog cannot serve. The messages are shown to API users as they are.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ResolveError {
    /// No rule matches the name.
    #[error("unknown model '{model}': {hint}")]
    Unknown { model: String, hint: String },
    /// The model's provider needs a key that the server was not given.
    #[error("model '{model}' needs {env_var}; set it in the server's environment")]
    MissingKey {
        model: String,
        provider: String,
        env_var: String,
    },
    /// `replay` was asked for without validation actions to play back.
    #[error(
        "model 'replay' needs a validation list: give `validation` as tool calls \
         {{\"name\": ..., \"arguments\": {{...}}}} and optionally a final {{\"answer\": \"...\"}}"
    )]
    ReplayNeedsValidation,
}

impl ResolveError {
    /// A stable code for API error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            ResolveError::Unknown { .. } => "unknown_model",
            ResolveError::MissingKey { .. } => "missing_api_key",
            ResolveError::ReplayNeedsValidation => "replay_needs_validation",
        }
    }
}
