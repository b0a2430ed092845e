//! The OTLP/HTTP (protobuf) export of spans, off the run's path.
//!
//! Ending a span puts it in a bounded queue ([`QueueProcessor`]) and returns: nothing on the
//! run's path waits for the network. One tokio task drains the queue in batches into the
//! `opentelemetry-otlp` exporter. When the receiver is down or slow the queue fills up, and
//! further spans are dropped, counted (`rollout_otel_spans_dropped_total`) and warned about,
//! instead of holding memory or slowing runs. The SDK's own batch processor is not used
//! because it neither reports how many spans it dropped nor runs on tokio (it blocks a
//! thread of its own on each export).

use crate::metrics::Metrics;
use async_trait::async_trait;
use bytes::Bytes;
use opentelemetry::KeyValue;
use opentelemetry_http::{HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter as _, SpanProcessor};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Where and how spans are exported. Filled by the CLI from the standard `OTEL_*`
/// variables or `[otel]` in `rollout.toml`.
#[derive(Debug, Clone, PartialEq)]
pub struct OtelConfig {
    /// The OTLP base URL (`http://127.0.0.1:6006`); spans go to `{endpoint}/v1/traces`.
    pub endpoint: String,
    /// Headers of every export request (`Authorization` for Langfuse).
    pub headers: Vec<(String, String)>,
    /// `service.name` of the resource.
    pub service_name: String,
    /// More resource attributes (`OTEL_RESOURCE_ATTRIBUTES`), e.g.
    /// `openinference.project.name=rollout` for Phoenix.
    pub resource_attributes: Vec<(String, String)>,
    /// Put prompts, responses, tool arguments and results on the spans. Off by default:
    /// they may hold sensitive content.
    pub capture_content: bool,
    /// Spans held while the receiver is slow; more are dropped and counted.
    pub max_queue_spans: usize,
    /// Budget of one export request.
    pub timeout: Duration,
}

impl OtelConfig {
    /// Export to `endpoint` with the defaults.
    pub fn new(endpoint: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            headers: Vec::new(),
            service_name: "rollout".into(),
            resource_attributes: Vec::new(),
            capture_content: false,
            max_queue_spans: 8192,
            timeout: Duration::from_secs(10),
        }
    }

    /// The URL spans are posted to.
    pub fn traces_url(&self) -> String {
        let base = self.endpoint.trim_end_matches('/');
        if base.ends_with("/v1/traces") {
            base.to_string()
        } else {
            format!("{base}/v1/traces")
        }
    }
}

/// Why the exporter could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("OTLP exporter for {endpoint}: {message}")]
    Exporter { endpoint: String, message: String },
}

/// Largest batch of one export request.
const MAX_BATCH: usize = 512;

/// The live exporter: the tracer provider, and the task that sends its spans.
pub(crate) struct Exporter {
    pub(crate) provider: SdkTracerProvider,
    pub(crate) capture_content: bool,
    stop: watch::Sender<bool>,
    task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exporter")
            .field("capture_content", &self.capture_content)
            .finish_non_exhaustive()
    }
}

impl Exporter {
    /// Builds the exporter and spawns its task (call from within a tokio runtime).
    pub(crate) fn start(
        config: &OtelConfig,
        metrics: Arc<Metrics>,
    ) -> Result<Self, TelemetryError> {
        let url = config.traces_url();
        let fail = |message: String| TelemetryError::Exporter {
            endpoint: url.clone(),
            message,
        };
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| fail(e.to_string()))?;
        let exporter = SpanExporter::builder()
            .with_http()
            .with_http_client(ReqwestClient(client))
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(url.clone())
            .with_timeout(config.timeout)
            .with_headers(config.headers.iter().cloned().collect::<HashMap<_, _>>())
            .build()
            .map_err(|e| fail(e.to_string()))?;
        let (spans, queue) = mpsc::channel(config.max_queue_spans.max(1));
        let processor = QueueProcessor {
            spans,
            metrics: metrics.clone(),
        };
        let resource = Resource::builder_empty()
            .with_service_name(config.service_name.clone())
            .with_attributes(
                config
                    .resource_attributes
                    .iter()
                    .map(|(key, value)| KeyValue::new(key.clone(), value.clone())),
            )
            .build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_id_generator(crate::ids::RunTraceIds)
            .with_resource(resource.clone())
            .build();
        let (stop, stopped) = watch::channel(false);
        let mut exporter = exporter;
        exporter.set_resource(&resource);
        let task = tokio::spawn(send_batches(queue, exporter, metrics, stopped));
        Ok(Self {
            provider,
            capture_content: config.capture_content,
            stop,
            task: std::sync::Mutex::new(Some(task)),
        })
    }

    /// Sends what is queued, then stops (within `grace`).
    pub(crate) async fn shutdown(&self, grace: Duration) {
        let _ = self.stop.send(true);
        let task = self.task.lock().ok().and_then(|mut task| task.take());
        if let Some(task) = task
            && tokio::time::timeout(grace, task).await.is_err()
        {
            tracing::warn!("spans still queued for export were dropped at shutdown");
        }
    }
}

/// Drains the queue into the exporter until stopped; then sends what is left.
async fn send_batches(
    mut queue: mpsc::Receiver<SpanData>,
    exporter: SpanExporter,
    metrics: Arc<Metrics>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        tokio::select! {
            received = queue.recv_many(&mut batch, MAX_BATCH) => {
                if received == 0 {
                    return;
                }
            }
            _ = async { let _ = stopped.wait_for(|stop| *stop).await; } => {
                queue.close();
                while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
                    export(&exporter, &mut batch, &metrics).await;
                }
                return;
            }
        }
        export(&exporter, &mut batch, &metrics).await;
    }
}

async fn export(exporter: &SpanExporter, batch: &mut Vec<SpanData>, metrics: &Metrics) {
    let spans = std::mem::take(batch);
    let n_spans = spans.len();
    if let Err(error) = exporter.export(spans).await {
        let failures = metrics.otel_export_failures.inc();
        // The first failure and then every hundredth: a receiver that is down for long
        // must not flood the log.
        if failures.is_multiple_of(100) {
            tracing::warn!(%error, n_spans, failures = failures + 1, "could not export spans; they are dropped");
        }
    }
}

/// Queues ended spans for [`send_batches`]; drops (and counts) them when the queue is full.
#[derive(Debug)]
struct QueueProcessor {
    spans: mpsc::Sender<SpanData>,
    metrics: Arc<Metrics>,
}

impl SpanProcessor for QueueProcessor {
    fn on_start(&self, _span: &mut opentelemetry_sdk::trace::Span, _cx: &opentelemetry::Context) {}

    fn on_end(&self, span: SpanData) {
        if self.spans.try_send(span).is_err() {
            let dropped = self.metrics.otel_spans_dropped.inc();
            if dropped.is_power_of_two() || dropped == 0 {
                tracing::warn!(
                    dropped = dropped + 1,
                    "the span export queue is full (the OTLP receiver is down or slow); spans are dropped"
                );
            }
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

/// The exporter's HTTP client: the workspace's reqwest, on the tokio runtime the export
/// task runs on (the OTLP crate's own clients would bring a second reqwest).
#[derive(Debug)]
struct ReqwestClient(reqwest::Client);

#[async_trait]
impl HttpClient for ReqwestClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let (parts, body) = request.into_parts();
        let response = self
            .0
            .request(parts.method, parts.uri.to_string())
            .headers(parts.headers)
            .body(body)
            .send()
            .await?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await?;
        let mut answer = Response::new(body);
        *answer.status_mut() = status;
        *answer.headers_mut() = headers;
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_traces_path_is_added_to_a_base_endpoint_once() {
        assert_eq!(
            OtelConfig::new("http://127.0.0.1:6006").traces_url(),
            "http://127.0.0.1:6006/v1/traces"
        );
        assert_eq!(
            OtelConfig::new("https://cloud.langfuse.com/api/public/otel/").traces_url(),
            "https://cloud.langfuse.com/api/public/otel/v1/traces"
        );
        assert_eq!(
            OtelConfig::new("http://h/v1/traces").traces_url(),
            "http://h/v1/traces"
        );
    }
}
