//! The JSON contract of share links and of a project's sharing switch.

use rollout_domain::time::rfc3339_from_ms;
use rollout_store::ShareLinkRecord;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The body of `POST /v1/traces/{id}/share` (may be empty: `{}`).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ShareRequest {
    /// The link stops working after this many seconds (1 to 31536000); default: never.
    pub(crate) expires_in_seconds: Option<i64>,
    /// Who shares; default: the API key's name.
    pub(crate) author: Option<String>,
}

/// A share link. `url` and `token` are in the answer of `POST` only: the server keeps
/// the token's hash alone.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct ShareLinkView {
    pub(crate) id: String,
    pub(crate) trace_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) token: Option<String>,
    pub(crate) created_by: String,
    pub(crate) created_at: String,
    pub(crate) expires_at: Option<String>,
    pub(crate) revoked_at: Option<String>,
    /// Neither revoked nor expired (the project's switch aside).
    pub(crate) active: bool,
}

impl ShareLinkView {
    pub(crate) fn new(link: &ShareLinkRecord, now_ms: i64) -> Self {
        Self {
            id: link.id.clone(),
            trace_id: link.run_id.clone(),
            url: None,
            token: None,
            created_by: link.created_by.clone(),
            created_at: rfc3339_from_ms(link.created_at_ms),
            expires_at: link.expires_at_ms.map(rfc3339_from_ms),
            revoked_at: link.revoked_at_ms.map(rfc3339_from_ms),
            active: link.revoked_at_ms.is_none()
                && link.expires_at_ms.is_none_or(|expires| expires > now_ms),
        }
    }
}

/// `GET /v1/traces/{id}/shares`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct ShareLinkList {
    pub(crate) share_links: Vec<ShareLinkView>,
}

/// `GET` and `PUT /v1/projects/{id}/sharing`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SharingSetting {
    /// Whether the project's traces may be shared; off also hides existing links.
    pub(crate) enabled: bool,
}
