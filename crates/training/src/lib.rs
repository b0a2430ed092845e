//! Training: traces become datasets (chat fine-tuning JSONL with tools, trajectory JSONL for
//! RL), datasets become checkpoints through a backend (`fewshot` here; the server drives
//! the jobs). No I/O: callers hand in traces and store what comes out.

pub mod dataset;
pub mod fewshot;

pub use dataset::{
    ChatExample, DatasetStats, DatasetTrace, RewardBucket, RewardStats, TrajectoryExample,
    build_stats, chat_example, from_openai_messages, openai_messages, openai_tools,
    trajectory_example,
};
