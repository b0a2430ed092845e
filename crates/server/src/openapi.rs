//! `GET /openapi.json`: the API as an OpenAPI 3.1 document, built by `utoipa` from the
//! typed views of `rollout_api` and the operations of `openapi::paths`.

pub(crate) mod docs;
mod paths;
mod review_paths;

use axum::Json;
use std::sync::OnceLock;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as Document, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "rollout",
        description = "Runs LLM agents on MCP environments and records their traces. Every \
            endpoint but `/healthz` and `/openapi.json` needs `Authorization: Bearer <key>`. \
            Errors are `{\"error\": {\"code\", \"message\", \"details\"}}`.",
        license(name = "Apache-2.0"),
    ),
    paths(
        paths::health, paths::openapi,
        paths::run, paths::traces, paths::trace, paths::cancel_many, paths::cancel_one,
        paths::deliveries, paths::redeliver, paths::events, paths::usage, paths::models,
        paths::keys, paths::create_key, paths::revoke_key, paths::project, paths::update_project,
        paths::schedules, paths::create_schedule, paths::schedule, paths::delete_schedule,
        paths::pause_schedule, paths::resume_schedule, paths::schedule_runs,
        paths::environments, paths::register, paths::environment, paths::delete_environment,
        paths::deploy, paths::build_log,
        paths::env_mcp_post, paths::env_mcp_get, paths::env_mcp_delete,
        paths::hub_mcp_post, paths::hub_mcp_get, paths::hub_mcp_delete,
        paths::tasksets, paths::create_taskset, paths::taskset, paths::delete_taskset,
        paths::import_taskset, paths::export_taskset, paths::add_tasks, paths::remove_task,
        paths::jobs, paths::create_job, paths::job, paths::cancel_job, paths::retry_job,
        paths::job_metrics, paths::compare_job,
        paths::datasets, paths::create_dataset, paths::dataset, paths::download_dataset,
        paths::training_jobs, paths::create_training, paths::training_job, paths::training_log,
        paths::cancel_training,
        review_paths::score_configs, review_paths::create_score_config,
        review_paths::score_config, review_paths::put_score_config,
        review_paths::delete_score_config, review_paths::review, review_paths::review_history,
        review_paths::scores, review_paths::add_score, review_paths::delete_score,
        review_paths::labels, review_paths::add_labels, review_paths::remove_label,
        review_paths::notes, review_paths::add_note, review_paths::edit_note,
        review_paths::delete_note, review_paths::reward_override,
        review_paths::put_reward_override, review_paths::clear_reward_override,
        review_paths::review_queues, review_paths::create_review_queue,
        review_paths::review_queue, review_paths::delete_review_queue,
        review_paths::next_in_queue, review_paths::complete_in_queue,
        review_paths::release_in_queue,
        review_paths::share, review_paths::shares, review_paths::revoke_share,
        review_paths::sharing, review_paths::put_sharing,
    ),
    components(schemas(rollout_api::ErrorBody, rollout_api::error::Problem, rollout_api::environments::Deployed)),
    modifiers(&Bearer, &CommonResponses),
)]
struct ApiDoc;

/// The document, built once.
pub(crate) fn document() -> &'static Document {
    static DOCUMENT: OnceLock<Document> = OnceLock::new();
    DOCUMENT.get_or_init(ApiDoc::openapi)
}

/// `GET /openapi.json`.
pub(crate) async fn serve() -> Json<&'static Document> {
    Json(document())
}

/// The Bearer scheme, required by every operation that does not say otherwise.
struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API key: `Authorization: Bearer <key>`"))
                    .build(),
            ),
        );
        openapi.security = Some(vec![SecurityRequirement::new(
            "bearer",
            Vec::<String>::new(),
        )]);
    }
}

/// The statuses any `/v1` operation may answer, so that each operation lists only its own:
/// 401 (no or a bad key), 429 (rate limit, quotas), 500 and 503 (the store is down); with a
/// JSON body also 400 (not JSON), 413 (too large), 415 (not JSON's type) and 422 (the wrong
/// shape or invalid values); with a path parameter 404; with query parameters 400 and 422.
struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut Document) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            if !path.starts_with("/v1/") {
                continue;
            }
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for operation in operations.into_iter().flatten() {
                add_common(operation);
            }
        }
    }
}

fn add_common(operation: &mut Operation) {
    let mut statuses = vec![
        ("401", "No API key, or an unknown or revoked one"),
        (
            "429",
            "Rate limited, or a project limit reached (`Retry-After` says when to retry)",
        ),
        ("500", "A server error (logged; the message says only that)"),
        ("503", "The database is unavailable"),
    ];
    let json_body = operation
        .request_body
        .as_ref()
        .is_some_and(|body| body.content.contains_key("application/json"));
    if json_body {
        statuses.extend([
            ("400", "The body is not JSON"),
            ("413", "The body is over the limit"),
            ("415", "The body is not sent as JSON"),
            (
                "422",
                "The body has the wrong shape or invalid values (`details.errors`)",
            ),
        ]);
    }
    let parameters = operation.parameters.as_deref().unwrap_or_default();
    if parameters
        .iter()
        .any(|p| matches!(p.parameter_in, ParameterIn::Path))
    {
        statuses.push(("404", "Not found"));
    }
    if parameters
        .iter()
        .any(|p| matches!(p.parameter_in, ParameterIn::Query))
    {
        statuses.extend([
            ("400", "A query parameter has the wrong type"),
            (
                "422",
                "A query parameter has an invalid value (`details.errors`)",
            ),
        ]);
    }
    for (status, description) in statuses {
        operation
            .responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| error_response(description));
    }
}

fn error_response(description: &str) -> utoipa::openapi::RefOr<utoipa::openapi::Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
        .into()
}
