//! `[training]` of rollout.toml: the `command` and `openai` training backends.

use anyhow::bail;
use rollout_training::TrainingConfig;
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
            ..TrainingConfig::default()
        })
    }
}
