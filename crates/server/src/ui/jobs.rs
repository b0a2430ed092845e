//! `/jobs` (the list of evaluation jobs) and `/jobs/{id}`: progress, the metrics per model
//! and per task, the paired comparison of two models, the runs with links to their traces,
//! and the "Train model" form (a dataset of the job's successful runs, then a training job).
//! The page reads the API handlers' own views, so it shows exactly what the API returns.

use super::Page;
use super::html::{duration_ms, esc, layout, pretty, reward, script_json, status_badge, time};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::json::ApiQuery;
use crate::routes::{jobs, training};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::{Extension, Json};
use rollout_api::jobs::{Counts, JobComparison, JobHeader, ListQuery, MetricsQuery};
use rollout_domain::metrics::{JobMetrics, Summary};
use serde_json::{Value, json};
use std::fmt::Write as _;

/// Most runs listed on a job page; the rest are one click away in `/traces?job_id=`.
const MAX_LISTED_RUNS: usize = 300;

/// A number with three decimals, or a dash.
pub(super) fn num(value: Option<f64>) -> String {
    value.map_or_else(|| "–".into(), |v| format!("{v:.3}"))
}

/// A fraction as a percentage, or a dash.
fn percent(value: Option<f64>) -> String {
    value.map_or_else(|| "–".into(), |v| format!("{:.1}%", v * 100.0))
}

/// Seconds as a duration, or a dash.
fn seconds(value: Option<f64>) -> String {
    value.map_or_else(|| "–".into(), |s| duration_ms((s * 1000.0).round() as i64))
}

/// A count-like value (p50 of steps, tokens) without decimals, or a dash.
fn whole(value: Option<f64>) -> String {
    value.map_or_else(|| "–".into(), |v| format!("{}", v.round() as i64))
}

/// An RFC 3339 time of a view, shown like the other pages' times.
pub(super) fn when(value: Option<&str>) -> String {
    value
        .and_then(|t| Some(format!("{} {}", t.get(..10)?, t.get(11..19)?)))
        .map_or_else(|| "–".into(), |t| esc(&t))
}

/// The counts of a view as `done/total`, with failures and cancellations when any.
fn counts_text(counts: &Counts) -> String {
    let mut text = format!("{}/{}", counts.done + counts.failed, counts.total);
    if counts.failed > 0 {
        let _ = write!(text, " · {} failed", counts.failed);
    }
    if counts.cancelled > 0 {
        let _ = write!(text, " · {} cancelled", counts.cancelled);
    }
    text
}

fn models_text(header: &JobHeader) -> String {
    header
        .models
        .iter()
        .map(|m| esc(m))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The list of jobs, newest first.
pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Page {
    let Json(listed) = jobs::list(
        State(state),
        Extension(caller),
        ApiQuery(ListQuery {
            limit: Some(200),
            cursor: None,
        }),
    )
    .await?;
    let mut rows = String::new();
    for job in &listed.jobs {
        let id = job.header.id.as_str();
        let _ = write!(
            rows,
            "<tr><td><a href=\"/jobs/{id}\">{short}</a></td><td>{status}</td><td>{taskset}</td><td>{models}</td><td class=\"num\">{counts}</td><td class=\"small muted\">{created}</td></tr>",
            id = esc(id),
            short = esc(id.get(..8).unwrap_or(id)),
            status = status_badge(&job.status),
            taskset = esc(&job.header.taskset),
            models = models_text(&job.header),
            counts = counts_text(&job.counts),
            created = when(Some(&job.header.created_at)),
        );
    }
    if rows.is_empty() {
        rows.push_str("<tr><td colspan=\"6\" class=\"muted\">No job yet. Start one with <code>POST /v1/jobs</code> or <code>rollout eval</code>.</td></tr>");
    }
    let body = format!(
        "<h1>Jobs</h1><div class=\"table-wrap card\"><table id=\"jobs\"><thead><tr><th>Job</th><th>Status</th><th>Taskset</th><th>Models</th><th class=\"num\">Runs done/total</th><th>Created</th></tr></thead><tbody>{rows}</tbody></table></div>"
    );
    Ok(layout("Jobs", "/jobs", &body))
}

/// The header row of a metrics table.
const METRICS_HEAD: &str = "<tr><th>{first}</th><th class=\"num\">Mean reward ± s.e.</th><th class=\"num\">Success</th><th>pass@k</th><th class=\"num\">Scored / failed</th><th class=\"num\">Duration p50 / p95</th><th class=\"num\">Steps p50 / p95</th><th class=\"num\">Tokens p50 / p95</th></tr>";

/// One metrics row of a summary (a model's or a task's).
fn metrics_row(first: &str, class: &str, summary: &Summary) -> String {
    let mean = num(summary.mean_reward);
    let stderr = summary
        .reward_stderr
        .map(|s| format!(" ± {s:.3}"))
        .unwrap_or_default();
    let pass: Vec<String> = summary
        .pass_at_k
        .iter()
        .map(|(k, v)| format!("<span class=\"nowrap\">@{k}: {}</span>", num(Some(*v))))
        .collect();
    format!(
        "<tr class=\"{class}\"><td>{first}</td><td class=\"num mean-reward\">{mean}{stderr}</td><td class=\"num\">{success}</td><td class=\"small\">{pass}</td><td class=\"num\">{scored} / {failed}</td><td class=\"num\">{d50} / {d95}</td><td class=\"num\">{s50} / {s95}</td><td class=\"num\">{t50} / {t95}</td></tr>",
        success = percent(summary.success_rate),
        pass = if pass.is_empty() {
            "–".into()
        } else {
            pass.join(" · ")
        },
        scored = summary.scored,
        failed = summary.failed,
        d50 = seconds(summary.duration_seconds.p50),
        d95 = seconds(summary.duration_seconds.p95),
        s50 = whole(summary.steps.p50),
        s95 = whole(summary.steps.p95),
        t50 = whole(summary.tokens.p50),
        t95 = whole(summary.tokens.p95),
    )
}

fn metrics_section(metrics: &JobMetrics) -> String {
    let mut body = format!(
        "<h2>Metrics</h2><p class=\"small muted\">Success: reward ≥ {}. Failed runs count in the success rate and pass@k, not in the mean reward.</p><div class=\"table-wrap card\"><table id=\"metrics\" class=\"metrics\"><thead>{}</thead><tbody>",
        num(Some(metrics.threshold)),
        METRICS_HEAD.replace("{first}", "Model")
    );
    let models = &metrics.models;
    for model in models {
        body.push_str(&metrics_row(
            &format!("<strong class=\"nowrap\">{}</strong>", esc(&model.model)),
            "model-row",
            &model.summary,
        ));
    }
    if models.len() > 1 {
        body.push_str(&metrics_row(
            "<em>all models</em>",
            "overall-row",
            &metrics.overall,
        ));
    }
    if models.is_empty() {
        body.push_str("<tr><td colspan=\"8\" class=\"muted\">No finished run yet.</td></tr>");
    }
    body.push_str("</tbody></table></div>");
    for model in models {
        let name = &model.model;
        let _ = write!(
            body,
            "<details class=\"card per-task\" open><summary>Per task · {}</summary><div class=\"table-wrap\"><table class=\"tasks metrics\"><thead>{}</thead><tbody>",
            esc(name),
            METRICS_HEAD.replace("{first}", "Task")
        );
        for task in &model.tasks {
            body.push_str(&metrics_row(&esc(&task.task), "task-row", &task.summary));
        }
        body.push_str("</tbody></table></div></details>");
    }
    body
}

fn comparison_section(compared: &JobComparison) -> String {
    let comparison = &compared.comparison;
    let a = esc(&comparison.a);
    let b = esc(&comparison.b);
    let stderr = comparison
        .difference_stderr
        .map(|s| format!(" ± {s:.3}"))
        .unwrap_or_default();
    let mut body = format!(
        "<h2>Comparison</h2><section class=\"card\" id=\"comparison\"><div class=\"stats\"><div class=\"stat\"><div class=\"label\">{a} − {b}</div><div class=\"value\">{diff}{stderr}</div></div><div class=\"stat\"><div class=\"label\">Paired tasks</div><div class=\"value\">{paired}</div></div><div class=\"stat\"><div class=\"label\">Mean {a}</div><div class=\"value\">{mean_a}</div></div><div class=\"stat\"><div class=\"label\">Mean {b}</div><div class=\"value\">{mean_b}</div></div></div><p class=\"small muted\">Per task mean rewards, paired by task; the difference's standard error is over tasks.</p><div class=\"table-wrap\"><table class=\"metrics\"><thead><tr><th>Task</th><th class=\"num\">{a}</th><th class=\"num\">{b}</th><th class=\"num\">Difference</th></tr></thead><tbody>",
        diff = num(comparison.difference),
        paired = comparison.paired_tasks,
        mean_a = num(comparison.mean_a),
        mean_b = num(comparison.mean_b),
    );
    for task in &comparison.tasks {
        let _ = write!(
            body,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            esc(&task.task),
            num(Some(task.a)),
            num(Some(task.b)),
            num(Some(task.difference)),
        );
    }
    body.push_str("</tbody></table></div></section>");
    body
}

/// One job: progress, metrics, comparison, the train form and the runs.
pub(crate) async fn page(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Page {
    let Json(view) = jobs::metrics(
        State(state.clone()),
        Extension(caller.clone()),
        Path(id.clone()),
        ApiQuery(MetricsQuery::default()),
    )
    .await?;
    let job = state
        .store
        .get_job(&caller.project_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("job_not_found", format!("job '{id}' not found")))?;
    let runs = state.store.job_runs(&job.id).await?;
    let status = view.job.line.status.as_str();
    let live = matches!(status, "running" | "cancelling");
    let counts = &view.job.line.counts;
    let total = counts.total.max(1);
    let ended = total - counts.queued - counts.running;
    let eta = view
        .job
        .eta_seconds
        .map(|s| format!(" · about {} left", duration_ms((s * 1000.0) as i64)))
        .unwrap_or_default();
    let mut body = format!(
        "<h1>Job <code>{short}</code> {badge}</h1><p class=\"muted\">taskset <strong id=\"job-taskset\">{taskset}</strong> · models {models} · {tasks} tasks × {repeats} repeats · created {created} · <a id=\"job-traces\" href=\"/traces?job_id={q}\">traces</a></p>",
        short = esc(job.id.get(..8).unwrap_or(&job.id)),
        badge = status_badge(status),
        taskset = esc(&job.spec.taskset),
        models = models_text(&view.job.line.header),
        tasks = job.spec.task_ids.len(),
        repeats = job.spec.repeats,
        created = time(job.created_at_ms),
        q = super::html::url_encode(&job.id),
    );
    let _ = write!(
        body,
        "<section class=\"card\" id=\"progress\"><div class=\"stats\"><div class=\"stat\"><div class=\"label\">Runs ended</div><div class=\"value\">{ended}/{total}</div></div><div class=\"stat\"><div class=\"label\">Done</div><div class=\"value\">{done}</div></div><div class=\"stat\"><div class=\"label\">Failed</div><div class=\"value\">{failed}</div></div><div class=\"stat\"><div class=\"label\">Queued / running</div><div class=\"value\">{queued} / {running}</div></div></div><progress max=\"{total}\" value=\"{ended}\"></progress><p class=\"small muted\">{live}{eta}</p>",
        done = counts.done,
        failed = counts.failed,
        queued = counts.queued,
        running = counts.running,
        live = if live {
            "<span class=\"live\" id=\"live\">● live</span> (the page refreshes while runs are open)"
        } else {
            ""
        },
    );
    if !job.spec.metadata.is_empty() {
        let _ = write!(
            body,
            "<details class=\"small\"><summary>Metadata</summary><pre class=\"light\" id=\"job-metadata\">{}</pre></details>",
            pretty(&Value::Object(job.spec.metadata.clone()))
        );
    }
    body.push_str("</section>");
    body.push_str(&metrics_section(&view.metrics));
    if job.spec.models.len() == 2 {
        let Json(compared) = jobs::compare(
            State(state.clone()),
            Extension(caller.clone()),
            Path(id.clone()),
            ApiQuery(MetricsQuery::default()),
        )
        .await?;
        body.push_str(&comparison_section(&compared));
    }
    body.push_str(&train_form(&state, &job, &runs));

    body.push_str("<h2>Runs</h2><div class=\"table-wrap card\"><table id=\"runs\"><thead><tr><th>Task</th><th>Model</th><th class=\"num\">Repeat</th><th>Status</th><th class=\"num\">Reward</th><th class=\"num\">Steps</th><th class=\"num\">Duration</th><th>Trace</th></tr></thead><tbody>");
    for job_run in runs.iter().take(MAX_LISTED_RUNS) {
        let run = &job_run.run;
        let task = usize::try_from(job_run.task_index)
            .ok()
            .and_then(|i| job.spec.task_ids.get(i))
            .cloned()
            .unwrap_or_else(|| format!("#{}", job_run.task_index));
        let duration = match (run.started_at_ms, run.finished_at_ms) {
            (Some(started), Some(finished)) => duration_ms(finished - started),
            _ => "–".into(),
        };
        let _ = write!(
            body,
            "<tr><td>{task}</td><td class=\"nowrap\">{model}</td><td class=\"num\">{repeat}</td><td>{status}</td><td class=\"num\">{reward}</td><td class=\"num\">{steps}</td><td class=\"num\">{duration}</td><td><a class=\"trace-link\" href=\"/traces/{id}\">trace</a></td></tr>",
            task = esc(&task),
            model = esc(&run.spec.model),
            repeat = job_run.repeat_index + 1,
            status = status_badge(run.status.as_str()),
            reward = reward(run.reward),
            steps = run.steps,
            id = esc(run.id.as_str()),
        );
    }
    body.push_str("</tbody></table></div>");
    if runs.len() > MAX_LISTED_RUNS {
        let _ = write!(
            body,
            "<p class=\"small\">Showing {MAX_LISTED_RUNS} of {} runs: <a href=\"/traces?job_id={}\">all of the job's traces</a>.</p>",
            runs.len(),
            super::html::url_encode(&job.id)
        );
    }
    if live {
        body.push_str(&super::assets::script("refresh.js"));
    }
    Ok(layout(&format!("Job {}", job.id), "/jobs", &body))
}

/// The "Train model" form: successful runs of the job (reward ≥ threshold) become a dataset,
/// then a training job on a base model with a backend.
fn train_form(
    state: &AppState,
    job: &rollout_store::JobRecord,
    runs: &[rollout_store::JobRun],
) -> String {
    let models = state.catalog.list(&job.project_id);
    let preferred = job
        .spec
        .models
        .iter()
        .find(|name| {
            name.as_str() != "replay"
                && models.iter().any(|m| m.name == **name && m.available)
                && state.catalog.checkpoint(&job.project_id, name).is_none()
        })
        .cloned()
        .or_else(|| {
            models
                .iter()
                .find(|m| m.available && m.name != "replay")
                .map(|m| m.name.clone())
        });
    let model_options: String = models
        .iter()
        .map(|m| {
            let selected = if Some(&m.name) == preferred.as_ref() {
                " selected"
            } else {
                ""
            };
            let disabled = if m.available { "" } else { " disabled" };
            format!(
                "<option value=\"{name}\"{selected}{disabled}>{name}{note}</option>",
                name = esc(&m.name),
                note = if m.available { "" } else { " (unavailable)" }
            )
        })
        .collect();
    let backend_options: String = training::BACKENDS
        .iter()
        .map(|backend| {
            let problem = crate::training::backend_problem(state, backend);
            format!(
                "<option value=\"{backend}\" title=\"{title}\"{selected}{disabled}>{backend}{note}</option>",
                title = esc(problem.as_deref().unwrap_or("")),
                selected = if *backend == "fewshot" { " selected" } else { "" },
                disabled = if problem.is_some() { " disabled" } else { "" },
                note = if problem.is_some() { " (not configured)" } else { "" },
            )
        })
        .collect();
    // Rewards of the completed runs, for the live count of the selection.
    let rewards: Vec<Value> = runs
        .iter()
        .filter(|r| r.run.status == rollout_domain::RunStatus::Completed)
        .map(|r| json!(r.run.reward.unwrap_or(0.0)))
        .collect();
    let short: String = job.id.chars().take(8).collect();
    let name = format!("{}-{short}", job.spec.taskset);
    format!(
        r#"<h2>Train model</h2><section class="card" id="train">
<p class="small muted">The job's completed runs with a reward at or above the threshold become a dataset (<code>POST /v1/datasets</code>); a training job turns it into a checkpoint (<code>POST /v1/training</code>).</p>
<div class="filters">
<div><label for="train-threshold">Reward ≥</label><input id="train-threshold" type="number" step="any" value="1.0"></div>
<div><label for="train-base">Base model</label><select id="train-base">{model_options}</select></div>
<div><label for="train-backend">Backend</label><select id="train-backend">{backend_options}</select></div>
<div><label for="train-name">Checkpoint name</label><input id="train-name" value="{name}"></div>
</div>
<p class="small"><span id="train-count"></span></p>
<button type="button" id="train-button">Train model</button> <span id="train-result" class="small" role="status"></span>
<script type="application/json" id="train-data">{data}</script>
</section>{script}"#,
        name = esc(&name),
        data = script_json(&json!({"job": job.id, "rewards": rewards})),
        script = super::assets::script("train.js"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_rows_format_numbers_and_escape_names() {
        let summary: Summary = serde_json::from_value(json!({
            "scored": 4, "failed": 1, "mean_reward": 0.5, "reward_stderr": 0.288_675,
            "success_rate": 0.4, "pass_at_k": {"1": 0.4, "2": 0.5},
            "duration_seconds": {"mean": null, "p50": 0.25, "p95": 2.5},
            "steps": {"mean": null, "p50": 1.0, "p95": 3.0},
            "tokens": {"mean": null, "p50": 120.4, "p95": null},
            "cost_usd": {"mean": null, "p50": null, "p95": null}, "total_cost_usd": null
        }))
        .unwrap();
        let row = metrics_row(&esc("<b>task</b>"), "task-row", &summary);
        assert!(row.contains("&lt;b&gt;task&lt;/b&gt;"), "{row}");
        assert!(row.contains("0.500 ± 0.289"), "{row}");
        assert!(row.contains("40.0%"), "{row}");
        assert!(row.contains("250 ms / 2.5 s"), "{row}");
        assert!(row.contains("120 / –"), "{row}");
        assert!(row.contains("4 / 1"), "{row}");
        assert_eq!(
            counts_text(&Counts {
                done: 3,
                failed: 1,
                total: 6,
                cancelled: 2,
                ..Counts::default()
            }),
            "4/6 · 1 failed · 2 cancelled"
        );
    }
}
