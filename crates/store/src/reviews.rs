//! The records of human review (migration 0050): score configs, scores, labels, notes, the
//! reward override and the history of every change. Plain data: the SQL lives in
//! `store/reviews.rs`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Who made a change: the name shown (the API key's name, or a reviewer name the caller
/// gave) and the key that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reviewer {
    /// The author recorded on the item and in the history.
    pub author: String,
    /// The API key of the request.
    pub key_id: String,
}

/// What a score of a given name may be.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ScoreKind {
    /// A number, within the bounds given.
    Numeric {
        /// Smallest value allowed, when bounded.
        min: Option<f64>,
        /// Largest value allowed, when bounded.
        max: Option<f64>,
    },
    /// One of the categories.
    Categorical {
        /// The allowed values, in display order.
        categories: Vec<String>,
    },
}

impl ScoreKind {
    /// The stored name of the kind.
    pub fn as_str(&self) -> &'static str {
        match self {
            ScoreKind::Numeric { .. } => "numeric",
            ScoreKind::Categorical { .. } => "categorical",
        }
    }
}

/// A project's definition of a score name.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreConfig {
    /// The score's name, unique in the project.
    pub name: String,
    /// A range or categories.
    pub kind: ScoreKind,
    /// What the score means, for reviewers.
    pub description: Option<String>,
    /// Unix ms.
    pub created_at_ms: i64,
    /// Unix ms.
    pub updated_at_ms: i64,
}

/// A score's value: a number, or a category of its config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ScoreValue {
    /// A numeric score.
    Number(f64),
    /// A categorical score.
    Category(String),
}

/// One person's score of a trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreRecord {
    /// The score's id.
    pub id: String,
    /// The trace.
    pub run_id: String,
    /// The score's name.
    pub name: String,
    /// The value.
    pub value: ScoreValue,
    /// Why, in the reviewer's words.
    pub comment: Option<String>,
    /// Who scored.
    pub author: String,
    /// Unix ms.
    pub created_at_ms: i64,
    /// Unix ms of the last edit.
    pub updated_at_ms: i64,
}

/// A score to record: one per trace, name and author (recording again edits it).
#[derive(Debug, Clone, PartialEq)]
pub struct NewScore {
    /// The score's name.
    pub name: String,
    /// The value, already checked against the config.
    pub value: ScoreValue,
    /// An optional comment.
    pub comment: Option<String>,
}

/// A label on a trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelRecord {
    /// The trace.
    pub run_id: String,
    /// The label.
    pub label: String,
    /// Who added it.
    pub author: String,
    /// Unix ms.
    pub created_at_ms: i64,
}

/// A note on a trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoteRecord {
    /// The note's id.
    pub id: String,
    /// The trace.
    pub run_id: String,
    /// The text.
    pub body: String,
    /// Who wrote it.
    pub author: String,
    /// Unix ms.
    pub created_at_ms: i64,
    /// Unix ms of the last edit.
    pub updated_at_ms: i64,
    /// Who edited it last, when edited.
    pub updated_by: Option<String>,
}

/// A person's reward for a trace, used by metrics and datasets instead of the grader's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RewardOverride {
    /// The trace.
    pub run_id: String,
    /// The reward to use.
    pub reward: f64,
    /// Why the grader's reward is wrong.
    pub reason: String,
    /// Who overrode it.
    pub author: String,
    /// Unix ms.
    pub created_at_ms: i64,
}

/// What a history entry is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewSubject {
    /// A score.
    Score,
    /// A label.
    Label,
    /// A note.
    Note,
    /// The reward override.
    RewardOverride,
    /// A review queue's item, completed.
    Review,
}

impl ReviewSubject {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewSubject::Score => "score",
            ReviewSubject::Label => "label",
            ReviewSubject::Note => "note",
            ReviewSubject::RewardOverride => "reward_override",
            ReviewSubject::Review => "review",
        }
    }
}

/// What happened to the item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewAction {
    /// It was added.
    Created,
    /// It was edited.
    Updated,
    /// It was removed.
    Deleted,
    /// A review queue's item was completed.
    Completed,
}

impl ReviewAction {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewAction::Created => "created",
            ReviewAction::Updated => "updated",
            ReviewAction::Deleted => "deleted",
            ReviewAction::Completed => "completed",
        }
    }
}

/// One change to a trace's review, as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    /// The entry's id (time-ordered).
    pub id: String,
    /// What kind of item.
    pub subject: String,
    /// The item's id (the label itself for labels, the score name for scores' ids).
    pub item_id: String,
    /// What happened.
    pub action: String,
    /// The item before (JSON), unless created.
    pub previous: Option<Value>,
    /// The item after (JSON), unless deleted.
    pub value: Option<Value>,
    /// Who.
    pub author: String,
    /// Unix ms.
    pub at_ms: i64,
}

/// Everything people recorded on one trace.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TraceReview {
    /// Scores, oldest first.
    pub scores: Vec<ScoreRecord>,
    /// Labels, alphabetical.
    pub labels: Vec<LabelRecord>,
    /// Notes, oldest first.
    pub notes: Vec<NoteRecord>,
    /// The reward override, if any.
    pub reward_override: Option<RewardOverride>,
    /// When someone first reviewed the trace (unix ms), if anyone did.
    pub reviewed_at_ms: Option<i64>,
}

/// The review state of a trace, for lists: its labels, whether reviewed, the override.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReviewSummary {
    /// Labels, alphabetical.
    pub labels: Vec<String>,
    /// Whether someone reviewed the trace.
    pub reviewed: bool,
    /// The overriding reward, if any.
    pub reward_override: Option<f64>,
}

/// A review queue to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewReviewQueue {
    /// Unique in the project.
    pub name: String,
    /// What the reviewers should look for.
    pub description: Option<String>,
    /// The filter or ids it was made from (JSON), kept for display.
    pub selection: Value,
    /// How long a reviewer holds a trace handed out by `next`.
    pub lease_seconds: i64,
    /// Who made it.
    pub created_by: String,
}

/// A review queue.
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewQueueRecord {
    /// The queue's id.
    pub id: String,
    /// Unique in the project.
    pub name: String,
    /// What the reviewers should look for.
    pub description: Option<String>,
    /// The filter or ids it was made from.
    pub selection: Value,
    /// How long a reviewer holds a trace.
    pub lease_seconds: i64,
    /// Who made it.
    pub created_by: String,
    /// Unix ms.
    pub created_at_ms: i64,
}

/// A trace handed to a reviewer by a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueItem {
    /// The trace.
    pub run_id: String,
    /// Its place in the queue, from 0.
    pub position: i64,
    /// When the reviewer's hold ends (unix ms); `next` again renews it.
    pub lease_expires_at_ms: i64,
}

/// A queue's progress: done of total, and per reviewer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueueProgress {
    /// Traces in the queue.
    pub total: i64,
    /// Traces completed.
    pub done: i64,
    /// Traces held by a reviewer now.
    pub in_review: i64,
    /// Per reviewer: traces completed, traces held now; by name.
    pub reviewers: Vec<ReviewerProgress>,
}

/// One reviewer's part of a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewerProgress {
    /// The reviewer.
    pub reviewer: String,
    /// Traces they completed.
    pub done: i64,
    /// Traces they hold now.
    pub in_review: i64,
}

/// Why completing a queue's trace did or did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompleteOutcome {
    /// Recorded.
    Completed,
    /// The trace is not in the queue.
    NotInQueue,
    /// Someone completed it already.
    AlreadyCompleted {
        /// Who.
        by: String,
    },
    /// Another reviewer holds it now.
    HeldByOther {
        /// Who.
        reviewer: String,
    },
}

/// A share link of a trace (its token is shown once, at creation, and never stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareLinkRecord {
    /// The link's id (to list and revoke it; not the token).
    pub id: String,
    /// The trace.
    pub run_id: String,
    /// Who shared it.
    pub created_by: String,
    /// Unix ms.
    pub created_at_ms: i64,
    /// When it stops working (unix ms), if ever.
    pub expires_at_ms: Option<i64>,
    /// When it was revoked (unix ms).
    pub revoked_at_ms: Option<i64>,
}
