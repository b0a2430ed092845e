//! The environment versions of the runs a worker executes, kept by id. A version's source
//! and description never change once stored (only its build log does), so a worker reads
//! and parses each version once instead of once per run. The claim returns the id of its
//! run's version (`ClaimedRun::env_version_id`): a version deleted and replaced under the
//! same number has a new id, and is read again; a deleted one is gone for the run.

use rollout_store::{EnvVersion, RunRecord, Store, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The most versions kept; past it the map starts over (a worker serves a handful).
const MAX_KEPT: usize = 256;

/// The versions read so far, by id.
#[derive(Default)]
pub(crate) struct Versions {
    known: Mutex<HashMap<String, Arc<EnvVersion>>>,
}

impl Versions {
    /// The version `run` uses, whose id its claim read as `id`: `None` when it was deleted
    /// (no id, or another version under its number now).
    pub(crate) async fn of(
        &self,
        store: &Store,
        run: &RunRecord,
        id: Option<&str>,
    ) -> Result<Option<Arc<EnvVersion>>, StoreError> {
        let Some(id) = id else { return Ok(None) };
        if let Some(version) = self.kept(id) {
            return Ok(Some(version));
        }
        let spec = &run.spec;
        let read = store
            .env_version(&run.project_id, &spec.env_name, spec.env_version)
            .await?;
        let Some(version) = read.filter(|version| version.id == id) else {
            return Ok(None);
        };
        let version = Arc::new(version);
        if let Ok(mut known) = self.known.lock() {
            if known.len() >= MAX_KEPT {
                known.clear();
            }
            known.insert(version.id.clone(), version.clone());
        }
        Ok(Some(version))
    }

    fn kept(&self, id: &str) -> Option<Arc<EnvVersion>> {
        self.known.lock().ok()?.get(id).cloned()
    }
}
