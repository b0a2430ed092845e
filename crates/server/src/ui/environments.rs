//! `/environments` and `/environments/{name}`: versions, tools, and a card per scenario with
//! an argument form from the scenario's schema, a model picker, a Run button and the `</>`
//! snippet panel (cURL, Python, JavaScript) kept in sync with the form by a small script.

use super::Page;
use super::html::{esc, layout, pretty, script_json, status_badge, time};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use axum::Extension;
use axum::extract::{Path, State};
use rollout_domain::ScenarioSpec;
use rollout_models::ModelInfo;
use rollout_store::EnvStatus;
use serde_json::Value;
use std::fmt::Write as _;

/// The list of environments with their status.
pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Page {
    let latest = state.store.list_environments(&caller.project_id).await?;
    let mut rows = String::new();
    for env in &latest {
        let description = env.description.clone().unwrap_or_default();
        let scenarios: Vec<String> = description
            .scenarios
            .iter()
            .map(|s| {
                format!(
                    "<a href=\"/environments/{}#scenario-{}\">{}</a>",
                    esc(&env.name),
                    esc(&s.name),
                    esc(&s.name)
                )
            })
            .collect();
        let _ = write!(
            rows,
            "<tr><td><a href=\"/environments/{name}\">{name}</a></td><td>{status}</td><td class=\"num\">v{version}</td><td class=\"num\">{tools}</td><td>{scenarios}</td><td class=\"small muted\">{created}</td></tr>",
            name = esc(&env.name),
            status = status_badge(env.status.as_str()),
            version = env.version,
            tools = description.tools.len(),
            scenarios = scenarios.join(", "),
            created = time(env.created_at_ms),
        );
    }
    if latest.is_empty() {
        rows.push_str("<tr><td colspan=\"6\" class=\"muted\">No environment yet. Register one with <code>POST /v1/environments</code>.</td></tr>");
    }
    let body = format!(
        "<h1>Environments</h1><div class=\"table-wrap card\"><table id=\"environments\"><thead><tr><th>Name</th><th>Status</th><th class=\"num\">Version</th><th class=\"num\">Tools</th><th>Scenarios</th><th>Registered</th></tr></thead><tbody>{rows}</tbody></table></div>"
    );
    Ok(layout("Environments", "/environments", &body))
}

/// One environment: versions, tools and scenario cards.
pub(crate) async fn page(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Page {
    let versions = state.store.env_versions(&caller.project_id, &name).await?;
    if versions.is_empty() {
        return Err(ApiError::not_found(
            "environment_not_found",
            format!("environment '{name}' not found"),
        )
        .into());
    }
    let serving = versions.iter().find(|v| v.status == EnvStatus::Ready);
    let description = serving
        .and_then(|v| v.description.clone())
        .unwrap_or_default();
    let models = state.catalog.list(&caller.project_id);
    let mut body = format!(
        "<h1>{name} {status}</h1><p class=\"muted\">{server} · serving version {version} · <a href=\"/traces?env_name={q}\">traces</a></p>",
        name = esc(&name),
        status = status_badge(if serving.is_some() { "ready" } else { "failed" }),
        server = esc(&description.server_name),
        version = serving.map_or_else(|| "none".into(), |v| v.version.to_string()),
        q = super::html::url_encode(&name),
    );
    let _ = write!(
        body,
        "<p class=\"small\">MCP endpoint (any MCP client; your own agent): <code id=\"mcp-url\">{}</code></p>",
        esc(&crate::gateway::mcp_url(&state, &name))
    );
    body.push_str("<h2>Scenarios</h2>");
    if description.scenarios.is_empty() {
        body.push_str("<p class=\"muted\">This environment offers no scenario.</p>");
    }
    for scenario in &description.scenarios {
        body.push_str(&scenario_card(&name, scenario, &models));
    }
    body.push_str("<h2>Tools</h2><div class=\"card\">");
    for tool in &description.tools {
        let _ = write!(
            body,
            "<details class=\"tool\"><summary><code>{}</code> <span class=\"muted\">{}</span></summary><pre class=\"light\">{}</pre></details>",
            esc(&tool.name),
            esc(&tool.description),
            pretty(&tool.input_schema)
        );
    }
    if description.tools.is_empty() {
        body.push_str("<p class=\"muted\">No tools.</p>");
    }
    body.push_str("</div><h2>Versions</h2><div class=\"table-wrap card\"><table><thead><tr><th class=\"num\">Version</th><th>Status</th><th>Registered</th><th>Error</th></tr></thead><tbody>");
    for version in &versions {
        let _ = write!(
            body,
            "<tr><td class=\"num\">v{}</td><td>{}</td><td class=\"small\">{}</td><td class=\"small\">{}</td></tr>",
            version.version,
            status_badge(version.status.as_str()),
            time(version.created_at_ms),
            esc(version.error.as_deref().unwrap_or(""))
        );
    }
    body.push_str("</tbody></table></div>");
    body.push_str(&super::assets::script("scenario.js"));
    Ok(layout(&name, "/environments", &body))
}

/// The form field of one argument, by its JSON Schema type.
fn field(card_id: &str, name: &str, schema: &Value, required: bool) -> String {
    let id = format!("{card_id}-arg-{name}");
    let kind = schema
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("string");
    let default = schema.get("default");
    let description = schema
        .get("description")
        .and_then(Value::as_str)
        .map(|d| format!("<div class=\"small muted\">{}</div>", esc(d)))
        .unwrap_or_default();
    let mark = if required {
        " <span class=\"req\" title=\"required\">*</span>"
    } else {
        ""
    };
    let req = if required { " required" } else { "" };
    let label = format!(
        "<label for=\"{id}\">{name}{mark} <span class=\"muted small\">{kind}</span></label>",
        id = esc(&id),
        name = esc(name),
        kind = esc(kind)
    );
    let common = format!("id=\"{}\" data-arg=\"{}\"{req}", esc(&id), esc(name));
    let input = if let Some(options) = schema.get("enum").and_then(Value::as_array) {
        let options: String = options
            .iter()
            .map(|option| {
                let text = option
                    .as_str()
                    .map_or_else(|| option.to_string(), str::to_string);
                let selected = if Some(option) == default {
                    " selected"
                } else {
                    ""
                };
                format!(
                    "<option value=\"{}\"{selected}>{}</option>",
                    esc(&option.to_string()),
                    esc(&text)
                )
            })
            .collect();
        format!("<select {common} data-type=\"json\">{options}</select>")
    } else {
        match kind {
            "integer" | "number" => format!(
                "<input type=\"number\" {common} data-type=\"{kind}\" step=\"{}\" value=\"{}\">",
                if kind == "integer" { "1" } else { "any" },
                default
                    .map(Value::to_string)
                    .map(|d| esc(&d))
                    .unwrap_or_default()
            ),
            "boolean" => format!(
                "<input type=\"checkbox\" {common} data-type=\"boolean\"{}>",
                if default == Some(&Value::Bool(true)) {
                    " checked"
                } else {
                    ""
                }
            ),
            "object" | "array" => format!(
                "<textarea {common} data-type=\"json\" placeholder=\"{}\">{}</textarea>",
                if kind == "object" { "{}" } else { "[]" },
                default.map(pretty).unwrap_or_default()
            ),
            _ => format!(
                "<input type=\"text\" {common} data-type=\"string\" value=\"{}\">",
                default.and_then(Value::as_str).map(esc).unwrap_or_default()
            ),
        }
    };
    format!("<div class=\"field\">{label}{input}{description}</div>")
}

fn model_picker(card_id: &str, models: &[ModelInfo]) -> String {
    let preferred = models
        .iter()
        .find(|m| m.available && m.name != "replay")
        .or_else(|| models.first())
        .map(|m| m.name.clone());
    let options: String = models
        .iter()
        .map(|m| {
            let selected = if Some(&m.name) == preferred.as_ref() { " selected" } else { "" };
            let note = m
                .reason
                .as_deref()
                .or(m.description.as_deref())
                .unwrap_or("");
            let disabled = if m.available { "" } else { " disabled" };
            format!(
                "<option value=\"{name}\" title=\"{note}\"{selected}{disabled}>{name}{unavailable}</option>",
                name = esc(&m.name),
                note = esc(note),
                unavailable = if m.available { "" } else { " (unavailable)" }
            )
        })
        .collect();
    format!(
        "<label for=\"{id}-model\">Model</label><select id=\"{id}-model\" class=\"model\">{options}</select>",
        id = esc(card_id)
    )
}

fn scenario_card(env: &str, scenario: &ScenarioSpec, models: &[ModelInfo]) -> String {
    let card_id = format!("scenario-{}", scenario.name);
    let schema = &scenario.args_schema;
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut fields = String::new();
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        for (name, property) in properties {
            fields.push_str(&field(
                &card_id,
                name,
                property,
                required.contains(&name.as_str()),
            ));
        }
    }
    if fields.is_empty() {
        fields.push_str("<p class=\"muted small\">This scenario takes no arguments.</p>");
    }
    format!(
        r#"<section class="card scenario-card" id="{id}" data-env="{env}" data-scenario="{scenario}">
<h3>{scenario_text}</h3><p class="desc muted">{description}</p>
<div class="grid">
<form class="run-form">
{fields}
{models}
<label for="{id}-max-steps">max_steps</label><input type="number" id="{id}-max-steps" class="max-steps" min="1" max="500" value="10">
<label class="inline"><input type="checkbox" class="sync" checked> wait for the result (<code>sync</code>)</label>
<details class="advanced"><summary class="small">Validation actions (for the <code>replay</code> model)</summary>
<textarea class="validation" placeholder='[{{"name": "tool", "arguments": {{}}}}, {{"answer": "..."}}]'></textarea></details>
<button type="button" class="run">Run</button> <span class="run-result small" role="status"></span>
</form>
<div class="snippets">
<div class="snippet-head"><strong title="code">&lt;/&gt; Call it from code</strong>
<div class="tabs"><button type="button" class="tab active" data-lang="curl">cURL</button><button type="button" class="tab" data-lang="python">Python</button><button type="button" class="tab" data-lang="javascript">JavaScript</button><button type="button" class="tab" data-lang="agent">Python (your own agent)</button></div>
<button type="button" class="copy secondary">Copy</button></div>
<pre><code class="snippet" data-lang="curl"></code></pre><pre hidden><code class="snippet" data-lang="python"></code></pre><pre hidden><code class="snippet" data-lang="javascript"></code></pre><pre hidden><code class="snippet" data-lang="agent"></code></pre>
<p class="small muted">Set <code>ROLLOUT_API_KEY</code> to your API key first.</p>
</div></div>
<script type="application/json" class="schema">{schema_json}</script>
</section>"#,
        id = esc(&card_id),
        env = esc(env),
        scenario = esc(&scenario.name),
        scenario_text = esc(&scenario.name),
        description = esc(&scenario.description),
        models = model_picker(&card_id, models),
        schema_json = script_json(schema),
    )
}
