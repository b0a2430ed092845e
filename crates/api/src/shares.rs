//! The JSON contract of share links and of a project's sharing switch.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The body of `POST /v1/traces/{id}/share` (may be empty: `{}`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShareRequest {
    /// The link stops working after this many seconds (1 to 31536000); default: never.
    pub expires_in_seconds: Option<i64>,
    /// Who shares; default: the API key's name.
    pub author: Option<String>,
}

/// A share link. `url` and `token` are in the answer of `POST` only: the server keeps
/// the token's hash alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ShareLinkView {
    pub id: String,
    pub trace_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    pub created_by: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
    /// Neither revoked nor expired (the project's switch aside).
    pub active: bool,
}

/// `GET /v1/traces/{id}/shares`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ShareLinkList {
    pub share_links: Vec<ShareLinkView>,
}

/// `GET` and `PUT /v1/projects/{id}/sharing`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SharingSetting {
    /// Whether the project's traces may be shared; off also hides existing links.
    pub enabled: bool,
}
