//! The Prometheus metrics of one rollout process, in the `prometheus-client` registry.
//!
//! Counters and histograms count what this process did (each process is scraped on its
//! own); the two queue gauges are read from the store at scrape time ([`StoreGauges`]), so
//! that they are the same whichever process answers the scrape.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The content type of [`Metrics::encode`]'s output (OpenMetrics text, which Prometheus
/// scrapes natively).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Labels of a run counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RunLabels {
    pub environment: String,
    pub model: String,
}

/// Labels of a finished run.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FinishedLabels {
    pub environment: String,
    pub model: String,
    pub status: String,
    /// The agent phase's outcome (`answered`, `max_steps_reached`...), `none` when the run
    /// ended before one (failed, cancelled).
    pub outcome: String,
}

/// Labels of a model call.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModelLabels {
    pub provider: String,
    pub model: String,
}

/// Labels of a token counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenLabels {
    pub provider: String,
    pub model: String,
    /// `input` or `output`.
    pub kind: String,
}

/// Labels of what happens per environment (tool calls, processes).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EnvLabels {
    pub environment: String,
}

/// Labels of an outcome counter (callback deliveries, schedule ticks).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: String,
}

/// Labels of an HTTP request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// The route's pattern (`/v1/traces/{id}`), never the raw path: one series per route.
    pub route: String,
    pub method: String,
    pub status: String,
}

/// Histogram buckets, in seconds.
#[derive(Clone, Copy)]
pub struct Buckets(&'static [f64]);

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(self.0.iter().copied())
    }
}

/// Runs and queue waits: from a second to a few hours.
const RUN_BUCKETS: Buckets = Buckets(&[
    0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
]);
/// Model and tool calls: from milliseconds to minutes.
const CALL_BUCKETS: Buckets = Buckets(&[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
]);

/// Every metric of the process.
pub struct Metrics {
    registry: Registry,
    pub runs_started: Family<RunLabels, Counter>,
    pub runs_finished: Family<FinishedLabels, Counter>,
    pub run_duration: Family<EnvLabels, Histogram, Buckets>,
    pub queue_wait: Family<EnvLabels, Histogram, Buckets>,
    pub runs_queued: Gauge,
    pub runs_in_flight: Gauge,
    pub model_call_duration: Family<ModelLabels, Histogram, Buckets>,
    pub model_tokens: Family<TokenLabels, Counter>,
    pub model_errors: Family<ModelLabels, Counter>,
    pub tool_call_duration: Family<EnvLabels, Histogram, Buckets>,
    pub tool_errors: Family<EnvLabels, Counter>,
    pub env_starts: Family<EnvLabels, Counter>,
    pub env_crashes: Family<EnvLabels, Counter>,
    pub env_start_failures: Family<EnvLabels, Counter>,
    pub callback_deliveries: Family<ResultLabels, Counter>,
    pub schedule_ticks: Family<ResultLabels, Counter>,
    pub http_requests: Family<HttpLabels, Counter>,
    pub otel_spans_dropped: Counter,
    pub otel_export_failures: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The queue as the store sees it, read when `/metrics` is scraped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreGauges {
    pub queued: i64,
    pub running: i64,
}

impl Metrics {
    /// Every metric, registered under the `rollout_` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("rollout");
        let metrics = Self {
            runs_started: Family::default(),
            runs_finished: Family::default(),
            run_duration: Family::new_with_constructor(RUN_BUCKETS),
            queue_wait: Family::new_with_constructor(RUN_BUCKETS),
            runs_queued: Gauge::default(),
            runs_in_flight: Gauge::default(),
            model_call_duration: Family::new_with_constructor(CALL_BUCKETS),
            model_tokens: Family::default(),
            model_errors: Family::default(),
            tool_call_duration: Family::new_with_constructor(CALL_BUCKETS),
            tool_errors: Family::default(),
            env_starts: Family::default(),
            env_crashes: Family::default(),
            env_start_failures: Family::default(),
            callback_deliveries: Family::default(),
            schedule_ticks: Family::default(),
            http_requests: Family::default(),
            otel_spans_dropped: Counter::default(),
            otel_export_failures: Counter::default(),
            registry: Registry::default(),
        };
        let m = &metrics;
        let r = &mut registry;
        r.register(
            "runs_started",
            "Runs a worker of this process started, by environment and model",
            m.runs_started.clone(),
        );
        r.register(
            "runs_finished",
            "Runs this process finished, by environment, model, status and outcome",
            m.runs_finished.clone(),
        );
        r.register(
            "run_duration_seconds",
            "From claim to the end of a run, by environment",
            m.run_duration.clone(),
        );
        r.register(
            "run_queue_wait_seconds",
            "From a run's creation to its claim, by environment",
            m.queue_wait.clone(),
        );
        r.register(
            "runs_queued",
            "Runs waiting in the queue (all processes, from the store)",
            m.runs_queued.clone(),
        );
        r.register(
            "runs_in_flight",
            "Runs running (all processes, from the store)",
            m.runs_in_flight.clone(),
        );
        r.register(
            "model_call_duration_seconds",
            "Model call latency, by provider and model",
            m.model_call_duration.clone(),
        );
        r.register(
            "model_tokens",
            "Tokens used, by provider, model and kind (input, output)",
            m.model_tokens.clone(),
        );
        r.register(
            "model_call_errors",
            "Model calls that failed a run (after the client's retries), by provider and model",
            m.model_errors.clone(),
        );
        r.register(
            "tool_call_duration_seconds",
            "Tool call latency, by environment",
            m.tool_call_duration.clone(),
        );
        r.register(
            "tool_call_errors",
            "Tool calls that returned an error, by environment",
            m.tool_errors.clone(),
        );
        r.register(
            "env_process_starts",
            "Environment sessions started for runs, by environment",
            m.env_starts.clone(),
        );
        r.register(
            "env_process_crashes",
            "Environment sessions lost during a run, by environment",
            m.env_crashes.clone(),
        );
        r.register(
            "env_process_start_failures",
            "Environment sessions that could not be started, by environment",
            m.env_start_failures.clone(),
        );
        r.register(
            "callback_deliveries",
            "Callback deliveries, by result (delivered, failed)",
            m.callback_deliveries.clone(),
        );
        r.register(
            "schedule_ticks",
            "Schedule ticks, by result (fired, skipped, missed)",
            m.schedule_ticks.clone(),
        );
        r.register(
            "http_requests",
            "HTTP requests, by route, method and status",
            m.http_requests.clone(),
        );
        r.register(
            "otel_spans_dropped",
            "Spans dropped because the OTLP export queue was full",
            m.otel_spans_dropped.clone(),
        );
        r.register(
            "otel_export_failures",
            "OTLP export batches that the receiver did not take",
            m.otel_export_failures.clone(),
        );
        Self {
            registry,
            ..metrics
        }
    }

    /// The scrape: every metric in the OpenMetrics text format, the store's gauges first set
    /// from `gauges`.
    pub fn encode(&self, gauges: StoreGauges) -> String {
        self.runs_queued.set(gauges.queued);
        self.runs_in_flight.set(gauges.running);
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }

    /// Counts one HTTP request.
    pub fn http_request(&self, route: &str, method: &str, status: u16) {
        self.http_requests
            .get_or_create(&HttpLabels {
                route: route.into(),
                method: method.into(),
                status: status.to_string(),
            })
            .inc();
    }

    /// Counts one callback delivery (`delivered` or `failed`).
    pub fn callback_delivery(&self, result: &str) {
        self.callback_deliveries
            .get_or_create(&ResultLabels {
                result: result.into(),
            })
            .inc();
    }

    /// Counts one schedule tick (`fired`, `skipped` or `missed`).
    pub fn schedule_tick(&self, result: &str) {
        self.schedule_ticks
            .get_or_create(&ResultLabels {
                result: result.into(),
            })
            .inc();
    }

    /// Counts `count` schedule ticks of one result at once.
    pub fn schedule_ticks(&self, result: &str, count: u64) {
        if count > 0 {
            self.schedule_ticks
                .get_or_create(&ResultLabels {
                    result: result.into(),
                })
                .inc_by(count);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scrape_names_every_family_with_its_prefix_and_the_store_gauges() {
        let metrics = Metrics::new();
        metrics.http_request("/v1/traces/{id}", "GET", 404);
        metrics.schedule_tick("fired");
        let text = metrics.encode(StoreGauges {
            queued: 3,
            running: 2,
        });
        assert!(text.contains("rollout_runs_queued 3\n"), "{text}");
        assert!(text.contains("rollout_runs_in_flight 2\n"), "{text}");
        assert!(
            text.contains(
                "rollout_http_requests_total{route=\"/v1/traces/{id}\",method=\"GET\",status=\"404\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("rollout_schedule_ticks_total{result=\"fired\"} 1"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
