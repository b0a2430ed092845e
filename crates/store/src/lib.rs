#![doc = include_str!("../README.md")]

pub mod error;
mod store;
pub mod types;

pub use error::{DbError, StoreError};
pub use store::Store;
pub use store::keys::{generate_api_key, hash_api_key};
pub use types::{
    ApiKeyRecord, Backend, ClaimedRun, EnvStatus, EnvVersion, FinishRun, KeyRole, NewEnvVersion,
    RunFilter, RunRecord,
};

/// Shorthand for the store's results.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
