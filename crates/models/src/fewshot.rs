//! The client of a `fewshot` checkpoint: the base model's client, with the demonstrations
//! chosen for the run appended to the system prompt of every request (after the run's own
//! system prompt, if any). The conversation itself is left as the agent built it.

use async_trait::async_trait;
use rollout_domain::checkpoint::{render_demonstrations, select_demonstrations};
use rollout_domain::{Demonstration, ModelClient, ModelError, ModelRequest, ModelResponse};
use serde_json::{Map, Value};
use std::sync::Arc;

/// A base client plus demonstrations.
pub struct FewshotClient {
    inner: Arc<dyn ModelClient>,
    section: String,
}

impl FewshotClient {
    /// Chooses the `k` demonstrations for a run with `args` and wraps `inner`.
    pub fn new(
        inner: Arc<dyn ModelClient>,
        demonstrations: &[Demonstration],
        k: usize,
        args: &Map<String, Value>,
    ) -> Self {
        let chosen = select_demonstrations(demonstrations, args, k);
        let section = if chosen.is_empty() {
            String::new()
        } else {
            render_demonstrations(&chosen)
        };
        Self { inner, section }
    }
}

#[async_trait]
impl ModelClient for FewshotClient {
    async fn complete(&self, request: &ModelRequest) -> Result<ModelResponse, ModelError> {
        if self.section.is_empty() {
            return self.inner.complete(request).await;
        }
        let mut request = request.clone();
        request.system = Some(match request.system.take() {
            Some(system) if !system.is_empty() => format!("{system}\n\n{}", self.section),
            _ => self.section.clone(),
        });
        self.inner.complete(&request).await
    }
}
