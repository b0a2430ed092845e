//! `/environments` and `/environments/{name}`: versions, tools, and a card per scenario with
//! an argument form from the scenario's schema, a model picker, a Run button and the `</>`
//! snippet panel (cURL, Python, JavaScript) kept in sync with the form by a small script.
//! The pages read the API handlers' own views (`GET /v1/environments[/{name}]`).

use super::Page;
use super::html::{pretty, render};
use crate::auth::Caller;
use crate::routes::environments;
use crate::state::AppState;
use askama::Template;
use axum::extract::{Path, State};
use axum::{Extension, Json};
use rollout_api::environments::{EnvironmentDetail, EnvironmentLine, Scenario};
use rollout_models::ModelInfo;
use serde_json::Value;

/// `environments.html`.
#[derive(Template)]
#[template(path = "environments.html")]
struct ListPage<'a> {
    section: &'a str,
    environments: &'a [EnvironmentLine],
}

/// The list of environments with their status.
pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Page {
    let Json(listed) = environments::list(State(state), Extension(caller)).await?;
    render(&ListPage {
        section: "/environments",
        environments: &listed.environments,
    })
}

/// `environment.html`.
#[derive(Template)]
#[template(path = "environment.html")]
struct EnvironmentPage<'a> {
    section: &'a str,
    env: &'a rollout_api::environments::Environment,
    mcp_url: &'a str,
    cards: Vec<Card<'a>>,
    models: Vec<ModelOption>,
}

/// A scenario's card.
struct Card<'a> {
    id: String,
    scenario: &'a Scenario,
    fields: Vec<Field>,
}

/// A form field of one argument.
struct Field {
    id: String,
    name: String,
    /// The JSON Schema type.
    kind: String,
    required: bool,
    description: Option<String>,
    input: Input,
}

/// The control of a field, by the argument's JSON Schema type.
enum Input {
    /// An `enum`: the options' JSON as values.
    Select(Vec<SelectOption>),
    Number {
        step: &'static str,
        value: String,
    },
    Checkbox(bool),
    /// An object or an array, as JSON.
    Json {
        placeholder: &'static str,
        value: String,
    },
    Text(String),
}

struct SelectOption {
    value: String,
    text: String,
    selected: bool,
}

/// An option of the model picker.
struct ModelOption {
    name: String,
    /// Why it is unavailable, else its description.
    note: String,
    available: bool,
    selected: bool,
}

/// One environment: versions, tools and scenario cards.
pub(crate) async fn page(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Page {
    let models = state.catalog.list(&caller.project_id);
    let Json(detail): Json<EnvironmentDetail> =
        environments::get(State(state), Extension(caller), Path(name)).await?;
    let env = &detail.environment;
    render(&EnvironmentPage {
        section: "/environments",
        env,
        mcp_url: &detail.mcp_url,
        cards: env.scenarios.iter().map(card).collect(),
        models: model_options(&models),
    })
}

fn card(scenario: &Scenario) -> Card<'_> {
    let id = format!("scenario-{}", scenario.name);
    let schema = &scenario.args_schema;
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let fields = schema
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(name, property)| field(&id, name, property, required.contains(&name.as_str())))
        .collect();
    Card {
        id,
        scenario,
        fields,
    }
}

fn field(card_id: &str, name: &str, schema: &Value, required: bool) -> Field {
    let kind = schema
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("string");
    let default = schema.get("default");
    let input = if let Some(options) = schema.get("enum").and_then(Value::as_array) {
        Input::Select(
            options
                .iter()
                .map(|option| SelectOption {
                    value: option.to_string(),
                    text: option
                        .as_str()
                        .map_or_else(|| option.to_string(), str::to_string),
                    selected: Some(option) == default,
                })
                .collect(),
        )
    } else {
        match kind {
            "integer" | "number" => Input::Number {
                step: if kind == "integer" { "1" } else { "any" },
                value: default.map(Value::to_string).unwrap_or_default(),
            },
            "boolean" => Input::Checkbox(default == Some(&Value::Bool(true))),
            "object" | "array" => Input::Json {
                placeholder: if kind == "object" { "{}" } else { "[]" },
                value: default.map(pretty).unwrap_or_default(),
            },
            _ => Input::Text(
                default
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            ),
        }
    };
    Field {
        id: format!("{card_id}-arg-{name}"),
        name: name.to_string(),
        kind: kind.to_string(),
        required,
        description: schema
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_string),
        input,
    }
}

/// The model picker's options: the first available model other than `replay` is chosen.
fn model_options(models: &[ModelInfo]) -> Vec<ModelOption> {
    let preferred = models
        .iter()
        .find(|m| m.available && m.name != "replay")
        .or_else(|| models.first())
        .map(|m| m.name.as_str());
    models
        .iter()
        .map(|m| ModelOption {
            name: m.name.clone(),
            note: m
                .reason
                .as_deref()
                .or(m.description.as_deref())
                .unwrap_or_default()
                .to_string(),
            available: m.available,
            selected: Some(m.name.as_str()) == preferred,
        })
        .collect()
}
