//! Environments: register a version by command or URL, list, and describe.
//!
//! Registering a `command` or `url` environment and deploying from git are operator
//! actions (`Caller::require_operator`): an operator may do so in any project with
//! `project` in the body. A project's admins deploy bundles (`deploy.rs`).

use crate::auth::Caller;
use crate::error::{ApiError, problem};
use crate::json::ApiJson;
use crate::state::AppState;
use crate::views;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use rollout_mcp::EnvTarget;
use rollout_worker::{RegisterError, register_environment};
use serde_json::json;

use axum::response::{IntoResponse, Response};
pub(crate) use rollout_api::environments::RegisterRequest;
use rollout_api::environments::{EnvironmentDetail, EnvironmentList};

/// Registers a version: the environment is started, introspected and stored. An
/// unchanged source answers 200 with the existing version; a new one 201.
pub(crate) async fn register(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(request): ApiJson<RegisterRequest>,
) -> Result<Response, ApiError> {
    caller.require_admin("registering an environment")?;
    let action = match (&request.git, &request.url) {
        (Some(_), _) => "deploying an environment from git",
        (None, Some(_)) => "registering a url environment",
        (None, None) if request.address.is_some() => "registering an address environment",
        (None, None) => "registering a command environment",
    };
    caller.require_operator(action)?;
    let caller = acting_in(&state, caller, request.project.as_deref()).await?;
    if let Some(git) = request.git.clone() {
        if request.command.is_some() || request.url.is_some() || request.address.is_some() {
            return Err(ApiError::invalid(vec![problem(
                "git",
                "give one of command, url, address or git, not several",
            )]));
        }
        return Ok(super::deploy::git(&state, &caller, &request.name, git)
            .await?
            .into_response());
    }
    let target = target(&request)?;
    let before = state
        .store
        .latest_ready_version(&caller.project_id, &request.name)
        .await?;
    let version = register_environment(
        &state.store,
        &caller.project_id,
        &request.name,
        &target,
        state.config.introspect_timeout,
        &state.config.sandbox,
    )
    .await
    .map_err(|error| match error {
        RegisterError::Unusable {
            name,
            message,
            version,
        } => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "environment_unusable",
            format!("environment '{name}' could not be started or introspected: {message}"),
        )
        .with_details(json!({ "version": version.version, "error": message })),
        RegisterError::Store(error) => error.into(),
    })?;
    let status = match before {
        Some(before) if before.id == version.id => StatusCode::OK,
        _ => StatusCode::CREATED,
    };
    let versions = state
        .store
        .env_versions(&caller.project_id, &request.name)
        .await?;
    Ok((status, Json(views::environment(&request.name, &versions))).into_response())
}

/// The caller acting in `project` (an operator registering for another project), or as
/// itself; 404 for a project that does not exist.
async fn acting_in(
    state: &AppState,
    caller: Caller,
    project: Option<&str>,
) -> Result<Caller, ApiError> {
    let project = super::keys::target_project(&caller, project)?;
    if project == caller.project_id {
        return Ok(caller);
    }
    if state.store.get_project(&project).await?.is_none() {
        return Err(ApiError::not_found(
            "project_not_found",
            format!("project '{project}' not found; create a key in it first (POST /v1/keys)"),
        ));
    }
    Ok(Caller {
        project_id: project,
        ..caller
    })
}

fn target(request: &RegisterRequest) -> Result<EnvTarget, ApiError> {
    let mut problems = Vec::new();
    let name = &request.name;
    let name_ok = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'));
    if !name_ok {
        problems.push(problem(
            "name",
            format!("name must be 1 to 64 characters of a-z, 0-9, '-', '_' or '.', starting with a letter or digit; got '{name}'"),
        ));
    }
    match request.protocol.as_deref() {
        None | Some("hud-0.5-mcp") => {}
        Some("hud-0.6") => return hud06_target(request, problems),
        Some(other) => problems.push(problem(
            "protocol",
            format!(
                "protocol must be \"hud-0.5-mcp\" (MCP, the default) or \"hud-0.6\", got '{other}'"
            ),
        )),
    }
    if request.address.is_some() {
        problems.push(problem(
            "address",
            "address is for hud 0.6 environments (\"protocol\": \"hud-0.6\"); an MCP environment has a url",
        ));
    }
    let target = match (&request.command, &request.url) {
        (Some(command), None) => {
            if command.is_empty() || command[0].trim().is_empty() {
                problems.push(problem(
                    "command",
                    "command must name a program, e.g. [\"python\", \"env.py\"]",
                ));
            }
            Some(EnvTarget::Command {
                command: command.clone(),
                cwd: request.cwd.clone().map(Into::into),
                env: request.env.clone(),
                limits: None,
            })
        }
        (None, Some(url)) => {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                problems.push(problem(
                    "url",
                    format!("url must be an http:// or https:// MCP endpoint, got '{url}'"),
                ));
            }
            Some(EnvTarget::Url {
                url: url.clone(),
                headers: request.headers.clone(),
            })
        }
        (Some(_), Some(_)) => {
            problems.push(problem(
                "command",
                "give either command (stdio) or url (streamable HTTP), not both",
            ));
            None
        }
        (None, None) => {
            problems.push(problem("command", "give command (a program spoken to over stdio) or url (a streamable-HTTP MCP endpoint)"));
            None
        }
    };
    match target {
        Some(target) if problems.is_empty() => Ok(target),
        _ => Err(ApiError::invalid(problems)),
    }
}

/// The target of a hud 0.6 environment: a command that announces its port
/// (`python -m hud.environment.server env.py --port 0`) or the address of a running one.
fn hud06_target(
    request: &RegisterRequest,
    mut problems: Vec<serde_json::Value>,
) -> Result<EnvTarget, ApiError> {
    if request.url.is_some() {
        problems.push(problem(
            "url",
            "a hud 0.6 environment is not an MCP endpoint: give command or address",
        ));
    }
    let protocol = rollout_mcp::Hud06Protocol::Hud06;
    let target = match (&request.command, &request.address) {
        (Some(command), None) => {
            if command.is_empty() || command[0].trim().is_empty() {
                problems.push(problem(
                    "command",
                    "command must name a program, e.g. [\"python\", \"-m\", \"hud.environment.server\", \"env.py\", \"--port\", \"0\"]",
                ));
            }
            Some(EnvTarget::Hud06Command {
                protocol,
                command: command.clone(),
                cwd: request.cwd.clone().map(Into::into),
                env: request.env.clone(),
                limits: None,
            })
        }
        (None, Some(address)) => {
            let bare = address.strip_prefix("tcp://").unwrap_or(address);
            let valid = bare.rsplit_once(':').is_some_and(|(host, port)| {
                !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0)
            });
            if !valid {
                problems.push(problem(
                    "address",
                    format!("address must be tcp://HOST:PORT, got '{address}'"),
                ));
            }
            Some(EnvTarget::Hud06Address {
                protocol,
                address: address.clone(),
            })
        }
        _ => {
            problems.push(problem(
                "command",
                "a hud 0.6 environment needs exactly one of command (a program that announces HUD_SERVE_PORT=) or address (tcp://HOST:PORT)",
            ));
            None
        }
    };
    match target {
        Some(target) if problems.is_empty() => Ok(target),
        _ => Err(ApiError::invalid(problems)),
    }
}

/// `GET /v1/environments`: the newest version of each environment.
pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<EnvironmentList>, ApiError> {
    let latest = state.store.list_environments(&caller.project_id).await?;
    Ok(Json(EnvironmentList {
        environments: latest.iter().map(views::environment_line).collect(),
    }))
}

/// `GET /v1/environments/{name}`: tools, scenarios with their argument schemas, versions.
pub(crate) async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Json<EnvironmentDetail>, ApiError> {
    let versions = state.store.env_versions(&caller.project_id, &name).await?;
    if versions.is_empty() {
        return Err(ApiError::not_found(
            "environment_not_found",
            format!("environment '{name}' not found"),
        ));
    }
    Ok(Json(EnvironmentDetail {
        environment: views::environment(&name, &versions),
        mcp_url: crate::gateway::mcp_url(&state, &name),
    }))
}
