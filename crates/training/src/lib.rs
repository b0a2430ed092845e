//! Training: traces become datasets (chat fine-tuning JSONL with tools, trajectory JSONL for
//! RL), datasets become checkpoints through a backend: `fewshot` (pure), `command` (a local
//! trainer process), `openai` (a fine-tuning API). The server drives the jobs and stores what comes out.

pub mod command;
pub mod config;
pub mod dataset;
pub mod error;
pub mod fewshot;
pub mod openai;

pub use config::{OpenAiFineTuning, Secret, TrainingConfig};
pub use error::TrainingError;

pub use dataset::{
    ChatExample, DatasetStats, DatasetTrace, RewardBucket, RewardStats, StatsBuilder,
    TrajectoryExample, build_stats, chat_example, from_openai_messages, openai_messages,
    openai_tools, trajectory_example,
};
