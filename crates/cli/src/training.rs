//! `[training]` of rollout.toml: the `command` and `openai` training backends.

use anyhow::bail;
use rollout_training::{OpenAiFineTuning, Secret, TrainingConfig};
use serde::Deserialize;
use std::path::Path;
use std::time::Duration;

/// `[training]`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TrainingSection {
    /// The `command` backend: the trainer's argument list, with placeholders `{dataset}`,
    /// `{trajectories}`, `{params}`, `{base_model}`, `{name}`, `{output_dir}`, `{manifest}`.
    pub(crate) command: Option<Vec<String>>,
    /// Longest a trainer may run (default 86400).
    pub(crate) command_timeout_seconds: Option<u64>,
    /// `[training.openai]`: an OpenAI-compatible fine-tuning API.
    pub(crate) openai: Option<OpenAiSection>,
}

/// `[training.openai]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OpenAiSection {
    /// The fine-tuning API, e.g. `https://api.openai.com/v1`.
    pub(crate) base_url: String,
    /// The environment variable holding its key (default `OPENAI_API_KEY`).
    pub(crate) api_key_env: Option<String>,
    /// Where the fine-tuned models are called (default: `base_url`).
    pub(crate) inference_base_url: Option<String>,
    /// The configured provider whose key calls the fine-tuned models (default `openai`).
    pub(crate) key_provider: Option<String>,
    /// How often the job is polled (default 10000).
    pub(crate) poll_interval_ms: Option<u64>,
    /// Longest a fine-tuning job may take (default 86400).
    pub(crate) timeout_seconds: Option<u64>,
}

impl TrainingSection {
    /// The server's training settings; jobs keep their files in `DATA_DIR/training/`.
    pub(crate) fn to_config(&self, data_dir: &Path) -> anyhow::Result<TrainingConfig> {
        if self.command.as_ref().is_some_and(Vec::is_empty) {
            bail!("[training] command must name a program");
        }
        Ok(TrainingConfig {
            work_dir: Some(data_dir.join("training")),
            command: self.command.clone(),
            command_timeout: Duration::from_secs(
                self.command_timeout_seconds.unwrap_or(86_400).max(1),
            ),
            openai: self.openai.as_ref().map(|openai| {
                let key_env = openai.api_key_env.as_deref().unwrap_or("OPENAI_API_KEY");
                OpenAiFineTuning {
                    base_url: openai.base_url.clone(),
                    api_key: std::env::var(key_env)
                        .ok()
                        .filter(|key| !key.is_empty())
                        .map(Secret::new),
                    inference_base_url: openai.inference_base_url.clone(),
                    key_provider: Some(
                        openai
                            .key_provider
                            .clone()
                            .unwrap_or_else(|| "openai".into()),
                    ),
                    poll_interval: Duration::from_millis(
                        openai.poll_interval_ms.unwrap_or(10_000).max(10),
                    ),
                    timeout: Duration::from_secs(openai.timeout_seconds.unwrap_or(86_400).max(1)),
                }
            }),
        })
    }
}
