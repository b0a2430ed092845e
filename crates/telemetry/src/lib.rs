#![doc = include_str!("../README.md")]

mod export;
mod ids;
pub mod metrics;
mod run;
mod spans;

pub use export::{OtelConfig, TelemetryError};
pub use ids::is_valid_traceparent;
pub use metrics::{Metrics, StoreGauges};
pub use run::{RunEnd, RunObserver, RunStart};

use std::sync::Arc;
use std::time::Duration;

/// The process's telemetry: its metrics, always, and the span exporter when configured.
/// Cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct Telemetry {
    metrics: Arc<Metrics>,
    export: Option<Arc<export::Exporter>>,
}

impl Telemetry {
    /// Metrics only, no span export.
    pub fn new() -> Self {
        Self::default()
    }

    /// Metrics, and spans exported as `config` says. Spawns the export task: call it from
    /// within a tokio runtime.
    pub fn with_export(config: &OtelConfig) -> Result<Self, TelemetryError> {
        let metrics = Arc::new(Metrics::new());
        let exporter = export::Exporter::start(config, metrics.clone())?;
        Ok(Self {
            metrics,
            export: Some(Arc::new(exporter)),
        })
    }

    /// Whether spans are exported.
    pub fn exports_spans(&self) -> bool {
        self.export.is_some()
    }

    /// The metrics, to count what happens outside runs (HTTP, callbacks, schedules).
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Starts following a claimed run.
    pub fn start_run(&self, start: RunStart) -> RunObserver {
        RunObserver::new(self.metrics.clone(), self.export.clone(), start)
    }

    /// Sends the spans still queued (within `grace`) and stops the exporter.
    pub async fn shutdown(&self, grace: Duration) {
        if let Some(export) = &self.export {
            export.shutdown(grace).await;
        }
    }
}
