//! JSON Schemas of tool and scenario arguments: generation, validation, and hud's views of them.
//!
//! Schemas come from `schemars` and are shaped like FastMCP's (an object with
//! `additionalProperties: false`, no `$schema`/`title`). The same schema drives the validation
//! of calls, the prompt argument list, `_meta.arguments`, and the decoding of prompt argument
//! strings (§4 of the protocol notes).

use jsonschema::Validator;
use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value};

/// The object schema of a tool's or scenario's arguments, with compiled validators.
pub(crate) struct ArgsSchema {
    schema: Map<String, Value>,
    validator: Option<Validator>,
    properties: Vec<Property>,
}

/// One top-level property of an [`ArgsSchema`].
struct Property {
    name: String,
    /// The property's schema, with the root `$defs` attached when it uses `$ref`.
    schema: Value,
    required: bool,
    validator: Option<Validator>,
}

impl ArgsSchema {
    /// The schema of `T` as FastMCP would publish it.
    pub(crate) fn for_type<T: JsonSchema>() -> Self {
        let generated = SchemaSettings::draft2020_12()
            .for_deserialize()
            .into_generator()
            .into_root_schema_for::<T>();
        Self::from_value(generated.to_value())
    }

    /// Wraps a hand-written schema (it is cleaned the same way as a generated one).
    pub(crate) fn from_value(schema: Value) -> Self {
        let schema = clean_root(schema);
        let validator = compile(&Value::Object(schema.clone()));
        let required: Vec<&str> = schema
            .get("required")
            .and_then(Value::as_array)
            .map(|names| names.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let defs = schema.get("$defs").cloned();
        let properties = schema
            .get("properties")
            .and_then(Value::as_object)
            .map(|props| {
                props
                    .iter()
                    .map(|(name, prop_schema)| {
                        let schema = with_defs(prop_schema, defs.as_ref());
                        Property {
                            name: name.clone(),
                            validator: compile(&schema),
                            schema,
                            required: required.contains(&name.as_str()),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            schema,
            validator,
            properties,
        }
    }

    /// The schema object, as published in `inputSchema`.
    pub(crate) fn schema(&self) -> &Map<String, Value> {
        &self.schema
    }

    /// Checks `instance` against the schema; the error is the first violation, readable.
    pub(crate) fn validate(&self, instance: &Value) -> Result<(), String> {
        let Some(validator) = &self.validator else {
            return Ok(());
        };
        match validator.iter_errors(instance).next() {
            None => Ok(()),
            Some(error) => {
                let path = error.instance_path().to_string();
                if path.is_empty() {
                    Err(error.to_string())
                } else {
                    Err(format!("{error} (at {path})"))
                }
            }
        }
    }

    /// `(name, required)` of every property, for the prompt's MCP `arguments` list.
    pub(crate) fn prompt_arguments(&self) -> impl Iterator<Item = (&str, bool)> {
        self.properties
            .iter()
            .map(|prop| (prop.name.as_str(), prop.required))
    }

    /// hud's `_meta.arguments`: `name`, `required`, `default` when there is one, and `type`
    /// for a plain typed property or `inputSchema` (the whole schema) for anything else.
    pub(crate) fn meta_arguments(&self) -> Vec<Value> {
        self.properties
            .iter()
            .map(|prop| {
                let mut entry = Map::new();
                entry.insert("name".into(), Value::String(prop.name.clone()));
                entry.insert("required".into(), Value::Bool(prop.required));
                if let Some(default) = prop.schema.get("default") {
                    entry.insert("default".into(), default.clone());
                }
                match prop.schema.get("type") {
                    Some(Value::String(kind)) => {
                        entry.insert("type".into(), Value::String(kind.clone()));
                    }
                    _ => {
                        entry.insert("inputSchema".into(), prop.schema.clone());
                    }
                }
                Value::Object(entry)
            })
            .collect()
    }

    /// Turns MCP prompt arguments (strings) into JSON values, per property (protocol §4):
    /// a `string` property takes the raw text; any other takes the text parsed as JSON when
    /// that fits the property's schema, else the raw text when that fits, else whichever
    /// exists (so that validation reports the mismatch). Non-string values are kept.
    pub(crate) fn decode_prompt_arguments(&self, raw: &Map<String, Value>) -> Map<String, Value> {
        raw.iter()
            .map(|(name, value)| {
                let decoded = match value {
                    Value::String(text) => self.decode_string(name, text),
                    other => other.clone(),
                };
                (name.clone(), decoded)
            })
            .collect()
    }

    fn decode_string(&self, name: &str, text: &str) -> Value {
        let raw = Value::String(text.to_owned());
        let Some(prop) = self.properties.iter().find(|prop| prop.name == name) else {
            return decode_untyped(text);
        };
        if prop.schema.get("type").and_then(Value::as_str) == Some("string") {
            return raw;
        }
        let parsed = serde_json::from_str::<Value>(text).ok();
        let fits = |value: &Value| prop.validator.as_ref().is_none_or(|v| v.is_valid(value));
        match parsed {
            Some(parsed) if fits(&parsed) => parsed,
            _ if fits(&raw) => raw,
            Some(parsed) => parsed,
            None => raw,
        }
    }
}

/// hud's `_deserialize_from_mcp`: text starting with `{` or `[` that parses as JSON becomes
/// that value; anything else stays a string.
pub(crate) fn decode_untyped(text: &str) -> Value {
    let stripped = text.trim_start();
    if (stripped.starts_with('{') || stripped.starts_with('['))
        && let Ok(value) = serde_json::from_str::<Value>(text)
    {
        return value;
    }
    Value::String(text.to_owned())
}

/// Removes `$schema`/`title`, makes sure the root is an object schema, and forbids unknown
/// properties unless the schema says otherwise (FastMCP does the same).
fn clean_root(schema: Value) -> Map<String, Value> {
    let mut schema = match schema {
        Value::Object(map) if map.get("type").and_then(Value::as_str) == Some("object") => map,
        other => {
            tracing::warn!(schema = %other, "arguments schema is not an object schema; using an empty object schema");
            let mut map = Map::new();
            map.insert("type".into(), Value::String("object".into()));
            map.insert("properties".into(), Value::Object(Map::new()));
            map
        }
    };
    schema.remove("$schema");
    schema.remove("title");
    if !schema.contains_key("additionalProperties") {
        schema.insert("additionalProperties".into(), Value::Bool(false));
    }
    if !schema.contains_key("properties") {
        schema.insert("properties".into(), Value::Object(Map::new()));
    }
    schema
}

/// A property schema that can be validated on its own: `$defs` travel with a `$ref` user.
fn with_defs(schema: &Value, defs: Option<&Value>) -> Value {
    match (schema, defs) {
        (Value::Object(map), Some(defs)) if schema.to_string().contains("\"$ref\"") => {
            let mut map = map.clone();
            map.insert("$defs".into(), defs.clone());
            Value::Object(map)
        }
        _ => schema.clone(),
    }
}

fn compile(schema: &Value) -> Option<Validator> {
    match jsonschema::validator_for(schema) {
        Ok(validator) => Some(validator),
        Err(error) => {
            tracing::warn!(%error, "arguments schema does not compile; arguments are not validated");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[allow(dead_code)]
    #[derive(Deserialize, JsonSchema)]
    struct Calc {
        expression: String,
    }

    #[allow(dead_code)]
    #[derive(Deserialize, JsonSchema)]
    #[serde(rename_all = "lowercase")]
    enum Color {
        Red,
        Blue,
    }

    #[allow(dead_code)]
    #[derive(Deserialize, JsonSchema)]
    struct Mixed {
        numbers: Vec<i64>,
        #[serde(default = "default_note")]
        note: String,
        #[serde(default)]
        strict: bool,
        maybe: Option<i64>,
        color: Option<Color>,
    }

    fn default_note() -> String {
        "none".into()
    }

    #[test]
    fn tool_schema_looks_like_fastmcp() {
        let schema = ArgsSchema::for_type::<Calc>();
        assert_eq!(
            Value::Object(schema.schema().clone()),
            json!({
                "additionalProperties": false,
                "properties": {"expression": {"type": "string"}},
                "required": ["expression"],
                "type": "object"
            })
        );
    }

    #[test]
    fn validation_reports_missing_and_extra_properties() {
        let schema = ArgsSchema::for_type::<Calc>();
        assert!(schema.validate(&json!({"expression": "1+1"})).is_ok());
        let missing = schema.validate(&json!({})).unwrap_err();
        assert!(
            missing.contains("\"expression\" is a required property"),
            "{missing}"
        );
        let extra = schema
            .validate(&json!({"expression": "1", "q": 2}))
            .unwrap_err();
        assert!(
            extra.contains("Additional properties are not allowed"),
            "{extra}"
        );
    }

    #[test]
    fn meta_arguments_follow_hud() {
        let schema = ArgsSchema::for_type::<Mixed>();
        let by_name: Map<String, Value> = schema
            .meta_arguments()
            .into_iter()
            .map(|entry| (entry["name"].as_str().unwrap().to_owned(), entry))
            .collect();
        assert_eq!(
            by_name["numbers"],
            json!({"name": "numbers", "required": true, "type": "array"})
        );
        assert_eq!(
            by_name["note"],
            json!({"name": "note", "required": false, "default": "none", "type": "string"})
        );
        assert_eq!(
            by_name["strict"],
            json!({"name": "strict", "required": false, "default": false, "type": "boolean"})
        );
        assert_eq!(by_name["maybe"]["required"], json!(false));
        assert!(
            by_name["maybe"].get("inputSchema").is_some(),
            "{}",
            by_name["maybe"]
        );
        let color = &by_name["color"]["inputSchema"];
        assert!(color.get("$defs").is_some(), "{color}");
    }

    #[test]
    fn prompt_strings_decode_per_property_type() {
        let schema = ArgsSchema::for_type::<Mixed>();
        let raw = json!({
            "numbers": "[1, 2, 3]", "note": "42", "strict": "true", "maybe": "7", "color": "blue"
        });
        let decoded = schema.decode_prompt_arguments(raw.as_object().unwrap());
        assert_eq!(
            Value::Object(decoded),
            json!({"numbers": [1, 2, 3], "note": "42", "strict": true, "maybe": 7, "color": "blue"})
        );
        let bad = json!({"numbers": "1,2,3"});
        let decoded = Value::Object(schema.decode_prompt_arguments(bad.as_object().unwrap()));
        assert_eq!(decoded, json!({"numbers": "1,2,3"}));
        assert!(schema.validate(&decoded).is_err());
    }

    #[test]
    fn untyped_decoding_only_parses_objects_and_arrays() {
        assert_eq!(decode_untyped("{\"a\": 1}"), json!({"a": 1}));
        assert_eq!(decode_untyped(" [1, 2]"), json!([1, 2]));
        assert_eq!(decode_untyped("42"), json!("42"));
        assert_eq!(decode_untyped("{not json"), json!("{not json"));
    }
}
