//! Tasksets: create, import (JSON array or JSONL, hud's task format), add and remove tasks,
//! list, get, export (JSONL), delete. Every task is checked against its scenario before
//! anything is stored; one bad task stores nothing.

use super::checks;
use crate::auth::Caller;
use crate::error::{ApiError, problem};
use crate::json::{ApiJson, ApiQuery};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use rollout_domain::Task;
use rollout_domain::time::rfc3339_from_ms;
use rollout_store::{EnvVersion, StoredTask, TasksetRecord};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

/// Most tasks in one taskset.
const MAX_TASKS: usize = 10_000;

pub(crate) use rollout_api::tasksets::{
    AddTasks as AddRequest, CreateTaskset as CreateRequest, ImportQuery,
};
use rollout_api::tasksets::{Imported, Taskset, TasksetList};

/// `POST /v1/tasksets`: 201 with the taskset, 409 if the name is taken, 422 listing every
/// bad task.
pub(crate) async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(request): ApiJson<CreateRequest>,
) -> Result<(StatusCode, Json<Taskset>), ApiError> {
    check_name(&request.name)?;
    let items: Vec<(String, Value)> = request
        .tasks
        .into_iter()
        .enumerate()
        .map(|(i, value)| (format!("tasks[{i}]"), value))
        .collect();
    let tasks = checked_tasks(&state, &caller.project_id, &[], items).await?;
    let created = state
        .store
        .create_taskset(
            &caller.project_id,
            &request.name,
            &request.description,
            &tasks,
        )
        .await?
        .ok_or_else(|| taken(&request.name))?;
    Ok((StatusCode::CREATED, Json(taskset_view(&created, None))))
}

/// `POST /v1/tasksets/{name}/import`: a JSON array of tasks or JSONL (one task per line;
/// blank lines skipped). Creates the taskset if it does not exist. All or nothing: a 422
/// lists every bad line with its number.
pub(crate) async fn import(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    ApiQuery(query): ApiQuery<ImportQuery>,
    body: Bytes,
) -> Result<(StatusCode, Json<Imported>), ApiError> {
    check_name(&name)?;
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::bad_request("the body is not UTF-8 text"))?;
    let items = split_import(text)?;
    let count = items.len();
    let existing = match state.store.get_taskset(&caller.project_id, &name).await? {
        Some(taskset) => state.store.taskset_tasks(&taskset.id).await?,
        None => Vec::new(),
    };
    let tasks = checked_tasks(&state, &caller.project_id, &existing, items).await?;
    let description = query.description.unwrap_or_default();
    let (status, taskset) = match state
        .store
        .add_tasks(&caller.project_id, &name, &tasks)
        .await?
    {
        Some(taskset) => (StatusCode::OK, taskset),
        None => (
            StatusCode::CREATED,
            state
                .store
                .create_taskset(&caller.project_id, &name, &description, &tasks)
                .await?
                .ok_or_else(|| taken(&name))?,
        ),
    };
    let view = Imported {
        taskset: taskset_view(&taskset, None),
        imported: count,
    };
    Ok((status, Json(view)))
}

/// `POST /v1/tasksets/{name}/tasks`: appends tasks, all or nothing.
pub(crate) async fn add(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    ApiJson(request): ApiJson<AddRequest>,
) -> Result<Json<Taskset>, ApiError> {
    let taskset = find(&state, &caller, &name).await?;
    let existing = state.store.taskset_tasks(&taskset.id).await?;
    let items = request
        .tasks
        .into_iter()
        .enumerate()
        .map(|(i, value)| (format!("tasks[{i}]"), value))
        .collect();
    let tasks = checked_tasks(&state, &caller.project_id, &existing, items).await?;
    let taskset = state
        .store
        .add_tasks(&caller.project_id, &name, &tasks)
        .await?
        .ok_or_else(|| not_found(&name))?;
    let tasks = state.store.taskset_tasks(&taskset.id).await?;
    Ok(Json(taskset_view(&taskset, Some(&tasks))))
}

/// `DELETE /v1/tasksets/{name}/tasks/{task_id}`.
pub(crate) async fn remove_task(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((name, task_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    find(&state, &caller, &name).await?;
    if state
        .store
        .remove_task(&caller.project_id, &name, &task_id)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(
            "task_not_found",
            format!("taskset '{name}' has no task '{task_id}'"),
        ))
    }
}

/// `GET /v1/tasksets`.
pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<TasksetList>, ApiError> {
    let tasksets = state.store.list_tasksets(&caller.project_id).await?;
    let tasksets = tasksets.iter().map(|t| taskset_view(t, None)).collect();
    Ok(Json(TasksetList { tasksets }))
}

/// `GET /v1/tasksets/{name}`: the taskset and its tasks.
pub(crate) async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Json<Taskset>, ApiError> {
    let taskset = find(&state, &caller, &name).await?;
    let tasks = state.store.taskset_tasks(&taskset.id).await?;
    Ok(Json(taskset_view(&taskset, Some(&tasks))))
}

/// `GET /v1/tasksets/{name}/export`: the tasks as JSONL, in hud's format.
pub(crate) async fn export(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let taskset = find(&state, &caller, &name).await?;
    let tasks = state.store.taskset_tasks(&taskset.id).await?;
    let mut body = String::new();
    for stored in &tasks {
        let line = serde_json::to_string(&stored.task).map_err(ApiError::internal)?;
        body.push_str(&line);
        body.push('\n');
    }
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response())
}

/// `DELETE /v1/tasksets/{name}`: the jobs and runs made from it stay.
pub(crate) async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    if state
        .store
        .delete_taskset(&caller.project_id, &name)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(&name))
    }
}

/// A taskset of the caller's project, or 404.
pub(crate) async fn find(
    state: &AppState,
    caller: &Caller,
    name: &str,
) -> Result<TasksetRecord, ApiError> {
    state
        .store
        .get_taskset(&caller.project_id, name)
        .await?
        .ok_or_else(|| not_found(name))
}

fn not_found(name: &str) -> ApiError {
    ApiError::not_found("taskset_not_found", format!("taskset '{name}' not found"))
}

fn taken(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "taskset_exists",
        format!("a taskset named '{name}' already exists; import into it or delete it first"),
    )
}

fn check_name(name: &str) -> Result<(), ApiError> {
    let valid = !name.is_empty()
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(())
    } else {
        Err(ApiError::invalid(vec![problem(
            "name",
            format!("taskset name '{name}' must be 1 to 100 letters, digits, '-', '_' or '.'"),
        )]))
    }
}

/// Splits an import body into `(where, task JSON)`: a JSON array (`item N`) or JSONL
/// (`line N`, blank lines skipped). A line that is not JSON is a problem of its own.
fn split_import(text: &str) -> Result<Vec<(String, Value)>, ApiError> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        let items: Vec<Value> = serde_json::from_str(trimmed).map_err(|error| {
            ApiError::bad_request(format!("the body is not a valid JSON array: {error}"))
        })?;
        return Ok(items
            .into_iter()
            .enumerate()
            .map(|(i, value)| (format!("item {}", i + 1), value))
            .collect());
    }
    let mut items = Vec::new();
    let mut problems = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(line) {
            Ok(value) => items.push((format!("line {}", i + 1), value)),
            Err(error) => problems.push(line_problem(i + 1, "task", format!("not JSON: {error}"))),
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::invalid(problems));
    }
    Ok(items)
}

fn line_problem(line: usize, field: &str, message: String) -> Value {
    let mut value = problem(field, format!("line {line}: {message}"));
    value["line"] = json!(line);
    value
}

/// Parses and checks each task (environment, scenario, arguments, id unique) and gives each
/// an id. Every problem of every task comes back in one 422; `where_` prefixes each problem
/// (`line 3`, `item 2` or `tasks[1]`), and JSONL problems carry their `line` number.
pub(crate) async fn checked_tasks(
    state: &AppState,
    project_id: &str,
    existing: &[StoredTask],
    items: Vec<(String, Value)>,
) -> Result<Vec<(String, Task)>, ApiError> {
    if existing.len() + items.len() > MAX_TASKS {
        return Err(ApiError::invalid(vec![problem(
            "tasks",
            format!("a taskset holds at most {MAX_TASKS} tasks"),
        )]));
    }
    let mut ids: HashSet<String> = existing.iter().map(|t| t.id.clone()).collect();
    let mut versions: BTreeMap<String, Result<Arc<EnvVersion>, String>> = BTreeMap::new();
    let mut problems = Vec::new();
    let mut tasks = Vec::new();
    let mut next_position = existing.iter().map(|t| t.position + 1).max().unwrap_or(0);
    for (where_, value) in items {
        let line = where_
            .strip_prefix("line ")
            .and_then(|n| n.parse::<usize>().ok());
        let mut report = |field: &str, message: String| {
            let mut value = problem(field, format!("{where_}: {message}"));
            if let Some(line) = line {
                value["line"] = json!(line);
            }
            value["at"] = json!(where_);
            problems.push(value);
        };
        let mut task: Task = match serde_json::from_value(value) {
            Ok(task) => task,
            Err(error) => {
                report("task", format!("not a task: {error}"));
                continue;
            }
        };
        let id = match task.id.clone() {
            Some(id) if id.trim().is_empty() => {
                report("id", "id must not be empty".into());
                continue;
            }
            Some(id) => id,
            None => {
                let mut id = format!("t{next_position}");
                while ids.contains(&id) {
                    id = rollout_domain::new_id();
                }
                id
            }
        };
        next_position += 1;
        if !ids.insert(id.clone()) {
            report("id", format!("task id '{id}' is used twice"));
            continue;
        }
        if !versions.contains_key(&task.env) {
            let resolved = checks::serving_version(&state.store, project_id, &task.env, None, None)
                .await
                .map_err(|error| error.message);
            versions.insert(task.env.clone(), resolved);
        }
        let version = match versions.get(&task.env) {
            Some(Ok(version)) => version,
            Some(Err(message)) => {
                report("env", message.clone());
                continue;
            }
            None => continue,
        };
        let scenario = match checks::find_scenario(version, &task.scenario) {
            Ok(scenario) => scenario,
            Err(error) => {
                report("scenario", error.message);
                continue;
            }
        };
        for args_problem in checks::args_problems(version, &scenario, &task.args, "args") {
            let field = args_problem["field"].as_str().unwrap_or("args").to_string();
            let message = args_problem["message"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            report(&field, message);
        }
        task.id = Some(id.clone());
        tasks.push((id, task));
    }
    if !problems.is_empty() {
        return Err(ApiError::invalid(problems));
    }
    Ok(tasks)
}

/// A taskset, with its tasks when given.
pub(crate) fn taskset_view(taskset: &TasksetRecord, tasks: Option<&[StoredTask]>) -> Taskset {
    Taskset {
        name: taskset.name.clone(),
        description: taskset.description.clone(),
        task_count: taskset.task_count,
        created_at: rfc3339_from_ms(taskset.created_at_ms),
        updated_at: rfc3339_from_ms(taskset.updated_at_ms),
        tasks: tasks.map(|tasks| tasks.iter().map(|t| t.task.clone()).collect()),
    }
}
