//! Human review of traces (migration 0050): score configs, scores, labels, notes and the
//! reward override. Every change is written in one transaction with its `review_history`
//! entry (the value before and after) and the trace's `trace_reviews` mark, so that the
//! history never misses a change and "reviewed" never lags one. Every statement names the
//! caller's project: a trace of another project is never read or written.

use crate::Result;
use crate::error::{corrupt, db, encode};
use crate::reviews::{
    HistoryEntry, LabelRecord, NewScore, NoteRecord, ReviewAction, ReviewSubject, ReviewSummary,
    Reviewer, RewardOverride, ScoreConfig, ScoreKind, ScoreRecord, ScoreValue, TraceReview,
};
use crate::store::{Store, now_ms, retry_on_conflict};
use serde::Serialize;
use sqlx::AnyConnection;
use std::collections::HashMap;

const LIST_CONFIGS: &str = "SELECT name, kind, min_value, max_value, categories, description, \
     created_at, updated_at FROM score_configs WHERE project_id = $1 ORDER BY name";
const GET_CONFIG: &str = "SELECT name, kind, min_value, max_value, categories, description, \
     created_at, updated_at FROM score_configs WHERE project_id = $1 AND name = $2";
const INSERT_CONFIG: &str = "INSERT INTO score_configs (project_id, name, kind, min_value, \
     max_value, categories, description, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)";
const UPDATE_CONFIG: &str = "UPDATE score_configs SET kind = $3, min_value = $4, \
     max_value = $5, categories = $6, description = $7, updated_at = $8 \
     WHERE project_id = $1 AND name = $2";
const DELETE_CONFIG: &str = "DELETE FROM score_configs WHERE project_id = $1 AND name = $2";

const SCORE_COLUMNS: &str =
    "id, run_id, name, value, category, comment, author, created_at, updated_at";
const INSERT_SCORE: &str = "INSERT INTO trace_scores (id, project_id, run_id, name, value, \
     category, comment, author, key_id, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)";
const UPDATE_SCORE: &str = "UPDATE trace_scores SET value = $2, category = $3, comment = $4, \
     key_id = $5, updated_at = $6 WHERE id = $1";
const DELETE_SCORE: &str = "DELETE FROM trace_scores WHERE id = $1";

const INSERT_LABEL: &str = "INSERT INTO trace_labels (run_id, label, project_id, author, \
     key_id, created_at) VALUES ($1, $2, $3, $4, $5, $6)";
const GET_LABEL: &str = "SELECT run_id, label, author, created_at FROM trace_labels \
     WHERE project_id = $1 AND run_id = $2 AND label = $3";
const LIST_LABELS: &str = "SELECT run_id, label, author, created_at FROM trace_labels \
     WHERE project_id = $1 AND run_id = $2 ORDER BY label";
const DELETE_LABEL: &str =
    "DELETE FROM trace_labels WHERE project_id = $1 AND run_id = $2 AND label = $3";

const NOTE_COLUMNS: &str = "id, run_id, body, author, created_at, updated_at, updated_by";
const INSERT_NOTE: &str = "INSERT INTO trace_notes (id, project_id, run_id, body, author, \
     key_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)";
const UPDATE_NOTE: &str =
    "UPDATE trace_notes SET body = $2, updated_at = $3, updated_by = $4 WHERE id = $1";
const DELETE_NOTE: &str = "DELETE FROM trace_notes WHERE id = $1";

const GET_OVERRIDE: &str = "SELECT run_id, reward, reason, author, created_at \
     FROM reward_overrides WHERE project_id = $1 AND run_id = $2";
const DELETE_OVERRIDE: &str = "DELETE FROM reward_overrides WHERE project_id = $1 AND run_id = $2";
const INSERT_OVERRIDE: &str = "INSERT INTO reward_overrides (run_id, project_id, reward, \
     reason, author, key_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";

const INSERT_HISTORY: &str = "INSERT INTO review_history (id, project_id, run_id, subject, \
     item_id, action, previous, value, author, key_id, at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
const LIST_HISTORY: &str = "SELECT id, subject, item_id, action, previous, value, author, at \
     FROM review_history WHERE project_id = $1 AND run_id = $2 ORDER BY id";
/// The first review sets both times; later ones move the last time and reviewer only.
const MARK_REVIEWED: &str = "INSERT INTO trace_reviews (run_id, project_id, first_reviewed_at, \
     last_reviewed_at, last_reviewer) VALUES ($1, $2, $3, $3, $4) \
     ON CONFLICT (run_id) DO UPDATE SET last_reviewed_at = $3, last_reviewer = $4";
const REVIEWED_AT: &str =
    "SELECT first_reviewed_at FROM trace_reviews WHERE project_id = $1 AND run_id = $2";
const JOB_OVERRIDES: &str = "SELECT o.run_id, o.reward FROM reward_overrides o \
     JOIN runs r ON r.id = o.run_id WHERE r.job_id = $1 AND o.project_id = r.project_id";

#[derive(sqlx::FromRow)]
struct ConfigRow {
    name: String,
    kind: String,
    min_value: Option<f64>,
    max_value: Option<f64>,
    categories: Option<String>,
    description: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl ConfigRow {
    fn into_config(self) -> Result<ScoreConfig> {
        let kind = match self.kind.as_str() {
            "numeric" => ScoreKind::Numeric {
                min: self.min_value,
                max: self.max_value,
            },
            "categorical" => ScoreKind::Categorical {
                categories: serde_json::from_str(self.categories.as_deref().unwrap_or("[]"))
                    .map_err(corrupt("score config categories"))?,
            },
            other => {
                return Err(crate::StoreError::Corrupt {
                    what: "score config kind",
                    detail: other.to_string(),
                });
            }
        };
        Ok(ScoreConfig {
            name: self.name,
            kind,
            description: self.description,
            created_at_ms: self.created_at,
            updated_at_ms: self.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct ScoreRow {
    id: String,
    run_id: String,
    name: String,
    value: Option<f64>,
    category: Option<String>,
    comment: Option<String>,
    author: String,
    created_at: i64,
    updated_at: i64,
}

impl ScoreRow {
    fn into_record(self) -> ScoreRecord {
        let value = match (self.value, self.category) {
            (_, Some(category)) => ScoreValue::Category(category),
            (value, None) => ScoreValue::Number(value.unwrap_or(0.0)),
        };
        ScoreRecord {
            id: self.id,
            run_id: self.run_id,
            name: self.name,
            value,
            comment: self.comment,
            author: self.author,
            created_at_ms: self.created_at,
            updated_at_ms: self.updated_at,
        }
    }
}

#[derive(sqlx::FromRow)]
struct LabelRow {
    run_id: String,
    label: String,
    author: String,
    created_at: i64,
}

impl From<LabelRow> for LabelRecord {
    fn from(row: LabelRow) -> Self {
        LabelRecord {
            run_id: row.run_id,
            label: row.label,
            author: row.author,
            created_at_ms: row.created_at,
        }
    }
}

#[derive(sqlx::FromRow)]
struct NoteRow {
    id: String,
    run_id: String,
    body: String,
    author: String,
    created_at: i64,
    updated_at: i64,
    updated_by: Option<String>,
}

impl From<NoteRow> for NoteRecord {
    fn from(row: NoteRow) -> Self {
        NoteRecord {
            id: row.id,
            run_id: row.run_id,
            body: row.body,
            author: row.author,
            created_at_ms: row.created_at,
            updated_at_ms: row.updated_at,
            updated_by: row.updated_by,
        }
    }
}

#[derive(sqlx::FromRow)]
struct OverrideRow {
    run_id: String,
    reward: f64,
    reason: String,
    author: String,
    created_at: i64,
}

impl From<OverrideRow> for RewardOverride {
    fn from(row: OverrideRow) -> Self {
        RewardOverride {
            run_id: row.run_id,
            reward: row.reward,
            reason: row.reason,
            author: row.author,
            created_at_ms: row.created_at,
        }
    }
}

#[derive(sqlx::FromRow)]
struct HistoryRow {
    id: String,
    subject: String,
    item_id: String,
    action: String,
    previous: Option<String>,
    value: Option<String>,
    author: String,
    at: i64,
}

/// One change of a trace's review, written with its history entry and the reviewed mark.
pub(crate) struct Change<'a> {
    pub(crate) project_id: &'a str,
    pub(crate) run_id: &'a str,
    pub(crate) subject: ReviewSubject,
    pub(crate) item_id: &'a str,
    pub(crate) action: ReviewAction,
    pub(crate) reviewer: &'a Reviewer,
    pub(crate) at_ms: i64,
}

impl Change<'_> {
    /// Appends the history entry (`previous`, `value`: the item before and after) and marks
    /// the trace reviewed, on the transaction's connection.
    pub(crate) async fn record<P: Serialize, V: Serialize>(
        &self,
        conn: &mut AnyConnection,
        previous: Option<&P>,
        value: Option<&V>,
    ) -> Result<()> {
        const OP: &str = "recording a review change";
        let previous = previous
            .map(serde_json::to_string)
            .transpose()
            .map_err(encode("a review item"))?;
        let value = value
            .map(serde_json::to_string)
            .transpose()
            .map_err(encode("a review item"))?;
        sqlx::query(INSERT_HISTORY)
            .bind(rollout_domain::new_id())
            .bind(self.project_id.to_string())
            .bind(self.run_id.to_string())
            .bind(self.subject.as_str())
            .bind(self.item_id.to_string())
            .bind(self.action.as_str())
            .bind(previous)
            .bind(value)
            .bind(self.reviewer.author.clone())
            .bind(self.reviewer.key_id.clone())
            .bind(self.at_ms)
            .execute(&mut *conn)
            .await
            .map_err(db(OP))?;
        sqlx::query(MARK_REVIEWED)
            .bind(self.run_id.to_string())
            .bind(self.project_id.to_string())
            .bind(self.at_ms)
            .bind(self.reviewer.author.clone())
            .execute(&mut *conn)
            .await
            .map_err(db(OP))?;
        Ok(())
    }
}

fn categories_text(kind: &ScoreKind) -> Result<Option<String>> {
    match kind {
        ScoreKind::Numeric { .. } => Ok(None),
        ScoreKind::Categorical { categories } => serde_json::to_string(categories)
            .map(Some)
            .map_err(encode("score categories")),
    }
}

fn bounds(kind: &ScoreKind) -> (Option<f64>, Option<f64>) {
    match kind {
        ScoreKind::Numeric { min, max } => (*min, *max),
        ScoreKind::Categorical { .. } => (None, None),
    }
}

fn split(value: &ScoreValue) -> (Option<f64>, Option<String>) {
    match value {
        ScoreValue::Number(number) => (Some(*number), None),
        ScoreValue::Category(category) => (None, Some(category.clone())),
    }
}

impl Store {
    /// The project's score configs, by name.
    pub async fn score_configs(&self, project_id: &str) -> Result<Vec<ScoreConfig>> {
        sqlx::query_as::<_, ConfigRow>(LIST_CONFIGS)
            .bind(project_id.to_string())
            .fetch_all(self.pool())
            .await
            .map_err(db("listing score configs"))?
            .into_iter()
            .map(ConfigRow::into_config)
            .collect()
    }

    /// One score config of the project.
    pub async fn score_config(&self, project_id: &str, name: &str) -> Result<Option<ScoreConfig>> {
        sqlx::query_as::<_, ConfigRow>(GET_CONFIG)
            .bind(project_id.to_string())
            .bind(name.to_string())
            .fetch_optional(self.pool())
            .await
            .map_err(db("reading a score config"))?
            .map(ConfigRow::into_config)
            .transpose()
    }

    /// Creates or replaces the config named `config.name`; true when it was created.
    /// Scores already recorded stay as they are.
    pub async fn put_score_config(&self, project_id: &str, config: &ScoreConfig) -> Result<bool> {
        let categories = categories_text(&config.kind)?;
        let (min, max) = bounds(&config.kind);
        retry_on_conflict(|| async {
            let now = now_ms();
            let updated = sqlx::query(UPDATE_CONFIG)
                .bind(project_id.to_string())
                .bind(config.name.clone())
                .bind(config.kind.as_str())
                .bind(min)
                .bind(max)
                .bind(categories.clone())
                .bind(config.description.clone())
                .bind(now)
                .execute(self.pool())
                .await
                .map_err(db("updating a score config"))?;
            if updated.rows_affected() > 0 {
                return Ok(false);
            }
            sqlx::query(INSERT_CONFIG)
                .bind(project_id.to_string())
                .bind(config.name.clone())
                .bind(config.kind.as_str())
                .bind(min)
                .bind(max)
                .bind(categories.clone())
                .bind(config.description.clone())
                .bind(now)
                .execute(self.pool())
                .await
                .map_err(db("creating a score config"))?;
            Ok(true)
        })
        .await
    }

    /// Deletes a score config; false if there was none. Scores of that name stay.
    pub async fn delete_score_config(&self, project_id: &str, name: &str) -> Result<bool> {
        let result = sqlx::query(DELETE_CONFIG)
            .bind(project_id.to_string())
            .bind(name.to_string())
            .execute(self.pool())
            .await
            .map_err(db("deleting a score config"))?;
        Ok(result.rows_affected() > 0)
    }

    /// Records the reviewer's score `score.name` of the trace: a new one (true), or an edit
    /// of the one the same author gave before (false), the old value kept in the history.
    /// The caller has checked that the trace is the project's.
    pub async fn record_score(
        &self,
        project_id: &str,
        run_id: &str,
        reviewer: &Reviewer,
        score: &NewScore,
    ) -> Result<(ScoreRecord, bool)> {
        const OP: &str = "recording a score";
        let select = format!(
            "SELECT {SCORE_COLUMNS} FROM trace_scores \
             WHERE project_id = $1 AND run_id = $2 AND name = $3 AND author = $4"
        );
        let (value, category) = split(&score.value);
        retry_on_conflict(|| async {
            let now = now_ms();
            let mut tx = self.begin_write(OP).await?;
            let existing = sqlx::query_as::<_, ScoreRow>(sqlx::AssertSqlSafe(select.clone()))
                .bind(project_id.to_string())
                .bind(run_id.to_string())
                .bind(score.name.clone())
                .bind(reviewer.author.clone())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db(OP))?
                .map(ScoreRow::into_record);
            let (record, created) = match existing {
                Some(previous) => {
                    sqlx::query(UPDATE_SCORE)
                        .bind(previous.id.clone())
                        .bind(value)
                        .bind(category.clone())
                        .bind(score.comment.clone())
                        .bind(reviewer.key_id.clone())
                        .bind(now)
                        .execute(&mut *tx)
                        .await
                        .map_err(db(OP))?;
                    let record = ScoreRecord {
                        value: score.value.clone(),
                        comment: score.comment.clone(),
                        updated_at_ms: now,
                        ..previous.clone()
                    };
                    let change = Change {
                        project_id,
                        run_id,
                        subject: ReviewSubject::Score,
                        item_id: &record.id,
                        action: ReviewAction::Updated,
                        reviewer,
                        at_ms: now,
                    };
                    change
                        .record(&mut tx, Some(&previous), Some(&record))
                        .await?;
                    (record, false)
                }
                None => {
                    let record = ScoreRecord {
                        id: rollout_domain::new_id(),
                        run_id: run_id.to_string(),
                        name: score.name.clone(),
                        value: score.value.clone(),
                        comment: score.comment.clone(),
                        author: reviewer.author.clone(),
                        created_at_ms: now,
                        updated_at_ms: now,
                    };
                    sqlx::query(INSERT_SCORE)
                        .bind(record.id.clone())
                        .bind(project_id.to_string())
                        .bind(run_id.to_string())
                        .bind(record.name.clone())
                        .bind(value)
                        .bind(category.clone())
                        .bind(record.comment.clone())
                        .bind(record.author.clone())
                        .bind(reviewer.key_id.clone())
                        .bind(now)
                        .execute(&mut *tx)
                        .await
                        .map_err(db(OP))?;
                    let change = Change {
                        project_id,
                        run_id,
                        subject: ReviewSubject::Score,
                        item_id: &record.id,
                        action: ReviewAction::Created,
                        reviewer,
                        at_ms: now,
                    };
                    change
                        .record::<ScoreRecord, _>(&mut tx, None, Some(&record))
                        .await?;
                    (record, true)
                }
            };
            tx.commit().await.map_err(db(OP))?;
            Ok((record, created))
        })
        .await
    }

    /// The trace's scores, oldest first.
    pub async fn trace_scores(&self, project_id: &str, run_id: &str) -> Result<Vec<ScoreRecord>> {
        let text = format!(
            "SELECT {SCORE_COLUMNS} FROM trace_scores WHERE project_id = $1 AND run_id = $2 \
             ORDER BY created_at, id"
        );
        Ok(sqlx::query_as::<_, ScoreRow>(sqlx::AssertSqlSafe(text))
            .bind(project_id.to_string())
            .bind(run_id.to_string())
            .fetch_all(self.pool())
            .await
            .map_err(db("listing scores"))?
            .into_iter()
            .map(ScoreRow::into_record)
            .collect())
    }

    /// Deletes a score of the trace; false if the trace has no such score.
    pub async fn delete_score(
        &self,
        project_id: &str,
        run_id: &str,
        score_id: &str,
        reviewer: &Reviewer,
    ) -> Result<bool> {
        const OP: &str = "deleting a score";
        let select = format!(
            "SELECT {SCORE_COLUMNS} FROM trace_scores \
             WHERE project_id = $1 AND run_id = $2 AND id = $3"
        );
        let now = now_ms();
        let mut tx = self.begin_write(OP).await?;
        let Some(previous) = sqlx::query_as::<_, ScoreRow>(sqlx::AssertSqlSafe(select))
            .bind(project_id.to_string())
            .bind(run_id.to_string())
            .bind(score_id.to_string())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db(OP))?
            .map(ScoreRow::into_record)
        else {
            return Ok(false);
        };
        let deleted = sqlx::query(DELETE_SCORE)
            .bind(score_id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db(OP))?;
        if deleted.rows_affected() == 0 {
            return Ok(false);
        }
        let change = Change {
            project_id,
            run_id,
            subject: ReviewSubject::Score,
            item_id: score_id,
            action: ReviewAction::Deleted,
            reviewer,
            at_ms: now,
        };
        change
            .record::<_, ScoreRecord>(&mut tx, Some(&previous), None)
            .await?;
        tx.commit().await.map_err(db(OP))?;
        Ok(true)
    }

    /// Adds a label to the trace: the new label (true), or the one already there (false).
    pub async fn add_label(
        &self,
        project_id: &str,
        run_id: &str,
        label: &str,
        reviewer: &Reviewer,
    ) -> Result<(LabelRecord, bool)> {
        const OP: &str = "adding a label";
        if let Some(row) = self.label_row(project_id, run_id, label).await? {
            return Ok((row.into(), false));
        }
        let now = now_ms();
        let record = LabelRecord {
            run_id: run_id.to_string(),
            label: label.to_string(),
            author: reviewer.author.clone(),
            created_at_ms: now,
        };
        let mut tx = self.begin_write(OP).await?;
        let inserted = sqlx::query(INSERT_LABEL)
            .bind(run_id.to_string())
            .bind(label.to_string())
            .bind(project_id.to_string())
            .bind(reviewer.author.clone())
            .bind(reviewer.key_id.clone())
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db(OP));
        match inserted {
            Ok(_) => {}
            // Another request added it first: theirs stands.
            Err(error) if error.is_unique_violation() => {
                drop(tx);
                let row = self.label_row(project_id, run_id, label).await?;
                return Ok((row.map_or(record, Into::into), false));
            }
            Err(error) => return Err(error),
        }
        let change = Change {
            project_id,
            run_id,
            subject: ReviewSubject::Label,
            item_id: label,
            action: ReviewAction::Created,
            reviewer,
            at_ms: now,
        };
        change
            .record::<LabelRecord, _>(&mut tx, None, Some(&record))
            .await?;
        tx.commit().await.map_err(db(OP))?;
        Ok((record, true))
    }

    async fn label_row(
        &self,
        project_id: &str,
        run_id: &str,
        label: &str,
    ) -> Result<Option<LabelRow>> {
        sqlx::query_as::<_, LabelRow>(GET_LABEL)
            .bind(project_id.to_string())
            .bind(run_id.to_string())
            .bind(label.to_string())
            .fetch_optional(self.pool())
            .await
            .map_err(db("reading a label"))
    }

    /// The trace's labels, alphabetical.
    pub async fn trace_labels(&self, project_id: &str, run_id: &str) -> Result<Vec<LabelRecord>> {
        Ok(sqlx::query_as::<_, LabelRow>(LIST_LABELS)
            .bind(project_id.to_string())
            .bind(run_id.to_string())
            .fetch_all(self.pool())
            .await
            .map_err(db("listing labels"))?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// Removes a label from the trace; false if it had none such.
    pub async fn remove_label(
        &self,
        project_id: &str,
        run_id: &str,
        label: &str,
        reviewer: &Reviewer,
    ) -> Result<bool> {
        const OP: &str = "removing a label";
        let now = now_ms();
        let mut tx = self.begin_write(OP).await?;
        let Some(previous) = sqlx::query_as::<_, LabelRow>(GET_LABEL)
            .bind(project_id.to_string())
            .bind(run_id.to_string())
            .bind(label.to_string())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db(OP))?
            .map(LabelRecord::from)
        else {
            return Ok(false);
        };
        let deleted = sqlx::query(DELETE_LABEL)
            .bind(project_id.to_string())
            .bind(run_id.to_string())
            .bind(label.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db(OP))?;
        if deleted.rows_affected() == 0 {
            return Ok(false);
        }
        let change = Change {
            project_id,
            run_id,
            subject: ReviewSubject::Label,
            item_id: label,
            action: ReviewAction::Deleted,
            reviewer,
            at_ms: now,
        };
        change
            .record::<_, LabelRecord>(&mut tx, Some(&previous), None)
            .await?;
        tx.commit().await.map_err(db(OP))?;
        Ok(true)
    }

    /// Adds a note to the trace.
    pub async fn add_note(
        &self,
        project_id: &str,
        run_id: &str,
        body: &str,
        reviewer: &Reviewer,
    ) -> Result<NoteRecord> {
        const OP: &str = "adding a note";
        let now = now_ms();
        let record = NoteRecord {
            id: rollout_domain::new_id(),
            run_id: run_id.to_string(),
            body: body.to_string(),
            author: reviewer.author.clone(),
            created_at_ms: now,
            updated_at_ms: now,
            updated_by: None,
        };
        let mut tx = self.begin_write(OP).await?;
        sqlx::query(INSERT_NOTE)
            .bind(record.id.clone())
            .bind(project_id.to_string())
            .bind(run_id.to_string())
            .bind(record.body.clone())
            .bind(record.author.clone())
            .bind(reviewer.key_id.clone())
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db(OP))?;
        let change = Change {
            project_id,
            run_id,
            subject: ReviewSubject::Note,
            item_id: &record.id,
            action: ReviewAction::Created,
            reviewer,
            at_ms: now,
        };
        change
            .record::<NoteRecord, _>(&mut tx, None, Some(&record))
            .await?;
        tx.commit().await.map_err(db(OP))?;
        Ok(record)
    }

    async fn note_in(
        conn: &mut AnyConnection,
        project_id: &str,
        run_id: &str,
        note_id: &str,
    ) -> Result<Option<NoteRecord>> {
        let text = format!(
            "SELECT {NOTE_COLUMNS} FROM trace_notes \
             WHERE project_id = $1 AND run_id = $2 AND id = $3"
        );
        Ok(sqlx::query_as::<_, NoteRow>(sqlx::AssertSqlSafe(text))
            .bind(project_id.to_string())
            .bind(run_id.to_string())
            .bind(note_id.to_string())
            .fetch_optional(conn)
            .await
            .map_err(db("reading a note"))?
            .map(Into::into))
    }

    /// Replaces a note's text (the old text stays in the history); `None` if the trace has
    /// no such note.
    pub async fn edit_note(
        &self,
        project_id: &str,
        run_id: &str,
        note_id: &str,
        body: &str,
        reviewer: &Reviewer,
    ) -> Result<Option<NoteRecord>> {
        const OP: &str = "editing a note";
        let now = now_ms();
        let mut tx = self.begin_write(OP).await?;
        let Some(previous) = Self::note_in(&mut tx, project_id, run_id, note_id).await? else {
            return Ok(None);
        };
        sqlx::query(UPDATE_NOTE)
            .bind(note_id.to_string())
            .bind(body.to_string())
            .bind(now)
            .bind(reviewer.author.clone())
            .execute(&mut *tx)
            .await
            .map_err(db(OP))?;
        let record = NoteRecord {
            body: body.to_string(),
            updated_at_ms: now,
            updated_by: Some(reviewer.author.clone()),
            ..previous.clone()
        };
        let change = Change {
            project_id,
            run_id,
            subject: ReviewSubject::Note,
            item_id: note_id,
            action: ReviewAction::Updated,
            reviewer,
            at_ms: now,
        };
        change
            .record(&mut tx, Some(&previous), Some(&record))
            .await?;
        tx.commit().await.map_err(db(OP))?;
        Ok(Some(record))
    }

    /// Deletes a note; false if the trace has no such note.
    pub async fn delete_note(
        &self,
        project_id: &str,
        run_id: &str,
        note_id: &str,
        reviewer: &Reviewer,
    ) -> Result<bool> {
        const OP: &str = "deleting a note";
        let now = now_ms();
        let mut tx = self.begin_write(OP).await?;
        let Some(previous) = Self::note_in(&mut tx, project_id, run_id, note_id).await? else {
            return Ok(false);
        };
        sqlx::query(DELETE_NOTE)
            .bind(note_id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db(OP))?;
        let change = Change {
            project_id,
            run_id,
            subject: ReviewSubject::Note,
            item_id: note_id,
            action: ReviewAction::Deleted,
            reviewer,
            at_ms: now,
        };
        change
            .record::<_, NoteRecord>(&mut tx, Some(&previous), None)
            .await?;
        tx.commit().await.map_err(db(OP))?;
        Ok(true)
    }

    /// The trace's notes, oldest first.
    pub async fn trace_notes(&self, project_id: &str, run_id: &str) -> Result<Vec<NoteRecord>> {
        let text = format!(
            "SELECT {NOTE_COLUMNS} FROM trace_notes WHERE project_id = $1 AND run_id = $2 \
             ORDER BY id"
        );
        Ok(sqlx::query_as::<_, NoteRow>(sqlx::AssertSqlSafe(text))
            .bind(project_id.to_string())
            .bind(run_id.to_string())
            .fetch_all(self.pool())
            .await
            .map_err(db("listing notes"))?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// Sets (or replaces) the trace's reward override. The grader's reward is untouched.
    pub async fn set_reward_override(
        &self,
        project_id: &str,
        run_id: &str,
        reward: f64,
        reason: &str,
        reviewer: &Reviewer,
    ) -> Result<RewardOverride> {
        const OP: &str = "overriding a reward";
        retry_on_conflict(|| async {
            let now = now_ms();
            let mut tx = self.begin_write(OP).await?;
            let previous = sqlx::query_as::<_, OverrideRow>(GET_OVERRIDE)
                .bind(project_id.to_string())
                .bind(run_id.to_string())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db(OP))?
                .map(RewardOverride::from);
            sqlx::query(DELETE_OVERRIDE)
                .bind(project_id.to_string())
                .bind(run_id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(db(OP))?;
            let record = RewardOverride {
                run_id: run_id.to_string(),
                reward,
                reason: reason.to_string(),
                author: reviewer.author.clone(),
                created_at_ms: now,
            };
            sqlx::query(INSERT_OVERRIDE)
                .bind(run_id.to_string())
                .bind(project_id.to_string())
                .bind(reward)
                .bind(reason.to_string())
                .bind(reviewer.author.clone())
                .bind(reviewer.key_id.clone())
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(db(OP))?;
            let change = Change {
                project_id,
                run_id,
                subject: ReviewSubject::RewardOverride,
                item_id: run_id,
                action: if previous.is_some() {
                    ReviewAction::Updated
                } else {
                    ReviewAction::Created
                },
                reviewer,
                at_ms: now,
            };
            change
                .record(&mut tx, previous.as_ref(), Some(&record))
                .await?;
            tx.commit().await.map_err(db(OP))?;
            Ok(record)
        })
        .await
    }

    /// Removes the trace's reward override; false if it had none.
    pub async fn clear_reward_override(
        &self,
        project_id: &str,
        run_id: &str,
        reviewer: &Reviewer,
    ) -> Result<bool> {
        const OP: &str = "removing a reward override";
        let now = now_ms();
        let mut tx = self.begin_write(OP).await?;
        let Some(previous) = sqlx::query_as::<_, OverrideRow>(GET_OVERRIDE)
            .bind(project_id.to_string())
            .bind(run_id.to_string())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db(OP))?
            .map(RewardOverride::from)
        else {
            return Ok(false);
        };
        sqlx::query(DELETE_OVERRIDE)
            .bind(project_id.to_string())
            .bind(run_id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db(OP))?;
        let change = Change {
            project_id,
            run_id,
            subject: ReviewSubject::RewardOverride,
            item_id: run_id,
            action: ReviewAction::Deleted,
            reviewer,
            at_ms: now,
        };
        change
            .record::<_, RewardOverride>(&mut tx, Some(&previous), None)
            .await?;
        tx.commit().await.map_err(db(OP))?;
        Ok(true)
    }

    /// Everything recorded on the trace.
    pub async fn trace_review(&self, project_id: &str, run_id: &str) -> Result<TraceReview> {
        let reward_override = sqlx::query_as::<_, OverrideRow>(GET_OVERRIDE)
            .bind(project_id.to_string())
            .bind(run_id.to_string())
            .fetch_optional(self.pool())
            .await
            .map_err(db("reading a reward override"))?
            .map(RewardOverride::from);
        let reviewed_at_ms: Option<i64> = sqlx::query_scalar(REVIEWED_AT)
            .bind(project_id.to_string())
            .bind(run_id.to_string())
            .fetch_optional(self.pool())
            .await
            .map_err(db("reading a trace's review mark"))?;
        Ok(TraceReview {
            scores: self.trace_scores(project_id, run_id).await?,
            labels: self.trace_labels(project_id, run_id).await?,
            notes: self.trace_notes(project_id, run_id).await?,
            reward_override,
            reviewed_at_ms,
        })
    }

    /// Every change of the trace's review, oldest first.
    pub async fn review_history(
        &self,
        project_id: &str,
        run_id: &str,
    ) -> Result<Vec<HistoryEntry>> {
        let rows = sqlx::query_as::<_, HistoryRow>(LIST_HISTORY)
            .bind(project_id.to_string())
            .bind(run_id.to_string())
            .fetch_all(self.pool())
            .await
            .map_err(db("listing review history"))?;
        rows.into_iter()
            .map(|row| {
                let parse = |text: Option<String>| {
                    text.map(|text| serde_json::from_str(&text))
                        .transpose()
                        .map_err(corrupt("review history value"))
                };
                Ok(HistoryEntry {
                    id: row.id,
                    subject: row.subject,
                    item_id: row.item_id,
                    action: row.action,
                    previous: parse(row.previous)?,
                    value: parse(row.value)?,
                    author: row.author,
                    at_ms: row.at,
                })
            })
            .collect()
    }

    /// Labels, reviewed mark and override of each of the project's `run_ids` (a page of a
    /// list), in three queries.
    pub async fn review_summaries(
        &self,
        project_id: &str,
        run_ids: &[String],
    ) -> Result<HashMap<String, ReviewSummary>> {
        let mut summaries: HashMap<String, ReviewSummary> = HashMap::new();
        if run_ids.is_empty() {
            return Ok(summaries);
        }
        let placeholders = (0..run_ids.len())
            .map(|i| format!("${}", i + 2))
            .collect::<Vec<_>>()
            .join(", ");
        let labels = format!(
            "SELECT run_id, label FROM trace_labels WHERE project_id = $1 \
             AND run_id IN ({placeholders}) ORDER BY label"
        );
        let reviewed = format!(
            "SELECT run_id FROM trace_reviews WHERE project_id = $1 \
             AND run_id IN ({placeholders})"
        );
        let overrides = format!(
            "SELECT run_id, reward FROM reward_overrides WHERE project_id = $1 \
             AND run_id IN ({placeholders})"
        );
        let mut query = sqlx::query_as::<_, (String, String)>(sqlx::AssertSqlSafe(labels))
            .bind(project_id.to_string());
        for id in run_ids {
            query = query.bind(id.clone());
        }
        for (run_id, label) in query
            .fetch_all(self.pool())
            .await
            .map_err(db("reading labels of traces"))?
        {
            summaries.entry(run_id).or_default().labels.push(label);
        }
        let mut query = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(reviewed))
            .bind(project_id.to_string());
        for id in run_ids {
            query = query.bind(id.clone());
        }
        for run_id in query
            .fetch_all(self.pool())
            .await
            .map_err(db("reading review marks of traces"))?
        {
            summaries.entry(run_id).or_default().reviewed = true;
        }
        let mut query = sqlx::query_as::<_, (String, f64)>(sqlx::AssertSqlSafe(overrides))
            .bind(project_id.to_string());
        for id in run_ids {
            query = query.bind(id.clone());
        }
        for (run_id, reward) in query
            .fetch_all(self.pool())
            .await
            .map_err(db("reading reward overrides of traces"))?
        {
            summaries.entry(run_id).or_default().reward_override = Some(reward);
        }
        Ok(summaries)
    }

    /// The labels used in the project, alphabetical (at most 500), for completion.
    pub async fn project_labels(&self, project_id: &str) -> Result<Vec<String>> {
        sqlx::query_scalar::<_, String>(
            "SELECT DISTINCT label FROM trace_labels WHERE project_id = $1 ORDER BY label LIMIT 500",
        )
        .bind(project_id.to_string())
        .fetch_all(self.pool())
        .await
        .map_err(db("listing a project's labels"))
    }

    /// The reward overrides of a job's runs, by run id.
    pub async fn job_reward_overrides(&self, job_id: &str) -> Result<HashMap<String, f64>> {
        Ok(sqlx::query_as::<_, (String, f64)>(JOB_OVERRIDES)
            .bind(job_id.to_string())
            .fetch_all(self.pool())
            .await
            .map_err(db("reading a job's reward overrides"))?
            .into_iter()
            .collect())
    }
}
