//! `GET /v1/models`: what the `model` field accepts, and why a model is not callable.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::state::AppState;

/// Lists the catalog.
pub(crate) async fn list(State(state): State<AppState>) -> Json<Value> {
    Json(json!({ "models": state.catalog.list() }))
}
