//! Rendering a page and the small formatters its templates call. The pages are askama
//! templates (`crates/server/templates/`), compiled with the binary and escaped by askama:
//! every value a template prints is HTML-escaped unless the template says otherwise (only
//! JSON for a `<script type="application/json">` block, through askama's `json` filter,
//! which escapes `<`, `>`, `&` and `'`).

use super::{Page, UiError};
use crate::error::ApiError;
use askama::Template;
use axum::response::Html;
use serde_json::Value;
use std::borrow::Borrow;

/// Renders `template` as a page.
pub(crate) fn render(template: &impl Template) -> Page {
    template
        .render()
        .map(Html)
        .map_err(|error| UiError::from(ApiError::internal(error)))
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

/// Pretty JSON (the template escapes it).
pub(crate) fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// A JSON object, pretty.
pub(crate) fn pretty_map(map: &serde_json::Map<String, Value>) -> String {
    serde_json::to_string_pretty(map).unwrap_or_default()
}

/// A tool's result: pretty when it is a JSON object or array (they often are), else as is.
pub(crate) fn result_text(text: &str) -> String {
    match serde_json::from_str::<Value>(text) {
        Ok(value @ (Value::Object(_) | Value::Array(_))) => pretty(&value),
        _ => text.to_string(),
    }
}

/// Dollars with four decimals.
pub(crate) fn usd(cost: &f64) -> String {
    format!("${cost:.4}")
}

/// An event's duration in milliseconds, for people.
pub(crate) fn took(ms: &u64) -> String {
    duration_ms(i64::try_from(*ms).unwrap_or(i64::MAX))
}

/// Milliseconds for people: `850 ms`, `2.4 s`, `3 min 5 s`.
pub(crate) fn duration_ms(ms: impl Borrow<i64>) -> String {
    let ms = *ms.borrow();
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

/// A duration in milliseconds, or a dash.
pub(crate) fn maybe_duration(ms: impl Borrow<Option<i64>>) -> String {
    ms.borrow().map_or_else(|| "–".into(), duration_ms)
}

/// A reward with three decimals, or a dash.
pub(crate) fn reward(reward: impl Borrow<Option<f64>>) -> String {
    reward
        .borrow()
        .map_or_else(|| "–".into(), |r| format!("{r:.3}"))
}

/// Unix milliseconds as `YYYY-MM-DD HH:MM:SS` UTC.
pub(crate) fn time(ms: impl Borrow<i64>) -> String {
    let text = rollout_domain::time::rfc3339_from_ms(*ms.borrow());
    format!("{} {}", &text[..10], &text[11..19])
}

/// An RFC 3339 time of a view, shown like [`time`], or a dash.
pub(crate) fn when(value: Option<&str>) -> String {
    value
        .and_then(|t| Some(format!("{} {}", t.get(..10)?, t.get(11..19)?)))
        .unwrap_or_else(|| "–".into())
}

/// The first 8 characters of an id.
pub(crate) fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatters() {
        assert_eq!(url_encode("/traces?a=b c"), "/traces%3Fa%3Db%20c");
        assert_eq!(duration_ms(2400), "2.4 s");
        assert_eq!(when(Some("2026-01-02T03:04:05Z")), "2026-01-02 03:04:05");
        assert_eq!(when(None), "–");
    }
}
