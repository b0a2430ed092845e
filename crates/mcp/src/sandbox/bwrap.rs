//! bubblewrap's command line for one process: its namespaces, the file-system layout of
//! [`super::paths`], and, for a root server, the step that drops to the sandbox's own user.

use super::paths::{Layout, Mount};
use super::{Network, ProcessRole, ProcessSpec, SANDBOX_HOME, SandboxConfig};
use std::path::Path;

/// Where the rollout binary is shown inside a sandbox, to drop to the sandbox's user.
pub(super) const SANDBOX_EXEC: &str = "/run/rollout/rollout";
/// The user and group a sandbox's processes see themselves as without a user of their own.
const NOBODY: &str = "65534";

/// bubblewrap's options for `spec`: namespaces, the file-system layout (`work_dir`'s `home`
/// and `tmp` as the private home and `/tmp`), the directory. `uid`: the user of its own a
/// root server gives the sandbox.
pub(super) fn args(
    config: &SandboxConfig,
    network: Network,
    program: &Path,
    spec: &ProcessSpec<'_>,
    work_dir: &Path,
    uid: Option<u32>,
) -> Vec<String> {
    let mut args: Vec<String> = [
        "--die-with-parent",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
    ]
    .map(String::from)
    .to_vec();
    if network == Network::None {
        args.push("--unshare-net".into());
    }
    match uid {
        // bubblewrap runs as root: no user namespace; `sandbox-exec` drops to the user.
        Some(_) => args.extend(
            [
                "--cap-drop",
                "ALL",
                "--cap-add",
                "CAP_SETUID",
                "--cap-add",
                "CAP_SETGID",
            ]
            .map(String::from),
        ),
        None => args.extend(
            [
                "--unshare-user",
                "--disable-userns",
                "--uid",
                NOBODY,
                "--gid",
                NOBODY,
            ]
            .map(String::from),
        ),
    }
    let mut layout = Layout::new(&config.hidden);
    if let Some(cwd) = spec.cwd {
        let bundle = config
            .bundles
            .as_ref()
            .is_some_and(|bundles| cwd.starts_with(bundles));
        if bundle {
            layout.allow(cwd);
        }
        layout.directory(cwd, bundle && spec.role == ProcessRole::Build);
    }
    layout.program(&spec.command[0], spec.cwd);
    for argument in &spec.command[1..] {
        layout.argument(argument);
    }
    for path in &config.read_only_paths {
        layout.directory(path, false);
    }
    layout.place(&work_dir.join("tmp"), Path::new("/tmp"));
    layout.place(&work_dir.join("home"), Path::new(SANDBOX_HOME));
    args.extend(["--proc", "/proc", "--dev", "/dev"].map(String::from));
    for mount in layout.mounts() {
        let shown = |path: &Path| path.display().to_string();
        match mount {
            Mount::ReadOnly(path) => args.extend(["--ro-bind".into(), shown(&path), shown(&path)]),
            Mount::Writable { source, dest } => {
                args.extend(["--bind".into(), shown(&source), shown(&dest)])
            }
            Mount::Dir(path) => args.extend([
                "--perms".into(),
                "0755".into(),
                "--dir".into(),
                shown(&path),
            ]),
            Mount::Symlink { target, link } => {
                args.extend(["--symlink".into(), shown(&target), shown(&link)])
            }
            Mount::Hide(path) => args.extend([
                "--perms".into(),
                "0755".into(),
                "--tmpfs".into(),
                shown(&path),
            ]),
        }
    }
    if uid.is_some() {
        args.extend(
            [
                "--perms",
                "0755",
                "--dir",
                "/run/rollout",
                "--ro-bind",
                &program.display().to_string(),
                SANDBOX_EXEC,
            ]
            .map(String::from),
        );
    }
    // As root without capabilities, bubblewrap cannot enter the user's private home:
    // `sandbox-exec` changes directory once it is that user.
    args.push("--chdir".into());
    args.push(match uid {
        Some(_) => "/".into(),
        None => working_dir(spec),
    });
    args
}

/// The working directory inside a sandbox: the target's, else the private home.
pub(super) fn working_dir(spec: &ProcessSpec<'_>) -> String {
    spec.cwd
        .map(|cwd| cwd.display().to_string())
        .unwrap_or_else(|| SANDBOX_HOME.to_string())
}
