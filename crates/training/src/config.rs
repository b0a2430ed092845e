//! What the server configuration says about training backends.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// The training backends' settings (`[training]` in rollout.toml).
#[derive(Debug, Clone)]
pub struct TrainingConfig {
    /// Where jobs write their files (`DATA_DIR/training/JOB_ID/`); `command` needs it.
    pub work_dir: Option<PathBuf>,
    /// The `command` backend's argument list, with placeholders (see `command.rs`); unset:
    /// the backend is not available.
    pub command: Option<Vec<String>>,
    /// Longest a `command` trainer may run.
    pub command_timeout: Duration,
    /// The `openai` backend; unset: not available.
    pub openai: Option<OpenAiFineTuning>,
}

impl Default for TrainingConfig {
    fn default() -> Self {
        Self {
            work_dir: None,
            command: None,
            command_timeout: Duration::from_secs(86_400),
            openai: None,
        }
    }
}

/// An OpenAI-compatible fine-tuning API.
#[derive(Debug, Clone)]
pub struct OpenAiFineTuning {
    /// E.g. `https://api.openai.com/v1`.
    pub base_url: String,
    pub api_key: Option<Secret>,
    /// Where the fine-tuned model is called (default: `base_url`).
    pub inference_base_url: Option<String>,
    /// The provider (configured in the model catalog) whose key calls the fine-tuned model.
    pub key_provider: Option<String>,
    /// How often job status and events are polled.
    pub poll_interval: Duration,
    /// Longest a fine-tuning job may take.
    pub timeout: Duration,
}

/// A secret string, redacted in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}
