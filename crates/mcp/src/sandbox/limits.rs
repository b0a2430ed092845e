//! Resource limits of environment processes: what a manifest asks for, the server's defaults
//! and the most a manifest may ask for. They become rlimits, applied by `rollout env-guard`
//! to itself before it starts the environment (which inherits them).

use serde::{Deserialize, Serialize};

/// Resource limits of an environment process; each one unset means "the server's default".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessLimits {
    /// Address-space limit of each process, in MiB (`RLIMIT_AS`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_memory_mb: Option<u64>,
    /// CPU-time limit of each process, in seconds (`RLIMIT_CPU`: SIGXCPU, then SIGKILL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cpu_seconds: Option<u64>,
    /// Open files of each process (`RLIMIT_NOFILE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_open_files: Option<u64>,
    /// Processes and threads of the whole environment (`RLIMIT_NPROC`, counted per user: it
    /// applies only when the server runs as root and gives each sandbox a user of its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_processes: Option<u64>,
    /// Largest file a process may write, in MiB (`RLIMIT_FSIZE`: SIGXFSZ or EFBIG).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_file_size_mb: Option<u64>,
}

impl ProcessLimits {
    /// Every limit with its name (as written in `rollout.toml` and manifests).
    pub fn fields(&self) -> [(&'static str, Option<u64>); 5] {
        [
            ("max_memory_mb", self.max_memory_mb),
            ("max_cpu_seconds", self.max_cpu_seconds),
            ("max_open_files", self.max_open_files),
            ("max_processes", self.max_processes),
            ("max_file_size_mb", self.max_file_size_mb),
        ]
    }

    /// The same limits with every field combined with `other`'s by `pick`.
    fn zip(&self, other: &Self, pick: impl Fn(Option<u64>, Option<u64>) -> Option<u64>) -> Self {
        Self {
            max_memory_mb: pick(self.max_memory_mb, other.max_memory_mb),
            max_cpu_seconds: pick(self.max_cpu_seconds, other.max_cpu_seconds),
            max_open_files: pick(self.max_open_files, other.max_open_files),
            max_processes: pick(self.max_processes, other.max_processes),
            max_file_size_mb: pick(self.max_file_size_mb, other.max_file_size_mb),
        }
    }

    /// One message per limit set to 0 (`section` names where, e.g. `[limits]`).
    pub fn zero_problems(&self, section: &str) -> Vec<String> {
        self.fields()
            .into_iter()
            .filter(|(_, value)| *value == Some(0))
            .map(|(field, _)| format!("{section} {field} must be at least 1"))
            .collect()
    }
}

/// The server's defaults (every environment process gets them unless its manifest asks for
/// others) and maxima (the most a manifest may ask for).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitPolicy {
    pub defaults: ProcessLimits,
    pub maxima: ProcessLimits,
}

impl Default for LimitPolicy {
    /// Generous for a Python or Node environment and its tools, small enough that a runaway
    /// one cannot take the machine down.
    fn default() -> Self {
        Self {
            defaults: ProcessLimits {
                max_memory_mb: Some(4096),
                max_cpu_seconds: Some(3600),
                max_open_files: Some(1024),
                max_processes: Some(256),
                max_file_size_mb: Some(1024),
            },
            maxima: ProcessLimits {
                max_memory_mb: Some(16384),
                max_cpu_seconds: Some(86_400),
                max_open_files: Some(65_536),
                max_processes: Some(4096),
                max_file_size_mb: Some(16384),
            },
        }
    }
}

impl LimitPolicy {
    /// The policy with the operator's settings over the built-in ones. A default above its
    /// maximum is a configuration mistake.
    pub fn with(defaults: &ProcessLimits, maxima: &ProcessLimits) -> Result<Self, String> {
        let builtin = Self::default();
        let policy = Self {
            defaults: defaults.zip(&builtin.defaults, |set, builtin| set.or(builtin)),
            maxima: maxima.zip(&builtin.maxima, |set, builtin| set.or(builtin)),
        };
        let mut problems = policy.defaults.zero_problems("[sandbox.limits]");
        problems.extend(policy.maxima.zero_problems("[sandbox.max_limits]"));
        for ((field, default), (_, maximum)) in policy
            .defaults
            .fields()
            .into_iter()
            .zip(policy.maxima.fields())
        {
            if let (Some(default), Some(maximum)) = (default, maximum)
                && default > maximum
            {
                problems.push(format!(
                    "[sandbox.limits] {field} = {default} is above [sandbox.max_limits] {field} = {maximum}"
                ));
            }
        }
        if problems.is_empty() {
            Ok(policy)
        } else {
            Err(problems.join("; "))
        }
    }

    /// One message per limit a manifest asks for above the server's maximum.
    pub fn check(&self, asked: &ProcessLimits) -> Vec<String> {
        asked
            .fields()
            .into_iter()
            .zip(self.maxima.fields())
            .filter_map(|((field, asked), (_, maximum))| match (asked, maximum) {
                (Some(asked), Some(maximum)) if asked > maximum => Some(format!(
                    "[limits] {field} = {asked} is above this server's maximum ({maximum}; set by the operator in [sandbox.max_limits])"
                )),
                _ => None,
            })
            .collect()
    }

    /// The limits a process runs with: what it asked for, else the default, never above
    /// the maximum (a manifest checked against older maxima is clamped).
    pub fn effective(&self, asked: Option<&ProcessLimits>) -> ProcessLimits {
        let asked = asked.cloned().unwrap_or_default();
        asked
            .zip(&self.defaults, |asked, default| asked.or(default))
            .zip(&self.maxima, |value, maximum| match (value, maximum) {
                (Some(value), Some(maximum)) => Some(value.min(maximum)),
                (value, _) => value,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_process_gets_the_defaults_and_a_manifest_moves_within_the_maxima() {
        let policy = LimitPolicy::default();
        let none = policy.effective(None);
        assert!(none.fields().iter().all(|(_, value)| value.is_some()));
        assert_eq!(none.max_processes, Some(256));
        assert_eq!(none.max_file_size_mb, Some(1024));

        let asked = ProcessLimits {
            max_memory_mb: Some(512),
            max_open_files: Some(100_000),
            ..ProcessLimits::default()
        };
        let effective = policy.effective(Some(&asked));
        assert_eq!(effective.max_memory_mb, Some(512));
        assert_eq!(effective.max_open_files, Some(65_536));
        assert_eq!(effective.max_cpu_seconds, Some(3600));
        let problems = policy.check(&asked);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("max_open_files = 100000"),
            "{problems:?}"
        );
    }

    #[test]
    fn the_operator_sets_defaults_and_maxima_that_must_agree() {
        let policy = LimitPolicy::with(
            &ProcessLimits {
                max_processes: Some(64),
                ..ProcessLimits::default()
            },
            &ProcessLimits {
                max_memory_mb: Some(8192),
                ..ProcessLimits::default()
            },
        )
        .unwrap();
        assert_eq!(policy.defaults.max_processes, Some(64));
        assert_eq!(policy.defaults.max_memory_mb, Some(4096));
        assert_eq!(policy.maxima.max_memory_mb, Some(8192));

        let error = LimitPolicy::with(
            &ProcessLimits {
                max_memory_mb: Some(9000),
                max_open_files: Some(0),
                ..ProcessLimits::default()
            },
            &ProcessLimits {
                max_memory_mb: Some(8192),
                ..ProcessLimits::default()
            },
        )
        .unwrap_err();
        assert!(error.contains("max_memory_mb = 9000 is above"), "{error}");
        assert!(
            error.contains("max_open_files must be at least 1"),
            "{error}"
        );
    }
}
