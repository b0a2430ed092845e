//! `/traces` (a filterable list) and `/traces/{id}` (header, prompt, timeline of steps,
//! evaluation; live while the run is in progress).

use super::Page;
use super::html::{duration_ms, esc, layout, pretty, reward, status_badge, time, url_encode};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::routes::traces::ListQuery;
use crate::state::AppState;
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::response::Html;
use rollout_domain::{EventKind, RunEvent, RunStatus};
use rollout_store::RunRecord;
use serde_json::Value;
use std::fmt::Write as _;

fn run_duration(run: &RunRecord) -> Option<i64> {
    Some(run.finished_at_ms? - run.started_at_ms?)
}

/// The filterable list of traces, newest first.
pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<ListQuery>,
) -> Page {
    let filter = query.to_query();
    let (runs, problem) = match &filter {
        Ok(filter) => (
            state.store.search_runs(&caller.project_id, filter).await?,
            None,
        ),
        Err(error) => (Vec::new(), Some(error.message.clone())),
    };
    let value = |v: &Option<String>| esc(v.as_deref().unwrap_or(""));
    let status_options: String = std::iter::once("")
        .chain(RunStatus::ALL.iter().map(|s| s.as_str()))
        .map(|s| {
            let selected = if query.status.as_deref() == Some(s) {
                " selected"
            } else {
                ""
            };
            format!(
                "<option value=\"{s}\"{selected}>{}</option>",
                if s.is_empty() { "any" } else { s }
            )
        })
        .collect();
    let mut body = format!(
        r#"<h1>Traces</h1>
<form class="card filters" method="get" action="/traces">
<div><label for="f-status">Status</label><select id="f-status" name="status">{status_options}</select></div>
<div><label for="f-env">Environment</label><input id="f-env" name="env_name" value="{env}"></div>
<div><label for="f-scenario">Scenario</label><input id="f-scenario" name="scenario_name" value="{scenario}"></div>
<div><label for="f-model">Model</label><input id="f-model" name="model" value="{model}"></div>
<div><label for="f-rmin">Reward ≥</label><input id="f-rmin" name="reward_min" value="{rmin}" inputmode="decimal"></div>
<div><label for="f-rmax">Reward ≤</label><input id="f-rmax" name="reward_max" value="{rmax}" inputmode="decimal"></div>
<div><label for="f-tmin">Tokens ≥</label><input id="f-tmin" name="tokens_min" value="{tmin}" inputmode="numeric"></div>
<div><label for="f-dmax">Duration ≤ (s)</label><input id="f-dmax" name="duration_max" value="{dmax}" inputmode="decimal"></div>
<div><label for="f-label">Label</label><input id="f-label" name="label" value="{label}"></div>
<div><label for="f-reviewed">Reviewed</label><select id="f-reviewed" name="reviewed">{reviewed_options}</select></div>
{job_field}<div><button type="submit">Filter</button> <a href="/traces" class="small">clear</a></div>
</form>"#,
        job_field = query
            .job_id
            .as_deref()
            .filter(|j| !j.is_empty())
            .map(|j| format!(
                "<div><input type=\"hidden\" name=\"job_id\" value=\"{0}\"><span class=\"small\" id=\"job-filter\">job <a href=\"/jobs/{0}\">{1}</a></span></div>",
                esc(j),
                esc(j.get(..8).unwrap_or(j))
            ))
            .unwrap_or_default(),
        env = value(&query.env_name),
        scenario = value(&query.scenario_name),
        model = value(&query.model),
        rmin = value(&query.reward_min),
        rmax = value(&query.reward_max),
        tmin = value(&query.tokens_min),
        dmax = value(&query.duration_max),
        label = value(&query.label),
        reviewed_options = [("", "any"), ("true", "reviewed"), ("false", "not reviewed")]
            .iter()
            .map(|(v, text)| {
                let selected = if query.reviewed.as_deref().unwrap_or("") == *v {
                    " selected"
                } else {
                    ""
                };
                format!("<option value=\"{v}\"{selected}>{text}</option>")
            })
            .collect::<String>(),
    );
    let ids: Vec<String> = runs.iter().map(|run| run.id.to_string()).collect();
    let reviews = state
        .store
        .review_summaries(&caller.project_id, &ids)
        .await?;
    if let Some(problem) = problem {
        let _ = write!(body, "<p class=\"error-text\">{}</p>", esc(&problem));
    }
    body.push_str("<div class=\"card table-wrap\"><table id=\"traces\"><thead><tr><th>Created</th><th>Status</th><th>Environment · scenario</th><th>Model</th><th class=\"num\">Reward</th><th class=\"num\">Steps</th><th class=\"num\">Duration</th><th class=\"num\">Tokens in / out</th><th>Review</th></tr></thead><tbody>");
    for run in &runs {
        let _ = write!(
            body,
            "<tr><td class=\"small\"><a href=\"/traces/{id}\">{created}</a></td><td>{status}</td><td><a href=\"/environments/{env}\">{env}</a> · <a href=\"/environments/{env}#scenario-{scenario}\">{scenario}</a></td><td>{model}</td><td class=\"num\">{reward}</td><td class=\"num\">{steps}</td><td class=\"num\">{duration}</td><td class=\"num\">{input} / {output}</td><td class=\"review-cell\">{review}</td></tr>",
            id = esc(run.id.as_str()),
            created = time(run.created_at_ms),
            status = status_badge(run.status.as_str()),
            env = esc(&run.spec.env_name),
            scenario = esc(&run.spec.scenario_name),
            model = esc(&run.spec.model),
            reward = reward(run.reward),
            steps = run.steps,
            duration = run_duration(run)
                .map(duration_ms)
                .unwrap_or_else(|| "–".into()),
            input = run.usage.input_tokens,
            output = run.usage.output_tokens,
            review = reviews
                .get(run.id.as_str())
                .map(|review| {
                    let mut cell = String::new();
                    if review.reviewed {
                        cell.push_str("<span class=\"reviewed-mark\" title=\"reviewed\">✓</span> ");
                    }
                    for label in &review.labels {
                        let _ = write!(cell, "<span class=\"chip\">{}</span>", esc(label));
                    }
                    cell
                })
                .unwrap_or_default(),
        );
    }
    if runs.is_empty() {
        body.push_str("<tr><td colspan=\"9\" class=\"muted\">No traces match.</td></tr>");
    }
    body.push_str("</tbody></table></div>");
    if let Ok(filter) = &filter
        && runs.len() as i64 == filter.limit
        && let Some(last) = runs.last()
    {
        let mut params: Vec<(&str, &Option<String>)> = vec![
            ("status", &query.status),
            ("env_name", &query.env_name),
            ("scenario_name", &query.scenario_name),
            ("model", &query.model),
            ("reward_min", &query.reward_min),
            ("reward_max", &query.reward_max),
            ("tokens_min", &query.tokens_min),
            ("duration_max", &query.duration_max),
            ("job_id", &query.job_id),
            ("label", &query.label),
            ("reviewed", &query.reviewed),
        ];
        params.retain(|(_, v)| v.as_deref().is_some_and(|v| !v.is_empty()));
        let mut href = format!("/traces?cursor={}", url_encode(last.id.as_str()));
        for (key, v) in params {
            let _ = write!(href, "&{key}={}", url_encode(v.as_deref().unwrap_or("")));
        }
        let _ = write!(
            body,
            "<p><a id=\"older\" href=\"{}\">Older traces →</a></p>",
            esc(&href)
        );
    }
    Ok(layout("Traces", "/traces", &body))
}

pub(crate) async fn load(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<(RunRecord, Vec<RunEvent>), ApiError> {
    let run = state
        .store
        .get_run(&caller.project_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("trace_not_found", format!("trace '{id}' not found")))?;
    let events = state.store.list_events(run.id.as_str(), 0, 10_000).await?;
    Ok((run, events))
}

/// The timeline alone, for the live view to refresh.
pub(crate) async fn timeline(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Page {
    let (_, events) = load(&state, &caller, &id).await?;
    Ok(Html(render_timeline(&events)))
}

/// One trace, with the review panel.
pub(crate) async fn page(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Page {
    let (run, events) = load(&state, &caller, &id).await?;
    let mut body = String::from("<p class=\"small\"><a href=\"/traces\">← Traces</a></p>");
    body.push_str(&trace_body(&state, &run, &events));
    body.push_str(&super::review::panel(&state, &caller, &run).await?);
    if !run.status.is_terminal() {
        let _ = write!(
            body,
            "<script src=\"/assets/live.js\" data-trace=\"{}\"></script>",
            esc(run.id.as_str())
        );
    }
    Ok(layout("Trace", "/traces", &body))
}

/// The trace itself: header, stats, arguments, final answer and timeline (the trace page
/// and the review queue page).
pub(crate) fn trace_body(state: &AppState, run: &RunRecord, events: &[RunEvent]) -> String {
    let live = !run.status.is_terminal();
    let stat = |label: &str, value: String, id: &str| {
        format!(
            "<div class=\"stat\" id=\"stat-{id}\"><div class=\"label\">{label}</div><div class=\"value\">{value}</div></div>"
        )
    };
    let env = esc(&run.spec.env_name);
    let scenario = esc(&run.spec.scenario_name);
    let mut body = format!(
        "<h1><a href=\"/environments/{env}\">{env}</a> · <a href=\"/environments/{env}#scenario-{scenario}\">{scenario}</a> {status}{live}</h1><p class=\"muted small\">trace <code>{id}</code> · created {created}</p>",
        status = status_badge(run.status.as_str()),
        live = if live {
            " <span class=\"live\" id=\"live\">● live</span>"
        } else {
            ""
        },
        id = esc(run.id.as_str()),
        created = time(run.created_at_ms),
    );
    body.push_str("<section class=\"card\"><div class=\"stats\">");
    body.push_str(&stat("Reward", reward(run.reward), "reward"));
    body.push_str(&stat("Model", esc(&run.spec.model), "model"));
    body.push_str(&stat("Steps", run.steps.to_string(), "steps"));
    body.push_str(&stat(
        "Duration",
        run_duration(run)
            .map(duration_ms)
            .unwrap_or_else(|| "–".into()),
        "duration",
    ));
    body.push_str(&stat(
        "Input tokens",
        run.usage.input_tokens.to_string(),
        "input-tokens",
    ));
    body.push_str(&stat(
        "Output tokens",
        run.usage.output_tokens.to_string(),
        "output-tokens",
    ));
    if let Some(cost) = crate::views::cost_usd(state, run) {
        body.push_str(&stat("Cost", format!("${cost:.4}"), "cost"));
    }
    if let Some(outcome) = &run.outcome {
        body.push_str(&stat("Outcome", esc(outcome), "outcome"));
    }
    body.push_str("</div>");
    if let Some(error) = &run.error {
        let _ = write!(body, "<p class=\"error-text\">{}</p>", esc(error));
    }
    let _ = write!(
        body,
        "<details><summary class=\"small\">Arguments and metadata</summary><pre class=\"light\">{}</pre></details></section>",
        pretty(&serde_json::json!({
            "scenario_args": run.spec.scenario_args,
            "max_steps": run.spec.max_steps,
            "metadata": run.spec.metadata,
            "env_version": run.spec.env_version,
        }))
    );
    if let Some(final_response) = &run.final_response {
        let _ = write!(
            body,
            "<section class=\"card\"><h3>Final answer</h3><div class=\"text\" id=\"final-response\">{}</div></section>",
            esc(final_response)
        );
    }
    let _ = write!(
        body,
        "<h2>Timeline</h2><div id=\"timeline\">{}</div>",
        render_timeline(events)
    );
    body
}

/// Tool results are often JSON: show them pretty when they are.
fn result_text(text: &str) -> String {
    match serde_json::from_str::<Value>(text) {
        Ok(value @ (Value::Object(_) | Value::Array(_))) => pretty(&value),
        _ => esc(text),
    }
}

pub(crate) fn render_timeline(events: &[RunEvent]) -> String {
    let mut out = String::new();
    for event in events {
        match &event.kind {
            EventKind::AttemptStarted { attempt, worker } => {
                let _ = write!(
                    out,
                    "<div class=\"step meta small muted\">attempt {attempt} started on {}</div>",
                    esc(worker)
                );
            }
            EventKind::EnvConnected {
                server_name,
                version,
                duration_ms: ms,
            } => {
                let _ = write!(
                    out,
                    "<div class=\"step meta small muted\">environment {} v{version} connected in {}</div>",
                    esc(server_name),
                    duration_ms(to_i64(*ms))
                );
            }
            EventKind::Setup {
                prompt,
                tools,
                duration_ms: ms,
                ..
            } => {
                let names: Vec<String> = tools
                    .iter()
                    .map(|t| format!("<code>{}</code>", esc(&t.name)))
                    .collect();
                let _ = write!(
                    out,
                    "<div class=\"step meta\" id=\"prompt\"><div class=\"head\"><h3>Prompt</h3><span class=\"muted\">set up in {}</span></div><pre class=\"light text\">{}</pre><div class=\"small muted\">tools: {}</div></div>",
                    duration_ms(to_i64(*ms)),
                    esc(prompt),
                    names.join(", ")
                );
            }
            EventKind::ModelCall {
                step,
                response,
                usage,
                duration_ms: ms,
                stop_reason,
                ..
            } => {
                let calls: Vec<String> = response
                    .tool_calls
                    .iter()
                    .map(|c| format!("<code>{}</code>", esc(&c.name)))
                    .collect();
                let _ = write!(
                    out,
                    "<div class=\"step model\"><div class=\"head\"><h3>Step {step} · model</h3><span class=\"muted tokens\">{} in / {} out tokens · {} · {}</span></div>{}{}</div>",
                    usage.input_tokens,
                    usage.output_tokens,
                    duration_ms(to_i64(*ms)),
                    esc(stop_reason),
                    if response.content.is_empty() {
                        String::new()
                    } else {
                        format!("<div class=\"text\">{}</div>", esc(&response.content))
                    },
                    if calls.is_empty() {
                        String::new()
                    } else {
                        format!(
                            "<div class=\"small muted\">calls {}</div>",
                            calls.join(", ")
                        )
                    },
                );
            }
            EventKind::ToolCall {
                step,
                name,
                arguments,
                result,
                duration_ms: ms,
                ..
            } => {
                let class = if result.is_error {
                    "step tool error tool-error"
                } else {
                    "step tool"
                };
                let _ = write!(
                    out,
                    "<div class=\"{class}\"><details open><summary>Step {step} · tool <code>{}</code>{} <span class=\"muted small\">{}</span></summary><div class=\"small muted\">arguments</div><pre class=\"light\">{}</pre><div class=\"small muted\">result</div><pre class=\"light tool-result\">{}</pre></details></div>",
                    esc(name),
                    if result.is_error {
                        " <span class=\"badge status-failed\">error</span>"
                    } else {
                        ""
                    },
                    duration_ms(to_i64(*ms)),
                    pretty(arguments),
                    result_text(&result.text),
                );
            }
            EventKind::Answer { text, outcome } => {
                let _ = write!(
                    out,
                    "<div class=\"step model\"><div class=\"head\"><h3>Answer</h3><span class=\"muted\">{}</span></div><div class=\"text\">{}</div></div>",
                    esc(outcome),
                    esc(text)
                );
            }
            EventKind::Evaluation {
                evaluation,
                duration_ms: ms,
            } => {
                let mut subscores = String::new();
                if let Some(scores) = &evaluation.subscores {
                    subscores.push_str("<table><thead><tr><th>Subscore</th><th class=\"num\">Value</th><th class=\"num\">Weight</th></tr></thead><tbody>");
                    for score in scores {
                        let _ = write!(
                            subscores,
                            "<tr><td>{}</td><td class=\"num\">{:.3}</td><td class=\"num\">{:.2}</td></tr>",
                            esc(&score.name),
                            score.value,
                            score.weight
                        );
                    }
                    subscores.push_str("</tbody></table>");
                }
                let info = if evaluation.info.is_empty() {
                    String::new()
                } else {
                    format!(
                        "<details><summary class=\"small\">info</summary><pre class=\"light\">{}</pre></details>",
                        pretty(&Value::Object(evaluation.info.clone()))
                    )
                };
                let _ = write!(
                    out,
                    "<div class=\"step eval{}\" id=\"evaluation\"><div class=\"head\"><h3>Evaluation · reward {:.3}</h3><span class=\"muted\">{}</span></div>{}{subscores}{info}</div>",
                    if evaluation.is_error { " error" } else { "" },
                    evaluation.reward,
                    duration_ms(to_i64(*ms)),
                    evaluation
                        .content
                        .as_deref()
                        .map(|c| format!("<div class=\"text\">{}</div>", esc(c)))
                        .unwrap_or_default(),
                );
            }
            EventKind::Error { phase, message } => {
                let _ = write!(
                    out,
                    "<div class=\"step error\"><div class=\"head\"><h3>Error</h3><span class=\"muted\">{}</span></div><div class=\"text error-text\">{}</div></div>",
                    esc(phase),
                    esc(message)
                );
            }
            EventKind::Finished { status, error } => {
                let _ = write!(
                    out,
                    "<div class=\"step meta small\">finished: {}{}</div>",
                    status_badge(status),
                    error
                        .as_deref()
                        .map(|e| format!(" <span class=\"error-text\">{}</span>", esc(e)))
                        .unwrap_or_default()
                );
            }
        }
    }
    if events.is_empty() {
        out.push_str("<p class=\"muted\">No events yet.</p>");
    }
    out
}

fn to_i64(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}
