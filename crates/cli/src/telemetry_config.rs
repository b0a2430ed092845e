//! `[otel]` and `[metrics]` in `rollout.toml`, and the standard `OTEL_*` variables, which
//! win over the file (as the OpenTelemetry specification asks of every SDK).

use rollout_telemetry::OtelConfig;
use serde::Deserialize;

/// `[otel]`: span export over OTLP/HTTP (protobuf).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OtelSection {
    /// The OTLP base URL (`http://127.0.0.1:6006`); spans go to `{endpoint}/v1/traces`.
    pub(crate) endpoint: Option<String>,
    /// Headers of every export request, e.g. `{ Authorization = "Basic ..." }` for Langfuse.
    #[serde(default)]
    pub(crate) headers: std::collections::BTreeMap<String, String>,
    /// `service.name` (default `rollout`).
    pub(crate) service_name: Option<String>,
    /// Put prompts, responses, tool arguments and results on the spans (default false:
    /// they may hold sensitive content).
    pub(crate) capture_content: Option<bool>,
    /// Spans held while the receiver is slow before more are dropped (default 8192).
    pub(crate) max_queue_spans: Option<usize>,
    /// Budget of one export request, in seconds (default 10).
    pub(crate) timeout_seconds: Option<u64>,
}

/// `[metrics]`: `GET /metrics`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MetricsSection {
    /// Serve `/metrics` without a key (default false: an operator key is needed).
    pub(crate) public: Option<bool>,
}

/// The export settings, or `None` when no endpoint is set (or `OTEL_SDK_DISABLED=true`).
/// `env` reads a variable (the process environment, or a map in tests).
pub(crate) fn otel_config(
    section: &OtelSection,
    env: impl Fn(&str) -> Option<String>,
) -> Option<OtelConfig> {
    let env = |name: &str| env(name).filter(|value| !value.trim().is_empty());
    if env("OTEL_SDK_DISABLED").is_some_and(|value| value.trim().eq_ignore_ascii_case("true")) {
        return None;
    }
    let endpoint = env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .or_else(|| env("OTEL_EXPORTER_OTLP_ENDPOINT"))
        .or_else(|| section.endpoint.clone())?;
    let mut config = OtelConfig::new(endpoint.trim());
    config.headers = section
        .headers
        .iter()
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    if let Some(headers) =
        env("OTEL_EXPORTER_OTLP_TRACES_HEADERS").or_else(|| env("OTEL_EXPORTER_OTLP_HEADERS"))
    {
        for (key, value) in pairs(&headers) {
            config
                .headers
                .retain(|(existing, _)| !existing.eq_ignore_ascii_case(&key));
            config.headers.push((key, value));
        }
    }
    if let Some(name) = env("OTEL_SERVICE_NAME").or_else(|| section.service_name.clone()) {
        config.service_name = name;
    }
    if let Some(attributes) = env("OTEL_RESOURCE_ATTRIBUTES") {
        config.resource_attributes = pairs(&attributes);
    }
    config.capture_content = env("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT")
        .map(|value| value.trim().eq_ignore_ascii_case("true"))
        .or(section.capture_content)
        .unwrap_or(false);
    if let Some(seconds) = section.timeout_seconds {
        config.timeout = std::time::Duration::from_secs(seconds.max(1));
    }
    if let Some(max) = section.max_queue_spans {
        config.max_queue_spans = max.max(1);
    }
    Some(config)
}

/// `key1=value1,key2=value2` with percent-encoded values (the W3C Baggage format the
/// OTLP exporter variables use).
fn pairs(text: &str) -> Vec<(String, String)> {
    text.split(',')
        .filter_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            let key = key.trim();
            (!key.is_empty()).then(|| (key.to_string(), percent_decode(value.trim())))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn nothing_is_exported_without_an_endpoint_or_when_disabled() {
        assert_eq!(otel_config(&OtelSection::default(), vars(&[])), None);
        let section = OtelSection {
            endpoint: Some("http://127.0.0.1:6006".into()),
            ..OtelSection::default()
        };
        assert_eq!(
            otel_config(&section, vars(&[("OTEL_SDK_DISABLED", "true")])),
            None
        );
    }

    #[test]
    fn the_standard_variables_win_over_the_file() {
        let section = OtelSection {
            endpoint: Some("http://file:4318".into()),
            service_name: Some("from-file".into()),
            headers: [("Authorization".to_string(), "file".to_string())].into(),
            ..OtelSection::default()
        };
        let config = otel_config(
            &section,
            vars(&[
                (
                    "OTEL_EXPORTER_OTLP_ENDPOINT",
                    "https://cloud.langfuse.com/api/public/otel",
                ),
                (
                    "OTEL_EXPORTER_OTLP_HEADERS",
                    "authorization=Basic%20cGs6c2s=,x-a=b",
                ),
                ("OTEL_SERVICE_NAME", "agents"),
                (
                    "OTEL_RESOURCE_ATTRIBUTES",
                    "openinference.project.name=rollout",
                ),
            ]),
        )
        .unwrap();
        assert_eq!(
            config.traces_url(),
            "https://cloud.langfuse.com/api/public/otel/v1/traces"
        );
        assert_eq!(
            config.headers,
            vec![
                ("authorization".to_string(), "Basic cGs6c2s=".to_string()),
                ("x-a".to_string(), "b".to_string()),
            ]
        );
        assert_eq!(config.service_name, "agents");
        assert_eq!(
            config.resource_attributes,
            vec![(
                "openinference.project.name".to_string(),
                "rollout".to_string()
            )]
        );
        assert!(!config.capture_content);
    }
}
