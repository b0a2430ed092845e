//! `rollout env-guard [LIMITS] --work-dir DIR [--work-owner UID:GID] [--sandboxed] --
//! COMMAND...`: the supervisor every environment process runs under (the server builds its
//! command line in `rollout_mcp::sandbox`). It makes the process's private work directory,
//! applies the resource limits to itself (the environment inherits them), runs the command
//! (bubblewrap, when `--sandboxed`) with the same stdin/stdout/stderr, says on stderr which
//! limit stopped it, and kills everything it started as soon as its parent (the rollout
//! server) is gone, even after a SIGKILL: hud environments ignore stdin EOF, so without
//! this a crashed server would leave them running.
//!
//! `rollout sandbox-exec --uid UID --gid GID -- COMMAND...` is the step inside a sandbox
//! when the server runs as root: bubblewrap runs as root (it can show directories only root
//! can reach), and this drops to the sandbox's own user before the environment starts.

use anyhow::{Context, bail};
use clap::Args;
use nix::sys::resource::{Resource, setrlimit};
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::{Pid, getpgrp};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitCode, ExitStatus};
use std::time::Duration;

/// How often the guard checks on its parent and its child.
const POLL: Duration = Duration::from_millis(200);
/// CPU seconds between SIGXCPU (at the limit) and SIGKILL, for a process that ignores it.
const CPU_GRACE_SECONDS: u64 = 5;
const MIB: u64 = 1024 * 1024;

/// Limits, work directory and the command of `rollout env-guard`.
#[derive(Debug, Args)]
pub(crate) struct GuardArgs {
    /// Address-space limit of each process, in MiB.
    #[arg(long)]
    max_memory_mb: Option<u64>,
    /// CPU-time limit of each process, in seconds.
    #[arg(long)]
    max_cpu_seconds: Option<u64>,
    /// Open-file limit of each process.
    #[arg(long)]
    max_open_files: Option<u64>,
    /// Process limit of the environment's user.
    #[arg(long)]
    max_processes: Option<u64>,
    /// Largest file a process may write, in MiB.
    #[arg(long)]
    max_file_size_mb: Option<u64>,
    /// The private work directory to make (with `home` and `tmp`) and remove at the end.
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Owner of the work directory (the sandbox's user), as UID:GID.
    #[arg(long, value_parser = parse_owner)]
    work_owner: Option<(u32, u32)>,
    /// The command is bubblewrap, which reports a signal N of the environment as exit
    /// status 128 + N.
    #[arg(long)]
    sandboxed: bool,
    /// The command and its arguments.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

fn parse_owner(text: &str) -> Result<(u32, u32), String> {
    let (uid, gid) = text.split_once(':').ok_or("expected UID:GID")?;
    Ok((
        uid.parse().map_err(|_| format!("bad uid '{uid}'"))?,
        gid.parse().map_err(|_| format!("bad gid '{gid}'"))?,
    ))
}

/// Runs the command under the guard until it exits or the parent disappears.
pub(crate) fn run(args: GuardArgs) -> anyhow::Result<ExitCode> {
    let Some((program, rest)) = args.command.split_first() else {
        bail!("no command to run");
    };
    if let Some(dir) = &args.work_dir {
        make_work_dir(dir, args.work_owner)?;
    }
    let result = limit_and_start(&args, program, rest).and_then(|child| supervise(&args, child));
    if let Some(dir) = &args.work_dir {
        let _ = std::fs::remove_dir_all(dir);
    }
    result
}

fn limit_and_start(args: &GuardArgs, program: &str, rest: &[String]) -> anyhow::Result<Child> {
    let cpu = args
        .max_cpu_seconds
        .map(|soft| (soft, soft.saturating_add(CPU_GRACE_SECONDS)));
    let limits = [
        (
            Resource::RLIMIT_AS,
            args.max_memory_mb.map(|mb| mb.saturating_mul(MIB)),
        ),
        (Resource::RLIMIT_NOFILE, args.max_open_files),
        (Resource::RLIMIT_NPROC, args.max_processes),
        (
            Resource::RLIMIT_FSIZE,
            args.max_file_size_mb.map(|mb| mb.saturating_mul(MIB)),
        ),
    ];
    for (resource, limit) in limits {
        if let Some(limit) = limit {
            setrlimit(resource, limit, limit)
                .with_context(|| format!("setting {resource:?} to {limit}"))?;
        }
    }
    if let Some((soft, hard)) = cpu {
        setrlimit(Resource::RLIMIT_CPU, soft, hard)
            .with_context(|| format!("setting RLIMIT_CPU to {soft}"))?;
    }
    std::process::Command::new(program)
        .args(rest)
        .spawn()
        .with_context(|| format!("starting {program}"))
}

/// Waits for the child, or for the parent to disappear (then kills everything).
fn supervise(args: &GuardArgs, mut child: Child) -> anyhow::Result<ExitCode> {
    let parent = std::os::unix::process::parent_id();
    loop {
        if let Some(status) = child.try_wait().context("waiting for the environment")? {
            if let Some(reason) = stopped_by(args, status) {
                crate::eprintln_safe(&format!("rollout env-guard: {reason}"));
            }
            let code = status
                .code()
                .or_else(|| status.signal().map(|signal| 128 + signal))
                .and_then(|c| u8::try_from(c).ok())
                .unwrap_or(1);
            return Ok(ExitCode::from(code));
        }
        if std::os::unix::process::parent_id() != parent {
            // The server is gone: take the environment and everything it started with us.
            // Killing bubblewrap ends its PID namespace, hence every process inside.
            if let Ok(pid) = i32::try_from(child.id()) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            let _ = child.wait();
            if let Some(dir) = &args.work_dir {
                let _ = std::fs::remove_dir_all(dir);
            }
            let _ = killpg(getpgrp(), Signal::SIGKILL);
            return Ok(ExitCode::FAILURE);
        }
        std::thread::sleep(POLL);
    }
}

/// Why the environment ended, when a signal ended it (a limit, most often).
fn stopped_by(args: &GuardArgs, status: ExitStatus) -> Option<String> {
    let number = match (status.signal(), status.code()) {
        (Some(signal), _) => signal,
        (None, Some(code)) if args.sandboxed && code > 128 => code - 128,
        _ => return None,
    };
    let signal = Signal::try_from(number).ok()?;
    let limit = |name: &str, value: Option<u64>| {
        value.map_or_else(String::new, |value| format!(": {name} = {value}"))
    };
    Some(match signal {
        Signal::SIGXFSZ => format!(
            "the environment was stopped by its file size limit (SIGXFSZ{})",
            limit("max_file_size_mb", args.max_file_size_mb)
        ),
        Signal::SIGXCPU => format!(
            "the environment was stopped by its CPU time limit (SIGXCPU{})",
            limit("max_cpu_seconds", args.max_cpu_seconds)
        ),
        Signal::SIGKILL => format!(
            "the environment was killed (SIGKILL): past its CPU time limit{}, or out of memory",
            limit("max_cpu_seconds", args.max_cpu_seconds)
        ),
        other => format!("the environment was killed by {}", other.as_str()),
    })
}

/// Makes `dir`, `dir/home` and `dir/tmp`, private to `owner` (the sandbox's user).
fn make_work_dir(dir: &Path, owner: Option<(u32, u32)>) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for path in [dir.to_path_buf(), dir.join("home"), dir.join("tmp")] {
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("restricting {}", path.display()))?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&path, Some(uid), Some(gid))
                .with_context(|| format!("giving {} to the sandbox's user", path.display()))?;
        }
    }
    Ok(())
}

/// The user `rollout sandbox-exec` drops to, and the command.
#[derive(Debug, Args)]
pub(crate) struct ExecArgs {
    #[arg(long)]
    uid: u32,
    #[arg(long)]
    gid: u32,
    /// The working directory, entered as that user.
    #[arg(long)]
    chdir: Option<PathBuf>,
    /// The command and its arguments.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

/// Becomes `uid:gid` without supplementary groups and executes the command; returns only
/// on failure.
pub(crate) fn exec(args: ExecArgs) -> anyhow::Result<ExitCode> {
    if args.uid == 0 || args.gid == 0 {
        bail!("refusing to run an environment as root");
    }
    let Some((program, rest)) = args.command.split_first() else {
        bail!("no command to run");
    };
    let mut command = std::process::Command::new(program);
    command.args(rest).uid(args.uid).gid(args.gid);
    if let Some(dir) = &args.chdir {
        command.current_dir(dir);
    }
    let error = command.exec();
    Err(error).with_context(|| format!("starting {program}"))
}
