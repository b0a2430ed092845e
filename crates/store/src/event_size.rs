//! Events over the size limit are stored cut down, so that one tool returning 50 MiB (or a
//! model writing a novel) cannot bloat the database, the trace API and every dataset built
//! from it. Whatever is cut is replaced by its first bytes and a marker giving its whole
//! size and SHA-256, so that it can still be recognised and compared:
//! `...first bytes...\n[truncated by rollout: 52428800 bytes, sha256 9f86d0...]`.
//!
//! Every string of the event longer than the limit is cut to it (tool results, messages,
//! prompts, answers, errors); then free-form JSON still over twice the limit (tool
//! arguments, structured content, content blocks, evaluation info: many small values, not
//! one cut string in a small wrapper) is replaced by a string holding its cut JSON text. The
//! event keeps its shape, so it reads back as the same kind of event.

use crate::Result;
use crate::error::{corrupt, encode};
use rollout_domain::EventKind;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The default limit of a string or free-form value inside an event: 256 KiB.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 256 * 1024;

/// Where an event holds free-form JSON (typed `Value` in the domain), per event type: JSON
/// pointers, `*` standing for every item of an array or every field of an object.
fn free_form(kind: &str) -> &'static [&'static str] {
    match kind {
        "tool_call" => &["/arguments", "/result/structured", "/result/content/*"],
        "model_call" => &[
            "/new_messages/*/tool_calls/*/arguments",
            "/response/tool_calls/*/arguments",
        ],
        "setup" => &["/arguments/*", "/tools/*/input_schema"],
        "evaluation" => &["/evaluation/info/*"],
        _ => &[],
    }
}

/// The event's JSON text as stored, and the event as stored when something had to be cut.
pub(crate) fn stored_form(kind: &EventKind, max: usize) -> Result<(String, Option<EventKind>)> {
    let text = serde_json::to_string(kind).map_err(encode("event"))?;
    if text.len() <= max {
        return Ok((text, None));
    }
    let mut value = serde_json::to_value(kind).map_err(encode("event"))?;
    let mut changed = cut_strings(&mut value, max);
    for pointer in free_form(kind.name()) {
        let segments: Vec<&str> = pointer.split('/').skip(1).collect();
        changed |= cut_json_at(&mut value, &segments, max);
    }
    if !changed {
        return Ok((text, None));
    }
    let text = serde_json::to_string(&value).map_err(encode("event"))?;
    let stored = serde_json::from_value(value).map_err(corrupt("event cut to size"))?;
    Ok((text, Some(stored)))
}

/// `text` cut to `max` bytes with its marker, or as it is when it fits (for the run's own
/// columns that repeat an event's text: the final response, the error).
pub(crate) fn cut_text(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    cut(text, text.len(), max)
}

/// The evaluation's JSON as stored on the run, its strings cut like an event's.
pub(crate) fn stored_evaluation(
    evaluation: &rollout_domain::Evaluation,
    max: usize,
) -> Result<String> {
    let mut value = serde_json::to_value(evaluation).map_err(encode("evaluation"))?;
    cut_strings(&mut value, max);
    serde_json::to_string(&value).map_err(encode("evaluation"))
}

/// Cuts every string longer than `max` bytes; true if any was.
fn cut_strings(value: &mut Value, max: usize) -> bool {
    match value {
        Value::String(text) if text.len() > max => {
            *text = cut(text, text.len(), max);
            true
        }
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |changed, item| cut_strings(item, max) | changed),
        Value::Object(fields) => fields
            .values_mut()
            .fold(false, |changed, item| cut_strings(item, max) | changed),
        _ => false,
    }
}

/// Replaces the objects and arrays at `path` whose JSON is longer than twice `max` by a
/// string of their JSON text cut to `max`; true if any was.
fn cut_json_at(value: &mut Value, path: &[&str], max: usize) -> bool {
    let Some((first, rest)) = path.split_first() else {
        if !matches!(value, Value::Array(_) | Value::Object(_)) {
            return false;
        }
        let json = value.to_string();
        if json.len() <= max.saturating_mul(2) {
            return false;
        }
        *value = Value::String(cut(&json, json.len(), max));
        return true;
    };
    match (*first, value) {
        ("*", Value::Array(items)) => items.iter_mut().fold(false, |changed, item| {
            cut_json_at(item, rest, max) | changed
        }),
        ("*", Value::Object(fields)) => fields.values_mut().fold(false, |changed, item| {
            cut_json_at(item, rest, max) | changed
        }),
        (field, Value::Object(fields)) => fields
            .get_mut(field)
            .is_some_and(|item| cut_json_at(item, rest, max)),
        _ => false,
    }
}

/// The first `max` bytes of `text` (at a character boundary) and the marker.
fn cut(text: &str, length: usize, max: usize) -> String {
    let mut end = max.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let digest: String = Sha256::digest(text.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!(
        "{}\n[truncated by rollout: {length} bytes, sha256 {digest}]",
        &text[..end]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rollout_domain::ToolResult;
    use serde_json::json;

    fn tool_call(text: String, structured: Option<Value>) -> EventKind {
        EventKind::ToolCall {
            step: 1,
            call_id: "c1".into(),
            name: "big".into(),
            arguments: json!({"mib": 50}),
            result: ToolResult {
                call_id: "c1".into(),
                content: vec![json!({"type": "text", "text": text})],
                text,
                structured,
                is_error: false,
            },
            duration_ms: 1,
        }
    }

    #[test]
    fn small_events_are_stored_as_they_are() {
        let event = tool_call("391".into(), Some(json!({"value": 391})));
        let (text, stored) = stored_form(&event, 1024).unwrap();
        assert_eq!(stored, None);
        assert_eq!(text, serde_json::to_string(&event).unwrap());
    }

    #[test]
    fn long_strings_and_large_json_are_cut_with_their_size_and_digest() {
        let long = "é".repeat(3_000);
        let structured = json!({"rows": (0..2_000).collect::<Vec<_>>()});
        let event = tool_call(long.clone(), Some(structured.clone()));
        let (text, stored) = stored_form(&event, 1_001).unwrap();
        let Some(EventKind::ToolCall {
            result, arguments, ..
        }) = stored
        else {
            panic!("expected the tool call cut to size");
        };
        let digest = |text: &str| -> String {
            Sha256::digest(text.as_bytes())
                .iter()
                .map(|byte| format!("{byte:02x}"))
                .collect()
        };
        // 1,001 bytes fall inside a 2-byte character: cut before it.
        let expected = format!(
            "{}\n[truncated by rollout: 6000 bytes, sha256 {}]",
            "é".repeat(500),
            digest(&long)
        );
        assert_eq!(result.text, expected);
        assert_eq!(result.content[0]["text"], json!(expected));
        let json = structured.to_string();
        let Some(Value::String(cut_json)) = result.structured else {
            panic!("structured content not cut");
        };
        assert!(cut_json.starts_with(&json[..1_001]));
        assert!(cut_json.ends_with(&format!(
            "[truncated by rollout: {} bytes, sha256 {}]",
            json.len(),
            digest(&json)
        )));
        assert_eq!(arguments, json!({"mib": 50}), "small parts are kept");
        assert!(text.len() < 5_000, "{} bytes stored", text.len());
    }
}
