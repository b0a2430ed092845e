//! The `fewshot` backend: no weights change. A checkpoint is the base model plus the
//! demonstrations of a dataset (its best trajectories), chosen per run by reward and by how
//! close their scenario arguments are to the run's, and rendered into the system prompt
//! (see `rollout_domain::checkpoint`).

use crate::dataset::{TrajectoryExample, from_openai_messages};
use rollout_domain::{CheckpointTarget, Demonstration, Role};

/// Demonstrations shown per run unless the job's params set `k`.
pub const DEFAULT_K: usize = 3;
/// Most demonstrations a run may be shown.
pub const MAX_K: usize = 20;
/// Most demonstrations a checkpoint keeps.
pub const MAX_KEPT: usize = 200;

/// The checkpoint target of a `fewshot` training job over a dataset's trajectories: every
/// record that ends with an assistant answer, best rewards first, at most [`MAX_KEPT`].
/// System messages are left out (the run brings its own).
pub fn build_target(records: &[TrajectoryExample], k: usize) -> CheckpointTarget {
    let mut demonstrations: Vec<Demonstration> = records
        .iter()
        .filter_map(|record| {
            let messages: Vec<_> = from_openai_messages(&record.messages)
                .into_iter()
                .filter(|m| m.role != Role::System)
                .collect();
            messages
                .last()
                .is_some_and(|m| m.role == Role::Assistant)
                .then(|| Demonstration {
                    trace_id: record.trace_id.clone(),
                    scenario: record.scenario.clone(),
                    args: record.args.clone(),
                    reward: record.reward,
                    messages,
                })
        })
        .collect();
    demonstrations.sort_by(|a, b| {
        b.reward
            .total_cmp(&a.reward)
            .then_with(|| a.trace_id.cmp(&b.trace_id))
    });
    demonstrations.truncate(MAX_KEPT);
    CheckpointTarget::Fewshot {
        k: k.clamp(1, MAX_K),
        demonstrations,
    }
}
