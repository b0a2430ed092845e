//! Checkpoints trained by another server process reach this one's catalog on first use.

use rollout_models::ModelCatalog;
use rollout_store::{Store, StoreError};

/// When `project` has no checkpoint `model` in `catalog`, loads the stored checkpoints
/// (one registered by another process since this one started); true when it did, so the
/// caller resolves the model again.
pub async fn load_checkpoints_if_unknown(
    catalog: &ModelCatalog,
    store: &Store,
    project: &str,
    model: &str,
) -> Result<bool, StoreError> {
    if catalog.checkpoint(project, model).is_some() {
        return Ok(false);
    }
    for checkpoint in store.list_checkpoints().await? {
        catalog.register_checkpoint(checkpoint);
    }
    Ok(true)
}
