//! The JSON contract of human review: score configs, scores, labels, notes, the reward
//! override and the history, as typed requests and responses (serde), so that the OpenAPI
//! description can be derived from them.

use rollout_domain::time::rfc3339_from_ms;
use rollout_store::{
    HistoryEntry, LabelRecord, NoteRecord, RewardOverride, ScoreConfig, ScoreKind, ScoreRecord,
    ScoreValue, TraceReview,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

/// The body of `POST /v1/score-configs` and `PUT /v1/score-configs/{name}`: a numeric
/// score (`min`, `max`, both optional) or a categorical one (`categories`).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScoreConfigRequest {
    /// Required by `POST`; with `PUT`, the path's name (if given, it must match).
    pub(crate) name: Option<String>,
    pub(crate) min: Option<f64>,
    pub(crate) max: Option<f64>,
    pub(crate) categories: Option<Vec<String>>,
    pub(crate) description: Option<String>,
}

/// A score config.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct ScoreConfigView {
    pub(crate) name: String,
    /// `numeric` or `categorical`.
    #[schema(value_type = String)]
    pub(crate) kind: &'static str,
    pub(crate) min: Option<f64>,
    pub(crate) max: Option<f64>,
    pub(crate) categories: Option<Vec<String>>,
    pub(crate) description: Option<String>,
    pub(crate) created_at: String,
    pub(crate) updated_at: String,
}

impl From<&ScoreConfig> for ScoreConfigView {
    fn from(config: &ScoreConfig) -> Self {
        let (min, max, categories) = match &config.kind {
            ScoreKind::Numeric { min, max } => (*min, *max, None),
            ScoreKind::Categorical { categories } => (None, None, Some(categories.clone())),
        };
        Self {
            name: config.name.clone(),
            kind: config.kind.as_str(),
            min,
            max,
            categories,
            description: config.description.clone(),
            created_at: rfc3339_from_ms(config.created_at_ms),
            updated_at: rfc3339_from_ms(config.updated_at_ms),
        }
    }
}

/// `GET /v1/score-configs`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct ScoreConfigList {
    pub(crate) score_configs: Vec<ScoreConfigView>,
}

/// `?author=` of the deletes: the reviewer the history names (default: the key's name).
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuthorQuery {
    pub(crate) author: Option<String>,
}

/// The body of `POST /v1/traces/{id}/scores`. `value` is a number, or a category of the
/// score's config. Scoring a name again (same author) edits the score.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScoreRequest {
    pub(crate) name: String,
    #[schema(value_type = ScoreValueSchema)]
    pub(crate) value: Value,
    pub(crate) comment: Option<String>,
    /// A reviewer name; default: the API key's name.
    pub(crate) author: Option<String>,
}

/// A score.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct ScoreView {
    pub(crate) id: String,
    pub(crate) trace_id: String,
    pub(crate) name: String,
    /// A number, or a category (string).
    #[schema(value_type = ScoreValueSchema)]
    pub(crate) value: ScoreValue,
    pub(crate) comment: Option<String>,
    pub(crate) author: String,
    pub(crate) created_at: String,
    pub(crate) updated_at: String,
}

impl From<&ScoreRecord> for ScoreView {
    fn from(score: &ScoreRecord) -> Self {
        Self {
            id: score.id.clone(),
            trace_id: score.run_id.clone(),
            name: score.name.clone(),
            value: score.value.clone(),
            comment: score.comment.clone(),
            author: score.author.clone(),
            created_at: rfc3339_from_ms(score.created_at_ms),
            updated_at: rfc3339_from_ms(score.updated_at_ms),
        }
    }
}

/// `GET /v1/traces/{id}/scores`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct ScoreList {
    pub(crate) scores: Vec<ScoreView>,
}

/// The body of `POST /v1/traces/{id}/labels`: one `label` or several `labels`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LabelsRequest {
    pub(crate) label: Option<String>,
    pub(crate) labels: Option<Vec<String>>,
    pub(crate) author: Option<String>,
}

/// A label.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct LabelView {
    pub(crate) label: String,
    pub(crate) author: String,
    pub(crate) created_at: String,
}

impl From<&LabelRecord> for LabelView {
    fn from(label: &LabelRecord) -> Self {
        Self {
            label: label.label.clone(),
            author: label.author.clone(),
            created_at: rfc3339_from_ms(label.created_at_ms),
        }
    }
}

/// `GET /v1/traces/{id}/labels`, and the answer of `POST`: every label of the trace.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct LabelList {
    pub(crate) trace_id: String,
    pub(crate) labels: Vec<LabelView>,
    /// `POST` only: the labels this request added (the others were there already).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) added: Option<Vec<String>>,
}

/// The body of `POST /v1/traces/{id}/notes` and `PATCH .../notes/{note_id}`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NoteRequest {
    pub(crate) body: String,
    pub(crate) author: Option<String>,
}

/// A note.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct NoteView {
    pub(crate) id: String,
    pub(crate) trace_id: String,
    pub(crate) body: String,
    pub(crate) author: String,
    pub(crate) created_at: String,
    pub(crate) updated_at: String,
    pub(crate) updated_by: Option<String>,
}

impl From<&NoteRecord> for NoteView {
    fn from(note: &NoteRecord) -> Self {
        Self {
            id: note.id.clone(),
            trace_id: note.run_id.clone(),
            body: note.body.clone(),
            author: note.author.clone(),
            created_at: rfc3339_from_ms(note.created_at_ms),
            updated_at: rfc3339_from_ms(note.updated_at_ms),
            updated_by: note.updated_by.clone(),
        }
    }
}

/// `GET /v1/traces/{id}/notes`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct NoteList {
    pub(crate) notes: Vec<NoteView>,
}

/// The body of `PUT /v1/traces/{id}/reward-override`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RewardOverrideRequest {
    pub(crate) reward: f64,
    pub(crate) reason: String,
    pub(crate) author: Option<String>,
}

/// A reward override, next to the grader's reward it replaces in metrics and datasets.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct RewardOverrideView {
    pub(crate) trace_id: String,
    pub(crate) reward: f64,
    pub(crate) reason: String,
    pub(crate) author: String,
    pub(crate) created_at: String,
    /// The grader's reward, unchanged.
    pub(crate) grader_reward: Option<f64>,
}

impl RewardOverrideView {
    pub(crate) fn new(record: &RewardOverride, grader_reward: Option<f64>) -> Self {
        Self {
            trace_id: record.run_id.clone(),
            reward: record.reward,
            reason: record.reason.clone(),
            author: record.author.clone(),
            created_at: rfc3339_from_ms(record.created_at_ms),
            grader_reward,
        }
    }
}

/// `GET /v1/traces/{id}/review`: everything people recorded on the trace.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct ReviewView {
    pub(crate) trace_id: String,
    /// The grader's reward.
    pub(crate) grader_reward: Option<f64>,
    /// The reward metrics and datasets use: the override, else the grader's.
    pub(crate) reward: Option<f64>,
    pub(crate) reward_override: Option<RewardOverrideView>,
    pub(crate) reviewed: bool,
    pub(crate) reviewed_at: Option<String>,
    pub(crate) scores: Vec<ScoreView>,
    pub(crate) labels: Vec<LabelView>,
    pub(crate) notes: Vec<NoteView>,
}

impl ReviewView {
    pub(crate) fn new(trace_id: &str, grader_reward: Option<f64>, review: &TraceReview) -> Self {
        let reward_override = review
            .reward_override
            .as_ref()
            .map(|o| RewardOverrideView::new(o, grader_reward));
        Self {
            trace_id: trace_id.to_string(),
            grader_reward,
            reward: reward_override.as_ref().map(|o| o.reward).or(grader_reward),
            reward_override,
            reviewed: review.reviewed_at_ms.is_some(),
            reviewed_at: review.reviewed_at_ms.map(rfc3339_from_ms),
            scores: review.scores.iter().map(ScoreView::from).collect(),
            labels: review.labels.iter().map(LabelView::from).collect(),
            notes: review.notes.iter().map(NoteView::from).collect(),
        }
    }
}

/// One change, as `GET /v1/traces/{id}/history` lists it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct HistoryEntryView {
    pub(crate) id: String,
    /// `score`, `label`, `note`, `reward_override` or `review`.
    pub(crate) subject: String,
    pub(crate) item_id: String,
    /// `created`, `updated`, `deleted` or `completed`.
    pub(crate) action: String,
    /// The item before the change (`null` for a creation).
    #[schema(value_type = Option<Object>)]
    pub(crate) previous: Option<Value>,
    /// The item after the change (`null` for a deletion).
    #[schema(value_type = Option<Object>)]
    pub(crate) value: Option<Value>,
    pub(crate) author: String,
    pub(crate) at: String,
}

impl From<&HistoryEntry> for HistoryEntryView {
    fn from(entry: &HistoryEntry) -> Self {
        Self {
            id: entry.id.clone(),
            subject: entry.subject.clone(),
            item_id: entry.item_id.clone(),
            action: entry.action.clone(),
            previous: entry.previous.clone(),
            value: entry.value.clone(),
            author: entry.author.clone(),
            at: rfc3339_from_ms(entry.at_ms),
        }
    }
}

/// `GET /v1/traces/{id}/history`, oldest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct HistoryList {
    pub(crate) trace_id: String,
    pub(crate) history: Vec<HistoryEntryView>,
}

/// A deletion's answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Removed)]
pub(crate) struct Deleted {
    pub(crate) deleted: bool,
}

/// A score's value as the document shows it: a number, or a category of its config
/// (doc-only: the server reads a `Value` so that it names a wrong type in its 422).
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
#[serde(untagged)]
pub(crate) enum ScoreValueSchema {
    Number(f64),
    Category(String),
}
