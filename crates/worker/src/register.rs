//! Registering an environment version: start it once, read its tools and scenarios, and
//! store the version as `ready` (or `failed` with the reason).

use crate::replicas::ReplicaManager;
use rollout_mcp::{EnvError, EnvTarget, Sandbox, connect_session};
use rollout_store::{EnvStatus, EnvVersion, NewEnvVersion, Store, StoreError};
use sha2::{Digest, Sha256};
use std::time::Duration;
use thiserror::Error;

/// Why a registration did not produce a ready version.
#[derive(Debug, Error)]
pub enum RegisterError {
    /// The environment could not be started or introspected; a `failed` version records why.
    #[error("environment '{name}' could not be introspected: {message}")]
    Unusable {
        name: String,
        message: String,
        version: Box<EnvVersion>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Starts the environment at `target` (in its sandbox), reads what it offers, and stores a
/// new version of `name` (or returns the existing ready version when the source is
/// unchanged).
pub async fn register_environment(
    store: &Store,
    project_id: &str,
    name: &str,
    target: &EnvTarget,
    timeout: Duration,
    sandbox: &Sandbox,
) -> Result<EnvVersion, RegisterError> {
    let source = serde_json::to_value(target).unwrap_or_default();
    let source_hash = hex_sha256(source.to_string().as_bytes());
    register_version(
        store,
        project_id,
        name,
        target,
        VersionSource {
            source,
            source_hash,
        },
        timeout,
        sandbox,
    )
    .await
}

/// What a version is stored with, beyond its target: the source as recorded (the target,
/// plus e.g. where a bundle came from) and the hash that makes re-registration a no-op.
pub(crate) struct VersionSource {
    pub(crate) source: serde_json::Value,
    pub(crate) source_hash: String,
}

/// Starts the environment at `target` (in its sandbox), reads what it offers, and stores a
/// version with the given source and hash (or returns the existing ready version when the
/// newest ready one has the same hash).
pub(crate) async fn register_version(
    store: &Store,
    project_id: &str,
    name: &str,
    target: &EnvTarget,
    version_source: VersionSource,
    timeout: Duration,
    sandbox: &Sandbox,
) -> Result<EnvVersion, RegisterError> {
    let VersionSource {
        source,
        source_hash,
    } = version_source;
    if let Some(existing) = store.latest_ready_version(project_id, name).await?
        && existing.source_hash == source_hash
    {
        return Ok(existing);
    }
    let label = format!("{name}@introspect");
    // A served (HTTP) environment is introspected through one temporary replica, stopped
    // when this is done (or dropped on timeout).
    let sandbox = sandbox.for_env(project_id, name);
    let replicas = ReplicaManager::new();
    let _stop_replicas = replicas.stop_on_drop();
    let introspected = tokio::time::timeout(timeout, async {
        let reachable = replicas
            .resolve(&label, &single_replica(target), &sandbox)
            .await
            .map_err(|message| EnvError::Connect {
                message,
                stderr_tail: String::new(),
            })?;
        let session = connect_session(&reachable, &label, &sandbox).await?;
        session.describe().await
    })
    .await;
    let (status, description, error) = match introspected {
        Ok(Ok(description)) => (EnvStatus::Ready, Some(description), None),
        Ok(Err(error)) => (EnvStatus::Failed, None, Some(error.to_string())),
        Err(_) => (
            EnvStatus::Failed,
            None,
            Some(format!(
                "the environment did not answer within {} s",
                timeout.as_secs()
            )),
        ),
    };
    let version = store
        .add_env_version(&NewEnvVersion {
            project_id: project_id.to_string(),
            name: name.to_string(),
            source,
            source_hash,
            status,
            description,
            error: error.clone(),
        })
        .await?;
    match error {
        None => Ok(version),
        Some(message) => Err(RegisterError::Unusable {
            name: name.to_string(),
            message,
            version: Box::new(version),
        }),
    }
}

fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The same target, with one replica (enough to read what it offers).
fn single_replica(target: &EnvTarget) -> EnvTarget {
    let mut target = target.clone();
    if let EnvTarget::Served { replicas, .. } = &mut target {
        *replicas = 1;
    }
    target
}
