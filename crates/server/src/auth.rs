//! API-key authentication: `Authorization: Bearer <key>` on everything but health.
//! Keys are looked up by their SHA-256; the key itself is never stored or logged.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use rollout_store::KeyRole;

/// Who is calling: the project every object of the request belongs to.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) project_id: String,
    pub(crate) key_id: String,
    pub(crate) role: KeyRole,
}

impl Caller {
    /// Refuses callers without the admin role (403).
    pub(crate) fn require_admin(&self, action: &str) -> Result<(), ApiError> {
        match self.role {
            KeyRole::Admin => Ok(()),
            KeyRole::Member => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("{action} needs an admin API key"),
            )),
        }
    }
}

/// Middleware: rejects requests without a valid key, else adds `Caller` to the request.
pub(crate) async fn require_key(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let unauthorized =
        |message: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message);
    let header = request
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(|| unauthorized("missing API key: send 'Authorization: Bearer <key>'"))?;
    let value = header
        .to_str()
        .map_err(|_| unauthorized("the Authorization header is not valid text"))?;
    let key = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        // hud-python's `connect_url(url, headers={"Authorization": "Bearer KEY"})` (as its
        // docs show) sends "Bearer Bearer KEY": fastmcp adds the scheme again.
        .map(|key| key.strip_prefix("Bearer ").map_or(key, str::trim))
        .filter(|key| !key.is_empty())
        .ok_or_else(|| unauthorized("the Authorization header must be 'Bearer <key>'"))?;
    let record = state
        .store
        .verify_api_key(key)
        .await?
        .ok_or_else(|| unauthorized("invalid API key"))?;
    request.extensions_mut().insert(Caller {
        project_id: record.project_id,
        key_id: record.id,
        role: record.role,
    });
    Ok(next.run(request).await)
}
