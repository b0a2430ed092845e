//! `GET /v1/models`: what the `model` field accepts, and why a model is not callable.

use axum::extract::State;
use axum::{Extension, Json};
use serde_json::{Value, json};

use crate::auth::Caller;
use crate::state::AppState;

/// Lists the catalog (checkpoints: only the caller's project's).
pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Json<Value> {
    Json(json!({ "models": state.catalog.list(&caller.project_id) }))
}
