//! Errors of the bundled environments.

use rollout_mcp::sdk::SdkError;
use thiserror::Error;

/// Running a bundled environment failed.
#[derive(Debug, Error)]
pub enum EnvsError {
    /// No bundled environment has this name.
    #[error("unknown example environment '{name}' (known: {known})")]
    UnknownEnvironment {
        /// The requested name.
        name: String,
        /// The bundled names, comma separated.
        known: String,
    },
    /// Serving the environment failed.
    #[error(transparent)]
    Serve(#[from] SdkError),
}
