//! Checkpoints: models produced by training, callable by name like any model.
//!
//! A checkpoint either points at an OpenAI-compatible endpoint that serves new weights
//! (`command` and `openai` backends), or is a base model plus demonstrations (`fewshot`):
//! at run time the best demonstrations for the run's scenario arguments are chosen here
//! and rendered into the system prompt.

use crate::message::{Message, Role};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeSet;

/// A registered checkpoint and its lineage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The name runs use in `model`.
    pub name: String,
    pub project_id: String,
    /// The model the checkpoint was trained from.
    pub base_model: String,
    /// `fewshot`, `command` or `openai`.
    pub backend: String,
    /// The dataset it was trained on.
    pub dataset_id: String,
    /// The training job that produced it.
    pub training_job_id: String,
    pub created_at_ms: i64,
    pub target: CheckpointTarget,
}

/// What calling a checkpoint means.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CheckpointTarget {
    /// The base model, with up to `k` demonstrations in the system prompt.
    Fewshot {
        k: usize,
        demonstrations: Vec<Demonstration>,
    },
    /// A model id on an OpenAI-compatible server.
    Endpoint {
        /// Base URL ending before `/chat/completions` (e.g. `http://host:8000/v1`).
        base_url: String,
        model: String,
        /// The name of a provider configured on the server whose key to send, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key_provider: Option<String>,
    },
}

/// One successful run, kept as an example for a `fewshot` checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Demonstration {
    pub trace_id: String,
    pub scenario: String,
    pub args: Map<String, Value>,
    pub reward: f64,
    /// The conversation after the system prompt: the prompt, tool calls, results, answer.
    pub messages: Vec<Message>,
}

/// The `k` best demonstrations for a run with `args`: highest reward first, then the
/// largest token overlap (Jaccard) between their arguments and `args`, then trace id.
pub fn select_demonstrations<'a>(
    demonstrations: &'a [Demonstration],
    args: &Map<String, Value>,
    k: usize,
) -> Vec<&'a Demonstration> {
    let wanted = tokens_of(args);
    let mut scored: Vec<(f64, f64, &Demonstration)> = demonstrations
        .iter()
        .map(|demo| (demo.reward, jaccard(&wanted, &tokens_of(&demo.args)), demo))
        .collect();
    scored.sort_by(|a, b| {
        b.0.total_cmp(&a.0)
            .then(b.1.total_cmp(&a.1))
            .then_with(|| a.2.trace_id.cmp(&b.2.trace_id))
    });
    scored
        .into_iter()
        .take(k)
        .map(|(_, _, demo)| demo)
        .collect()
}

/// The lower-cased alphanumeric words of the argument values.
fn tokens_of(args: &Map<String, Value>) -> BTreeSet<String> {
    let mut text = String::new();
    for value in args.values() {
        match value {
            Value::String(s) => text.push_str(s),
            other => text.push_str(&other.to_string()),
        }
        text.push(' ');
    }
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
        .collect()
}

fn jaccard(a: &BTreeSet<String>, b: &BTreeSet<String>) -> f64 {
    let union = a.union(b).count();
    if union == 0 {
        return 0.0;
    }
    a.intersection(b).count() as f64 / union as f64
}

/// The system-prompt section that presents `demonstrations` to the model.
pub fn render_demonstrations(demonstrations: &[&Demonstration]) -> String {
    let mut out = String::from(
        "Here are examples of successful solutions to similar tasks. Follow the same approach.\n",
    );
    for (index, demo) in demonstrations.iter().enumerate() {
        out.push_str(&format!("\n### Example {}\n", index + 1));
        for message in &demo.messages {
            match message.role {
                Role::System => {}
                Role::User => out.push_str(&format!("User: {}\n", message.content)),
                Role::Assistant => {
                    if !message.content.is_empty() {
                        out.push_str(&format!("Assistant: {}\n", message.content));
                    }
                    for call in &message.tool_calls {
                        out.push_str(&format!(
                            "Assistant calls tool {}({})\n",
                            call.name, call.arguments
                        ));
                    }
                }
                Role::Tool => {
                    let label = if message.is_error {
                        "Tool error"
                    } else {
                        "Tool result"
                    };
                    out.push_str(&format!("{label}: {}\n", message.content));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn demo(id: &str, query: &str, reward: f64) -> Demonstration {
        let Value::Object(args) = json!({ "query": query }) else {
            unreachable!("an object literal")
        };
        Demonstration {
            trace_id: id.into(),
            scenario: "answer_question".into(),
            args,
            reward,
            messages: vec![Message::user(query), Message::assistant("ok", vec![])],
        }
    }

    #[test]
    fn selection_prefers_reward_then_overlap() {
        let demos = vec![
            demo("a", "What is the capital of France?", 1.0),
            demo("b", "What is 17 * 23?", 1.0),
            demo("c", "What is 17 * 24?", 0.5),
        ];
        let Value::Object(args) = json!({"query": "What is 17 * 25?"}) else {
            unreachable!("an object literal")
        };
        let chosen: Vec<&str> = select_demonstrations(&demos, &args, 2)
            .iter()
            .map(|d| d.trace_id.as_str())
            .collect();
        assert_eq!(chosen, vec!["b", "a"]);
    }

    #[test]
    fn rendering_shows_calls_and_errors() {
        let mut d = demo("a", "q", 1.0);
        d.messages
            .push(Message::tool(&crate::ToolResult::error("c1", "boom")));
        let text = render_demonstrations(&[&d]);
        assert!(text.contains("### Example 1\nUser: q\nAssistant: ok\nTool error: boom\n"));
    }
}
