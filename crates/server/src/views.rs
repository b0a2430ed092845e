//! Response shapes: the typed views of `rollout_api` built from the store's records.

pub(crate) mod review_queues;
pub(crate) mod reviews;
pub(crate) mod shares;

use crate::state::AppState;
use rollout_api::environments::{
    EnvVersion as EnvVersionView, Environment, EnvironmentLine, Scenario,
};
use rollout_api::runs::{Event, RunSummary, Trace, TraceUsage};
use rollout_domain::time::rfc3339_from_ms;
use rollout_domain::{EnvDescription, RunEvent};
use rollout_store::{EnvVersion, RunRecord};
use serde_json::{Map, Value};

/// The short form of a run: what `sync` returns and what lists show.
pub(crate) fn run_summary(state: &AppState, run: &RunRecord) -> RunSummary {
    RunSummary {
        trace_id: run.id.clone(),
        trace_url: state.trace_url(run.id.as_str()),
        status: run.status,
        env_name: run.spec.env_name.clone(),
        scenario_name: run.spec.scenario_name.clone(),
        model: run.spec.model.clone(),
        reward: run.reward,
        final_response: run.final_response.clone(),
        outcome: run.outcome.clone(),
        steps_taken: run.steps,
        duration_seconds: duration_seconds(run),
        cost_usd: cost_usd(state, run),
        error: run.error.clone(),
        created_at: rfc3339_from_ms(run.created_at_ms),
    }
}

/// The whole trace: the run, its evaluation, usage and the given events (`None`: left
/// out).
pub(crate) fn trace(
    state: &AppState,
    run: &RunRecord,
    events: Option<&[RunEvent]>,
    queue_position: Option<i64>,
) -> Trace {
    Trace {
        summary: run_summary(state, run),
        env_version: run.spec.env_version,
        scenario_args: run.spec.scenario_args.clone(),
        max_steps: run.spec.max_steps,
        system_prompt: run.spec.system_prompt.clone(),
        metadata: run.spec.metadata.clone(),
        evaluation: run.evaluation.clone(),
        usage: TraceUsage {
            input_tokens: run.usage.input_tokens,
            output_tokens: run.usage.output_tokens,
            cache_read_tokens: run.usage.cache_read_tokens,
            cache_write_tokens: run.usage.cache_write_tokens,
            total_tokens: run.usage.total(),
        },
        attempts: run.attempts,
        queue_position,
        started_at: run.started_at_ms.map(rfc3339_from_ms),
        finished_at: run.finished_at_ms.map(rfc3339_from_ms),
        events: events.map(|events| events.iter().map(event).collect()),
        events_next_after: None,
    }
}

/// One event with an RFC 3339 timestamp next to its unix milliseconds.
pub(crate) fn event(event: &RunEvent) -> Event {
    let mut fields = match serde_json::to_value(&event.kind) {
        Ok(Value::Object(fields)) => fields,
        _ => Map::new(),
    };
    let kind = match fields.remove("type") {
        Some(Value::String(kind)) => kind,
        _ => String::new(),
    };
    Event {
        seq: event.seq,
        at_ms: event.at_ms,
        attempt: event.attempt,
        kind,
        at: rfc3339_from_ms(event.at_ms),
        fields,
    }
}

fn duration_seconds(run: &RunRecord) -> Option<f64> {
    let started = run.started_at_ms?;
    let ended = run.finished_at_ms?;
    Some((ended - started) as f64 / 1000.0)
}

/// One environment version. Header and environment-variable values of the source are
/// redacted: they may hold credentials.
pub(crate) fn env_version(version: &EnvVersion) -> EnvVersionView {
    EnvVersionView {
        version: version.version,
        status: version.status.as_str().to_string(),
        source: redact_source(&version.source),
        error: version.error.clone(),
        created_at: rfc3339_from_ms(version.created_at_ms),
    }
}

/// An environment: its newest version's offer plus the version list.
pub(crate) fn environment(name: &str, versions: &[EnvVersion]) -> Environment {
    let serving = versions
        .iter()
        .find(|v| v.status == rollout_store::EnvStatus::Ready);
    let description = serving
        .and_then(|v| v.description.clone())
        .unwrap_or_default();
    Environment {
        name: name.to_string(),
        status: if serving.is_some() { "ready" } else { "failed" }.to_string(),
        serving_version: serving.map(|v| v.version),
        server_name: description.server_name.clone(),
        scenarios: scenarios(&description),
        tools: description.tools,
        versions: versions.iter().map(env_version).collect(),
    }
}

/// A line of the environment list.
pub(crate) fn environment_line(latest: &EnvVersion) -> EnvironmentLine {
    let description = latest.description.clone().unwrap_or_default();
    EnvironmentLine {
        name: latest.name.clone(),
        latest_version: latest.version,
        status: latest.status.as_str().to_string(),
        tools: description.tools.iter().map(|t| t.name.clone()).collect(),
        scenarios: description
            .scenarios
            .iter()
            .map(|s| s.name.clone())
            .collect(),
        error: latest.error.clone(),
        created_at: rfc3339_from_ms(latest.created_at_ms),
    }
}

fn scenarios(description: &EnvDescription) -> Vec<Scenario> {
    description
        .scenarios
        .iter()
        .map(|s| Scenario {
            name: s.name.clone(),
            id: s.id.clone(),
            description: s.description.clone(),
            arguments: s.arguments.clone(),
            args_schema: s.args_schema.clone(),
            // The structured answer's schema (hud's `returns=`), when the scenario has one.
            returns_schema: s
                .meta
                .get("returns_schema")
                .filter(|r| r.is_object())
                .cloned(),
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
