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
    let models: Vec<_> = state
        .catalog
        .list()
        .into_iter()
        .filter(|model| {
            model
                .checkpoint
                .as_ref()
                .is_none_or(|lineage| lineage.project_id == caller.project_id)
        })
        .collect();
    Json(json!({ "models": models }))
}
