//! The store's error type. sqlx's error is wrapped in [`DbError`] so that no sqlx type
//! crosses the crate boundary.

use rollout_domain::RunStatus;
use std::fmt;
use thiserror::Error;

/// Why a store operation failed.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The URL names no backend this store speaks.
    #[error("unsupported database url '{url}': expected sqlite://path or postgres://...")]
    UnsupportedUrl { url: String },
    /// The database could not be reached or opened.
    #[error("could not connect to the database: {source}")]
    Connect {
        #[source]
        source: DbError,
    },
    /// The parent directory of an SQLite file could not be created.
    #[error("could not create directory '{path}' for the database: {source}")]
    CreateDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// Applying the embedded migrations failed.
    #[error("could not apply migrations: {message}")]
    Migrate { message: String },
    /// A statement failed.
    #[error("database error while {op}: {source}")]
    Database {
        op: &'static str,
        #[source]
        source: DbError,
    },
    /// A value could not be serialized to JSON for storage.
    #[error("could not encode {what} as json: {source}")]
    Encode {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// A stored value could not be read back: the row is corrupt or from a newer version.
    #[error("stored {what} is invalid: {detail}")]
    Corrupt { what: &'static str, detail: String },
    /// `finish_run` was asked to end a run in a non-terminal status.
    #[error("cannot finish a run with non-terminal status '{status}'")]
    NotTerminal { status: RunStatus },
}

impl StoreError {
    /// A stable code for logs and API errors.
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::UnsupportedUrl { .. } => "unsupported_url",
            StoreError::Connect { .. } => "connect",
            StoreError::CreateDir { .. } => "create_dir",
            StoreError::Migrate { .. } => "migrate",
            StoreError::Database { .. } => "database",
            StoreError::Encode { .. } => "encode",
            StoreError::Corrupt { .. } => "corrupt",
            StoreError::NotTerminal { .. } => "not_terminal",
        }
    }

    /// True when the database is unreachable or overloaded (worth a retry, or a 503).
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Connect { .. } => true,
            StoreError::Database { source, .. } => source.is_unavailable(),
            StoreError::UnsupportedUrl { .. }
            | StoreError::CreateDir { .. }
            | StoreError::Migrate { .. }
            | StoreError::Encode { .. }
            | StoreError::Corrupt { .. }
            | StoreError::NotTerminal { .. } => false,
        }
    }

    /// True when a statement lost a race on a unique key (the caller may retry it).
    pub(crate) fn is_unique_violation(&self) -> bool {
        match self {
            StoreError::Database { source, .. } => source.is_unique_violation(),
            _ => false,
        }
    }
}

/// A database driver error, kept opaque.
#[derive(Debug)]
pub struct DbError(sqlx::Error);

impl DbError {
    fn is_unavailable(&self) -> bool {
        matches!(
            self.0,
            sqlx::Error::Io(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed
        )
    }

    fn is_unique_violation(&self) -> bool {
        match &self.0 {
            sqlx::Error::Database(error) => error.is_unique_violation(),
            _ => false,
        }
    }
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for DbError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// Maps a sqlx error to [`StoreError::Database`] with what was being done.
pub(crate) fn db(op: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Database {
        op,
        source: DbError(source),
    }
}

/// Maps a sqlx error met while connecting.
pub(crate) fn connect_error(source: sqlx::Error) -> StoreError {
    StoreError::Connect {
        source: DbError(source),
    }
}

/// Maps a serde_json error met while encoding `what`.
pub(crate) fn encode(what: &'static str) -> impl FnOnce(serde_json::Error) -> StoreError {
    move |source| StoreError::Encode { what, source }
}

/// Maps an error met while decoding a stored `what`.
pub(crate) fn corrupt<E: fmt::Display>(what: &'static str) -> impl FnOnce(E) -> StoreError {
    move |error| StoreError::Corrupt {
        what,
        detail: error.to_string(),
    }
}
