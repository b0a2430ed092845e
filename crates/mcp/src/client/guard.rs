//! The supervisor a stdio environment runs under: `rollout env-guard` applies resource
//! limits and kills the environment's process group when the server dies, even by SIGKILL.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Resource limits of an environment process (all optional).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessLimits {
    /// Address-space limit, in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_memory_mb: Option<u64>,
    /// CPU-time limit, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cpu_seconds: Option<u64>,
    /// Open-file limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_open_files: Option<u64>,
}

/// The guard program (the rollout binary) and the limits it applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessGuard {
    /// The `rollout` binary, which has the `env-guard` subcommand.
    pub program: PathBuf,
    pub limits: ProcessLimits,
}

impl ProcessGuard {
    /// The command line that runs `command` under the guard.
    pub fn wrap(&self, command: &[String]) -> Vec<String> {
        let mut wrapped = vec![self.program.display().to_string(), "env-guard".to_string()];
        let limits = [
            ("--max-memory-mb", self.limits.max_memory_mb),
            ("--max-cpu-seconds", self.limits.max_cpu_seconds),
            ("--max-open-files", self.limits.max_open_files),
        ];
        for (flag, value) in limits {
            if let Some(value) = value {
                wrapped.push(flag.to_string());
                wrapped.push(value.to_string());
            }
        }
        wrapped.push("--".to_string());
        wrapped.extend(command.iter().cloned());
        wrapped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_the_command_after_the_limits() {
        let guard = ProcessGuard {
            program: "/bin/rollout".into(),
            limits: ProcessLimits {
                max_memory_mb: Some(512),
                ..ProcessLimits::default()
            },
        };
        assert_eq!(
            guard.wrap(&["python".into(), "env.py".into()]),
            [
                "/bin/rollout",
                "env-guard",
                "--max-memory-mb",
                "512",
                "--",
                "python",
                "env.py"
            ]
        );
    }
}
