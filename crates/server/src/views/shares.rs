//! Share links' views (`rollout_api::shares`) built from the store's records.

use rollout_api::shares::ShareLinkView;
use rollout_domain::time::rfc3339_from_ms;
use rollout_store::ShareLinkRecord;

/// A link as lists show it: without its URL and token (the server keeps the token's hash).
pub(crate) fn share_link(link: &ShareLinkRecord, now_ms: i64) -> ShareLinkView {
    ShareLinkView {
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
