//! HTML building blocks: escaping, the page layout and its stylesheet, small formatters.
//! Every piece of user, model or tool content goes through [`esc`].

use axum::response::Html;
use serde_json::Value;

/// Escapes text for HTML element content and quoted attribute values.
pub(crate) fn esc(text: &str) -> String {
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

/// Percent-encodes a query-string value.
pub(crate) fn url_encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// JSON for a `<script type="application/json">` block: `<` is escaped so that no content
/// can close the script element.
pub(crate) fn script_json(value: &Value) -> String {
    value
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// Pretty JSON, escaped for HTML.
pub(crate) fn pretty(value: &Value) -> String {
    esc(&serde_json::to_string_pretty(value).unwrap_or_default())
}

/// A status as a coloured badge.
pub(crate) fn status_badge(status: &str) -> String {
    format!("<span class=\"badge status-{0}\">{0}</span>", esc(status))
}

/// Milliseconds for people: `850 ms`, `2.4 s`, `3 min 5 s`.
pub(crate) fn duration_ms(ms: i64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

/// A reward with three decimals, or a dash.
pub(crate) fn reward(reward: Option<f64>) -> String {
    reward.map_or_else(|| "–".into(), |r| format!("{r:.3}"))
}

/// Unix milliseconds as `YYYY-MM-DD HH:MM:SS` UTC.
pub(crate) fn time(ms: i64) -> String {
    let text = rollout_domain::time::rfc3339_from_ms(ms);
    format!("{} {}", &text[..10], &text[11..19])
}

const NAV: [(&str, &str); 6] = [
    ("/environments", "Environments"),
    ("/traces", "Traces"),
    ("/jobs", "Jobs"),
    ("/training", "Training"),
    ("/usage", "Usage"),
    // The API reference (public, rendered from /openapi.json).
    ("/docs", "API"),
];

/// A page with the navigation bar; `active` is the path of the current section.
pub(crate) fn layout(title: &str, active: &str, body: &str) -> Html<String> {
    let nav: String = NAV
        .iter()
        .map(|(href, label)| {
            let class = if *href == active {
                " class=\"active\""
            } else {
                ""
            };
            format!("<a href=\"{href}\"{class}>{label}</a>")
        })
        .collect();
    Html(format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · rollout</title>
<link rel="stylesheet" href="/assets/ui.css"></head>
<body><header class="top"><a class="brand" href="/environments">rollout</a><nav>{nav}</nav>
<form method="post" action="/logout" class="logout"><button type="submit" id="sign-out" class="link">Sign out</button></form></header>
<main>{body}</main></body></html>"#,
        title = esc(title)
    ))
}

/// A page without navigation (sign-in).
pub(crate) fn layout_bare(title: &str, body: &str) -> Html<String> {
    Html(format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · rollout</title>
<link rel="stylesheet" href="/assets/ui.css"></head>
<body><header class="top"><span class="brand">rollout</span></header><main>{body}</main></body></html>"#,
        title = esc(title)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            esc(r#"<script>alert("x")</script>&'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;"
        );
        assert_eq!(
            script_json(&serde_json::json!("</script>")),
            "\"\\u003c/script\\u003e\""
        );
        assert_eq!(url_encode("/traces?a=b c"), "/traces%3Fa%3Db%20c");
    }

    #[test]
    fn every_page_links_the_api_reference() {
        let Html(page) = layout("Traces", "/traces", "");
        assert!(page.contains("<a href=\"/docs\">API</a>"), "{page}");
    }
}
