//! The `openai` backend: OpenAI's fine-tuning API, or any server that implements it.
//!
//! Uploads the chat dataset (`POST /files`, purpose `fine-tune`), creates the job
//! (`POST /fine_tuning/jobs` with the base model, the file, a suffix and the job's params
//! merged in, e.g. `hyperparameters`), then polls the job (`GET /fine_tuning/jobs/{id}`) and
//! its events (`GET /fine_tuning/jobs/{id}/events`) into the log until it ends. Success
//! yields an endpoint checkpoint on `fine_tuned_model`. The key is never logged.

use crate::config::OpenAiFineTuning;
use crate::error::TrainingError;
use rollout_domain::CheckpointTarget;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedSender;

/// Multipart boundary of the upload (cannot occur in JSONL: it contains no quotes).
const BOUNDARY: &str = "rollout-boundary-7f3a9c2e51d84b06";
/// Per-request budget.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// One fine-tuning job's inputs.
#[derive(Debug, Clone)]
pub struct OpenAiJob {
    /// The provider's id of the base model (e.g. `gpt-4.1-mini-2025-04-14`).
    pub base_model: String,
    /// The checkpoint's name; its first 40 safe characters become the suffix.
    pub name: String,
    /// Merged into the create request (e.g. `{"hyperparameters": {"n_epochs": 3}}`).
    pub params: Value,
    /// The chat dataset (JSONL).
    pub chat_jsonl: String,
}

/// Runs the job to its end. Dropping the future stops polling (the remote job goes on).
pub async fn run(
    config: &OpenAiFineTuning,
    job: &OpenAiJob,
    log: UnboundedSender<String>,
) -> Result<CheckpointTarget, TrainingError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(|e| TrainingError::Config(format!("building the HTTP client: {e}")))?;
    let api = Api {
        http,
        base: config.base_url.trim_end_matches('/').to_string(),
        key: config.api_key.as_ref().map(|k| k.expose().to_string()),
    };

    let mut body = Vec::new();
    body.extend_from_slice(
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nfine-tune\r\n\
             --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"dataset.jsonl\"\r\n\
             Content-Type: application/jsonl\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(job.chat_jsonl.as_bytes());
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    let file = api
        .send(
            "uploading the dataset",
            api.request(reqwest::Method::POST, "/files")
                .header(
                    "content-type",
                    format!("multipart/form-data; boundary={BOUNDARY}"),
                )
                .body(body),
        )
        .await?;
    let file_id = string(&file, "id", "the uploaded file")?;
    let _ = log.send(format!("uploaded the dataset as {file_id}\n"));

    let mut create = match &job.params {
        Value::Object(params) => params.clone(),
        _ => serde_json::Map::new(),
    };
    create.insert("model".into(), json!(job.base_model));
    create.insert("training_file".into(), json!(file_id));
    create
        .entry("suffix")
        .or_insert_with(|| json!(suffix(&job.name)));
    let created = api
        .send(
            "creating the fine-tuning job",
            api.request(reqwest::Method::POST, "/fine_tuning/jobs")
                .json(&Value::Object(create)),
        )
        .await?;
    let remote = string(&created, "id", "the fine-tuning job")?;
    let _ = log.send(format!("created fine-tuning job {remote}\n"));

    let started = Instant::now();
    let mut seen = BTreeSet::new();
    let mut last_status = String::new();
    loop {
        tokio::time::sleep(config.poll_interval).await;
        let state = api
            .send(
                "reading the fine-tuning job",
                api.request(reqwest::Method::GET, &format!("/fine_tuning/jobs/{remote}")),
            )
            .await?;
        if let Ok(events) = api
            .send(
                "reading the fine-tuning events",
                api.request(
                    reqwest::Method::GET,
                    &format!("/fine_tuning/jobs/{remote}/events?limit=100"),
                ),
            )
            .await
        {
            // Newest first on the wire; logged oldest first.
            let mut new: Vec<&Value> = events["data"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|event| {
                    event["id"]
                        .as_str()
                        .is_some_and(|id| seen.insert(id.to_string()))
                })
                .collect();
            new.reverse();
            for event in new {
                let _ = log.send(format!(
                    "[{}] {}\n",
                    event["level"].as_str().unwrap_or("info"),
                    event["message"].as_str().unwrap_or_default()
                ));
            }
        }
        let status = state["status"].as_str().unwrap_or_default().to_string();
        if status != last_status {
            let _ = log.send(format!("status: {status}\n"));
            last_status.clone_from(&status);
        }
        match status.as_str() {
            "succeeded" => {
                let model = string(&state, "fine_tuned_model", "the finished job")?;
                return Ok(CheckpointTarget::Endpoint {
                    base_url: config
                        .inference_base_url
                        .clone()
                        .unwrap_or_else(|| api.base.clone())
                        .trim_end_matches('/')
                        .to_string(),
                    model,
                    key_provider: config.key_provider.clone(),
                });
            }
            "failed" | "cancelled" => {
                let reason = state["error"]["message"]
                    .as_str()
                    .filter(|m| !m.is_empty())
                    .unwrap_or("no reason given");
                return Err(TrainingError::Failed(format!(
                    "the fine-tuning job {remote} {status}: {reason}"
                )));
            }
            _ => {}
        }
        if started.elapsed() > config.timeout {
            return Err(TrainingError::Failed(format!(
                "the fine-tuning job {remote} did not finish within {}s",
                config.timeout.as_secs()
            )));
        }
    }
}

/// Letters, digits and `-` of `name`, at most 40.
fn suffix(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(40)
        .collect()
}

fn string(value: &Value, field: &str, what: &str) -> Result<String, TrainingError> {
    value[field]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .ok_or_else(|| TrainingError::Failed(format!("{what} has no '{field}' in the answer")))
}

struct Api {
    http: reqwest::Client,
    base: String,
    key: Option<String>,
}

impl Api {
    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.base));
        match &self.key {
            Some(key) => request.bearer_auth(key),
            None => request,
        }
    }

    /// Sends; a non-2xx answer becomes an error with the server's message (never the key).
    async fn send(
        &self,
        what: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<Value, TrainingError> {
        let response = request.send().await.map_err(|e| {
            TrainingError::Failed(format!(
                "{what}: could not reach {}: {}",
                self.base,
                e.without_url()
            ))
        })?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| TrainingError::Failed(format!("{what}: reading the answer: {e}")))?;
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if status.is_success() {
            return Ok(body);
        }
        let message = body["error"]["message"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| body.to_string().chars().take(300).collect());
        Err(TrainingError::Failed(format!(
            "{what}: the server answered {}: {message}",
            status.as_u16()
        )))
    }
}
