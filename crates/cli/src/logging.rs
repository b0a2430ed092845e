//! Logging: rollout's own events at the chosen level, its dependencies quiet (warn) unless
//! asked for, as text for people or JSON lines for log pipelines.

use clap::ValueEnum;
use serde::Deserialize;
use tracing_subscriber::EnvFilter;

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LogFormat {
    /// One human-readable line per event (colours on a terminal).
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `fields`, and the fields of
    /// the spans the event happened in (a run's `trace_id`).
    Json,
}

/// The filter for `--log`. A bare level (`info`, `debug`) applies to rollout's own targets
/// only, with dependencies (rmcp, sqlx, hyper...) at `warn`, so that `--log debug` does not
/// drown the output in protocol traces; anything else (`rollout=debug,rmcp=info`) is an
/// `EnvFilter` directive list used as written.
pub(crate) fn filter_directives(log: &str) -> String {
    let log = log.trim();
    let bare_level = matches!(
        log.to_ascii_lowercase().as_str(),
        "trace" | "debug" | "info" | "warn" | "error" | "off"
    );
    if log.is_empty() {
        "warn,rollout=info".into()
    } else if bare_level {
        format!("warn,rollout={log}")
    } else {
        log.into()
    }
}

/// Installs the global subscriber (once; later calls are no-ops).
pub(crate) fn init(log: &str, format: LogFormat) {
    let filter = EnvFilter::try_new(filter_directives(log))
        .unwrap_or_else(|_| EnvFilter::new(filter_directives("info")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_level_leaves_dependencies_at_warn() {
        assert_eq!(filter_directives("info"), "warn,rollout=info");
        assert_eq!(filter_directives("DEBUG"), "warn,rollout=DEBUG");
        assert_eq!(filter_directives(""), "warn,rollout=info");
    }

    #[test]
    fn directive_lists_are_used_as_written() {
        assert_eq!(
            filter_directives("rollout=debug,rmcp=info"),
            "rollout=debug,rmcp=info"
        );
        assert_eq!(filter_directives("info,sqlx=debug"), "info,sqlx=debug");
    }
}
