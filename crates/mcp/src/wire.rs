//! Conversions between rmcp's wire types and rollout's domain types.
//!
//! rmcp's types are turned into `serde_json::Value` first and read by field name: the
//! field names are the MCP protocol's and stable, while rmcp's Rust types change often.

use rollout_domain::{EnvDescription, Evaluation, ScenarioArg, ScenarioSpec, ToolResult, ToolSpec};
use serde::Serialize;
use serde_json::{Map, Value, json};

/// Serializes an rmcp value to JSON (never fails for rmcp's own types).
pub(crate) fn to_json<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// Prompt arguments are strings on the wire: strings go as they are, anything else as
/// JSON text (hud's `_serialize_for_mcp`).
pub(crate) fn encode_prompt_arguments(args: &Map<String, Value>) -> Map<String, Value> {
    args.iter()
        .map(|(name, value)| {
            let text = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (name.clone(), Value::String(text))
        })
        .collect()
}

/// The `answer` argument of `_hud_submit` for the model's final text: the JSON object
/// `{"content": text}`, as hud's client submits structured answers. hud decodes a submitted
/// string that parses as JSON, and reads a JSON object's `content` key; a raw submission would
/// therefore turn an answer that is a JSON object into `""` (no `content`) and could never
/// satisfy a `returns=` scenario. Wrapped, a `returns=` scenario parses `content` into its
/// type and any other scenario receives the text exactly as the model wrote it.
pub(crate) fn submitted_answer(text: &str) -> String {
    json!({ "content": text }).to_string()
}

/// A tool as the model sees it.
pub(crate) fn tool_spec(tool: &Value) -> Option<ToolSpec> {
    let name = tool.get("name")?.as_str()?.to_string();
    Some(ToolSpec {
        name,
        description: tool
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .into(),
        input_schema: tool
            .get("inputSchema")
            .cloned()
            .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
    })
}

/// True for tools a model may see and call: names starting with `_` are internal
/// (hud's `_hud_submit`).
pub(crate) fn is_visible_tool(name: &str) -> bool {
    !name.starts_with('_')
}

/// A `tools/call` result as the model will read it. `structuredContent` is kept as it is
/// and never validated (hud servers send values that break their own output schema).
pub(crate) fn tool_result(call_id: &str, result: &Value) -> ToolResult {
    let content: Vec<Value> = result
        .get("content")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let structured = result
        .get("structuredContent")
        .cloned()
        .filter(|v| !v.is_null());
    let mut text = content
        .iter()
        .map(content_text)
        .collect::<Vec<_>>()
        .join("\n");
    if text.is_empty()
        && let Some(structured) = &structured
    {
        text = structured.to_string();
    }
    ToolResult {
        call_id: call_id.to_string(),
        text,
        content,
        structured,
        is_error: result
            .get("isError")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    }
}

/// The text a model reads for one MCP content block.
fn content_text(block: &Value) -> String {
    let kind = block
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match kind {
        "text" => block
            .get("text")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        "resource" => block
            .pointer("/resource/text")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| "[resource]".to_string()),
        other => {
            let mime = block
                .get("mimeType")
                .and_then(Value::as_str)
                .unwrap_or("unknown");
            format!("[{other} content, {mime}]")
        }
    }
}

/// The prompt text of a `prompts/get` result: every text part, joined with newlines.
pub(crate) fn prompt_text(result: &Value) -> String {
    let messages = result
        .get("messages")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    messages
        .iter()
        .filter_map(|message| message.get("content"))
        .flat_map(|content| match content {
            Value::Array(blocks) => blocks.clone(),
            block => vec![block.clone()],
        })
        .filter(|block| block.get("type").and_then(Value::as_str) == Some("text"))
        .filter_map(|block| {
            block
                .get("text")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The evaluation in a `resources/read` result: the first content item's text, as JSON.
pub(crate) fn evaluation(result: &Value) -> Result<Evaluation, String> {
    let text = result
        .pointer("/contents/0/text")
        .and_then(Value::as_str)
        .ok_or_else(|| "the evaluation resource has no text content".to_string())?;
    serde_json::from_str(text)
        .map_err(|e| format!("the evaluation is not valid JSON ({e}): {text}"))
}

/// Builds the description of an environment from its listings.
pub(crate) fn description(
    server_name: String,
    server_version: String,
    tools: &[Value],
    prompts: &[Value],
) -> EnvDescription {
    EnvDescription {
        server_name,
        server_version,
        tools: tools
            .iter()
            .filter_map(tool_spec)
            .filter(|tool| is_visible_tool(&tool.name))
            .collect(),
        scenarios: prompts.iter().filter_map(scenario_spec).collect(),
    }
}

/// A scenario from its prompt listing. Prompts whose name has no `env:` prefix are plain
/// MCP prompts, not scenarios.
fn scenario_spec(prompt: &Value) -> Option<ScenarioSpec> {
    let id = prompt.get("name")?.as_str()?.to_string();
    let (_, name) = id.rsplit_once(':')?;
    let name = name.to_string();
    let description = prompt
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let description = description
        .strip_prefix("[Setup] ")
        .unwrap_or(description)
        .to_string();
    let meta = prompt
        .get("_meta")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let arguments: Vec<ScenarioArg> = match meta.get("arguments").and_then(Value::as_array) {
        Some(typed) => typed.iter().filter_map(typed_argument).collect(),
        None => prompt
            .get("arguments")
            .and_then(Value::as_array)
            .map(|plain| plain.iter().filter_map(plain_argument).collect())
            .unwrap_or_default(),
    };
    let args_schema = args_schema(&arguments);
    Some(ScenarioSpec {
        name,
        id,
        description,
        arguments,
        args_schema,
        meta,
    })
}

/// An argument from hud's `_meta.arguments`: `type` or a whole `inputSchema`.
fn typed_argument(arg: &Value) -> Option<ScenarioArg> {
    let name = arg.get("name")?.as_str()?.to_string();
    let schema = match (arg.get("inputSchema"), arg.get("type")) {
        (Some(schema), _) => schema.clone(),
        (None, Some(kind)) => json!({"type": kind}),
        (None, None) => json!({}),
    };
    Some(ScenarioArg {
        name,
        required: arg
            .get("required")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        schema,
        default: arg.get("default").cloned(),
    })
}

/// An argument of a plain MCP prompt: always a string.
fn plain_argument(arg: &Value) -> Option<ScenarioArg> {
    Some(ScenarioArg {
        name: arg.get("name")?.as_str()?.to_string(),
        required: arg
            .get("required")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        schema: json!({"type": "string"}),
        default: None,
    })
}

/// The JSON Schema of a scenario's arguments: every argument a property, the required
/// ones required, nothing else allowed.
fn args_schema(arguments: &[ScenarioArg]) -> Value {
    let mut properties = Map::new();
    for arg in arguments {
        let mut schema = arg.schema.clone();
        if let (Some(default), Some(object)) = (&arg.default, schema.as_object_mut()) {
            object.insert("default".into(), default.clone());
        }
        properties.insert(arg.name.clone(), schema);
    }
    let required: Vec<&str> = arguments
        .iter()
        .filter(|arg| arg.required)
        .map(|arg| arg.name.as_str())
        .collect();
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_string_prompt_arguments_are_sent_as_json_text() {
        let args = json!({"query": "hi", "numbers": [1, 2, 3], "strict": true, "n": 7});
        let encoded = encode_prompt_arguments(args.as_object().unwrap());
        assert_eq!(
            Value::Object(encoded),
            json!({"query": "hi", "numbers": "[1,2,3]", "strict": "true", "n": "7"})
        );
    }

    #[test]
    fn hud_prompt_listing_becomes_a_scenario_with_a_schema() {
        let prompt = json!({
            "name": "my-assistant:sum_numbers",
            "description": "[Setup] Add up numbers.",
            "arguments": [{"name": "numbers", "required": true}, {"name": "note", "required": false}],
            "_meta": {"arguments": [
                {"name": "numbers", "required": true, "type": "array"},
                {"name": "note", "required": false, "default": "none", "type": "string"},
                {"name": "maybe", "required": false, "inputSchema": {"anyOf": [{"type": "integer"}, {"type": "null"}]}}
            ]}
        });
        let scenario = scenario_spec(&prompt).unwrap();
        assert_eq!(scenario.name, "sum_numbers");
        assert_eq!(scenario.id, "my-assistant:sum_numbers");
        assert_eq!(scenario.description, "Add up numbers.");
        assert_eq!(
            scenario.args_schema,
            json!({
                "type": "object",
                "properties": {
                    "numbers": {"type": "array"},
                    "note": {"type": "string", "default": "none"},
                    "maybe": {"anyOf": [{"type": "integer"}, {"type": "null"}]}
                },
                "required": ["numbers"],
                "additionalProperties": false
            })
        );
    }

    #[test]
    fn answers_are_submitted_wrapped_in_content() {
        for text in ["Paris", "{\"total\": 6}", "[1, 2]", ""] {
            let submitted: Value = serde_json::from_str(&submitted_answer(text)).unwrap();
            assert_eq!(submitted, json!({ "content": text }));
        }
    }

    #[test]
    fn prompts_without_a_prefix_are_not_scenarios() {
        assert!(scenario_spec(&json!({"name": "plain"})).is_none());
    }

    #[test]
    fn tool_results_keep_structured_content_without_validating_it() {
        let result = json!({
            "content": [{"type": "text", "text": "391"}],
            "structuredContent": {"result": 391},
            "isError": false
        });
        let converted = tool_result("call_1", &result);
        assert_eq!(converted.text, "391");
        assert_eq!(converted.structured, Some(json!({"result": 391})));
        assert!(!converted.is_error);
    }

    #[test]
    fn evaluation_is_read_from_the_first_text_content() {
        let result = json!({"contents": [{"uri": "e:s", "text": "{\"reward\": 1.0, \"done\": true, \"info\": {}, \"isError\": false}"}]});
        assert_eq!(evaluation(&result).unwrap().reward, 1.0);
        assert!(evaluation(&json!({"contents": []})).is_err());
    }
}
