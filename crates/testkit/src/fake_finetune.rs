//! A fake of OpenAI's fine-tuning API on loopback: `POST /v1/files` (multipart, purpose
//! `fine-tune`), `POST /v1/fine_tuning/jobs`, `GET /v1/fine_tuning/jobs/{id}` and
//! `GET /v1/fine_tuning/jobs/{id}/events`. A job goes `validating_files` → `running` →
//! `succeeded` (or `failed`, by [`FineTuneOutcome`]) one step per status read.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::task::JoinHandle;

/// How the fake's jobs end.
#[derive(Debug, Clone, PartialEq)]
pub enum FineTuneOutcome {
    /// `succeeded` with `fine_tuned_model` = `ft:{model}:{suffix}`.
    Succeed,
    /// `failed` with this error message.
    Fail(String),
}

/// One uploaded file.
#[derive(Debug, Clone, PartialEq)]
pub struct UploadedFile {
    pub id: String,
    pub purpose: String,
    pub filename: String,
    pub content: String,
}

#[derive(Debug, Clone)]
struct FakeJob {
    id: String,
    model: String,
    suffix: String,
    request: Value,
    reads: usize,
}

#[derive(Default)]
struct FineTuneState {
    outcome: Option<FineTuneOutcome>,
    files: Vec<UploadedFile>,
    jobs: Vec<FakeJob>,
    /// `Authorization` of every request.
    authorizations: Vec<String>,
}

/// The fake server; stops when dropped.
pub struct FakeFineTuneServer {
    base_url: String,
    state: Arc<Mutex<FineTuneState>>,
    task: JoinHandle<()>,
}

impl FakeFineTuneServer {
    /// Starts a server whose jobs end with `outcome`.
    pub async fn start(outcome: FineTuneOutcome) -> anyhow::Result<Self> {
        let state = Arc::new(Mutex::new(FineTuneState {
            outcome: Some(outcome),
            ..FineTuneState::default()
        }));
        let app = Router::new()
            .route("/v1/files", post(upload))
            .route("/v1/fine_tuning/jobs", post(create))
            .route("/v1/fine_tuning/jobs/{id}", get(read))
            .route("/v1/fine_tuning/jobs/{id}/events", get(events))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            base_url: format!("http://{address}"),
            state,
            task,
        })
    }

    /// `http://127.0.0.1:PORT`; clients need `{base_url}/v1`.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// How jobs end from now on (jobs already read keep moving by it too).
    pub fn set_outcome(&self, outcome: FineTuneOutcome) {
        lock(&self.state).outcome = Some(outcome);
    }

    /// The files uploaded so far.
    pub fn files(&self) -> Vec<UploadedFile> {
        lock(&self.state).files.clone()
    }

    /// The bodies of the job creation requests so far.
    pub fn job_requests(&self) -> Vec<Value> {
        lock(&self.state)
            .jobs
            .iter()
            .map(|job| job.request.clone())
            .collect()
    }

    /// The `Authorization` header of every request.
    pub fn authorizations(&self) -> Vec<String> {
        lock(&self.state).authorizations.clone()
    }
}

impl Drop for FakeFineTuneServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Shared = State<Arc<Mutex<FineTuneState>>>;

fn record_auth(state: &Mutex<FineTuneState>, headers: &HeaderMap) {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    lock(state).authorizations.push(auth);
}

fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": {"message": message, "type": "invalid_request_error"}})),
    )
        .into_response()
}

async fn upload(State(state): Shared, headers: HeaderMap, body: Bytes) -> Response {
    record_auth(&state, &headers);
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Some(boundary) = content_type.split("boundary=").nth(1) else {
        return error(StatusCode::BAD_REQUEST, "expected multipart/form-data");
    };
    let text = String::from_utf8_lossy(&body).to_string();
    let mut purpose = String::new();
    let mut file = None;
    for part in text.split(&format!("--{boundary}")) {
        let Some((head, content)) = part.split_once("\r\n\r\n") else {
            continue;
        };
        let content = content.strip_suffix("\r\n").unwrap_or(content).to_string();
        if head.contains("name=\"purpose\"") {
            purpose = content;
        } else if head.contains("name=\"file\"") {
            let filename = head
                .split("filename=\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .unwrap_or_default()
                .to_string();
            file = Some((filename, content));
        }
    }
    let Some((filename, content)) = file else {
        return error(StatusCode::BAD_REQUEST, "no file part");
    };
    if purpose != "fine-tune" {
        return error(StatusCode::BAD_REQUEST, "purpose must be fine-tune");
    }
    for line in content.lines().filter(|l| !l.trim().is_empty()) {
        let valid = serde_json::from_str::<Value>(line)
            .ok()
            .is_some_and(|record| record["messages"].is_array());
        if !valid {
            return error(StatusCode::BAD_REQUEST, "every line must hold messages");
        }
    }
    let mut state = lock(&state);
    let id = format!("file-{}", state.files.len() + 1);
    let bytes = content.len();
    state.files.push(UploadedFile {
        id: id.clone(),
        purpose: purpose.clone(),
        filename: filename.clone(),
        content,
    });
    axum::Json(
        json!({"id": id, "object": "file", "bytes": bytes, "filename": filename,
                      "purpose": purpose}),
    )
    .into_response()
}

async fn create(State(state): Shared, headers: HeaderMap, body: Bytes) -> Response {
    record_auth(&state, &headers);
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "body is not JSON");
    };
    let mut state = lock(&state);
    let file = request["training_file"].as_str().unwrap_or_default();
    if !state.files.iter().any(|f| f.id == file) {
        return error(StatusCode::BAD_REQUEST, "training_file not found");
    }
    let Some(model) = request["model"].as_str().map(str::to_string) else {
        return error(StatusCode::BAD_REQUEST, "model is required");
    };
    let job = FakeJob {
        id: format!("ftjob-{}", state.jobs.len() + 1),
        model,
        suffix: request["suffix"].as_str().unwrap_or("custom").to_string(),
        request,
        reads: 0,
    };
    let view = job_view(&job, "validating_files", None);
    state.jobs.push(job);
    axum::Json(view).into_response()
}

fn status_of(job: &FakeJob, outcome: &FineTuneOutcome) -> &'static str {
    match (job.reads, outcome) {
        (0, _) => "validating_files",
        (1, _) => "running",
        (_, FineTuneOutcome::Succeed) => "succeeded",
        (_, FineTuneOutcome::Fail(_)) => "failed",
    }
}

fn job_view(job: &FakeJob, status: &str, outcome: Option<&FineTuneOutcome>) -> Value {
    let fine_tuned = (status == "succeeded").then(|| format!("ft:{}:{}", job.model, job.suffix));
    let error = match (status, outcome) {
        ("failed", Some(FineTuneOutcome::Fail(message))) => {
            json!({"code": "invalid_training_file", "message": message, "param": "training_file"})
        }
        _ => Value::Null,
    };
    json!({"id": job.id, "object": "fine_tuning.job", "model": job.model, "status": status,
           "fine_tuned_model": fine_tuned, "training_file": job.request["training_file"],
           "error": error})
}

async fn read(State(state): Shared, headers: HeaderMap, Path(id): Path<String>) -> Response {
    record_auth(&state, &headers);
    let mut state = lock(&state);
    let outcome = state.outcome.clone().unwrap_or(FineTuneOutcome::Succeed);
    let Some(job) = state.jobs.iter_mut().find(|job| job.id == id) else {
        return error(StatusCode::NOT_FOUND, "no such job");
    };
    job.reads += 1;
    let status = status_of(job, &outcome);
    axum::Json(job_view(job, status, Some(&outcome))).into_response()
}

async fn events(State(state): Shared, headers: HeaderMap, Path(id): Path<String>) -> Response {
    record_auth(&state, &headers);
    let state = lock(&state);
    let outcome = state.outcome.clone().unwrap_or(FineTuneOutcome::Succeed);
    let Some(job) = state.jobs.iter().find(|job| job.id == id) else {
        return error(StatusCode::NOT_FOUND, "no such job");
    };
    let mut data = vec![
        json!({"id": "ev-1", "object": "fine_tuning.job.event", "level": "info",
                               "message": "Validating training file"}),
    ];
    if job.reads >= 1 {
        data.push(
            json!({"id": "ev-2", "object": "fine_tuning.job.event", "level": "info",
                         "message": "Step 1/10: training loss=0.90"}),
        );
    }
    if job.reads >= 2 {
        data.push(match &outcome {
            FineTuneOutcome::Succeed => json!({"id": "ev-3", "level": "info",
                "object": "fine_tuning.job.event", "message": "The job has successfully completed"}),
            FineTuneOutcome::Fail(message) => json!({"id": "ev-3", "level": "error",
                "object": "fine_tuning.job.event", "message": message}),
        });
    }
    data.reverse();
    axum::Json(json!({"object": "list", "data": data, "has_more": false})).into_response()
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
