//! The environment version a run request is served with, kept in memory between requests.
//!
//! Every run request reads its version (the newest ready one, or the one asked for) and
//! parses its description: a statement and a few kilobytes of JSON per run, for an answer
//! that changes only when a version of the project is registered or an environment deleted.
//! Those changes bump the project's environment generation in their own transaction
//! (`BUMP_ENV_GENERATION`), whichever process makes them (a server, a worker building a
//! deploy, another server on the same PostgreSQL), and a request reads the generation with
//! its key (`VerifiedKey::env_generation`), in the statement it runs anyway. An answer kept
//! under the generation the request read is the one the store holds: no statement, no parse.
//!
//! The generation must be read before the version: an answer read after a change but kept
//! under the generation before it is only read again (the next request reads the newer
//! generation); an answer read before a change can never be kept under the generation after
//! it.

use crate::Result;
use crate::store::Store;
use crate::types::{EnvStatus, EnvVersion};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The most answers kept; past it the map starts over (a server serves a handful of
/// environments per project).
const MAX_KEPT: usize = 1024;

/// Project, environment name, version asked for (`None`: the newest ready one).
type Asked = (String, String, Option<i64>);

/// The answers kept, with the generation each was read under.
#[derive(Debug, Default)]
pub(crate) struct ServingVersions {
    known: Mutex<HashMap<Asked, (i64, Arc<EnvVersion>)>>,
}

impl ServingVersions {
    fn kept(&self, asked: &Asked, generation: i64) -> Option<Arc<EnvVersion>> {
        let known = self.known.lock().ok()?;
        let (kept_at, version) = known.get(asked)?;
        (*kept_at == generation).then(|| version.clone())
    }

    fn keep(&self, asked: Asked, generation: i64, version: Arc<EnvVersion>) {
        if let Ok(mut known) = self.known.lock() {
            if known.len() >= MAX_KEPT && !known.contains_key(&asked) {
                known.clear();
            }
            known.insert(asked, (generation, version));
        }
    }
}

impl Store {
    /// The ready version a run request is served with: `version` of the environment `name`,
    /// or its newest ready one; `None` when there is no such ready version (the caller reads
    /// the versions to say why).
    ///
    /// `generation` is the project's environment generation read with the request's key,
    /// before this call (`VerifiedKey::env_generation`): with it, the answer comes from
    /// memory when it was kept under the same generation. Without it, it is read.
    pub async fn serving_version(
        &self,
        project_id: &str,
        name: &str,
        version: Option<i64>,
        generation: Option<i64>,
    ) -> Result<Option<Arc<EnvVersion>>> {
        let asked = (project_id.to_string(), name.to_string(), version);
        if let Some(generation) = generation
            && let Some(kept) = self.serving().kept(&asked, generation)
        {
            return Ok(Some(kept));
        }
        let found = match version {
            Some(wanted) => self.env_version(project_id, name, wanted).await?,
            None => self.latest_ready_version(project_id, name).await?,
        };
        let Some(found) = found.filter(|found| found.status == EnvStatus::Ready) else {
            return Ok(None);
        };
        let found = Arc::new(found);
        if let Some(generation) = generation {
            self.serving().keep(asked, generation, found.clone());
        }
        Ok(Some(found))
    }
}
