//! The JSON contract of human review: score configs, scores, labels, notes, the reward
//! override and the history, as typed requests and responses (serde), so that the OpenAPI
//! description can be derived from them.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

/// The body of `POST /v1/score-configs` and `PUT /v1/score-configs/{name}`: a numeric
/// score (`min`, `max`, both optional) or a categorical one (`categories`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScoreConfigRequest {
    /// Required by `POST`; with `PUT`, the path's name (if given, it must match).
    pub name: Option<String>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub categories: Option<Vec<String>>,
    pub description: Option<String>,
}

/// A score config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ScoreConfigView {
    pub name: String,
    /// `numeric` or `categorical`.
    #[schema(value_type = String)]
    pub kind: String,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub categories: Option<Vec<String>>,
    pub description: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// `GET /v1/score-configs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ScoreConfigList {
    pub score_configs: Vec<ScoreConfigView>,
}

/// `?author=` of the deletes: the reviewer the history names (default: the key's name).
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuthorQuery {
    pub author: Option<String>,
}

/// The body of `POST /v1/traces/{id}/scores`. `value` is a number, or a category of the
/// score's config. Scoring a name again (same author) edits the score.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScoreRequest {
    pub name: String,
    #[schema(value_type = ScoreValueSchema)]
    pub value: Value,
    pub comment: Option<String>,
    /// A reviewer name; default: the API key's name.
    pub author: Option<String>,
}

/// A score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ScoreView {
    pub id: String,
    pub trace_id: String,
    pub name: String,
    /// A number, or a category (string).
    #[schema(value_type = ScoreValueSchema)]
    pub value: ScoreValue,
    pub comment: Option<String>,
    pub author: String,
    pub created_at: String,
    pub updated_at: String,
}

/// `GET /v1/traces/{id}/scores`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ScoreList {
    pub scores: Vec<ScoreView>,
}

/// The body of `POST /v1/traces/{id}/labels`: one `label` or several `labels`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LabelsRequest {
    pub label: Option<String>,
    pub labels: Option<Vec<String>>,
    pub author: Option<String>,
}

/// A label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LabelView {
    pub label: String,
    pub author: String,
    pub created_at: String,
}

/// `GET /v1/traces/{id}/labels`, and the answer of `POST`: every label of the trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LabelList {
    pub trace_id: String,
    pub labels: Vec<LabelView>,
    /// `POST` only: the labels this request added (the others were there already).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub added: Option<Vec<String>>,
}

/// The body of `POST /v1/traces/{id}/notes` and `PATCH .../notes/{note_id}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteRequest {
    pub body: String,
    pub author: Option<String>,
}

/// A note.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NoteView {
    pub id: String,
    pub trace_id: String,
    pub body: String,
    pub author: String,
    pub created_at: String,
    pub updated_at: String,
    pub updated_by: Option<String>,
}

/// `GET /v1/traces/{id}/notes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NoteList {
    pub notes: Vec<NoteView>,
}

/// The body of `PUT /v1/traces/{id}/reward-override`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RewardOverrideRequest {
    pub reward: f64,
    pub reason: String,
    pub author: Option<String>,
}

/// A reward override, next to the grader's reward it replaces in metrics and datasets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RewardOverrideView {
    pub trace_id: String,
    pub reward: f64,
    pub reason: String,
    pub author: String,
    pub created_at: String,
    /// The grader's reward, unchanged.
    pub grader_reward: Option<f64>,
}

/// `GET /v1/traces/{id}/review`: everything people recorded on the trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReviewView {
    pub trace_id: String,
    /// The grader's reward.
    pub grader_reward: Option<f64>,
    /// The reward metrics and datasets use: the override, else the grader's.
    pub reward: Option<f64>,
    pub reward_override: Option<RewardOverrideView>,
    pub reviewed: bool,
    pub reviewed_at: Option<String>,
    pub scores: Vec<ScoreView>,
    pub labels: Vec<LabelView>,
    pub notes: Vec<NoteView>,
}

/// One change, as `GET /v1/traces/{id}/history` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HistoryEntryView {
    pub id: String,
    /// `score`, `label`, `note`, `reward_override` or `review`.
    pub subject: String,
    pub item_id: String,
    /// `created`, `updated`, `deleted` or `completed`.
    pub action: String,
    /// The item before the change (`null` for a creation).
    #[schema(value_type = Option<Object>)]
    pub previous: Option<Value>,
    /// The item after the change (`null` for a deletion).
    #[schema(value_type = Option<Object>)]
    pub value: Option<Value>,
    pub author: String,
    pub at: String,
}

/// `GET /v1/traces/{id}/history`, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HistoryList {
    pub trace_id: String,
    pub history: Vec<HistoryEntryView>,
}

/// A deletion's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = Removed)]
pub struct Deleted {
    pub deleted: bool,
}

/// A score's value as the document shows it: a number, or a category of its config
/// (doc-only: the server reads a `Value` so that it names a wrong type in its 422).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ScoreValueSchema {
    Number(f64),
    Category(String),
}

/// A score's value as a score answers it: a number, or a category of its config (described
/// in the document as [`ScoreValueSchema`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ScoreValue {
    /// A numeric score.
    Number(f64),
    /// A categorical score.
    Category(String),
}
