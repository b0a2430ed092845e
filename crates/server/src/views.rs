//! Response shapes: the public JSON contract of runs, traces and environments.

pub(crate) mod review_queues;
pub(crate) mod reviews;
pub(crate) mod shares;

use crate::state::AppState;
use rollout_domain::time::rfc3339_from_ms;
use rollout_domain::{EnvDescription, RunEvent};
use rollout_store::{EnvVersion, RunRecord};
use serde_json::{Map, Value, json};

/// The short form of a run: what `sync` returns and what lists show.
pub(crate) fn run_summary(state: &AppState, run: &RunRecord) -> Value {
    json!({
        "trace_id": run.id,
        "trace_url": state.trace_url(run.id.as_str()),
        "status": run.status,
        "env_name": run.spec.env_name,
        "scenario_name": run.spec.scenario_name,
        "model": run.spec.model,
        "reward": run.reward,
        "final_response": run.final_response,
        "outcome": run.outcome,
        "steps_taken": run.steps,
        "duration_seconds": duration_seconds(run),
        "cost_usd": cost_usd(state, run),
        "error": run.error,
        "created_at": rfc3339_from_ms(run.created_at_ms),
    })
}

/// The whole trace: the run, its evaluation, usage and every event.
pub(crate) fn trace(
    state: &AppState,
    run: &RunRecord,
    events: &[RunEvent],
    queue_position: Option<i64>,
) -> Value {
    let mut trace = run_summary(state, run);
    let extra = json!({
        "env_version": run.spec.env_version,
        "scenario_args": run.spec.scenario_args,
        "max_steps": run.spec.max_steps,
        "system_prompt": run.spec.system_prompt,
        "metadata": run.spec.metadata,
        "evaluation": run.evaluation,
        "usage": {
            "input_tokens": run.usage.input_tokens,
            "output_tokens": run.usage.output_tokens,
            "cache_read_tokens": run.usage.cache_read_tokens,
            "cache_write_tokens": run.usage.cache_write_tokens,
            "total_tokens": run.usage.total(),
        },
        "attempts": run.attempts,
        "queue_position": queue_position,
        "started_at": run.started_at_ms.map(rfc3339_from_ms),
        "finished_at": run.finished_at_ms.map(rfc3339_from_ms),
        "events": events.iter().map(event).collect::<Vec<_>>(),
    });
    merge(&mut trace, extra);
    trace
}

/// One event with an RFC 3339 timestamp next to its unix milliseconds.
pub(crate) fn event(event: &RunEvent) -> Value {
    let mut value = serde_json::to_value(event).unwrap_or(Value::Null);
    if let Some(object) = value.as_object_mut() {
        object.insert("at".into(), Value::String(rfc3339_from_ms(event.at_ms)));
    }
    value
}

fn duration_seconds(run: &RunRecord) -> Option<f64> {
    let started = run.started_at_ms?;
    let ended = run.finished_at_ms?;
    Some((ended - started) as f64 / 1000.0)
}

fn merge(into: &mut Value, from: Value) {
    if let (Some(into), Value::Object(from)) = (into.as_object_mut(), from) {
        into.extend(from);
    }
}

/// One environment version. Header and environment-variable values of the source are
/// redacted: they may hold credentials.
pub(crate) fn env_version(version: &EnvVersion) -> Value {
    json!({
        "version": version.version,
        "status": version.status,
        "source": redact_source(&version.source),
        "error": version.error,
        "created_at": rfc3339_from_ms(version.created_at_ms),
    })
}

/// An environment: its newest version's offer plus the version list.
pub(crate) fn environment(name: &str, versions: &[EnvVersion]) -> Value {
    let serving = versions
        .iter()
        .find(|v| v.status == rollout_store::EnvStatus::Ready);
    let description = serving
        .and_then(|v| v.description.clone())
        .unwrap_or_default();
    json!({
        "name": name,
        "status": if serving.is_some() { "ready" } else { "failed" },
        "serving_version": serving.map(|v| v.version),
        "server_name": description.server_name,
        "tools": description.tools,
        "scenarios": scenarios(&description),
        "versions": versions.iter().map(env_version).collect::<Vec<_>>(),
    })
}

/// A line of the environment list.
pub(crate) fn environment_line(latest: &EnvVersion) -> Value {
    let description = latest.description.clone().unwrap_or_default();
    json!({
        "name": latest.name,
        "latest_version": latest.version,
        "status": latest.status,
        "tools": description.tools.iter().map(|t| t.name.clone()).collect::<Vec<_>>(),
        "scenarios": description.scenarios.iter().map(|s| s.name.clone()).collect::<Vec<_>>(),
        "error": latest.error,
        "created_at": rfc3339_from_ms(latest.created_at_ms),
    })
}

fn scenarios(description: &EnvDescription) -> Vec<Value> {
    description
        .scenarios
        .iter()
        .map(|s| {
            let mut view = json!({
                "name": s.name,
                "id": s.id,
                "description": s.description,
                "arguments": s.arguments,
                "args_schema": s.args_schema,
            });
            // The structured answer's schema (hud's `returns=`), when the scenario has one.
            if let Some(returns) = s.meta.get("returns_schema").filter(|r| r.is_object()) {
                view["returns_schema"] = returns.clone();
            }
            view
        })
        .collect()
}

fn redact_source(source: &Value) -> Value {
    let mut source = source.clone();
    for key in ["headers", "env"] {
        if let Some(Value::Object(map)) = source.get_mut(key) {
            let redacted: Map<String, Value> = map
                .keys()
                .map(|k| (k.clone(), Value::String("***".into())))
                .collect();
            *map = redacted;
        }
    }
    source
}

/// What the run's model calls cost, in USD, when the model's price is known.
pub(crate) fn cost_usd(state: &AppState, run: &RunRecord) -> Option<f64> {
    let price = state.catalog.price(&run.project_id, &run.spec.model)?;
    // Rounded to a millionth of a dollar, so JSON shows 0.0123 rather than float noise.
    Some((price.cost(&run.usage) * 1e6).round() / 1e6)
}
