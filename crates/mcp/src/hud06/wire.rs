//! The hud 0.6 control channel's values as rollout's domain types: templates as scenarios,
//! the `tasks.start` prompt as text, the `tasks.grade` frame as an evaluation, and the
//! `hello` bindings.

use rollout_domain::{Evaluation, ScenarioArg, ScenarioSpec, SubScore};
use serde_json::{Map, Value};

/// A capability the environment publishes (`hello` → `bindings[]`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Binding {
    pub(crate) name: String,
    pub(crate) protocol: String,
    pub(crate) url: String,
    pub(crate) params: Map<String, Value>,
}

/// The bindings of a `hello` result.
pub(crate) fn bindings(hello: &Value) -> Vec<Binding> {
    hello
        .get("bindings")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|binding| {
            Some(Binding {
                name: binding.get("name")?.as_str()?.to_string(),
                protocol: binding.get("protocol")?.as_str()?.to_string(),
                url: binding.get("url")?.as_str()?.to_string(),
                params: binding
                    .get("params")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// The MCP capability the agent's tools come from: `tools` when there is one, else the
/// first MCP binding. Without any, the error names what the environment has instead.
pub(crate) fn tools_binding(bindings: &[Binding]) -> Result<&Binding, String> {
    let mcp: Vec<&Binding> = bindings
        .iter()
        .filter(|b| b.protocol.starts_with("mcp/"))
        .collect();
    if let Some(binding) = mcp.iter().find(|b| b.name == "tools").or(mcp.first()) {
        let transport = binding
            .params
            .get("transport")
            .and_then(Value::as_str)
            .unwrap_or("streamable-http");
        if transport != "streamable-http" || !binding.url.starts_with("http") {
            return Err(format!(
                "the MCP capability '{}' uses the {transport} transport ({}); rollout reaches \
                 MCP capabilities over streamable HTTP only",
                binding.name, binding.url
            ));
        }
        return Ok(binding);
    }
    let published = if bindings.is_empty() {
        "none".to_string()
    } else {
        bindings
            .iter()
            .map(|b| format!("'{}' ({})", b.name, b.protocol))
            .collect::<Vec<_>>()
            .join(", ")
    };
    Err(format!(
        "the environment publishes no MCP capability (capabilities: {published}); rollout needs \
         an MCP `tools` capability (protocol mcp/*) to give the agent tools: SSH workspaces \
         (ssh/2), VNC screens (rfb) and browsers (cdp) are not supported yet"
    ))
}

/// The path (and query) of a binding's URL, e.g. `/mcp`.
pub(crate) fn url_path(url: &str) -> String {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    match after_scheme.find('/') {
        Some(index) => after_scheme[index..].to_string(),
        None => "/".to_string(),
    }
}

/// `tasks.list` → scenarios. A template's id is both its name and its id (no `env:`
/// prefix in 0.6); `args` is already a JSON Schema; `returns` and `input` go to `meta`
/// (`returns_schema`, `input_schema`).
pub(crate) fn scenarios(list: &Value) -> Vec<ScenarioSpec> {
    list.get("tasks")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(scenario)
        .collect()
}

fn scenario(task: &Value) -> Option<ScenarioSpec> {
    let id = task.get("id")?.as_str()?.to_string();
    let args_schema = match task.get("args") {
        Some(Value::Object(schema)) => Value::Object(schema.clone()),
        _ => serde_json::json!({"type": "object", "properties": {}, "additionalProperties": false}),
    };
    let required: Vec<&str> = args_schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let arguments = args_schema
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(name, schema)| ScenarioArg {
            name: name.clone(),
            required: required.contains(&name.as_str()),
            schema: schema.clone(),
            default: schema.get("default").cloned(),
        })
        .collect();
    let mut meta = Map::new();
    for (key, name) in [("returns", "returns_schema"), ("input", "input_schema")] {
        if let Some(schema) = task.get(key).filter(|schema| schema.is_object()) {
            meta.insert(name.into(), schema.clone());
        }
    }
    meta.insert("protocol".into(), Value::String("hud-0.6".into()));
    Some(ScenarioSpec {
        name: id.clone(),
        id,
        description: task
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        arguments,
        args_schema,
        meta,
    })
}

/// The prompt of a `tasks.start` result as one text: a string as is; chat turns joined with
/// a blank line, as the hud SDK's text view does (roles are not kept: the agent gets one
/// user message).
pub(crate) fn prompt_text(start: &Value) -> String {
    match start.get("prompt") {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(turns)) => turns
            .iter()
            .map(|turn| match turn {
                Value::String(text) => text.clone(),
                turn => content_text(turn.get("content").unwrap_or(&Value::Null)),
            })
            .filter(|text| !text.is_empty())
            .collect::<Vec<_>>()
            .join("\n\n"),
        Some(other) => content_text(other),
        None => String::new(),
    }
}

/// A turn's content: a string, one MCP content block or a list of them (text kept).
fn content_text(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .map(content_text)
            .filter(|text| !text.is_empty())
            .collect::<Vec<_>>()
            .join("\n"),
        Value::Object(block) => block
            .get("text")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A `tasks.grade` result as an evaluation: `score` (finite, numeric, not a bool) is the
/// reward; `done`, `content`, `info`, `isError` and `subscores` are kept; other keys too.
pub(crate) fn evaluation(grade: &Value) -> Result<Evaluation, String> {
    let Value::Object(frame) = grade else {
        return Err(format!("the grade is not a JSON object: {grade}"));
    };
    let score = frame
        .get("score")
        .and_then(|score| {
            if score.is_boolean() {
                None
            } else {
                score.as_f64()
            }
        })
        .filter(|score| score.is_finite())
        .ok_or_else(|| format!("the grade has no finite numeric 'score': {grade}"))?;
    let mut extra = frame.clone();
    for key in ["score", "done", "content", "info", "isError", "subscores"] {
        extra.remove(key);
    }
    let subscores = frame
        .get("subscores")
        .and_then(Value::as_array)
        .map(|subscores| subscores.iter().filter_map(subscore).collect());
    Ok(Evaluation {
        reward: score,
        done: frame.get("done").and_then(Value::as_bool).unwrap_or(true),
        content: frame
            .get("content")
            .and_then(Value::as_str)
            .map(str::to_string),
        info: frame
            .get("info")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default(),
        is_error: frame
            .get("isError")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        subscores,
        extra,
    })
}

fn subscore(value: &Value) -> Option<SubScore> {
    Some(SubScore {
        name: value.get("name")?.as_str()?.to_string(),
        weight: value.get("weight").and_then(Value::as_f64).unwrap_or(1.0),
        value: value.get("value")?.as_f64()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn templates_become_scenarios_with_their_schemas() {
        let list = json!({"tasks": [{"id": "add_struct", "description": "Structured.",
            "args": {"properties": {"a": {"type": "integer"}, "b": {"default": 2, "type": "integer"}},
                     "required": ["a"], "type": "object", "additionalProperties": false},
            "returns": {"properties": {"total": {"type": "integer"}}, "type": "object"}}]});
        let scenario = &scenarios(&list)[0];
        assert_eq!(scenario.id, "add_struct");
        assert_eq!(scenario.name, "add_struct");
        assert_eq!(scenario.args_schema["required"], json!(["a"]));
        assert!(scenario.arguments[0].required);
        assert_eq!(scenario.arguments[1].default, Some(json!(2)));
        assert_eq!(scenario.meta["returns_schema"]["type"], "object");
    }

    #[test]
    fn prompts_are_text_or_joined_turns() {
        assert_eq!(prompt_text(&json!({"prompt": "hi"})), "hi");
        let turns = json!({"prompt": [{"role": "system", "content": "A"},
            {"role": "user", "content": [{"type": "text", "text": "B"}]}]});
        assert_eq!(prompt_text(&turns), "A\n\nB");
    }

    #[test]
    fn grades_need_a_finite_numeric_score() {
        let full = json!({"done": true, "content": "c", "info": {"k": 1}, "isError": false,
            "subscores": [{"name": "correct", "weight": 1.0, "value": 1.0, "children": null, "info": null}],
            "score": 1.0, "why": "x"});
        let evaluation = evaluation(&full).unwrap();
        assert_eq!(evaluation.reward, 1.0);
        assert_eq!(evaluation.content.as_deref(), Some("c"));
        assert_eq!(evaluation.subscores.unwrap()[0].name, "correct");
        assert_eq!(evaluation.extra["why"], "x");
        assert!(super::evaluation(&json!({"score": true})).is_err());
        assert!(super::evaluation(&json!({"reward": 1.0})).is_err());
        assert_eq!(
            super::evaluation(&json!({"score": 0.25})).unwrap().reward,
            0.25
        );
    }

    #[test]
    fn an_environment_without_mcp_is_refused_with_what_it_has() {
        let hello = json!({"bindings": [{"name": "screen", "protocol": "rfb/3.8", "url": "rfb://127.0.0.1:5999", "params": {}}]});
        let error = tools_binding(&bindings(&hello)).unwrap_err();
        assert!(error.contains("'screen' (rfb/3.8)"), "{error}");
        assert!(error.contains("MCP `tools` capability"), "{error}");
        let hello = json!({"bindings": [{"name": "tools", "protocol": "mcp/2025-11-25", "url": "http://127.0.0.1:1/mcp", "params": {"transport": "streamable-http"}}]});
        let all = bindings(&hello);
        assert_eq!(tools_binding(&all).unwrap().name, "tools");
        assert_eq!(url_path(&all[0].url), "/mcp");
    }
}
