//! Human review's views (`rollout_api::reviews`) built from the store's records.

use rollout_api::reviews::{
    HistoryEntryView, LabelView, NoteView, ReviewView, RewardOverrideView, ScoreConfigView,
    ScoreValue as ScoreValueView, ScoreView,
};
use rollout_domain::time::rfc3339_from_ms;
use rollout_store::{
    HistoryEntry, LabelRecord, NoteRecord, RewardOverride, ScoreConfig, ScoreKind, ScoreRecord,
    ScoreValue, TraceReview,
};

pub(crate) fn score_config(config: &ScoreConfig) -> ScoreConfigView {
    let (min, max, categories) = match &config.kind {
        ScoreKind::Numeric { min, max } => (*min, *max, None),
        ScoreKind::Categorical { categories } => (None, None, Some(categories.clone())),
    };
    ScoreConfigView {
        name: config.name.clone(),
        kind: config.kind.as_str().to_string(),
        min,
        max,
        categories,
        description: config.description.clone(),
        created_at: rfc3339_from_ms(config.created_at_ms),
        updated_at: rfc3339_from_ms(config.updated_at_ms),
    }
}

pub(crate) fn score(score: &ScoreRecord) -> ScoreView {
    ScoreView {
        id: score.id.clone(),
        trace_id: score.run_id.clone(),
        name: score.name.clone(),
        value: match &score.value {
            ScoreValue::Number(number) => ScoreValueView::Number(*number),
            ScoreValue::Category(category) => ScoreValueView::Category(category.clone()),
        },
        comment: score.comment.clone(),
        author: score.author.clone(),
        created_at: rfc3339_from_ms(score.created_at_ms),
        updated_at: rfc3339_from_ms(score.updated_at_ms),
    }
}

pub(crate) fn label(label: &LabelRecord) -> LabelView {
    LabelView {
        label: label.label.clone(),
        author: label.author.clone(),
        created_at: rfc3339_from_ms(label.created_at_ms),
    }
}

pub(crate) fn note(note: &NoteRecord) -> NoteView {
    NoteView {
        id: note.id.clone(),
        trace_id: note.run_id.clone(),
        body: note.body.clone(),
        author: note.author.clone(),
        created_at: rfc3339_from_ms(note.created_at_ms),
        updated_at: rfc3339_from_ms(note.updated_at_ms),
        updated_by: note.updated_by.clone(),
    }
}

pub(crate) fn reward_override(
    record: &RewardOverride,
    grader_reward: Option<f64>,
) -> RewardOverrideView {
    RewardOverrideView {
        trace_id: record.run_id.clone(),
        reward: record.reward,
        reason: record.reason.clone(),
        author: record.author.clone(),
        created_at: rfc3339_from_ms(record.created_at_ms),
        grader_reward,
    }
}

/// Everything people recorded on a trace; `reward` is the override, else the grader's.
pub(crate) fn review(
    trace_id: &str,
    grader_reward: Option<f64>,
    review: &TraceReview,
) -> ReviewView {
    let reward_override = review
        .reward_override
        .as_ref()
        .map(|o| reward_override(o, grader_reward));
    ReviewView {
        trace_id: trace_id.to_string(),
        grader_reward,
        reward: reward_override.as_ref().map(|o| o.reward).or(grader_reward),
        reward_override,
        reviewed: review.reviewed_at_ms.is_some(),
        reviewed_at: review.reviewed_at_ms.map(rfc3339_from_ms),
        scores: review.scores.iter().map(score).collect(),
        labels: review.labels.iter().map(label).collect(),
        notes: review.notes.iter().map(note).collect(),
    }
}

pub(crate) fn history_entry(entry: &HistoryEntry) -> HistoryEntryView {
    HistoryEntryView {
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
