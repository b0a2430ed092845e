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
