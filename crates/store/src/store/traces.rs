//! Trace search (every filter of `GET /v1/traces`, newest first with a cursor) and usage
//! aggregation. The statements are built from fixed fragments; every value is bound, so
//! that only the filters given appear in the SQL and the planner can pick an index.

use crate::Result;
use crate::error::db;
use crate::store::{RunRow, Store};
use crate::types::{Backend, RunRecord};
use rollout_domain::RunStatus;
use sqlx::AssertSqlSafe;
use sqlx::any::AnyArguments;
use sqlx::query::QueryAs;

/// Which traces to list. Every field narrows the list; `None` means no constraint.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TraceQuery {
    pub status: Option<RunStatus>,
    pub env_name: Option<String>,
    /// The bare scenario name.
    pub scenario: Option<String>,
    pub model: Option<String>,
    /// Only runs with a reward of at least this.
    pub reward_min: Option<f64>,
    /// Only runs with a reward of at most this.
    pub reward_max: Option<f64>,
    /// Only runs created at or after this unix time in milliseconds.
    pub from_ms: Option<i64>,
    /// Only runs created before this unix time in milliseconds.
    pub to_ms: Option<i64>,
    /// Only runs whose metadata has this key...
    pub metadata_key: Option<String>,
    /// ...with this value (compared as text), when given.
    pub metadata_value: Option<String>,
    /// Only runs that used at least this many tokens (input + output).
    pub tokens_min: Option<i64>,
    /// Only runs that used at most this many tokens (input + output).
    pub tokens_max: Option<i64>,
    /// Only finished runs that took at least this long, start to end, in milliseconds.
    pub duration_min_ms: Option<i64>,
    /// Only finished runs that took at most this long, start to end, in milliseconds.
    pub duration_max_ms: Option<i64>,
    /// Only runs of this job.
    pub job_id: Option<String>,
    /// Only runs with every one of these labels.
    pub labels_all: Vec<String>,
    /// Only runs with at least one of these labels (none given: no constraint).
    pub labels_any: Vec<String>,
    /// Only runs with none of these labels.
    pub labels_none: Vec<String>,
    /// Only runs whose scores pass every one of these.
    pub scores: Vec<ScoreFilter>,
    /// Only runs someone reviewed (`true`) or no one did (`false`).
    pub reviewed: Option<bool>,
    /// Only runs whose reward is overridden (`true`) or is not (`false`).
    pub overridden: Option<bool>,
    /// Which reward `reward_min` and `reward_max` compare: the override where there is one
    /// (the default), or the grader's.
    pub reward_source: RewardSource,
    /// Only these runs (at most a page of ids).
    pub ids: Vec<String>,
    /// A cursor: only runs with an id smaller than this one (older runs).
    pub before: Option<String>,
    /// How many runs to return, clamped to `1..=500`.
    pub limit: i64,
}

/// A filter on a run's scores of one name.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreFilter {
    /// The score's name.
    pub name: String,
    /// The mean of the run's numeric scores of that name is at least this.
    pub min: Option<f64>,
    /// ... and at most this. Without bounds: the run has a score of that name at all.
    pub max: Option<f64>,
}

/// Which reward a filter or a metric reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RewardSource {
    /// A person's override where there is one, else the grader's reward.
    #[default]
    Override,
    /// The grader's reward, always.
    Grader,
}

/// A run's reward as a person decided it: the override, else the grader's.
const EFFECTIVE_REWARD: &str = "COALESCE((SELECT o.reward FROM reward_overrides o \
     WHERE o.run_id = runs.id), runs.reward)";

/// How to group usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageGroup {
    /// Per UTC day; the group is `YYYY-MM-DD`.
    Day,
    /// Per model name.
    Model,
    /// Per environment name.
    Environment,
    /// Per API key id (`""` for runs no key started, e.g. scheduled ones).
    Key,
}

/// Usage of one group: runs, steps, tokens and compute time.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageRow {
    /// The day (`YYYY-MM-DD`), the model or the environment.
    pub group: String,
    pub runs: i64,
    pub steps: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    /// Seconds between start and end, summed over finished runs.
    pub compute_seconds: f64,
    /// Input and output tokens per model within the group, so that a caller who knows the
    /// models' prices can price the group.
    pub tokens_by_model: Vec<(String, i64, i64)>,
}

impl UsageRow {
    /// An empty row for `group`.
    pub fn empty(group: impl Into<String>) -> Self {
        Self {
            group: group.into(),
            runs: 0,
            steps: 0,
            input_tokens: 0,
            output_tokens: 0,
            compute_seconds: 0.0,
            tokens_by_model: Vec::new(),
        }
    }

    /// Adds another row's counts to this one.
    pub fn add(&mut self, other: &UsageRow) {
        self.runs += other.runs;
        self.steps += other.steps;
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.compute_seconds += other.compute_seconds;
        for (model, input, output) in &other.tokens_by_model {
            match self.tokens_by_model.iter_mut().find(|(m, _, _)| m == model) {
                Some(entry) => {
                    entry.1 += input;
                    entry.2 += output;
                }
                None => self.tokens_by_model.push((model.clone(), *input, *output)),
            }
        }
    }
}

#[derive(sqlx::FromRow)]
struct UsageDbRow {
    grp: String,
    model: String,
    runs: i64,
    steps: i64,
    input_tokens: i64,
    output_tokens: i64,
    compute_ms: i64,
}

/// A slack for turning times into UUID v7 bounds: an id is generated a moment before its
/// row's `created_at` is stamped.
const ID_SLACK_MS: i64 = 60_000;

/// The smallest hyphenated UUID v7 whose timestamp is `ms`: ids of runs created at or after
/// `ms` sort at or after it, which lets a time range use the primary-key order.
fn uuid7_floor(ms: i64) -> String {
    let ms = u64::try_from(ms.max(0)).unwrap_or(0) & 0xffff_ffff_ffff;
    format!(
        "{:08x}-{:04x}-0000-0000-000000000000",
        ms >> 16,
        ms & 0xffff
    )
}

/// A statement under construction: SQL text and the values to bind, in order.
struct Sql {
    text: String,
    strings: Vec<Bind>,
}

enum Bind {
    Text(String),
    Int(i64),
    Float(f64),
}

impl Sql {
    fn new(text: &str) -> Self {
        Self {
            text: text.to_string(),
            strings: Vec::new(),
        }
    }

    /// Appends `fragment`, in which `?` stands for the placeholder of `value`.
    fn and(&mut self, fragment: &str, value: Bind) {
        self.strings.push(value);
        let placeholder = format!("${}", self.strings.len());
        self.text.push_str(" AND ");
        self.text.push_str(&fragment.replace('?', &placeholder));
    }

    fn push(&mut self, text: &str) {
        self.text.push_str(text);
    }

    fn bind_value(&mut self, value: Bind) -> String {
        self.strings.push(value);
        format!("${}", self.strings.len())
    }
}

fn bind_all<'q, O>(
    mut query: QueryAs<'q, sqlx::Any, O, AnyArguments>,
    values: Vec<Bind>,
) -> QueryAs<'q, sqlx::Any, O, AnyArguments> {
    for value in values {
        query = match value {
            Bind::Text(text) => query.bind(text),
            Bind::Int(int) => query.bind(int),
            Bind::Float(float) => query.bind(float),
        };
    }
    query
}

/// A list of placeholders for `values`, bound in order: `$4, $5, $6`.
fn placeholders(sql: &mut Sql, values: &[String]) -> String {
    values
        .iter()
        .map(|value| sql.bind_value(Bind::Text(value.clone())))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The filters on what people recorded (labels, scores, reviewed, overridden) and on ids,
/// each a correlated subquery on an index that starts with the run id.
fn review_conditions(sql: &mut Sql, query: &TraceQuery) {
    for label in &query.labels_all {
        sql.and(
            "EXISTS (SELECT 1 FROM trace_labels l WHERE l.run_id = runs.id AND l.label = ?)",
            Bind::Text(label.clone()),
        );
    }
    if !query.labels_any.is_empty() {
        let list = placeholders(sql, &query.labels_any);
        sql.push(&format!(
            " AND EXISTS (SELECT 1 FROM trace_labels l WHERE l.run_id = runs.id \
             AND l.label IN ({list}))"
        ));
    }
    if !query.labels_none.is_empty() {
        let list = placeholders(sql, &query.labels_none);
        sql.push(&format!(
            " AND NOT EXISTS (SELECT 1 FROM trace_labels l WHERE l.run_id = runs.id \
             AND l.label IN ({list}))"
        ));
    }
    for score in &query.scores {
        let name = sql.bind_value(Bind::Text(score.name.clone()));
        if score.min.is_none() && score.max.is_none() {
            sql.push(&format!(
                " AND EXISTS (SELECT 1 FROM trace_scores s WHERE s.run_id = runs.id \
                 AND s.name = {name})"
            ));
            continue;
        }
        // The mean over reviewers: two people who disagree count half each.
        let mean = format!(
            "(SELECT AVG(s.value) FROM trace_scores s WHERE s.run_id = runs.id \
             AND s.name = {name} AND s.value IS NOT NULL)"
        );
        if let Some(min) = score.min {
            let min = sql.bind_value(Bind::Float(min));
            sql.push(&format!(" AND {mean} >= {min}"));
        }
        if let Some(max) = score.max {
            let max = sql.bind_value(Bind::Float(max));
            sql.push(&format!(" AND {mean} <= {max}"));
        }
    }
    let exists = |sql: &mut Sql, wanted: Option<bool>, table: &str| {
        if let Some(wanted) = wanted {
            let not = if wanted { "" } else { "NOT " };
            sql.push(&format!(
                " AND {not}EXISTS (SELECT 1 FROM {table} x WHERE x.run_id = runs.id)"
            ));
        }
    };
    exists(sql, query.reviewed, "trace_reviews");
    exists(sql, query.overridden, "reward_overrides");
    if !query.ids.is_empty() {
        let list = placeholders(sql, &query.ids);
        sql.push(&format!(" AND runs.id IN ({list})"));
    }
}

impl Store {
    /// The project's runs matching `query`, newest first. Pass the last id of a page as
    /// `before` to get the next page.
    pub async fn search_runs(
        &self,
        project_id: &str,
        query: &TraceQuery,
    ) -> Result<Vec<RunRecord>> {
        let mut sql = Sql::new(concat!(
            "SELECT ",
            run_columns!(),
            " FROM runs WHERE project_id = $1"
        ));
        sql.strings.push(Bind::Text(project_id.to_string()));
        if let Some(status) = query.status {
            sql.and("status = ?", Bind::Text(status.as_str().into()));
        }
        if let Some(env_name) = &query.env_name {
            sql.and("env_name = ?", Bind::Text(env_name.clone()));
        }
        if let Some(scenario) = &query.scenario {
            sql.and("scenario = ?", Bind::Text(scenario.clone()));
        }
        if let Some(model) = &query.model {
            sql.and("model = ?", Bind::Text(model.clone()));
        }
        if let Some(min) = query.tokens_min {
            sql.and("input_tokens + output_tokens >= ?", Bind::Int(min));
        }
        if let Some(max) = query.tokens_max {
            sql.and("input_tokens + output_tokens <= ?", Bind::Int(max));
        }
        if let Some(min) = query.duration_min_ms {
            sql.and("finished_at - started_at >= ?", Bind::Int(min));
        }
        if let Some(max) = query.duration_max_ms {
            sql.and("finished_at - started_at <= ?", Bind::Int(max));
        }
        if let Some(job_id) = &query.job_id {
            sql.and("job_id = ?", Bind::Text(job_id.clone()));
        }
        let reward = match query.reward_source {
            RewardSource::Override => EFFECTIVE_REWARD,
            RewardSource::Grader => "runs.reward",
        };
        if let Some(min) = query.reward_min {
            sql.and(&format!("{reward} >= ?"), Bind::Float(min));
        }
        if let Some(max) = query.reward_max {
            sql.and(&format!("{reward} <= ?"), Bind::Float(max));
        }
        review_conditions(&mut sql, query);
        if let Some(from) = query.from_ms {
            sql.and("id >= ?", Bind::Text(uuid7_floor(from - ID_SLACK_MS)));
            sql.and("created_at >= ?", Bind::Int(from));
        }
        if let Some(to) = query.to_ms {
            sql.and("id < ?", Bind::Text(uuid7_floor(to + ID_SLACK_MS)));
            sql.and("created_at < ?", Bind::Int(to));
        }
        if let Some(key) = &query.metadata_key {
            self.metadata_condition(&mut sql, key, query.metadata_value.as_deref());
        }
        if let Some(before) = &query.before {
            sql.and("id < ?", Bind::Text(before.clone()));
        }
        let limit = sql.bind_value(Bind::Int(query.limit.clamp(1, 500)));
        sql.push(&format!(" ORDER BY id DESC LIMIT {limit}"));
        let Sql { text, strings } = sql;
        bind_all(sqlx::query_as::<_, RunRow>(AssertSqlSafe(text)), strings)
            .fetch_all(self.pool())
            .await
            .map_err(db("searching runs"))?
            .into_iter()
            .map(RunRow::into_record)
            .collect()
    }

    /// The metadata filter, the same on both databases: the key exists; and with a value,
    /// the metadata value is that string, or the JSON literal it spells (`true`, `false`,
    /// `null`), or a number equal to it (`1` matches 1 and 1.0). Objects and arrays never
    /// match a value.
    fn metadata_condition(&self, sql: &mut Sql, key: &str, value: Option<&str>) {
        let literal = value.and_then(|value| match value {
            "true" | "false" | "null" => Some(value),
            _ => None,
        });
        let number = value
            .and_then(|value| value.trim().parse::<f64>().ok())
            .filter(|number| number.is_finite());
        match self.backend() {
            Backend::Sqlite => {
                // A JSON path with the key quoted, so that dots and spaces in keys work.
                let path = format!("$.metadata.\"{}\"", key.replace('"', "\\\""));
                let p = sql.bind_value(Bind::Text(path));
                let Some(value) = value else {
                    sql.push(&format!(" AND json_type(spec, {p}) IS NOT NULL"));
                    return;
                };
                let v = sql.bind_value(Bind::Text(value.to_string()));
                let mut alternatives = vec![format!(
                    "(json_type(spec, {p}) = 'text' AND json_extract(spec, {p}) = {v})"
                )];
                if let Some(literal) = literal {
                    // json_type names JSON's true, false and null by themselves.
                    let l = sql.bind_value(Bind::Text(literal.to_string()));
                    alternatives.push(format!("json_type(spec, {p}) = {l}"));
                }
                if let Some(number) = number {
                    let n = sql.bind_value(Bind::Float(number));
                    alternatives.push(format!(
                        "(json_type(spec, {p}) IN ('integer', 'real') \
                         AND CAST(json_extract(spec, {p}) AS REAL) = {n})"
                    ));
                }
                sql.push(&format!(" AND ({})", alternatives.join(" OR ")));
            }
            Backend::Postgres => {
                let k = sql.bind_value(Bind::Text(key.to_string()));
                let field = format!("((CAST(spec AS JSONB) -> 'metadata') -> CAST({k} AS TEXT))");
                let Some(value) = value else {
                    sql.push(&format!(
                        " AND jsonb_exists(CAST(spec AS JSONB) -> 'metadata', CAST({k} AS TEXT))"
                    ));
                    return;
                };
                let v = sql.bind_value(Bind::Text(value.to_string()));
                let mut alternatives = vec![format!(
                    "(jsonb_typeof({field}) = 'string' AND ({field} #>> '{{}}') = {v})"
                )];
                match literal {
                    Some("null") => alternatives.push(format!("jsonb_typeof({field}) = 'null'")),
                    Some(literal) => {
                        let l = sql.bind_value(Bind::Text(literal.to_string()));
                        alternatives.push(format!(
                            "(jsonb_typeof({field}) = 'boolean' AND ({field} #>> '{{}}') = {l})"
                        ));
                    }
                    None => {}
                }
                if let Some(number) = number {
                    let n = sql.bind_value(Bind::Float(number));
                    alternatives.push(format!(
                        "(jsonb_typeof({field}) = 'number' \
                         AND CAST({field} #>> '{{}}' AS DOUBLE PRECISION) = {n})"
                    ));
                }
                sql.push(&format!(" AND ({})", alternatives.join(" OR ")));
            }
        }
    }

    /// Usage of the project's runs created in `[from_ms, to_ms)`, per group, ordered by group.
    pub async fn usage(
        &self,
        project_id: &str,
        from_ms: i64,
        to_ms: i64,
        group: UsageGroup,
    ) -> Result<Vec<UsageRow>> {
        let group_expr = match group {
            UsageGroup::Day => "CAST(created_at / 86400000 AS TEXT)",
            UsageGroup::Model => "model",
            UsageGroup::Environment => "env_name",
            UsageGroup::Key => "COALESCE(key_id, '')",
        };
        let text = format!(
            "SELECT {group_expr} AS grp, model, CAST(COUNT(*) AS BIGINT) AS runs, \
             CAST(COALESCE(SUM(steps), 0) AS BIGINT) AS steps, \
             CAST(COALESCE(SUM(input_tokens), 0) AS BIGINT) AS input_tokens, \
             CAST(COALESCE(SUM(output_tokens), 0) AS BIGINT) AS output_tokens, \
             CAST(COALESCE(SUM(CASE WHEN finished_at IS NOT NULL AND started_at IS NOT NULL \
             THEN finished_at - started_at ELSE 0 END), 0) AS BIGINT) AS compute_ms \
             FROM runs WHERE project_id = $1 AND created_at >= $2 AND created_at < $3 \
             GROUP BY {group_expr}, model ORDER BY {group_expr}, model"
        );
        let values = vec![
            Bind::Text(project_id.to_string()),
            Bind::Int(from_ms),
            Bind::Int(to_ms),
        ];
        let rows = bind_all(sqlx::query_as::<_, UsageDbRow>(AssertSqlSafe(text)), values)
            .fetch_all(self.pool())
            .await
            .map_err(db("aggregating usage"))?;
        // One database row per (group, model); fold them into one row per group.
        let mut grouped: Vec<UsageRow> = Vec::new();
        for row in rows.into_iter().map(|row| {
            let group = match group {
                UsageGroup::Day => match row.grp.parse::<i64>() {
                    Ok(day) => rollout_domain::time::rfc3339_from_ms(day * 86_400_000)
                        .chars()
                        .take(10)
                        .collect(),
                    Err(_) => row.grp,
                },
                UsageGroup::Model | UsageGroup::Environment | UsageGroup::Key => row.grp,
            };
            UsageRow {
                group,
                runs: row.runs,
                steps: row.steps,
                input_tokens: row.input_tokens,
                output_tokens: row.output_tokens,
                compute_seconds: row.compute_ms as f64 / 1000.0,
                tokens_by_model: vec![(row.model, row.input_tokens, row.output_tokens)],
            }
        }) {
            match grouped.last_mut() {
                Some(last) if last.group == row.group => last.add(&row),
                _ => grouped.push(row),
            }
        }
        Ok(grouped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid7_floor_orders_with_real_ids() {
        let id = uuid::Uuid::now_v7().to_string();
        let ms = i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis(),
        )
        .unwrap();
        assert!(uuid7_floor(ms - 1000) <= id);
        assert!(uuid7_floor(ms + 1000) > id);
    }
}
