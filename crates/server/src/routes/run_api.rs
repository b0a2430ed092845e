//! The run API for automations, around `POST /v1/agent/run`: idempotency keys, callbacks
//! (request checks, the delivery log and manual redelivery) and per-run budgets.

use crate::auth::Caller;
use crate::error::{ApiError, problem};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json};
use rollout_api::runs::{Deliveries, Delivery, Redelivery};
use rollout_domain::callback::MAX_CALLBACK_RETRIES;
use rollout_domain::time::rfc3339_from_ms;
use rollout_domain::{CallbackSpec, RunId, RunSpec};
use rollout_store::{IdempotentInsert, RunRecord};
use rollout_worker::CallbackDeliverer;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The idempotency header of `POST /v1/agent/run`.
pub(crate) const IDEMPOTENCY_HEADER: &str = "idempotency-key";
/// The longest accepted idempotency key.
const MAX_KEY_LEN: usize = 255;

/// The request's `Idempotency-Key`, if any: 1 to 255 visible ASCII characters (422 else).
pub(crate) fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_HEADER) else {
        return Ok(None);
    };
    let key = value.to_str().unwrap_or_default().trim();
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::invalid(vec![problem(
            "Idempotency-Key",
            format!(
                "the Idempotency-Key header must be 1 to {MAX_KEY_LEN} visible ASCII characters"
            ),
        )]));
    }
    Ok(Some(key.to_string()))
}

/// A hash identifying a run request: SHA-256 of its JSON with object keys sorted, without
/// `sync` and `timeout` (they shape the response, not the run).
pub(crate) fn request_hash(request: Value) -> String {
    let mut request = request;
    if let Some(object) = request.as_object_mut() {
        object.remove("sync");
        object.remove("timeout");
    }
    let mut canonical = String::new();
    write_canonical(&request, &mut canonical);
    Sha256::digest(canonical.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Inserts the run, under the idempotency key when there is one. Returns the run and
/// whether this request created it (false: a replay of an earlier request with the key).
pub(crate) async fn insert(
    state: &AppState,
    caller: &Caller,
    run_id: &RunId,
    spec: &RunSpec,
    key: Option<(String, String)>,
) -> Result<(RunRecord, bool), ApiError> {
    let Some((key, hash)) = key else {
        let run = state
            .store
            .insert_run(run_id, &caller.project_id, spec)
            .await?;
        return Ok((run, true));
    };
    let ttl = state.config.idempotency_ttl;
    match state
        .store
        .insert_run_idempotent(run_id, &caller.project_id, spec, &key, &hash, ttl)
        .await?
    {
        IdempotentInsert::Inserted(run) => Ok((run, true)),
        IdempotentInsert::Existing(run) => {
            tracing::info!(run = %run.id, key = %caller.key_id, "idempotent replay of a run request");
            Ok((run, false))
        }
        IdempotentInsert::Conflict { run_id } => Err(ApiError::new(
            StatusCode::CONFLICT,
            "idempotency_key_reused",
            "this Idempotency-Key was already used with a different request body",
        )
        .with_details(json!({ "trace_id": run_id }))),
    }
}

/// Problems with a request's callback: URL scheme and destination, retry count.
pub(crate) async fn callback_problems(
    state: &AppState,
    callback: Option<&CallbackSpec>,
) -> Vec<Value> {
    let Some(callback) = callback else {
        return Vec::new();
    };
    let mut problems = Vec::new();
    if let Err(refused) =
        rollout_worker::check_destination(&callback.url, &state.config.callbacks).await
    {
        problems.push(problem("callback.url", format!("callback.url: {refused}")));
    }
    if let Some(retries) = callback.retry_count
        && retries > MAX_CALLBACK_RETRIES
    {
        problems.push(problem(
            "callback.retry_count",
            format!(
                "callback.retry_count must be between 0 and {MAX_CALLBACK_RETRIES}, got {retries}"
            ),
        ));
    }
    for name in callback.headers.keys() {
        if axum::http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            problems.push(problem(
                "callback.headers",
                format!("callback.headers: '{name}' is not a valid header name"),
            ));
        }
    }
    problems
}

/// The budgets a request asks for, checked against the server's limits. Returns the agent
/// and grading budgets in seconds, and the token budget.
pub(crate) struct Budgets {
    pub(crate) agent_timeout_seconds: u64,
    pub(crate) grading_timeout_seconds: u64,
    pub(crate) max_total_tokens: Option<u64>,
}

/// Checks `timeout_seconds`, `grading_timeout_seconds` and `max_total_tokens`.
pub(crate) fn budgets(
    state: &AppState,
    timeout_seconds: Option<i64>,
    grading_timeout_seconds: Option<i64>,
    max_total_tokens: Option<i64>,
    problems: &mut Vec<Value>,
) -> Budgets {
    let max = state.config.max_timeout_seconds;
    let mut seconds = |field: &str, asked: Option<i64>, default: u64| -> u64 {
        match asked {
            None => default,
            Some(value) => match u64::try_from(value) {
                Ok(value) if (1..=max).contains(&value) => value,
                _ => {
                    problems.push(problem(
                        field,
                        format!("{field} must be between 1 and {max} seconds, got {value}"),
                    ));
                    default
                }
            },
        }
    };
    let agent_timeout_seconds = seconds(
        "timeout_seconds",
        timeout_seconds,
        state.config.agent_timeout_seconds,
    );
    let grading_timeout_seconds = seconds(
        "grading_timeout_seconds",
        grading_timeout_seconds,
        state.config.grading_timeout_seconds,
    );
    let max_total_tokens = match max_total_tokens {
        None => None,
        Some(tokens) if tokens >= 1 => u64::try_from(tokens).ok(),
        Some(tokens) => {
            problems.push(problem(
                "max_total_tokens",
                format!("max_total_tokens must be at least 1, got {tokens}"),
            ));
            None
        }
    };
    Budgets {
        agent_timeout_seconds,
        grading_timeout_seconds,
        max_total_tokens,
    }
}

/// Starts delivering the callback of a run that ended outside a worker (a queued run
/// cancelled through the API).
pub(crate) fn spawn_callback(state: &AppState, run: RunRecord) {
    if run.spec.callback.is_none() {
        return;
    }
    let deliverer = CallbackDeliverer::new(state.store.clone(), state.config.callbacks.clone());
    tokio::spawn(async move {
        deliverer.deliver(&run, "auto").await;
    });
}

async fn get_run(state: &AppState, caller: &Caller, id: &str) -> Result<RunRecord, ApiError> {
    state
        .store
        .get_run(&caller.project_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("trace_not_found", format!("trace '{id}' not found")))
}

async fn delivery_log(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<Vec<Delivery>, ApiError> {
    Ok(state
        .store
        .list_deliveries(&caller.project_id, id)
        .await?
        .into_iter()
        .map(|d| Delivery {
            delivered: d.error.is_none(),
            created_at: rfc3339_from_ms(d.created_at_ms),
            id: d.id,
            attempt: d.attempt,
            kind: d.kind,
            url: d.url,
            status_code: d.status_code,
            latency_ms: d.latency_ms,
            error: d.error,
        })
        .collect())
}

/// `GET /v1/traces/{id}/deliveries`: every attempt to deliver the run's callback.
pub(crate) async fn deliveries(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Deliveries>, ApiError> {
    let run = get_run(&state, &caller, &id).await?;
    let log = delivery_log(&state, &caller, run.id.as_str()).await?;
    Ok(Json(Deliveries {
        callback_url: run.spec.callback.as_ref().map(|c| c.url.clone()),
        trace_id: run.id,
        deliveries: log,
    }))
}

/// `POST /v1/traces/{id}/deliveries`: sends the finished run's summary to its callback
/// again, once, and answers with the attempt (200 whether or not the receiver took it).
pub(crate) async fn redeliver(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Redelivery>, ApiError> {
    let mut run = get_run(&state, &caller, &id).await?;
    let Some(callback) = run.spec.callback.as_mut() else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "no_callback",
            format!("run '{id}' has no callback to deliver"),
        ));
    };
    callback.retry_count = Some(0);
    if !run.status.is_terminal() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "run_not_finished",
            format!(
                "run '{id}' is still {}; its callback is sent when it ends",
                run.status
            ),
        ));
    }
    let deliverer = CallbackDeliverer::new(state.store.clone(), state.config.callbacks.clone());
    let delivered = deliverer.deliver(&run, "manual").await;
    let mut log = delivery_log(&state, &caller, run.id.as_str()).await?;
    Ok(Json(Redelivery {
        trace_id: run.id,
        delivered,
        delivery: log.pop(),
    }))
}
