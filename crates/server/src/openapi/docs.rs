//! `GET /docs`: the API reference, rendered on the server from the OpenAPI document. No
//! script and no CDN: the page is HTML with the UI's stylesheet (`/assets/ui.css`), so it
//! passes the `'self'`-only Content-Security-Policy and works offline. It needs no key,
//! like `/openapi.json`.

use axum::response::Html;
use serde_json::Value;
use std::fmt::Write as _;
use std::sync::OnceLock;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// `GET /docs`.
pub(crate) async fn page() -> Html<&'static str> {
    static PAGE: OnceLock<String> = OnceLock::new();
    Html(PAGE.get_or_init(|| {
        let document = serde_json::to_value(super::document()).unwrap_or_default();
        render(&document)
    }))
}

fn render(doc: &Value) -> String {
    let mut body = String::new();
    let info = &doc["info"];
    let _ = write!(
        body,
        "<h1>API reference</h1><p>{}</p><p class=\"muted small\">OpenAPI {} · \
         <a href=\"/openapi.json\">openapi.json</a> (to generate clients) · \
         <a href=\"/environments\">the web UI</a></p>",
        esc(info["description"].as_str().unwrap_or_default()),
        esc(doc["openapi"].as_str().unwrap_or_default()),
    );
    let operations = operations(doc);
    body.push_str("<div class=\"card\"><h2>Operations</h2><ul>");
    for (method, path, _) in &operations {
        let _ = write!(
            body,
            "<li><a href=\"#{}\"><code>{} {}</code></a></li>",
            anchor(method, path),
            method.to_ascii_uppercase(),
            esc(path)
        );
    }
    body.push_str("</ul></div>");
    for (method, path, operation) in &operations {
        body.push_str(&render_operation(method, path, operation));
    }
    body.push_str("<h2 id=\"schemas\">Schemas</h2>");
    if let Some(schemas) = doc["components"]["schemas"].as_object() {
        for (name, schema) in schemas {
            body.push_str(&render_schema(name, schema));
        }
    }
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>API reference · rollout</title>
<link rel="stylesheet" href="/assets/ui.css"></head>
<body><header class="top"><a class="brand" href="/environments">rollout</a><nav><a href="/docs" class="active">API</a></nav></header>
<main>{body}</main></body></html>"#
    )
}

/// Every operation in path order, then method order.
fn operations(doc: &Value) -> Vec<(&'static str, String, &Value)> {
    let mut found = Vec::new();
    if let Some(paths) = doc["paths"].as_object() {
        for (path, item) in paths {
            for method in METHODS {
                if let Some(operation) = item.get(method) {
                    found.push((method, path.clone(), operation));
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

fn render_operation(method: &str, path: &str, operation: &Value) -> String {
    let mut html = String::new();
    let _ = write!(
        html,
        "<div class=\"card\" id=\"{}\"><h3><span class=\"badge\">{}</span> <code>{}</code></h3>",
        anchor(method, path),
        method.to_ascii_uppercase(),
        esc(path)
    );
    if operation.get("security") == Some(&serde_json::json!([{}])) {
        html.push_str("<p class=\"muted small\">No API key needed.</p>");
    }
    if let Some(parameters) = operation["parameters"].as_array() {
        html.push_str(
            "<div class=\"table-wrap\"><table><tr><th>Parameter</th><th>In</th><th>Type</th><th>Description</th></tr>",
        );
        for parameter in parameters {
            let required = if parameter["required"] == true {
                " <span class=\"req\">*</span>"
            } else {
                ""
            };
            let _ = write!(
                html,
                "<tr><td><code>{}</code>{required}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(parameter["name"].as_str().unwrap_or_default()),
                esc(parameter["in"].as_str().unwrap_or_default()),
                type_of(&parameter["schema"]),
                esc(parameter["description"].as_str().unwrap_or_default()),
            );
        }
        html.push_str("</table></div>");
    }
    if let Some(content) = operation["requestBody"]["content"].as_object() {
        html.push_str("<p><strong>Body</strong>");
        if let Some(description) = operation["requestBody"]["description"].as_str() {
            let _ = write!(html, ": {}", esc(description));
        }
        html.push_str("</p><ul>");
        for (media, media_type) in content {
            let _ = write!(
                html,
                "<li><code>{}</code>: {}</li>",
                esc(media),
                type_of(&media_type["schema"])
            );
        }
        html.push_str("</ul>");
    }
    html.push_str(
        "<div class=\"table-wrap\"><table><tr><th>Status</th><th>Meaning</th><th>Body</th></tr>",
    );
    if let Some(responses) = operation["responses"].as_object() {
        for (status, response) in responses {
            let bodies: Vec<String> = response["content"]
                .as_object()
                .map(|content| {
                    content
                        .iter()
                        .map(|(media, m)| {
                            format!("<code>{}</code> {}", esc(media), type_of(&m["schema"]))
                        })
                        .collect()
                })
                .unwrap_or_default();
            let _ = write!(
                html,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(status),
                esc(response["description"].as_str().unwrap_or_default()),
                bodies.join("<br>")
            );
        }
    }
    html.push_str("</table></div></div>");
    html
}

fn render_schema(name: &str, schema: &Value) -> String {
    let mut html = format!(
        "<div class=\"card\" id=\"schema-{0}\"><h3><code>{0}</code></h3>",
        esc(name)
    );
    if let Some(description) = schema["description"].as_str() {
        let _ = write!(html, "<p>{}</p>", esc(description));
    }
    let mut parts = vec![schema];
    if let Some(all) = schema["allOf"].as_array() {
        let refs: Vec<String> = all
            .iter()
            .filter(|part| part.get("$ref").is_some())
            .map(type_of)
            .collect();
        if !refs.is_empty() {
            let _ = write!(html, "<p>Every field of {}, and:</p>", refs.join(", "));
        }
        parts.extend(all.iter().filter(|part| part.get("$ref").is_none()));
    }
    for part in parts {
        let Some(properties) = part["properties"].as_object() else {
            continue;
        };
        let required: Vec<&str> = part["required"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        html.push_str(
            "<div class=\"table-wrap\"><table><tr><th>Field</th><th>Type</th><th>Description</th></tr>",
        );
        for (field, property) in properties {
            let mark = if required.contains(&field.as_str()) {
                " <span class=\"req\">*</span>"
            } else {
                ""
            };
            let _ = write!(
                html,
                "<tr><td><code>{}</code>{mark}</td><td>{}</td><td>{}</td></tr>",
                esc(field),
                type_of(property),
                esc(property["description"].as_str().unwrap_or_default()),
            );
        }
        html.push_str("</table></div>");
    }
    if let Some(example) = schema.get("example") {
        let _ = write!(
            html,
            "<p class=\"small muted\">Example</p><pre class=\"light\">{}</pre>",
            esc(&serde_json::to_string_pretty(example).unwrap_or_default())
        );
    }
    html.push_str("</div>");
    html
}

/// A schema as a short type: a link for a reference, `string | null`, `array of X`.
fn type_of(schema: &Value) -> String {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.rsplit('/').next().unwrap_or(reference);
        return format!("<a href=\"#schema-{0}\">{0}</a>", esc(name));
    }
    if let Some(any) = schema["oneOf"].as_array().or(schema["anyOf"].as_array()) {
        return any.iter().map(type_of).collect::<Vec<_>>().join(" | ");
    }
    let types: Vec<String> = match &schema["type"] {
        Value::String(t) => vec![t.clone()],
        Value::Array(ts) => ts
            .iter()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect(),
        _ => vec!["any".into()],
    };
    types
        .iter()
        .map(|t| match t.as_str() {
            "array" => format!("array of {}", type_of(&schema["items"])),
            "string" if schema["format"] == "binary" => "bytes".into(),
            other => esc(other),
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Escapes text for HTML element content and quoted attribute values.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}
