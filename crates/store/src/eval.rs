//! The records of evaluations: tasksets, their tasks, jobs and the runs of a job. Plain
//! data: the SQL lives in `store/tasksets.rs` and `store/jobs.rs`.

use crate::types::RunRecord;
use rollout_domain::{RunId, RunSpec, RunStatus, Task};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A taskset as stored, with its number of tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TasksetRecord {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub description: String,
    pub task_count: i64,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// One task of a taskset, with its id and its place (0-based positions only grow; removed
/// tasks leave gaps).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredTask {
    pub id: String,
    pub position: i64,
    pub task: Task,
}

/// What a job asked for, kept with the job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    pub taskset: String,
    pub models: Vec<String>,
    pub repeats: i64,
    /// Most runs of this job running at once; `None` for no limit of its own.
    pub max_concurrency: Option<i64>,
    pub max_steps: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_prompt: Option<String>,
    #[serde(default)]
    pub metadata: Map<String, Value>,
    /// The ids of the taskset's tasks when the job was created; `task_index` points here.
    pub task_ids: Vec<String>,
}

/// A run to queue as part of a job.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJobRun {
    pub id: RunId,
    pub spec: RunSpec,
    pub task_index: i64,
    pub repeat_index: i64,
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub id: String,
    pub project_id: String,
    pub spec: JobSpec,
    pub created_at_ms: i64,
    pub cancelled_at_ms: Option<i64>,
}

/// A run of a job, with the task and repeat it stands for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRun {
    pub run: RunRecord,
    pub task_index: i64,
    pub repeat_index: i64,
}

/// One model's runs of a job: counts by status, and the sum of rewards of its graded runs
/// (completed or timed out; a missing reward counts as 0).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelProgress {
    pub model: String,
    pub counts: JobCounts,
    pub graded_reward_sum: f64,
}

impl ModelProgress {
    /// The mean reward of the graded runs so far.
    pub fn mean_reward(&self) -> Option<f64> {
        let graded = self.counts.completed + self.counts.timed_out;
        (graded > 0).then(|| self.graded_reward_sum / graded as f64)
    }
}

/// How many runs of a job are in each status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobCounts {
    pub queued: i64,
    pub running: i64,
    pub completed: i64,
    pub failed: i64,
    pub cancelled: i64,
    pub timed_out: i64,
}

impl JobCounts {
    /// Adds `count` runs in `status`.
    pub fn add(&mut self, status: RunStatus, count: i64) {
        let slot = match status {
            RunStatus::Queued => &mut self.queued,
            RunStatus::Running => &mut self.running,
            RunStatus::Completed => &mut self.completed,
            RunStatus::Failed => &mut self.failed,
            RunStatus::Cancelled => &mut self.cancelled,
            RunStatus::TimedOut => &mut self.timed_out,
        };
        *slot += count;
    }

    /// How many runs are in `status`.
    pub fn count(&self, status: RunStatus) -> i64 {
        match status {
            RunStatus::Queued => self.queued,
            RunStatus::Running => self.running,
            RunStatus::Completed => self.completed,
            RunStatus::Failed => self.failed,
            RunStatus::Cancelled => self.cancelled,
            RunStatus::TimedOut => self.timed_out,
        }
    }

    /// Every run of the job.
    pub fn total(&self) -> i64 {
        self.queued + self.running + self.completed + self.failed + self.cancelled + self.timed_out
    }

    /// Runs that will not change any more.
    pub fn finished(&self) -> i64 {
        self.completed + self.failed + self.cancelled + self.timed_out
    }
}
