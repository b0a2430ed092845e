//! The `fewshot` backend's checkpoint target.

use rollout_domain::{CheckpointTarget, Role};
use rollout_training::fewshot::build_target;
use rollout_training::trajectory_example;

#[test]
fn target_keeps_answered_trajectories_best_first_without_system_messages() {
    let records: Vec<_> = super::dataset::traces_for_fewshot()
        .iter()
        .map(trajectory_example)
        .collect();
    let CheckpointTarget::Fewshot { k, demonstrations } = build_target(&records, 2) else {
        panic!("not a fewshot target");
    };
    assert_eq!(k, 2);
    let ids: Vec<&str> = demonstrations.iter().map(|d| d.trace_id.as_str()).collect();
    assert_eq!(ids, vec!["trace-a", "trace-c", "trace-b"]);
    let first = &demonstrations[0];
    assert_eq!(first.messages[0].role, Role::User);
    assert_eq!(
        first.messages[1].tool_calls[0].arguments["expression"],
        "17 * 23"
    );
    assert_eq!(first.messages[2].tool_call_id.as_deref(), Some("call_1"));
    assert_eq!(first.messages.last().unwrap().content, "392");
}
