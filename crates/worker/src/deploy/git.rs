//! Cloning a bundle from git with the `git` command: any URL it takes, `file://` and local
//! paths included. The checkout is detached at the resolved commit, and `.git` is removed
//! (the content hash covers the files, not the history).

use super::DeployError;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;

/// Clones `url` into `dest` at `reference` (the default branch when `None`); returns the
/// commit's id.
pub(crate) async fn clone(
    url: &str,
    reference: Option<&str>,
    dest: &Path,
    timeout: Duration,
) -> Result<String, DeployError> {
    if url.trim().is_empty() || url.starts_with('-') {
        return Err(DeployError::Git(format!("'{url}' is not a repository URL")));
    }
    if reference.is_some_and(|r| r.trim().is_empty() || r.starts_with('-')) {
        return Err(DeployError::Git(format!(
            "'{}' is not a branch, tag or commit",
            reference.unwrap_or_default()
        )));
    }
    let dest_text = dest.display().to_string();
    git(&["clone", "--quiet", "--", url, &dest_text], None, timeout)
        .await
        .map_err(|e| DeployError::Git(format!("git clone {url} failed: {e}")))?;
    let wanted = reference.unwrap_or("HEAD");
    let mut commit = None;
    for candidate in [format!("origin/{wanted}"), wanted.to_string()] {
        let spec = format!("{candidate}^{{commit}}");
        if let Ok(id) = git(
            &["rev-parse", "--verify", "--quiet", &spec],
            Some(dest),
            timeout,
        )
        .await
        {
            commit = Some(id.trim().to_string());
            break;
        }
    }
    let Some(commit) = commit else {
        return Err(DeployError::Git(format!(
            "'{wanted}' is not a branch, tag or commit of {url}"
        )));
    };
    git(
        &["checkout", "--quiet", "--detach", &commit],
        Some(dest),
        timeout,
    )
    .await
    .map_err(|e| DeployError::Git(format!("git checkout {commit} failed: {e}")))?;
    tokio::fs::remove_dir_all(dest.join(".git"))
        .await
        .map_err(|source| DeployError::Io {
            context: "removing .git from the clone".into(),
            source,
        })?;
    Ok(commit)
}

/// Runs `git ARGS` (never prompting); its stdout on success, its stderr on failure.
async fn git(args: &[&str], dir: Option<&Path>, timeout: Duration) -> Result<String, String> {
    let mut command = Command::new("git");
    command
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    let output = tokio::time::timeout(timeout, command.output())
        .await
        .map_err(|_| format!("git did not finish within {} s", timeout.as_secs()))?
        .map_err(|e| format!("could not run git: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).trim().to_string())
    }
}
