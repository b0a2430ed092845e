//! What a worker tells telemetry about one run: its start, each event it recorded, its end.
//!
//! Each event updates the metrics at once (a few atomic increments); when spans are
//! exported, the events are also kept until the run ends, when they become its spans.

use crate::metrics::{EnvLabels, FinishedLabels, Metrics, ModelLabels, RunLabels, TokenLabels};
use rollout_domain::{Evaluation, EventKind, RunEvent, RunStatus, Usage};
use serde_json::{Map, Value};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// A run as a worker claimed it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunStart {
    /// The rollout trace id (the run id).
    pub run_id: String,
    pub project: String,
    pub environment: String,
    pub env_version: i64,
    pub scenario: String,
    pub arguments: Map<String, Value>,
    /// The model name as requested.
    pub model: String,
    /// The model's provider (`anthropic`, `openai`, `replay`...).
    pub provider: String,
    pub attempt: i64,
    /// When the run was created (queued), unix milliseconds.
    pub created_at_ms: i64,
    /// When it was claimed, unix milliseconds.
    pub claimed_at_ms: i64,
    /// The W3C `traceparent` the run was created with, if any.
    pub traceparent: Option<String>,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEnd {
    pub status: RunStatus,
    pub outcome: Option<String>,
    pub reward: Option<f64>,
    pub evaluation: Option<Evaluation>,
    pub error: Option<String>,
    pub steps: i64,
    pub usage: Usage,
    /// When it ended, unix milliseconds.
    pub ended_at_ms: i64,
}

/// Follows one run: made by [`crate::Telemetry::start_run`], fed by the run's event sink.
#[derive(Debug)]
pub struct RunObserver {
    metrics: Arc<Metrics>,
    export: Option<Arc<crate::export::Exporter>>,
    start: RunStart,
    claimed: Instant,
    /// The run's events, kept only when spans are exported.
    events: Mutex<Vec<RunEvent>>,
    env_connected: AtomicBool,
}

impl RunObserver {
    pub(crate) fn new(
        metrics: Arc<Metrics>,
        export: Option<Arc<crate::export::Exporter>>,
        start: RunStart,
    ) -> Self {
        metrics
            .runs_started
            .get_or_create(&RunLabels {
                environment: start.environment.clone(),
                model: start.model.clone(),
            })
            .inc();
        let waited_ms = start
            .claimed_at_ms
            .saturating_sub(start.created_at_ms)
            .max(0);
        metrics
            .queue_wait
            .get_or_create(&env_labels(&start))
            .observe(waited_ms as f64 / 1000.0);
        Self {
            metrics,
            export,
            start,
            claimed: Instant::now(),
            events: Mutex::new(Vec::new()),
            env_connected: AtomicBool::new(false),
        }
    }

    /// The OpenTelemetry trace id of the run's spans (lowercase hex) when they are
    /// exported: for the run's log lines.
    pub fn otel_trace_id(&self) -> Option<String> {
        self.export.as_ref()?;
        crate::ids::trace_id_of(&self.start.run_id, self.start.traceparent.as_deref())
            .map(|trace_id| trace_id.to_string())
    }

    /// One event the run recorded.
    pub fn event(&self, event: &RunEvent) {
        self.count(&event.kind);
        if self.export.is_some()
            && let Ok(mut events) = self.events.lock()
        {
            events.push(event.clone());
        }
    }

    fn count(&self, kind: &EventKind) {
        let metrics = &self.metrics;
        match kind {
            EventKind::EnvConnected { .. } => {
                self.env_connected.store(true, Ordering::Relaxed);
                metrics
                    .env_starts
                    .get_or_create(&env_labels(&self.start))
                    .inc();
            }
            EventKind::ModelCall {
                usage, duration_ms, ..
            } => {
                metrics
                    .model_call_duration
                    .get_or_create(&self.model_labels())
                    .observe(*duration_ms as f64 / 1000.0);
                for (kind, count) in [
                    ("input", usage.input_tokens),
                    ("output", usage.output_tokens),
                ] {
                    metrics
                        .model_tokens
                        .get_or_create(&TokenLabels {
                            provider: self.start.provider.clone(),
                            model: self.start.model.clone(),
                            kind: kind.into(),
                        })
                        .inc_by(count);
                }
            }
            EventKind::ToolCall {
                result,
                duration_ms,
                ..
            } => {
                metrics
                    .tool_call_duration
                    .get_or_create(&env_labels(&self.start))
                    .observe(*duration_ms as f64 / 1000.0);
                if result.is_error {
                    metrics
                        .tool_errors
                        .get_or_create(&env_labels(&self.start))
                        .inc();
                }
            }
            EventKind::Error { phase, .. } => {
                if phase == "model" {
                    metrics
                        .model_errors
                        .get_or_create(&self.model_labels())
                        .inc();
                } else if phase.starts_with("environment") {
                    let family = if self.env_connected.load(Ordering::Relaxed) {
                        &metrics.env_crashes
                    } else {
                        &metrics.env_start_failures
                    };
                    family.get_or_create(&env_labels(&self.start)).inc();
                }
            }
            EventKind::AttemptStarted { .. }
            | EventKind::Setup { .. }
            | EventKind::Answer { .. }
            | EventKind::Evaluation { .. }
            | EventKind::Finished { .. } => {}
        }
    }

    /// The run ended (its terminal state is stored): counts it, and queues its spans for
    /// export. Never waits on the exporter.
    pub fn finish(&self, end: &RunEnd) {
        self.metrics
            .runs_finished
            .get_or_create(&FinishedLabels {
                environment: self.start.environment.clone(),
                model: self.start.model.clone(),
                status: end.status.as_str().into(),
                outcome: end.outcome.clone().unwrap_or_else(|| "none".into()),
            })
            .inc();
        self.metrics
            .run_duration
            .get_or_create(&env_labels(&self.start))
            .observe(self.claimed.elapsed().as_secs_f64());
        if let Some(export) = &self.export {
            let events = self
                .events
                .lock()
                .map(|mut events| std::mem::take(&mut *events))
                .unwrap_or_default();
            let tracer = opentelemetry::trace::TracerProvider::tracer(&export.provider, "rollout");
            crate::spans::emit_run(
                &tracer,
                &self.start,
                &events,
                end,
                end.ended_at_ms,
                export.capture_content,
            );
        }
    }

    fn model_labels(&self) -> ModelLabels {
        ModelLabels {
            provider: self.start.provider.clone(),
            model: self.start.model.clone(),
        }
    }
}

fn env_labels(start: &RunStart) -> EnvLabels {
    EnvLabels {
        environment: start.environment.clone(),
    }
}
