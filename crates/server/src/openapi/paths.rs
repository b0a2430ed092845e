//! The operations of `/v1` as the OpenAPI document describes them. Each function here is a
//! stand-in that carries one route's `#[utoipa::path]` (the handlers stay as they are);
//! `crate::openapi::tests` checks that the router and this list agree. Statuses every
//! operation may answer (401, 429, 500, 503; 400/413/415/422 with a JSON body; 404 with a
//! path parameter) are added by `super::CommonResponses`.

#![allow(dead_code)]

use rollout_api::ErrorBody;
use rollout_api::Health;
use rollout_api::datasets::{CreateDataset, Dataset, DatasetList, DownloadQuery, LimitQuery};
use rollout_api::environments::{
    DeleteQuery, Deleted, Deployed, Environment, EnvironmentDetail, EnvironmentList, ModelList,
    RegisterRequest,
};
use rollout_api::jobs::{
    CreateJob, Job, JobComparison, JobList, JobWithMetrics, ListQuery, MetricsQuery, RetriedJob,
};
use rollout_api::keys::{CreateKey, CreatedKey, KeyList, ProjectQuery};
use rollout_api::projects::{Project, SettingsPatch};
use rollout_api::runs::{
    BulkCancelRequest, BulkCancelled, CancelledRun, Deliveries, EventStreamQuery, QueuedRun,
    Redelivery, RunRequest, RunSummary, Trace, TraceList, TraceListQuery, TraceQuery,
};
use rollout_api::schedules::{CreateSchedule, Schedule, ScheduleList, ScheduleRuns};
use rollout_api::tasksets::{AddTasks, CreateTaskset, ImportQuery, Imported, Taskset, TasksetList};
use rollout_api::training::{CreateTraining, TrainingJob, TrainingList};
use rollout_api::usage::{Usage, UsageQuery};

/// A bundle's bytes (a tar.gz): `{"type": "string", "format": "binary"}`.
struct Bundle;

impl utoipa::PartialSchema for Bundle {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .into()
    }
}

impl utoipa::ToSchema for Bundle {}

// ---- health and the document ----

#[utoipa::path(get, path = "/healthz", tag = "server", security(()),
    responses((status = 200, description = "The server answers", body = Health)))]
fn health() {}

#[utoipa::path(get, path = "/openapi.json", tag = "server", security(()),
    responses((status = 200, description = "This document (OpenAPI 3.1)", content_type = "application/json")))]
fn openapi() {}

// ---- runs and traces ----

#[utoipa::path(post, path = "/v1/agent/run", tag = "runs", request_body = RunRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays of the same key and body answer with the run the first request created (with `Idempotent-Replayed: true`)")),
    responses(
        (status = 200, description = "`sync`: the run ended", body = RunSummary),
        (status = 202, description = "Queued; or `sync` and the wait ended first (then the run's summary)", body = QueuedRun),
        (status = 404, description = "No such environment, version or scenario", body = ErrorBody),
        (status = 409, description = "The Idempotency-Key was used with another body", body = ErrorBody),
    ))]
fn run() {}

#[utoipa::path(get, path = "/v1/traces", tag = "runs", params(TraceListQuery),
    responses((status = 200, description = "Runs, newest first", body = TraceList)))]
fn traces() {}

#[utoipa::path(get, path = "/v1/traces/{id}", tag = "runs",
    params(("id" = String, Path, description = "The trace (run) id"), TraceQuery),
    responses((status = 200, description = "The run and a page of its events", body = Trace)))]
fn trace() {}

#[utoipa::path(post, path = "/v1/traces/cancel", tag = "runs", request_body = BulkCancelRequest,
    responses((status = 200, description = "What was cancelled", body = BulkCancelled)))]
fn cancel_many() {}

#[utoipa::path(post, path = "/v1/traces/{id}/cancel", tag = "runs",
    params(("id" = String, Path, description = "The trace id")),
    responses(
        (status = 200, description = "The run ended", body = CancelledRun),
        (status = 202, description = "Its worker was asked to stop and has not yet", body = CancelledRun),
        (status = 409, description = "The run had already ended", body = ErrorBody),
    ))]
fn cancel_one() {}

#[utoipa::path(get, path = "/v1/traces/{id}/deliveries", tag = "runs",
    params(("id" = String, Path, description = "The trace id")),
    responses((status = 200, description = "Every attempt to deliver the run's callback", body = Deliveries)))]
fn deliveries() {}

#[utoipa::path(post, path = "/v1/traces/{id}/deliveries", tag = "runs",
    params(("id" = String, Path, description = "The trace id")),
    responses(
        (status = 200, description = "Sent once more (whether or not the receiver took it)", body = Redelivery),
        (status = 409, description = "No callback, or the run has not ended", body = ErrorBody),
    ))]
fn redeliver() {}

#[utoipa::path(get, path = "/v1/traces/{id}/events", tag = "runs",
    params(("id" = String, Path, description = "The trace id"), EventStreamQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this `seq`")),
    responses((status = 200, description = "Server-sent events, one per run event (`id` = seq, `event` = type, `data` = the event as JSON); ends after `finished`", content_type = "text/event-stream", body = String)))]
fn events() {}

#[utoipa::path(get, path = "/v1/usage", tag = "usage", params(UsageQuery),
    responses((status = 200, description = "Usage per group and in total", body = Usage)))]
fn usage() {}

#[utoipa::path(get, path = "/v1/models", tag = "models",
    responses((status = 200, description = "The models a run may name", body = ModelList)))]
fn models() {}

// ---- keys and projects ----

#[utoipa::path(get, path = "/v1/keys", tag = "keys", params(ProjectQuery),
    responses(
        (status = 200, description = "The project's active keys", body = KeyList),
        (status = 403, description = "Not an admin key", body = ErrorBody),
        (status = 422, description = "Invalid project", body = ErrorBody),
    ))]
fn keys() {}

#[utoipa::path(post, path = "/v1/keys", tag = "keys", request_body = CreateKey,
    responses(
        (status = 201, description = "The key, with its secret shown only here", body = CreatedKey),
        (status = 403, description = "Not an admin key", body = ErrorBody),
    ))]
fn create_key() {}

#[utoipa::path(delete, path = "/v1/keys/{id}", tag = "keys",
    params(("id" = String, Path, description = "The key id"), ProjectQuery),
    responses(
        (status = 204, description = "Revoked"),
        (status = 403, description = "Not an admin key", body = ErrorBody),
        (status = 409, description = "A key cannot revoke itself", body = ErrorBody),
        (status = 422, description = "Invalid project", body = ErrorBody),
    ))]
fn revoke_key() {}

#[utoipa::path(get, path = "/v1/projects/{id}", tag = "projects",
    params(("id" = String, Path, description = "The project id")),
    responses(
        (status = 200, description = "Settings, defaults and usage", body = Project),
        (status = 403, description = "Not an admin key", body = ErrorBody),
    ))]
fn project() {}

#[utoipa::path(patch, path = "/v1/projects/{id}", tag = "projects",
    params(("id" = String, Path, description = "The project id")), request_body = SettingsPatch,
    responses(
        (status = 200, description = "The changed project", body = Project),
        (status = 403, description = "Not an admin key of the admin project", body = ErrorBody),
    ))]
fn update_project() {}

// ---- schedules ----

#[utoipa::path(get, path = "/v1/schedules", tag = "schedules",
    responses((status = 200, description = "The project's schedules", body = ScheduleList)))]
fn schedules() {}

#[utoipa::path(post, path = "/v1/schedules", tag = "schedules", request_body = CreateSchedule,
    responses(
        (status = 201, description = "The schedule and its first tick", body = Schedule),
        (status = 404, description = "The run's environment does not exist", body = ErrorBody),
    ))]
fn create_schedule() {}

#[utoipa::path(get, path = "/v1/schedules/{id}", tag = "schedules",
    params(("id" = String, Path, description = "The schedule id")),
    responses((status = 200, description = "The schedule", body = Schedule)))]
fn schedule() {}

#[utoipa::path(delete, path = "/v1/schedules/{id}", tag = "schedules",
    params(("id" = String, Path, description = "The schedule id")),
    responses((status = 204, description = "Deleted; its runs stay")))]
fn delete_schedule() {}

#[utoipa::path(post, path = "/v1/schedules/{id}/pause", tag = "schedules",
    params(("id" = String, Path, description = "The schedule id")),
    responses((status = 200, description = "Paused", body = Schedule)))]
fn pause_schedule() {}

#[utoipa::path(post, path = "/v1/schedules/{id}/resume", tag = "schedules",
    params(("id" = String, Path, description = "The schedule id")),
    responses((status = 200, description = "Resumed; ticks missed while paused are skipped", body = Schedule)))]
fn resume_schedule() {}

#[utoipa::path(get, path = "/v1/schedules/{id}/runs", tag = "schedules",
    params(("id" = String, Path, description = "The schedule id")),
    responses((status = 200, description = "The runs it started, newest first", body = ScheduleRuns)))]
fn schedule_runs() {}

// ---- environments ----

#[utoipa::path(get, path = "/v1/environments", tag = "environments",
    responses((status = 200, description = "Each environment's newest version", body = EnvironmentList)))]
fn environments() {}

#[utoipa::path(post, path = "/v1/environments", tag = "environments", request_body = RegisterRequest,
    responses(
        (status = 200, description = "Unchanged: the existing version (with `git`: a deploy's answer)", body = Environment),
        (status = 201, description = "A new version (with `git`: a deploy's answer, `Deployed`)", body = Environment),
        (status = 403, description = "Not an admin key, or an operator action", body = ErrorBody),
        (status = 404, description = "The project does not exist", body = ErrorBody),
    ))]
fn register() {}

#[utoipa::path(get, path = "/v1/environments/{name}", tag = "environments",
    params(("name" = String, Path, description = "The environment")),
    responses((status = 200, description = "Tools, scenarios with their argument schemas, versions", body = EnvironmentDetail)))]
fn environment() {}

#[utoipa::path(delete, path = "/v1/environments/{name}", tag = "environments",
    params(("name" = String, Path, description = "The environment"), DeleteQuery),
    responses(
        (status = 200, description = "Deleted with every version", body = Deleted),
        (status = 403, description = "Not an admin key", body = ErrorBody),
        (status = 409, description = "Runs in flight and no `force`", body = ErrorBody),
        (status = 422, description = "Invalid `force`", body = ErrorBody),
    ))]
fn delete_environment() {}

#[utoipa::path(post, path = "/v1/environments/{name}/deploy", tag = "environments",
    params(("name" = String, Path, description = "The environment")),
    request_body(description = "A tar.gz of the bundle, as `application/gzip` (or `application/x-gzip`, `application/octet-stream`)",
        content((Bundle = "application/gzip"), (Bundle = "application/octet-stream"))),
    responses(
        (status = 200, description = "Unchanged: the bundle matched an existing version", body = Deployed),
        (status = 201, description = "Built and introspected", body = Deployed),
        (status = 400, description = "The body could not be read", body = ErrorBody),
        (status = 403, description = "Not an admin key", body = ErrorBody),
        (status = 413, description = "Over the upload limit", body = ErrorBody),
        (status = 415, description = "Not `application/gzip`", body = ErrorBody),
        (status = 422, description = "Invalid bundle, build failed or unusable", body = ErrorBody),
    ))]
fn deploy() {}

#[utoipa::path(get, path = "/v1/environments/{name}/versions/{version}/log", tag = "environments",
    params(("name" = String, Path, description = "The environment"), ("version" = String, Path, description = "The version number")),
    responses((status = 200, description = "The build log", content_type = "text/plain", body = String)))]
fn build_log() {}

#[utoipa::path(post, path = "/v1/environments/{name}/mcp", tag = "gateway",
    params(("name" = String, Path, description = "The environment"),
        ("Mcp-Session-Id" = Option<String>, Header, description = "The session an `initialize` opened")),
    request_body(content = Object, description = "A JSON-RPC message of MCP's streamable HTTP transport"),
    responses(
        (status = 200, description = "The JSON-RPC answer", content((Object = "application/json"), (String = "text/event-stream"))),
        (status = 202, description = "A notification or response was accepted"),
        (status = 400, description = "Not a JSON-RPC message", body = ErrorBody),
        (status = 404, description = "No such session or environment", body = ErrorBody),
        (status = 406, description = "`Accept` lacks `application/json` and `text/event-stream`", body = ErrorBody),
        (status = 415, description = "Not `application/json`", body = ErrorBody),
        (status = 409, description = "The environment is served by replicas this server does not run", body = ErrorBody),
    ))]
fn env_mcp_post() {}

#[utoipa::path(get, path = "/v1/environments/{name}/mcp", tag = "gateway",
    params(("name" = String, Path, description = "The environment"),
        ("Mcp-Session-Id" = Option<String>, Header, description = "The session")),
    responses(
        (status = 200, description = "The session's server-to-client stream", content_type = "text/event-stream", body = String),
        (status = 400, description = "No session", body = ErrorBody),
        (status = 404, description = "No such session", body = ErrorBody),
        (status = 405, description = "No session", body = ErrorBody),
        (status = 406, description = "`Accept` lacks `text/event-stream`", body = ErrorBody),
    ))]
fn env_mcp_get() {}

#[utoipa::path(delete, path = "/v1/environments/{name}/mcp", tag = "gateway",
    params(("name" = String, Path, description = "The environment"),
        ("Mcp-Session-Id" = Option<String>, Header, description = "The session to close")),
    responses(
        (status = 200, description = "Closed"),
        (status = 202, description = "Closed"),
        (status = 204, description = "Closed"),
        (status = 400, description = "No session", body = ErrorBody),
        (status = 404, description = "No such session", body = ErrorBody),
        (status = 405, description = "No session", body = ErrorBody),
    ))]
fn env_mcp_delete() {}

#[utoipa::path(post, path = "/v1/mcp", tag = "gateway",
    params(("Mcp-Session-Id" = Option<String>, Header, description = "The session an `initialize` opened")),
    request_body(content = Object, description = "A JSON-RPC message: every environment's tools, as `env.tool`"),
    responses(
        (status = 200, description = "The JSON-RPC answer", content((Object = "application/json"), (String = "text/event-stream"))),
        (status = 202, description = "A notification or response was accepted"),
        (status = 400, description = "Not a JSON-RPC message", body = ErrorBody),
        (status = 404, description = "No such session or environment", body = ErrorBody),
        (status = 406, description = "`Accept` lacks `application/json` and `text/event-stream`", body = ErrorBody),
        (status = 415, description = "Not `application/json`", body = ErrorBody),
    ))]
fn hub_mcp_post() {}

#[utoipa::path(get, path = "/v1/mcp", tag = "gateway",
    params(("Mcp-Session-Id" = Option<String>, Header, description = "The session")),
    responses(
        (status = 200, description = "The session's server-to-client stream", content_type = "text/event-stream", body = String),
        (status = 400, description = "No session", body = ErrorBody),
        (status = 404, description = "No such session", body = ErrorBody),
        (status = 405, description = "No session", body = ErrorBody),
        (status = 406, description = "`Accept` lacks `text/event-stream`", body = ErrorBody),
    ))]
fn hub_mcp_get() {}

#[utoipa::path(delete, path = "/v1/mcp", tag = "gateway",
    params(("Mcp-Session-Id" = Option<String>, Header, description = "The session to close")),
    responses(
        (status = 200, description = "Closed"),
        (status = 202, description = "Closed"),
        (status = 204, description = "Closed"),
        (status = 400, description = "No session", body = ErrorBody),
        (status = 404, description = "No such session", body = ErrorBody),
        (status = 405, description = "No session", body = ErrorBody),
    ))]
fn hub_mcp_delete() {}

// ---- tasksets ----

#[utoipa::path(get, path = "/v1/tasksets", tag = "tasksets",
    responses((status = 200, description = "The project's tasksets", body = TasksetList)))]
fn tasksets() {}

#[utoipa::path(post, path = "/v1/tasksets", tag = "tasksets", request_body = CreateTaskset,
    responses(
        (status = 201, description = "Created", body = Taskset),
        (status = 409, description = "The name is taken", body = ErrorBody),
    ))]
fn create_taskset() {}

#[utoipa::path(get, path = "/v1/tasksets/{name}", tag = "tasksets",
    params(("name" = String, Path, description = "The taskset")),
    responses((status = 200, description = "The taskset and its tasks", body = Taskset)))]
fn taskset() {}

#[utoipa::path(delete, path = "/v1/tasksets/{name}", tag = "tasksets",
    params(("name" = String, Path, description = "The taskset")),
    responses((status = 204, description = "Deleted")))]
fn delete_taskset() {}

#[utoipa::path(post, path = "/v1/tasksets/{name}/import", tag = "tasksets",
    params(("name" = String, Path, description = "The taskset (created if missing)"), ImportQuery),
    request_body(description = "JSONL (one task per line) or a JSON array of tasks",
        content((String = "application/x-ndjson"), (Vec<Object> = "application/json"))),
    responses(
        (status = 200, description = "Added to an existing taskset", body = Imported),
        (status = 201, description = "Created", body = Imported),
        (status = 400, description = "The body is not UTF-8", body = ErrorBody),
        (status = 413, description = "Over the body limit", body = ErrorBody),
        (status = 422, description = "Every bad line, with its number", body = ErrorBody),
    ))]
fn import_taskset() {}

#[utoipa::path(get, path = "/v1/tasksets/{name}/export", tag = "tasksets",
    params(("name" = String, Path, description = "The taskset")),
    responses((status = 200, description = "The tasks as JSONL, in hud's format", content_type = "application/x-ndjson", body = String)))]
fn export_taskset() {}

#[utoipa::path(post, path = "/v1/tasksets/{name}/tasks", tag = "tasksets",
    params(("name" = String, Path, description = "The taskset")), request_body = AddTasks,
    responses((status = 200, description = "The taskset with its tasks", body = Taskset)))]
fn add_tasks() {}

#[utoipa::path(delete, path = "/v1/tasksets/{name}/tasks/{task_id}", tag = "tasksets",
    params(("name" = String, Path, description = "The taskset"), ("task_id" = String, Path, description = "The task")),
    responses((status = 204, description = "Removed")))]
fn remove_task() {}

// ---- jobs ----

#[utoipa::path(get, path = "/v1/jobs", tag = "jobs", params(ListQuery),
    responses((status = 200, description = "Jobs, newest first", body = JobList)))]
fn jobs() {}

#[utoipa::path(post, path = "/v1/jobs", tag = "jobs", request_body = CreateJob,
    responses(
        (status = 201, description = "Every run queued", body = Job),
        (status = 404, description = "No such taskset", body = ErrorBody),
    ))]
fn create_job() {}

#[utoipa::path(get, path = "/v1/jobs/{id}", tag = "jobs",
    params(("id" = String, Path, description = "The job id")),
    responses((status = 200, description = "The job and its progress", body = Job)))]
fn job() {}

#[utoipa::path(post, path = "/v1/jobs/{id}/cancel", tag = "jobs",
    params(("id" = String, Path, description = "The job id")),
    responses((status = 200, description = "Queued runs cancelled, running ones asked to stop", body = Job)))]
fn cancel_job() {}

#[utoipa::path(post, path = "/v1/jobs/{id}/retry", tag = "jobs",
    params(("id" = String, Path, description = "The job id")),
    responses(
        (status = 200, description = "The failed runs queued again", body = RetriedJob),
        (status = 422, description = "A model no longer resolves", body = ErrorBody),
    ))]
fn retry_job() {}

#[utoipa::path(get, path = "/v1/jobs/{id}/metrics", tag = "jobs",
    params(("id" = String, Path, description = "The job id"), MetricsQuery),
    responses((status = 200, description = "Metrics overall, per model and per task", body = JobWithMetrics)))]
fn job_metrics() {}

#[utoipa::path(get, path = "/v1/jobs/{id}/compare", tag = "jobs",
    params(("id" = String, Path, description = "The job id"), MetricsQuery),
    responses((status = 200, description = "Two models paired by task", body = JobComparison)))]
fn compare_job() {}

// ---- datasets and training ----

#[utoipa::path(get, path = "/v1/datasets", tag = "training", params(LimitQuery),
    responses((status = 200, description = "Datasets, newest first", body = DatasetList)))]
fn datasets() {}

#[utoipa::path(post, path = "/v1/datasets", tag = "training", request_body = CreateDataset,
    responses(
        (status = 201, description = "Selected, rendered and stored", body = Dataset),
        (status = 404, description = "No such job or taskset", body = ErrorBody),
    ))]
fn create_dataset() {}

#[utoipa::path(get, path = "/v1/datasets/{id}", tag = "training",
    params(("id" = String, Path, description = "The dataset id")),
    responses((status = 200, description = "Lineage and statistics", body = Dataset)))]
fn dataset() {}

#[utoipa::path(get, path = "/v1/datasets/{id}/download", tag = "training",
    params(("id" = String, Path, description = "The dataset id"), DownloadQuery),
    responses((status = 200, description = "JSONL in the format asked for", content_type = "application/x-ndjson", body = String)))]
fn download_dataset() {}

#[utoipa::path(get, path = "/v1/training", tag = "training", params(LimitQuery),
    responses((status = 200, description = "Training jobs, newest first", body = TrainingList)))]
fn training_jobs() {}

#[utoipa::path(post, path = "/v1/training", tag = "training", request_body = CreateTraining,
    responses((status = 201, description = "Stored and started", body = TrainingJob)))]
fn create_training() {}

#[utoipa::path(get, path = "/v1/training/{id}", tag = "training",
    params(("id" = String, Path, description = "The training job id")),
    responses((status = 200, description = "Status and log", body = TrainingJob)))]
fn training_job() {}

#[utoipa::path(get, path = "/v1/training/{id}/log", tag = "training",
    params(("id" = String, Path, description = "The training job id")),
    responses((status = 200, description = "The log", content_type = "text/plain", body = String)))]
fn training_log() {}

#[utoipa::path(post, path = "/v1/training/{id}/cancel", tag = "training",
    params(("id" = String, Path, description = "The training job id")),
    responses(
        (status = 200, description = "Cancelled", body = TrainingJob),
        (status = 409, description = "The job had already ended", body = ErrorBody),
    ))]
fn cancel_training() {}
