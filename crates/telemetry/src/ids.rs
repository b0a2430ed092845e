//! Trace ids: a run's OpenTelemetry trace id is its rollout id (a UUID, 16 bytes), so that
//! a trace found in Phoenix or Langfuse leads back to `/traces/{id}` and the other way
//! round; unless the caller sent a W3C `traceparent`, whose trace the run then joins.

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanId, TraceContextExt, TraceId};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator};
use std::cell::Cell;
use std::collections::HashMap;

thread_local! {
    /// The trace id the next root span started on this thread takes (see [`with_trace_id`]).
    static NEXT_TRACE_ID: Cell<Option<TraceId>> = const { Cell::new(None) };
}

/// The SDK asks its id generator for a new root span's trace id and offers no way to pass
/// one; this generator hands out the id set by [`with_trace_id`] for the duration of one
/// synchronous call on this thread, and random ids otherwise.
#[derive(Debug)]
pub(crate) struct RunTraceIds;

impl IdGenerator for RunTraceIds {
    fn new_trace_id(&self) -> TraceId {
        NEXT_TRACE_ID
            .with(Cell::take)
            .unwrap_or_else(|| RandomIdGenerator::default().new_trace_id())
    }

    fn new_span_id(&self) -> SpanId {
        RandomIdGenerator::default().new_span_id()
    }
}

/// Runs `start` (which starts one root span) with `trace_id` as the id of its trace.
pub(crate) fn with_trace_id<T>(trace_id: TraceId, start: impl FnOnce() -> T) -> T {
    NEXT_TRACE_ID.with(|next| next.set(Some(trace_id)));
    let started = start();
    NEXT_TRACE_ID.with(|next| next.set(None));
    started
}

/// The trace id of a run id: its UUID's 16 bytes (any other id: none, a random one is used).
pub(crate) fn run_trace_id(run_id: &str) -> Option<TraceId> {
    let uuid = uuid::Uuid::parse_str(run_id).ok()?;
    Some(TraceId::from_bytes(*uuid.as_bytes()))
}

/// The caller's context from a W3C `traceparent` header value; `None` when it is absent
/// or invalid (an invalid header is ignored, as the W3C recommendation says).
pub(crate) fn parent_context(traceparent: Option<&str>) -> Option<opentelemetry::Context> {
    let traceparent = traceparent?;
    let carrier = HashMap::from([("traceparent".to_string(), traceparent.to_string())]);
    let context = TraceContextPropagator::new().extract(&carrier);
    context.span().span_context().is_valid().then_some(context)
}

/// Whether `value` is a valid W3C `traceparent`.
pub fn is_valid_traceparent(value: &str) -> bool {
    parent_context(Some(value)).is_some()
}

/// The trace id a run's spans will have, in lowercase hex (for logs).
pub(crate) fn trace_id_of(run_id: &str, traceparent: Option<&str>) -> Option<TraceId> {
    match parent_context(traceparent) {
        Some(context) => Some(context.span().span_context().trace_id()),
        None => run_trace_id(run_id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_id_is_its_trace_id() {
        let id = "0190d5f1-7c3a-7b4e-8f00-0123456789ab";
        assert_eq!(
            run_trace_id(id).map(|t| t.to_string()),
            Some("0190d5f17c3a7b4e8f000123456789ab".into())
        );
        assert_eq!(run_trace_id("not-a-uuid"), None);
    }

    #[test]
    fn a_traceparent_gives_the_callers_trace_and_a_bad_one_is_ignored() {
        let header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert!(is_valid_traceparent(header));
        assert_eq!(
            trace_id_of("0190d5f1-7c3a-7b4e-8f00-0123456789ab", Some(header))
                .map(|t| t.to_string()),
            Some("4bf92f3577b34da6a3ce929d0e0e4736".into())
        );
        assert!(!is_valid_traceparent("00-zz-00f067aa0ba902b7-01"));
        assert!(!is_valid_traceparent(
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01"
        ));
    }
}
