//! Identifiers. Runs use UUID v7 so that ids sort by creation time, which keeps
//! "newest first" listings and cursors cheap.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The id of a run, which is also its `trace_id` on the API.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(pub String);

impl RunId {
    /// A new, time-ordered run id.
    pub fn generate() -> Self {
        Self(new_id())
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A new time-ordered unique id (UUID v7, hyphenated).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
