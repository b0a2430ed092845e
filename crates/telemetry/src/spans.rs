//! A finished run's events as spans, after the OpenTelemetry GenAI semantic conventions:
//! a root `invoke_agent` span, a `chat` span per model call, an `execute_tool` span per tool
//! call, and `environment_start`, `setup` and `evaluation` spans, all children of the root.
//!
//! Spans are built once the run has ended, from the events it recorded (each carries when
//! it was recorded and how long it took), so that the run's path does nothing but keep its
//! events. Attributes follow the conventions (`gen_ai.*`); OpenInference's span kind and
//! token counts are added so that Phoenix's views show them too; rollout's own are
//! `rollout.*`. Prompts, responses, tool arguments and results are only added when
//! `capture_content` is on.

use crate::run::{RunEnd, RunStart};
use opentelemetry::trace::{Span as _, SpanBuilder, SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Array, Context, KeyValue, StringValue, Value};
use rollout_domain::{EventKind, RunEvent};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Emits the spans of one run through `tracer`.
pub(crate) fn emit_run<T>(
    tracer: &T,
    start: &RunStart,
    events: &[RunEvent],
    end: &RunEnd,
    ended_at_ms: i64,
    capture_content: bool,
) where
    T: Tracer,
    T::Span: Send + Sync + 'static,
{
    let started_at_ms = events
        .first()
        .map_or(ended_at_ms, |event| event.at_ms)
        .min(ended_at_ms);
    let root = SpanBuilder::from_name(format!("invoke_agent {}", start.scenario))
        .with_kind(SpanKind::Internal)
        .with_start_time(at(started_at_ms))
        .with_attributes(root_attributes(start, end));
    let parent = crate::ids::parent_context(start.traceparent.as_deref());
    let root = match (&parent, crate::ids::run_trace_id(&start.run_id)) {
        (Some(parent), _) => root.start_with_context(tracer, parent),
        (None, Some(trace_id)) => crate::ids::with_trace_id(trace_id, || {
            root.start_with_context(tracer, &Context::new())
        }),
        (None, None) => root.start_with_context(tracer, &Context::new()),
    };
    let context = Context::new().with_span(root);
    if let Some(error) = &end.error {
        context.span().set_status(Status::error(error.clone()));
    }
    for event in events {
        if let Some(child) = child_span(start, event, capture_content) {
            let mut span = child.builder.start_with_context(tracer, &context);
            if let Some(error) = child.error {
                span.set_status(Status::error(error));
            }
            span.end_with_timestamp(at(event.at_ms));
        }
    }
    context.span().end_with_timestamp(at(ended_at_ms));
}

/// One child span, and its error if it failed.
struct Child {
    builder: SpanBuilder,
    error: Option<String>,
}

fn child_span(start: &RunStart, event: &RunEvent, capture_content: bool) -> Option<Child> {
    let began = |duration_ms: u64| {
        at(event
            .at_ms
            .saturating_sub(i64::try_from(duration_ms).unwrap_or(i64::MAX)))
    };
    let child = match &event.kind {
        EventKind::EnvConnected {
            server_name,
            version,
            duration_ms,
        } => Child {
            builder: SpanBuilder::from_name("environment_start")
                .with_start_time(began(*duration_ms))
                .with_attributes([
                    KeyValue::new("rollout.environment", start.environment.clone()),
                    KeyValue::new("rollout.environment.version", *version),
                    KeyValue::new("rollout.environment.server_name", server_name.clone()),
                ]),
            error: None,
        },
        EventKind::Setup {
            scenario_id,
            arguments,
            prompt,
            tools,
            duration_ms,
        } => {
            let mut attributes = vec![
                KeyValue::new("rollout.scenario.id", scenario_id.clone()),
                KeyValue::new("rollout.tools.count", tools.len() as i64),
                KeyValue::new("openinference.span.kind", "CHAIN"),
            ];
            if capture_content {
                attributes.push(KeyValue::new("rollout.setup.prompt", prompt.clone()));
                attributes.push(KeyValue::new(
                    "rollout.scenario.arguments",
                    serde_json::Value::Object(arguments.clone()).to_string(),
                ));
            }
            Child {
                builder: SpanBuilder::from_name("setup")
                    .with_start_time(began(*duration_ms))
                    .with_attributes(attributes),
                error: None,
            }
        }
        EventKind::ModelCall {
            step,
            model,
            upstream_model,
            new_messages,
            response,
            stop_reason,
            usage,
            duration_ms,
        } => {
            let mut attributes = vec![
                KeyValue::new("gen_ai.operation.name", "chat"),
                KeyValue::new("gen_ai.provider.name", start.provider.clone()),
                KeyValue::new("gen_ai.request.model", model.clone()),
                KeyValue::new("gen_ai.response.model", upstream_model.clone()),
                KeyValue::new("gen_ai.usage.input_tokens", tokens(usage.input_tokens)),
                KeyValue::new("gen_ai.usage.output_tokens", tokens(usage.output_tokens)),
                KeyValue::new(
                    "gen_ai.response.finish_reasons",
                    Value::Array(Array::String(vec![StringValue::from(stop_reason.clone())])),
                ),
                KeyValue::new("rollout.step", i64::from(*step)),
                KeyValue::new("openinference.span.kind", "LLM"),
                KeyValue::new("llm.model_name", upstream_model.clone()),
                KeyValue::new("llm.token_count.prompt", tokens(usage.input_tokens)),
                KeyValue::new("llm.token_count.completion", tokens(usage.output_tokens)),
                KeyValue::new(
                    "llm.token_count.total",
                    tokens(usage.input_tokens.saturating_add(usage.output_tokens)),
                ),
            ];
            if capture_content {
                attributes.push(KeyValue::new("gen_ai.input.messages", json(new_messages)));
                attributes.push(KeyValue::new("gen_ai.output.messages", json(&[response])));
            }
            Child {
                builder: SpanBuilder::from_name(format!("chat {model}"))
                    .with_kind(SpanKind::Client)
                    .with_start_time(began(*duration_ms))
                    .with_attributes(attributes),
                error: None,
            }
        }
        EventKind::ToolCall {
            step,
            call_id,
            name,
            arguments,
            result,
            duration_ms,
        } => {
            let mut attributes = vec![
                KeyValue::new("gen_ai.operation.name", "execute_tool"),
                KeyValue::new("gen_ai.tool.name", name.clone()),
                KeyValue::new("gen_ai.tool.call.id", call_id.clone()),
                KeyValue::new("rollout.step", i64::from(*step)),
                KeyValue::new("rollout.tool.result_bytes", result.text.len() as i64),
                KeyValue::new("openinference.span.kind", "TOOL"),
                KeyValue::new("tool.name", name.clone()),
            ];
            if result.is_error {
                attributes.push(KeyValue::new("error.type", "tool_error"));
            }
            if capture_content {
                attributes.push(KeyValue::new(
                    "gen_ai.tool.call.arguments",
                    arguments.to_string(),
                ));
                attributes.push(KeyValue::new(
                    "gen_ai.tool.call.result",
                    result.text.clone(),
                ));
            }
            Child {
                builder: SpanBuilder::from_name(format!("execute_tool {name}"))
                    .with_start_time(began(*duration_ms))
                    .with_attributes(attributes),
                error: result
                    .is_error
                    .then(|| format!("tool {name} returned an error")),
            }
        }
        EventKind::Evaluation {
            evaluation,
            duration_ms,
        } => Child {
            builder: SpanBuilder::from_name("evaluation")
                .with_start_time(began(*duration_ms))
                .with_attributes([
                    KeyValue::new("rollout.reward", evaluation.reward),
                    KeyValue::new("rollout.evaluation.done", evaluation.done),
                    KeyValue::new("rollout.evaluation.is_error", evaluation.is_error),
                    KeyValue::new("openinference.span.kind", "EVALUATOR"),
                ]),
            error: evaluation
                .is_error
                .then(|| "the evaluation reported an error".to_string()),
        },
        EventKind::AttemptStarted { .. }
        | EventKind::Answer { .. }
        | EventKind::Error { .. }
        | EventKind::Finished { .. } => return None,
    };
    Some(child)
}

fn root_attributes(start: &RunStart, end: &RunEnd) -> Vec<KeyValue> {
    let mut attributes = vec![
        KeyValue::new("gen_ai.operation.name", "invoke_agent"),
        KeyValue::new("gen_ai.agent.name", start.scenario.clone()),
        KeyValue::new("gen_ai.provider.name", start.provider.clone()),
        KeyValue::new("gen_ai.request.model", start.model.clone()),
        KeyValue::new("gen_ai.usage.input_tokens", tokens(end.usage.input_tokens)),
        KeyValue::new(
            "gen_ai.usage.output_tokens",
            tokens(end.usage.output_tokens),
        ),
        KeyValue::new("openinference.span.kind", "AGENT"),
        KeyValue::new("rollout.trace_id", start.run_id.clone()),
        KeyValue::new("rollout.project", start.project.clone()),
        KeyValue::new("rollout.environment", start.environment.clone()),
        KeyValue::new("rollout.environment.version", start.env_version),
        KeyValue::new("rollout.scenario", start.scenario.clone()),
        KeyValue::new(
            "rollout.scenario.arguments",
            serde_json::Value::Object(start.arguments.clone()).to_string(),
        ),
        KeyValue::new("rollout.attempt", start.attempt),
        KeyValue::new("rollout.status", end.status.as_str()),
        KeyValue::new("rollout.steps", end.steps),
    ];
    if let Some(outcome) = &end.outcome {
        attributes.push(KeyValue::new("rollout.outcome", outcome.clone()));
    }
    if let Some(reward) = end.reward {
        attributes.push(KeyValue::new("rollout.reward", reward));
    }
    for subscore in end
        .evaluation
        .as_ref()
        .and_then(|evaluation| evaluation.subscores.as_ref())
        .into_iter()
        .flatten()
    {
        attributes.push(KeyValue::new(
            format!("rollout.subscore.{}", subscore.name),
            subscore.value,
        ));
    }
    if let Some(error) = &end.error {
        attributes.push(KeyValue::new("error.type", end.status.as_str()));
        attributes.push(KeyValue::new("rollout.error", error.clone()));
    }
    attributes
}

fn at(at_ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(at_ms).unwrap_or(0))
}

fn tokens(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

fn json<T: serde::Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{SpanKind, Status, TracerProvider as _};
    use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
    use rollout_domain::{Evaluation, Message, RunStatus, ToolResult, Usage};
    use serde_json::{Map, json};

    const RUN_ID: &str = "0190d5f1-7c3a-7b4e-8f00-0123456789ab";

    fn start() -> RunStart {
        RunStart {
            run_id: RUN_ID.into(),
            project: "default".into(),
            environment: "my-assistant".into(),
            env_version: 2,
            scenario: "answer_question".into(),
            arguments: Map::from_iter([("query".to_string(), json!("17 * 23?"))]),
            model: "claude-sonnet-4-5".into(),
            provider: "anthropic".into(),
            attempt: 1,
            created_at_ms: 900,
            claimed_at_ms: 1_000,
            traceparent: None,
        }
    }

    fn event(seq: i64, at_ms: i64, kind: EventKind) -> RunEvent {
        RunEvent {
            seq,
            at_ms,
            attempt: 1,
            kind,
        }
    }

    fn events() -> Vec<RunEvent> {
        let evaluation: Evaluation = serde_json::from_value(
            json!({"reward": 0.5, "subscores": [{"name": "correct", "value": 0.5}]}),
        )
        .unwrap();
        vec![
            event(
                1,
                1_000,
                EventKind::AttemptStarted {
                    attempt: 1,
                    worker: "w".into(),
                },
            ),
            event(
                2,
                1_100,
                EventKind::EnvConnected {
                    server_name: "env".into(),
                    version: 2,
                    duration_ms: 90,
                },
            ),
            event(
                3,
                1_200,
                EventKind::Setup {
                    scenario_id: "my-assistant:answer_question".into(),
                    arguments: Map::new(),
                    prompt: "secret prompt".into(),
                    tools: Vec::new(),
                    duration_ms: 50,
                },
            ),
            event(
                4,
                1_500,
                EventKind::ModelCall {
                    step: 1,
                    model: "claude-sonnet-4-5".into(),
                    upstream_model: "claude-sonnet-4-5-20250929".into(),
                    new_messages: vec![Message::user("secret prompt")],
                    response: Message::assistant("", Vec::new()),
                    stop_reason: "tool_use".into(),
                    usage: Usage {
                        input_tokens: 120,
                        output_tokens: 30,
                        ..Usage::default()
                    },
                    duration_ms: 250,
                },
            ),
            event(
                5,
                1_600,
                EventKind::ToolCall {
                    step: 1,
                    call_id: "toolu_1".into(),
                    name: "calculator".into(),
                    arguments: json!({"expression": "17 * 23"}),
                    result: ToolResult {
                        call_id: "toolu_1".into(),
                        text: "boom".into(),
                        content: Vec::new(),
                        structured: None,
                        is_error: true,
                    },
                    duration_ms: 40,
                },
            ),
            event(
                6,
                1_700,
                EventKind::Evaluation {
                    evaluation,
                    duration_ms: 20,
                },
            ),
        ]
    }

    fn end() -> RunEnd {
        RunEnd {
            status: RunStatus::Completed,
            outcome: Some("answered".into()),
            reward: Some(0.5),
            evaluation: None,
            error: None,
            steps: 1,
            usage: Usage::default(),
            ended_at_ms: 1_800,
        }
    }

    fn exported(capture_content: bool, start: &RunStart, end: &RunEnd) -> Vec<SpanData> {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .with_id_generator(crate::ids::RunTraceIds)
            .build();
        let tracer = provider.tracer("test");
        emit_run(
            &tracer,
            start,
            &events(),
            end,
            end.ended_at_ms,
            capture_content,
        );
        exporter.get_finished_spans().unwrap()
    }

    fn attribute(span: &SpanData, key: &str) -> Option<Value> {
        span.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.clone())
    }

    fn span<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
        spans.iter().find(|s| s.name == name).unwrap()
    }

    #[test]
    fn a_run_becomes_a_root_span_with_one_child_per_step_timed_from_its_events() {
        let spans = exported(false, &start(), &end());
        let mut names: Vec<&str> = spans.iter().map(|s| s.name.as_ref()).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "chat claude-sonnet-4-5",
                "environment_start",
                "evaluation",
                "execute_tool calculator",
                "invoke_agent answer_question",
                "setup"
            ]
        );
        let root = span(&spans, "invoke_agent answer_question");
        assert_eq!(
            root.span_context.trace_id().to_string(),
            "0190d5f17c3a7b4e8f000123456789ab"
        );
        assert_eq!(root.parent_span_id, opentelemetry::trace::SpanId::INVALID);
        assert_eq!(root.start_time, at(1_000));
        assert_eq!(root.end_time, at(1_800));
        assert_eq!(attribute(root, "rollout.reward"), Some(Value::F64(0.5)));
        for child in spans.iter().filter(|s| s.name != root.name) {
            assert_eq!(
                child.parent_span_id,
                root.span_context.span_id(),
                "{}",
                child.name
            );
            assert_eq!(child.span_context.trace_id(), root.span_context.trace_id());
        }
        let chat = span(&spans, "chat claude-sonnet-4-5");
        assert_eq!(chat.span_kind, SpanKind::Client);
        assert_eq!(chat.start_time, at(1_250));
        assert_eq!(chat.end_time, at(1_500));
        assert_eq!(
            attribute(chat, "gen_ai.usage.input_tokens"),
            Some(Value::I64(120))
        );
        assert_eq!(
            attribute(chat, "gen_ai.usage.output_tokens"),
            Some(Value::I64(30))
        );
        let tool = span(&spans, "execute_tool calculator");
        assert!(
            matches!(tool.status, Status::Error { .. }),
            "{:?}",
            tool.status
        );
        assert_eq!(
            attribute(tool, "error.type"),
            Some(Value::from("tool_error"))
        );
    }

    #[test]
    fn content_is_only_exported_when_switched_on() {
        let keys = ["gen_ai.input.messages", "gen_ai.output.messages"];
        let off = exported(false, &start(), &end());
        let chat = span(&off, "chat claude-sonnet-4-5");
        assert!(keys.iter().all(|key| attribute(chat, key).is_none()));
        assert!(attribute(span(&off, "setup"), "rollout.setup.prompt").is_none());
        assert!(
            attribute(
                span(&off, "execute_tool calculator"),
                "gen_ai.tool.call.result"
            )
            .is_none()
        );

        let on = exported(true, &start(), &end());
        let chat = span(&on, "chat claude-sonnet-4-5");
        let input = attribute(chat, "gen_ai.input.messages")
            .unwrap()
            .to_string();
        assert!(input.contains("secret prompt"), "{input}");
        assert!(attribute(chat, "gen_ai.output.messages").is_some());
        assert_eq!(
            attribute(
                span(&on, "execute_tool calculator"),
                "gen_ai.tool.call.result"
            ),
            Some(Value::from("boom"))
        );
    }

    #[test]
    fn a_failed_run_has_an_error_status_and_a_traceparent_makes_it_a_child() {
        let mut start = start();
        start.traceparent = Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into());
        let mut end = end();
        end.status = RunStatus::Failed;
        end.error = Some("the model provider refused".into());
        let spans = exported(false, &start, &end);
        let root = span(&spans, "invoke_agent answer_question");
        assert_eq!(
            root.span_context.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(root.parent_span_id.to_string(), "00f067aa0ba902b7");
        assert_eq!(root.status, Status::error("the model provider refused"));
        assert_eq!(attribute(root, "error.type"), Some(Value::from("failed")));
    }
}
