//! `GET /v1/models`: what the `model` field accepts, and why a model is not callable.

use axum::extract::State;
use axum::{Extension, Json};
use rollout_api::environments::{Model, ModelList, Price};

use crate::auth::Caller;
use crate::state::AppState;

/// Lists the catalog (checkpoints: only the caller's project's).
pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Json<ModelList> {
    let models = state
        .catalog
        .list(&caller.project_id)
        .into_iter()
        .map(|info| Model {
            checkpoint: info
                .checkpoint
                .and_then(|lineage| serde_json::to_value(lineage).ok()),
            price: info.price.map(|price| Price {
                input: price.input,
                output: price.output,
            }),
            name: info.name,
            provider: info.provider,
            upstream: info.upstream,
            available: info.available,
            reason: info.reason,
            description: info.description,
        })
        .collect();
    Json(ModelList { models })
}
