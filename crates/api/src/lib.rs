//! The HTTP API's contract: every request body, query and response of `/v1` as a Rust type.
//!
//! The server builds its answers from these types (`Json<SomeView>`), the CLI and the web UI
//! read them back as the same types, and `GET /openapi.json` describes them (each type
//! derives `utoipa::ToSchema` or `IntoParams`). Values that come from environments or models
//! (scenario arguments, tool schemas, evaluation `info`, metadata) stay `serde_json::Value`
//! inside the typed views: rollout does not own their shape.
//!
//! Times are RFC 3339 strings (UTC). Optional values are `null` on the wire, not absent,
//! unless a field says otherwise.

pub mod datasets;
pub mod environments;
pub mod error;
pub mod jobs;
pub mod keys;
pub mod projects;
pub mod review_queues;
pub mod reviews;
pub mod runs;
pub mod schedules;
pub mod shares;
pub mod tasksets;
pub mod training;
pub mod usage;

pub use error::{ErrorBody, ErrorDetail};

/// `GET /healthz`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Health {
    /// Always `ok` while the server answers.
    pub status: String,
}
