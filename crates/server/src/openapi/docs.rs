//! `GET /docs`: the API reference, rendered on the server from the OpenAPI document. No
//! script and no CDN: the page is HTML with the UI's stylesheet (`/assets/ui.css`), so it
//! passes the `'self'`-only Content-Security-Policy and works offline. It needs no key,
//! like `/openapi.json`.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde_json::Value;
use std::sync::OnceLock;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// `GET /docs`.
pub(crate) async fn page() -> Response {
    static PAGE: OnceLock<Result<String, String>> = OnceLock::new();
    let page = PAGE.get_or_init(|| {
        let document = serde_json::to_value(super::document()).unwrap_or_default();
        reference(&document).render().map_err(|e| e.to_string())
    });
    match page {
        Ok(page) => Html(page.as_str()).into_response(),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.clone()).into_response(),
    }
}

/// `docs.html`.
#[derive(Template)]
#[template(path = "docs.html")]
struct Reference<'a> {
    description: &'a str,
    openapi: &'a str,
    operations: Vec<Operation<'a>>,
    schemas: Vec<Schema<'a>>,
}

struct Operation<'a> {
    anchor: String,
    /// Upper case.
    method: String,
    path: String,
    /// Needs no API key.
    public: bool,
    parameters: Option<Vec<Field<'a>>>,
    body: Option<Body<'a>>,
    responses: Vec<Answer<'a>>,
}

/// A parameter (`location`: path, query, header) or a schema's field.
struct Field<'a> {
    name: &'a str,
    location: &'a str,
    ty: Vec<TypePart<'a>>,
    description: &'a str,
    required: bool,
}

struct Body<'a> {
    description: Option<&'a str>,
    media: Vec<Media<'a>>,
}

/// A media type and its schema.
struct Media<'a> {
    name: &'a str,
    ty: Vec<TypePart<'a>>,
}

struct Answer<'a> {
    status: &'a str,
    description: &'a str,
    bodies: Vec<Media<'a>>,
}

struct Schema<'a> {
    name: &'a str,
    description: Option<&'a str>,
    /// The schemas of `allOf` whose fields this one has too.
    bases: Vec<Vec<TypePart<'a>>>,
    tables: Vec<Vec<Field<'a>>>,
    example: Option<String>,
}

/// A piece of a short type: a schema's name (a link) or text.
enum TypePart<'a> {
    Schema(&'a str),
    Text(String),
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}

fn reference(doc: &Value) -> Reference<'_> {
    let operations = operations(doc)
        .into_iter()
        .map(|(method, path, operation)| self::operation(method, path, operation))
        .collect();
    let schemas = doc["components"]["schemas"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, schema)| self::schema(name, schema))
        .collect();
    Reference {
        description: text(&doc["info"]["description"]),
        openapi: text(&doc["openapi"]),
        operations,
        schemas,
    }
}

/// Every operation in path order, then method order.
fn operations(doc: &Value) -> Vec<(&'static str, &str, &Value)> {
    let mut found = Vec::new();
    if let Some(paths) = doc["paths"].as_object() {
        for (path, item) in paths {
            for method in METHODS {
                if let Some(operation) = item.get(method) {
                    found.push((method, path.as_str(), operation));
                }
            }
        }
    }
    found
}

fn anchor(method: &str, path: &str) -> String {
    let mut id = format!("op-{method}");
    for c in path.chars() {
        id.push(if c.is_ascii_alphanumeric() { c } else { '-' });
    }
    id
}

fn media(content: &Value) -> Vec<Media<'_>> {
    content
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, media)| Media {
            name,
            ty: type_of(&media["schema"]),
        })
        .collect()
}

fn operation<'a>(method: &str, path: &str, operation: &'a Value) -> Operation<'a> {
    let parameters = operation["parameters"].as_array().map(|parameters| {
        parameters
            .iter()
            .map(|parameter| Field {
                name: text(&parameter["name"]),
                location: text(&parameter["in"]),
                ty: type_of(&parameter["schema"]),
                description: text(&parameter["description"]),
                required: parameter["required"] == true,
            })
            .collect()
    });
    let body = operation["requestBody"]["content"]
        .is_object()
        .then(|| Body {
            description: operation["requestBody"]["description"].as_str(),
            media: media(&operation["requestBody"]["content"]),
        });
    let responses = operation["responses"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(status, response)| Answer {
            status,
            description: text(&response["description"]),
            bodies: media(&response["content"]),
        })
        .collect();
    Operation {
        anchor: anchor(method, path),
        method: method.to_ascii_uppercase(),
        path: path.to_string(),
        public: operation.get("security") == Some(&serde_json::json!([{}])),
        parameters,
        body,
        responses,
    }
}

fn schema<'a>(name: &'a str, schema: &'a Value) -> Schema<'a> {
    let mut parts = vec![schema];
    let mut bases = Vec::new();
    if let Some(all) = schema["allOf"].as_array() {
        bases = all
            .iter()
            .filter(|part| part.get("$ref").is_some())
            .map(type_of)
            .collect();
        parts.extend(all.iter().filter(|part| part.get("$ref").is_none()));
    }
    let tables = parts
        .into_iter()
        .filter_map(|part| {
            let properties = part["properties"].as_object()?;
            let required: Vec<&str> = part["required"]
                .as_array()
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            Some(
                properties
                    .iter()
                    .map(|(field, property)| Field {
                        name: field,
                        location: "",
                        ty: type_of(property),
                        description: text(&property["description"]),
                        required: required.contains(&field.as_str()),
                    })
                    .collect(),
            )
        })
        .collect();
    Schema {
        name,
        description: schema["description"].as_str(),
        bases,
        tables,
        example: schema
            .get("example")
            .map(|example| serde_json::to_string_pretty(example).unwrap_or_default()),
    }
}

/// A schema as a short type: a link for a reference, `string | null`, `array of X`.
fn type_of(schema: &Value) -> Vec<TypePart<'_>> {
    if let Some(reference) = schema["$ref"].as_str() {
        return vec![TypePart::Schema(
            reference.rsplit('/').next().unwrap_or(reference),
        )];
    }
    let alternatives: Vec<Vec<TypePart<'_>>> = if let Some(any) =
        schema["oneOf"].as_array().or(schema["anyOf"].as_array())
    {
        any.iter().map(type_of).collect()
    } else {
        let types: Vec<&str> = match &schema["type"] {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => vec!["any"],
        };
        types
            .into_iter()
            .map(|t| match t {
                "array" => {
                    let mut parts = vec![TypePart::Text("array of ".into())];
                    parts.extend(type_of(&schema["items"]));
                    parts
                }
                "string" if schema["format"] == "binary" => vec![TypePart::Text("bytes".into())],
                other => vec![TypePart::Text(other.into())],
            })
            .collect()
    };
    let mut joined = Vec::new();
    for (i, alternative) in alternatives.into_iter().enumerate() {
        if i > 0 {
            joined.push(TypePart::Text(" | ".into()));
        }
        joined.extend(alternative);
    }
    joined
}
