//! `rollout env-guard [LIMITS] -- COMMAND...`: the supervisor every stdio environment runs
//! under. It applies resource limits to itself (the environment inherits them), runs the
//! command with the same stdin/stdout, and kills the whole process group as soon as its
//! parent (the rollout server) is gone, even after a SIGKILL. hud environments ignore stdin
//! EOF, so without this a crashed server would leave them running.

use anyhow::{Context, bail};
use clap::Args;
use nix::sys::resource::{Resource, setrlimit};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::getpgrp;
use std::process::ExitCode;
use std::time::Duration;

/// How often the guard checks on its parent and its child.
const POLL: Duration = Duration::from_millis(200);

/// Limits and the command of `rollout env-guard`.
#[derive(Debug, Args)]
pub(crate) struct GuardArgs {
    /// Address-space limit of the environment, in MiB.
    #[arg(long)]
    max_memory_mb: Option<u64>,
    /// CPU-time limit of the environment, in seconds.
    #[arg(long)]
    max_cpu_seconds: Option<u64>,
    /// Open-file limit of the environment.
    #[arg(long)]
    max_open_files: Option<u64>,
    /// The environment's command and arguments.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

/// Runs the command under the guard until it exits or the parent disappears.
pub(crate) fn run(args: GuardArgs) -> anyhow::Result<ExitCode> {
    let limits = [
        (
            Resource::RLIMIT_AS,
            args.max_memory_mb.map(|mb| mb * 1024 * 1024),
        ),
        (Resource::RLIMIT_CPU, args.max_cpu_seconds),
        (Resource::RLIMIT_NOFILE, args.max_open_files),
    ];
    for (resource, limit) in limits {
        if let Some(limit) = limit {
            setrlimit(resource, limit, limit)
                .with_context(|| format!("setting {resource:?} to {limit}"))?;
        }
    }
    let Some((program, rest)) = args.command.split_first() else {
        bail!("no command to run");
    };
    let parent = std::os::unix::process::parent_id();
    let mut child = std::process::Command::new(program)
        .args(rest)
        .spawn()
        .with_context(|| format!("starting {program}"))?;
    loop {
        if let Some(status) = child.try_wait().context("waiting for the environment")? {
            let code = status
                .code()
                .and_then(|c| u8::try_from(c).ok())
                .unwrap_or(1);
            return Ok(ExitCode::from(code));
        }
        if std::os::unix::process::parent_id() != parent {
            // The server is gone: take the environment and everything it started with us.
            let _ = killpg(getpgrp(), Signal::SIGKILL);
            let _ = child.kill();
            return Ok(ExitCode::FAILURE);
        }
        std::thread::sleep(POLL);
    }
}
