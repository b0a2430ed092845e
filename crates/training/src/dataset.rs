//! Traces to dataset records.
//!
//! The conversation of a run is rebuilt from its `model_call` events exactly as the model
//! saw it: the `new_messages` of each call, then its response. Only the last attempt of a
//! run counts: the events after its last `attempt_started` (attempt numbers only increase,
//! and an execution that lost its lease writes nothing after a newer attempt started). Tool
//! results the model never saw (after the last call) are left out, so that every record ends
//! with an assistant message.

use rollout_domain::{
    Evaluation, EventKind, Message, Role, RunEvent, RunSpec, ToolCall, ToolSpec, Usage,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// A finished run and its events: the input of every dataset function.
#[derive(Debug, Clone)]
pub struct DatasetTrace {
    pub trace_id: String,
    pub spec: RunSpec,
    pub reward: Option<f64>,
    pub evaluation: Option<Evaluation>,
    pub usage: Usage,
    /// The job and the task id, when the run belongs to a job (from the run's metadata).
    pub job_id: Option<String>,
    pub task_id: Option<String>,
    pub events: Vec<RunEvent>,
}

impl DatasetTrace {
    /// The events of the last attempt: those after the last `attempt_started` (all of them
    /// for a trace without one, e.g. recorded by the MCP gateway before it wrote one).
    pub fn last_attempt(&self) -> &[RunEvent] {
        let start = self
            .events
            .iter()
            .rposition(|event| matches!(event.kind, EventKind::AttemptStarted { .. }))
            .unwrap_or(0);
        &self.events[start..]
    }

    /// The conversation the model saw, in the neutral shape.
    pub fn conversation(&self) -> Vec<Message> {
        let mut messages = Vec::new();
        for event in self.last_attempt() {
            if let EventKind::ModelCall {
                new_messages,
                response,
                ..
            } = &event.kind
            {
                messages.extend(new_messages.iter().cloned());
                messages.push(response.clone());
            }
        }
        messages
    }

    /// The tools offered to the model (from the last attempt's `setup` event).
    pub fn tools(&self) -> Vec<ToolSpec> {
        self.last_attempt()
            .iter()
            .rev()
            .find_map(|event| match &event.kind {
                EventKind::Setup { tools, .. } => Some(tools.clone()),
                _ => None,
            })
            .unwrap_or_default()
    }

    /// The scenario's prompt (from the last attempt's `setup` event).
    pub fn prompt(&self) -> String {
        self.last_attempt()
            .iter()
            .rev()
            .find_map(|event| match &event.kind {
                EventKind::Setup { prompt, .. } => Some(prompt.clone()),
                _ => None,
            })
            .unwrap_or_default()
    }

    /// Ties the repeats of one task together: the job and task id when the run
    /// belongs to a job, otherwise environment, scenario and arguments.
    pub fn group_id(&self) -> String {
        match (&self.job_id, &self.task_id) {
            (Some(job), Some(task)) => format!("{job}/{task}"),
            _ => format!(
                "{}/{}/{}",
                self.spec.env_name,
                self.spec.scenario_name,
                Value::Object(self.spec.scenario_args.clone())
            ),
        }
    }
}

/// One line of the chat fine-tuning JSONL (OpenAI's format with tools).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatExample {
    pub messages: Vec<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Value>,
}

/// One line of the trajectory JSONL for RL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrajectoryExample {
    pub trace_id: String,
    pub group_id: String,
    pub env: String,
    pub scenario: String,
    pub args: Map<String, Value>,
    pub model: String,
    pub prompt: String,
    pub messages: Vec<Value>,
    pub tools: Vec<Value>,
    pub reward: f64,
    /// Subscore name → value.
    pub subscores: BTreeMap<String, f64>,
    pub steps: usize,
}

/// The chat fine-tuning record of a trace.
pub fn chat_example(trace: &DatasetTrace) -> ChatExample {
    ChatExample {
        messages: openai_messages(&trim_to_assistant(trace.conversation())),
        tools: openai_tools(&trace.tools()),
    }
}

/// The trajectory record of a trace.
pub fn trajectory_example(trace: &DatasetTrace) -> TrajectoryExample {
    let conversation = trim_to_assistant(trace.conversation());
    let steps = conversation
        .iter()
        .filter(|m| m.role == Role::Assistant)
        .count();
    let subscores = trace
        .evaluation
        .as_ref()
        .and_then(|e| e.subscores.as_ref())
        .map(|scores| scores.iter().map(|s| (s.name.clone(), s.value)).collect())
        .unwrap_or_default();
    TrajectoryExample {
        trace_id: trace.trace_id.clone(),
        group_id: trace.group_id(),
        env: trace.spec.env_name.clone(),
        scenario: trace.spec.scenario_name.clone(),
        args: trace.spec.scenario_args.clone(),
        model: trace.spec.model.clone(),
        prompt: trace.prompt(),
        messages: openai_messages(&conversation),
        tools: openai_tools(&trace.tools()),
        reward: trace.reward.unwrap_or(0.0),
        subscores,
        steps,
    }
}

/// Drops trailing messages after the last assistant message.
fn trim_to_assistant(mut messages: Vec<Message>) -> Vec<Message> {
    while messages.last().is_some_and(|m| m.role != Role::Assistant) {
        messages.pop();
    }
    messages
}

/// Messages in OpenAI's chat format: assistant tool calls with JSON-string arguments
/// (`content` null when the message is only tool calls), tool results with `tool_call_id`.
pub fn openai_messages(messages: &[Message]) -> Vec<Value> {
    messages
        .iter()
        .map(|message| match message.role {
            Role::System => json!({"role": "system", "content": message.content}),
            Role::User => json!({"role": "user", "content": message.content}),
            Role::Assistant if message.tool_calls.is_empty() => {
                json!({"role": "assistant", "content": message.content})
            }
            Role::Assistant => {
                let calls: Vec<Value> = message
                    .tool_calls
                    .iter()
                    .map(|call| {
                        json!({
                            "id": call.id,
                            "type": "function",
                            "function": {
                                "name": call.name,
                                "arguments": call.arguments.to_string(),
                            }
                        })
                    })
                    .collect();
                let content = if message.content.is_empty() {
                    Value::Null
                } else {
                    Value::String(message.content.clone())
                };
                json!({"role": "assistant", "content": content, "tool_calls": calls})
            }
            Role::Tool => json!({
                "role": "tool",
                "tool_call_id": message.tool_call_id.clone().unwrap_or_default(),
                "content": message.content,
            }),
        })
        .collect()
}

/// The inverse of [`openai_messages`] (unknown roles are skipped; tool errors are not
/// marked, the format has no field for them).
pub fn from_openai_messages(messages: &[Value]) -> Vec<Message> {
    messages
        .iter()
        .filter_map(|message| {
            let content = message["content"].as_str().unwrap_or_default().to_string();
            Some(match message["role"].as_str()? {
                "system" => Message::system(content),
                "user" => Message::user(content),
                "assistant" => {
                    let calls = message["tool_calls"]
                        .as_array()
                        .map(|calls| {
                            calls
                                .iter()
                                .map(|call| ToolCall {
                                    id: call["id"].as_str().unwrap_or_default().to_string(),
                                    name: call["function"]["name"]
                                        .as_str()
                                        .unwrap_or_default()
                                        .to_string(),
                                    arguments: call["function"]["arguments"]
                                        .as_str()
                                        .and_then(|text| serde_json::from_str(text).ok())
                                        .unwrap_or_else(|| json!({})),
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    Message::assistant(content, calls)
                }
                "tool" => Message {
                    tool_call_id: message["tool_call_id"].as_str().map(str::to_string),
                    ..Message::tool(&rollout_domain::ToolResult {
                        call_id: String::new(),
                        text: content,
                        content: Vec::new(),
                        structured: None,
                        is_error: false,
                    })
                },
                _ => return None,
            })
        })
        .collect()
}

/// Tools in OpenAI's function format.
pub fn openai_tools(tools: &[ToolSpec]) -> Vec<Value> {
    tools
        .iter()
        .map(|tool| {
            json!({
                "type": "function",
                "function": {
                    "name": tool.name,
                    "description": tool.description,
                    "parameters": tool.input_schema,
                }
            })
        })
        .collect()
}

/// What a dataset holds, shown before export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetStats {
    pub count: usize,
    /// Distinct groups (tasks).
    pub groups: usize,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub total_tokens: u64,
    /// Model calls over all traces.
    pub steps: usize,
    /// Traces per model.
    pub models: BTreeMap<String, usize>,
    pub reward: RewardStats,
}

/// The reward distribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RewardStats {
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub mean: Option<f64>,
    /// Ten buckets over `[0, 1]` (`[0, 0.1)`, ..., `[0.9, 1.0]`); rewards outside are clamped.
    pub histogram: Vec<RewardBucket>,
}

/// One bucket of the reward histogram.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RewardBucket {
    pub from: f64,
    pub to: f64,
    pub count: usize,
}

/// Counts, token totals and the reward distribution of `traces`.
pub fn build_stats(traces: &[DatasetTrace]) -> DatasetStats {
    let mut stats = StatsBuilder::default();
    for trace in traces {
        stats.add(trace);
    }
    stats.finish()
}

/// [`build_stats`] one trace at a time, so that a large dataset is built page by page
/// without holding every trace.
#[derive(Debug, Clone, Default)]
pub struct StatsBuilder {
    count: usize,
    usage: Usage,
    models: BTreeMap<String, usize>,
    groups: std::collections::BTreeSet<String>,
    steps: usize,
    buckets: [usize; 10],
    reward_sum: f64,
    min: Option<f64>,
    max: Option<f64>,
}

impl StatsBuilder {
    /// Counts one trace (its last attempt's model calls).
    pub fn add(&mut self, trace: &DatasetTrace) {
        self.count += 1;
        self.usage.add(&trace.usage);
        *self.models.entry(trace.spec.model.clone()).or_insert(0) += 1;
        self.groups.insert(trace.group_id());
        self.steps += trace
            .last_attempt()
            .iter()
            .filter(|e| matches!(e.kind, EventKind::ModelCall { .. }))
            .count();
        let reward = trace.reward.unwrap_or(0.0);
        let index = (reward.clamp(0.0, 1.0) * 10.0).floor() as usize;
        self.buckets[index.min(9)] += 1;
        self.reward_sum += reward;
        self.min = Some(self.min.map_or(reward, |min| min.min(reward)));
        self.max = Some(self.max.map_or(reward, |max| max.max(reward)));
    }

    /// The statistics of the traces added so far.
    pub fn finish(self) -> DatasetStats {
        let histogram = self
            .buckets
            .iter()
            .zip(0u8..)
            .map(|(count, i)| RewardBucket {
                from: f64::from(i) / 10.0,
                to: f64::from(i + 1) / 10.0,
                count: *count,
            })
            .collect();
        DatasetStats {
            count: self.count,
            groups: self.groups.len(),
            input_tokens: self.usage.input_tokens,
            output_tokens: self.usage.output_tokens,
            total_tokens: self.usage.total(),
            steps: self.steps,
            models: self.models,
            reward: RewardStats {
                min: self.min,
                max: self.max,
                mean: (self.count > 0).then(|| self.reward_sum / self.count as f64),
                histogram,
            },
        }
    }
}
