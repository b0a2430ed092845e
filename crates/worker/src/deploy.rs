//! Deploying an environment from a bundle (a tar.gz with a `rollout.toml`) or a git
//! repository: unpack or clone into `DATA_DIR/envs/PROJECT/NAME/HASH/` (each project's
//! bundles apart from the others'), hash the content (an identical re-deploy is a no-op),
//! build and introspect in the environment's sandbox (as [`crate::register_environment`]
//! does), and store the version, `ready` or `failed`, with its build log.

mod archive;
mod build;
mod git;
mod manifest;
mod tree;

use crate::register::{RegisterError, VersionSource, register_version};
use rollout_mcp::Sandbox;
use rollout_store::{EnvStatus, EnvVersion, NewEnvVersion, Store, StoreError};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;

pub use archive::{content_hash, pack_directory, unpack};
pub use build::{BUILD_LOG_TAIL_BYTES, BuildOutcome, BuildSpec, run_build};
pub use git::{GitConfig, redact_credentials};
pub use manifest::{BuildSection, MANIFEST_FILE, Manifest, RunSection};
pub use tree::{MAX_ENTRIES, MAX_UNPACKED_BYTES};

/// How many characters of the build log's end go into a failed version's `error`.
const ERROR_LOG_TAIL_CHARS: usize = 2000;
/// How many hex digits of the content hash name a version's directory.
const DIR_HASH_CHARS: usize = 16;

/// Where deployed bundles live and the budgets of a deploy.
#[derive(Debug, Clone)]
pub struct DeployConfig {
    /// The server's data directory; bundles go to `DATA_DIR/envs/PROJECT/NAME/HASH/`.
    pub data_dir: PathBuf,
    /// Budget of the clone and of the build command.
    pub build_timeout: Duration,
    /// Budget to start and introspect the built environment.
    pub introspect_timeout: Duration,
    /// The sandbox builds and introspection run in (with the manifest's limits).
    pub sandbox: Sandbox,
    /// What git deploys may reach and run with.
    pub git: GitConfig,
    /// Deploys of one environment run one at a time (they share its directory).
    pub locks: DeployLocks,
}

/// Where the bundles of a project's environment live: `DATA_DIR/envs/PROJECT/NAME`.
pub fn environment_dir(data_dir: &Path, project_id: &str, name: &str) -> PathBuf {
    data_dir.join("envs").join(project_id).join(name)
}

/// One lock per environment name, so that two deploys of the same environment in this
/// process do not race on its directory. Cheap to clone: clones share the locks.
#[derive(Debug, Clone, Default)]
pub struct DeployLocks(Arc<std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>);

impl DeployLocks {
    /// Waits for, then holds, the lock of `key` until the guard is dropped.
    pub async fn lock(&self, key: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            locks.entry(key.to_string()).or_default().clone()
        };
        lock.lock_owned().await
    }
}

/// What is deployed.
#[derive(Debug, Clone)]
pub enum BundleSource {
    /// A tar.gz of the bundle (the manifest at its root, or in its only folder).
    Archive(Vec<u8>),
    /// A git repository (https or ssh; `file://` and local paths when the operator allows
    /// them) at `reference` (a branch, tag or commit; the default branch when `None`).
    Git {
        url: String,
        reference: Option<String>,
    },
}

/// A deployed version.
#[derive(Debug, Clone)]
pub struct Deployment {
    pub version: EnvVersion,
    /// False when the content was already the newest ready version (nothing was built).
    pub created: bool,
    /// The build log's tail (the stored one, for an unchanged version).
    pub build_log: Option<String>,
}

/// Why a deploy did not produce a ready version.
#[derive(Debug, Error)]
pub enum DeployError {
    /// The bundle or the request is unusable (bad archive, manifest, name); nothing stored.
    #[error("{0}")]
    InvalidBundle(String),
    /// The repository could not be cloned or the reference not found; nothing stored.
    #[error("{0}")]
    Git(String),
    /// The build failed; a `failed` version records why, with the build log.
    #[error("the build of environment '{name}' failed: {reason}")]
    BuildFailed {
        name: String,
        reason: String,
        log_tail: String,
        version: Box<EnvVersion>,
    },
    /// The built environment could not be started or introspected; a `failed` version
    /// records why.
    #[error("environment '{name}' could not be started or introspected: {message}")]
    Unusable {
        name: String,
        message: String,
        version: Box<EnvVersion>,
    },
    /// A file operation of the server failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks an environment name: 1 to 64 characters of a-z, 0-9, '-', '_' or '.', starting
/// with a letter or digit (it names a directory).
pub fn check_env_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "name must be 1 to 64 characters of a-z, 0-9, '-', '_' or '.', starting with a letter or digit; got '{name}'"
        ))
    }
}

/// Deploys `source` as a version of environment `name`.
pub async fn deploy_environment(
    store: &Store,
    project_id: &str,
    name: &str,
    source: BundleSource,
    config: &DeployConfig,
) -> Result<Deployment, DeployError> {
    check_env_name(name).map_err(DeployError::InvalidBundle)?;
    if project_id.is_empty()
        || !project_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(DeployError::InvalidBundle(format!(
            "project '{project_id}' cannot name a directory"
        )));
    }
    let _deploying = config.locks.lock(&format!("{project_id}/{name}")).await;
    let env_dir = environment_dir(&config.data_dir, project_id, name);
    tokio::fs::create_dir_all(&env_dir)
        .await
        .map_err(io(format!("creating {}", env_dir.display())))?;
    remove_stale_staging(&env_dir).await;
    let staging = env_dir.join(format!(".staging-{}", rollout_domain::new_id()));
    let result = deploy_staged(store, project_id, name, source, config, &env_dir, &staging).await;
    if tokio::fs::metadata(&staging).await.is_ok() {
        let _ = tokio::fs::remove_dir_all(&staging).await;
    }
    result
}

async fn deploy_staged(
    store: &Store,
    project_id: &str,
    name: &str,
    source: BundleSource,
    config: &DeployConfig,
    env_dir: &Path,
    staging: &Path,
) -> Result<Deployment, DeployError> {
    let mut origin = json!({});
    match source {
        BundleSource::Archive(bytes) => {
            let staging = staging.to_path_buf();
            blocking(move || unpack(&bytes, &staging))
                .await?
                .map_err(|e| DeployError::InvalidBundle(format!("bad bundle: {e}")))?;
            origin["kind"] = json!("archive");
        }
        BundleSource::Git { url, reference } => {
            let commit = git::clone(
                &url,
                reference.as_deref(),
                staging,
                config.build_timeout,
                &config.git,
            )
            .await?;
            let url = redact_credentials(&url);
            origin = json!({"kind": "git", "url": url, "ref": reference, "commit": commit});
        }
    }
    let root = {
        let staging = staging.to_path_buf();
        blocking(move || {
            tree::seal(&staging)?;
            archive::bundle_root(&staging, MANIFEST_FILE)
        })
        .await?
        .map_err(io("reading the bundle".into()))?
    };
    let sandbox = config.sandbox.for_env(project_id, name);
    let manifest = Manifest::read(&root).await?;
    manifest
        .check(name, project_id, &sandbox, config.sandbox.config())
        .map_err(DeployError::InvalidBundle)?;
    let hash = {
        let root = root.clone();
        blocking(move || content_hash(&root))
            .await?
            .map_err(io("hashing the bundle".into()))?
    };
    if let Some(existing) = store.latest_ready_version(project_id, name).await?
        && existing.source_hash == hash
    {
        let build_log = store
            .env_build_log(project_id, name, existing.version)
            .await?
            .flatten();
        tracing::info!(
            env = name,
            version = existing.version,
            "deploy: content unchanged"
        );
        return Ok(Deployment {
            version: existing,
            created: false,
            build_log,
        });
    }

    let dir = env_dir.join(&hash[..DIR_HASH_CHARS]);
    if tokio::fs::metadata(&dir).await.is_ok() {
        tokio::fs::remove_dir_all(&dir)
            .await
            .map_err(io(format!("removing {}", dir.display())))?;
    }
    tokio::fs::rename(&root, &dir)
        .await
        .map_err(io(format!("moving the bundle to {}", dir.display())))?;
    let dir = tokio::fs::canonicalize(&dir)
        .await
        .map_err(io(format!("resolving {}", dir.display())))?;
    let label = format!("{name}@{}", &hash[..DIR_HASH_CHARS]);
    let target = manifest.target(&dir);
    let mut source = serde_json::to_value(&target).unwrap_or_default();
    source["bundle"] = json!({
        "hash": hash,
        "dir": dir.display().to_string(),
        "origin": origin,
        "build": manifest.build.command,
    });

    let mut log = String::new();
    if let Some(command) = &manifest.build.command {
        let spec = BuildSpec {
            command,
            dir: &dir,
            env: &manifest.build.env,
            limits: Some(&manifest.limits),
            timeout: config.build_timeout,
            label: &label,
        };
        let outcome = run_build(&spec, &sandbox).await;
        let sealed = dir.clone();
        blocking(move || tree::seal(&sealed))
            .await?
            .map_err(io(format!("sealing {}", dir.display())))?;
        log = outcome.log;
        if let Some(reason) = outcome.failure {
            let log_tail = tail_chars(&log, ERROR_LOG_TAIL_CHARS);
            let version = store
                .add_env_version(&NewEnvVersion {
                    project_id: project_id.to_string(),
                    name: name.to_string(),
                    source,
                    source_hash: hash,
                    status: EnvStatus::Failed,
                    description: None,
                    error: Some(format!("{reason}\n--- build log (tail) ---\n{log_tail}")),
                })
                .await?;
            store.set_env_build_log(&version.id, &log).await?;
            return Err(DeployError::BuildFailed {
                name: name.to_string(),
                reason,
                log_tail,
                version: Box::new(version),
            });
        }
    }

    let registered = register_version(
        store,
        project_id,
        name,
        &target,
        VersionSource {
            source,
            source_hash: hash,
        },
        config.introspect_timeout,
        &config.sandbox,
    )
    .await;
    match registered {
        Ok(version) => {
            store.set_env_build_log(&version.id, &log).await?;
            tracing::info!(
                env = name,
                version = version.version,
                "deploy: version ready"
            );
            Ok(Deployment {
                version,
                created: true,
                build_log: Some(log),
            })
        }
        Err(RegisterError::Unusable {
            name,
            message,
            version,
        }) => {
            store.set_env_build_log(&version.id, &log).await?;
            Err(DeployError::Unusable {
                name,
                message,
                version,
            })
        }
        Err(RegisterError::Store(error)) => Err(error.into()),
    }
}

/// Removes the bundles of a deleted environment (`DATA_DIR/envs/PROJECT/NAME`): another
/// project's environment of the same name keeps its own.
pub async fn remove_environment_files(data_dir: &Path, project_id: &str, name: &str) {
    if check_env_name(name).is_err() {
        return;
    }
    let dir = environment_dir(data_dir, project_id, name);
    if tokio::fs::metadata(&dir).await.is_ok()
        && let Err(error) = tokio::fs::remove_dir_all(&dir).await
    {
        tracing::warn!(env = %name, project = %project_id, %error, "could not remove the environment's files");
    }
}

/// Removes staging directories left by a deploy that was interrupted (a crash): under the
/// environment's lock, no other deploy of it is running.
async fn remove_stale_staging(env_dir: &Path) {
    let Ok(mut entries) = tokio::fs::read_dir(env_dir).await else {
        return;
    };
    while let Ok(Some(entry)) = entries.next_entry().await {
        if entry.file_name().to_string_lossy().starts_with(".staging-") {
            let _ = tokio::fs::remove_dir_all(entry.path()).await;
        }
    }
}

/// The last `max` characters of `text`.
fn tail_chars(text: &str, max: usize) -> String {
    let count = text.chars().count();
    text.chars().skip(count.saturating_sub(max)).collect()
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> DeployError {
    move |source| DeployError::Io { context, source }
}

/// Runs blocking file work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, DeployError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| DeployError::Io {
            context: "a file task of the deploy".into(),
            source: std::io::Error::other(error.to_string()),
        })
}

/// The source of a version as the API shows it: where a bundle came from, or `None` for a
/// version registered by command or URL.
pub fn bundle_info(source: &Value) -> Option<&Value> {
    source.get("bundle")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(check_env_name("my-env.v2_x").is_ok());
        for bad in ["", "../x", "A", "-x", "a/b", &"x".repeat(65)] {
            assert!(check_env_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tails_keep_the_end() {
        assert_eq!(tail_chars("abcdef", 3), "def");
        assert_eq!(tail_chars("ab", 3), "ab");
    }
}
