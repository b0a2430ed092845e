//! Cloning a bundle from git with the `git` command: https and ssh repositories, and
//! `file://` URLs or local paths only when the operator allows them (`[deploy]
//! allow_local_git`: a local path reads the server's own disk). The checkout is detached
//! at the resolved commit, `.git` is removed (the content hash covers the files, not the
//! history), and the tree is held to the rules of archives before anything reads it.
//! Credentials in a URL are used for the clone and never stored, logged or shown.

use super::DeployError;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;

/// How the clone reaches the repository, and what git may use.
#[derive(Debug, Clone, Default)]
pub struct GitConfig {
    /// `file://` URLs and local paths are accepted.
    pub allow_local: bool,
    /// The variables git runs with (its environment is cleared): `PATH`, `HOME` (the
    /// operator's git and ssh configuration), `SSH_AUTH_SOCK`, `LANG`.
    pub env: Vec<(String, String)>,
}

/// Clones `url` into `dest` at `reference` (the default branch when `None`); returns the
/// commit's id.
pub(crate) async fn clone(
    url: &str,
    reference: Option<&str>,
    dest: &Path,
    timeout: Duration,
    config: &GitConfig,
) -> Result<String, DeployError> {
    let shown = redact_credentials(url);
    check_url(url, config.allow_local).map_err(DeployError::Git)?;
    if reference.is_some_and(|r| r.trim().is_empty() || r.starts_with('-')) {
        return Err(DeployError::Git(format!(
            "'{}' is not a branch, tag or commit",
            reference.unwrap_or_default()
        )));
    }
    let dest_text = dest.display().to_string();
    let hide = |message: String| message.replace(url, &shown);
    git(
        &["clone", "--quiet", "--", url, &dest_text],
        None,
        timeout,
        config,
    )
    .await
    .map_err(|e| DeployError::Git(hide(format!("git clone {shown} failed: {e}"))))?;
    let wanted = reference.unwrap_or("HEAD");
    let mut commit = None;
    for candidate in [format!("origin/{wanted}"), wanted.to_string()] {
        let spec = format!("{candidate}^{{commit}}");
        if let Ok(id) = git(
            &["rev-parse", "--verify", "--quiet", &spec],
            Some(dest),
            timeout,
            config,
        )
        .await
        {
            commit = Some(id.trim().to_string());
            break;
        }
    }
    let Some(commit) = commit else {
        return Err(DeployError::Git(format!(
            "'{wanted}' is not a branch, tag or commit of {shown}"
        )));
    };
    git(
        &["checkout", "--quiet", "--detach", &commit],
        Some(dest),
        timeout,
        config,
    )
    .await
    .map_err(|e| DeployError::Git(hide(format!("git checkout {commit} failed: {e}"))))?;
    tokio::fs::remove_dir_all(dest.join(".git"))
        .await
        .map_err(|source| DeployError::Io {
            context: "removing .git from the clone".into(),
            source,
        })?;
    let checked = dest.to_path_buf();
    tokio::task::spawn_blocking(move || super::tree::check(&checked))
        .await
        .map_err(|e| DeployError::Io {
            context: "checking the clone".into(),
            source: std::io::Error::other(e.to_string()),
        })?
        .map_err(|e| DeployError::InvalidBundle(format!("bad repository: {e}")))?;
    Ok(commit)
}

/// Accepts https and ssh URLs (`ssh://`, `user@host:path`); `file://` and local paths
/// only when allowed. The message says how to fix a refused one.
fn check_url(url: &str, allow_local: bool) -> Result<(), String> {
    if url.trim().is_empty() || url.starts_with('-') {
        return Err(format!(
            "'{}' is not a repository URL",
            redact_credentials(url)
        ));
    }
    let lower = url.to_ascii_lowercase();
    let remote = lower.starts_with("https://") || lower.starts_with("ssh://") || is_scp_like(url);
    let local = lower.starts_with("file://") || !url.contains(':');
    if remote || (local && allow_local) {
        return Ok(());
    }
    if local {
        return Err(format!(
            "'{url}' is a local repository; deploying from file:// URLs and local paths needs \
             [deploy] allow_local_git = true in the server's rollout.toml"
        ));
    }
    Err(format!(
        "'{}' is not an https or ssh URL; only https:// and ssh repositories can be deployed",
        redact_credentials(url)
    ))
}

/// `user@host:path` (git's scp-like ssh syntax): a colon before any slash, no `://`.
fn is_scp_like(url: &str) -> bool {
    match (url.find(':'), url.find('/')) {
        (Some(colon), slash) => {
            !url.contains("://")
                && !url[..colon].contains("::")
                && url[..colon].contains('@')
                && slash.is_none_or(|slash| colon < slash)
        }
        (None, _) => false,
    }
}

/// `url` without the credentials of its user-info part (`https://***@host/...`).
pub fn redact_credentials(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}://***@{}", &url[..scheme_end], &rest[at + 1..]),
        None => url.to_string(),
    }
}

/// Runs `git ARGS` (never prompting, only the allowed transports, a cleared environment);
/// its stdout on success, its stderr on failure.
async fn git(
    args: &[&str],
    dir: Option<&Path>,
    timeout: Duration,
    config: &GitConfig,
) -> Result<String, String> {
    let mut command = Command::new("git");
    command
        .args(["-c", "protocol.allow=never"])
        .args(["-c", "protocol.https.allow=always"])
        .args(["-c", "protocol.ssh.allow=always"]);
    if config.allow_local {
        command.args(["-c", "protocol.file.allow=always"]);
    }
    command
        .args(args)
        .env_clear()
        .envs(config.env.iter().map(|(k, v)| (k, v)))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_and_ssh_unless_local_is_allowed() {
        for good in [
            "https://github.com/org/env.git",
            "ssh://git@github.com/org/env.git",
            "git@github.com:org/env.git",
        ] {
            assert!(check_url(good, false).is_ok(), "{good}");
        }
        for local in ["file:///srv/env", "/srv/env", "./env"] {
            let error = check_url(local, false).unwrap_err();
            assert!(error.contains("allow_local_git = true"), "{error}");
            assert!(check_url(local, true).is_ok(), "{local}");
        }
        for bad in [
            "http://example.com/env.git",
            "git://example.com/env",
            "ext::sh -c id",
            "-u",
        ] {
            assert!(check_url(bad, true).is_err(), "{bad}");
        }
        let error = check_url("http://user:hunter2@example.com/x", true).unwrap_err();
        assert!(!error.contains("hunter2"), "{error}");
    }

    #[test]
    fn credentials_are_redacted() {
        assert_eq!(
            redact_credentials("https://user:tok3n@github.com/org/env.git"),
            "https://***@github.com/org/env.git"
        );
        assert_eq!(
            redact_credentials("https://github.com/a@b/env.git"),
            "https://github.com/a@b/env.git"
        );
        assert_eq!(
            redact_credentials("git@github.com:org/env.git"),
            "git@github.com:org/env.git"
        );
    }
}
