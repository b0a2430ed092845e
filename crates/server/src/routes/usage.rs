//! `GET /v1/usage`: runs, steps, tokens and compute time per day, model or environment.

use crate::auth::Caller;
use crate::error::{ApiError, problem};
use crate::json::ApiQuery;
use crate::state::AppState;
use axum::extract::State;
use axum::{Extension, Json};
pub(crate) use rollout_api::usage::UsageQuery;
use rollout_api::usage::{Usage, UsageGroup as UsageGroupView};
use rollout_domain::time::{now_ms, rfc3339_from_ms};
use rollout_store::{UsageGroup, UsageRow};

const DAY_MS: i64 = 86_400_000;

/// A validated usage request.
pub(crate) struct UsageRequest {
    pub(crate) from_ms: i64,
    pub(crate) to_ms: i64,
    pub(crate) group: UsageGroup,
}

/// Checks the query; 422 lists every problem.
pub(crate) fn validate(query: &UsageQuery) -> Result<UsageRequest, ApiError> {
    let mut problems = Vec::new();
    let mut time = |field: &str, value: &Option<String>| match value.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => {
            let parsed = parse_time(text);
            if parsed.is_none() {
                problems.push(problem(
                    field,
                    format!("{field} must be an RFC 3339 time, a date (YYYY-MM-DD) or unix milliseconds, got '{text}'"),
                ));
            }
            parsed
        }
    };
    let to_ms = time("to", &query.to).unwrap_or_else(|| now_ms() + 1);
    let from_ms = time("from", &query.from).unwrap_or(to_ms - 30 * DAY_MS);
    let group = match query.group_by.as_deref().unwrap_or("day") {
        "day" => Some(UsageGroup::Day),
        "model" => Some(UsageGroup::Model),
        "environment" | "env" => Some(UsageGroup::Environment),
        "key" => Some(UsageGroup::Key),
        other => {
            problems.push(problem(
                "group_by",
                format!("group_by must be day, model, environment or key, got '{other}'"),
            ));
            None
        }
    };
    if from_ms >= to_ms {
        problems.push(problem("from", "from must be before to"));
    }
    match group {
        Some(group) if problems.is_empty() => Ok(UsageRequest {
            from_ms,
            to_ms,
            group,
        }),
        _ => Err(ApiError::invalid(problems)),
    }
}

/// One group as JSON.
pub(crate) fn usage_row(state: &AppState, project: &str, row: &UsageRow) -> UsageGroupView {
    UsageGroupView {
        group: row.group.clone(),
        runs: row.runs,
        steps: row.steps,
        input_tokens: row.input_tokens,
        output_tokens: row.output_tokens,
        compute_seconds: row.compute_seconds,
        cost_usd: cost_usd(state, project, row),
        key_name: None,
    }
}

/// The group's cost at the models' prices; `None` when a model of the group has no price.
pub(crate) fn cost_usd(state: &AppState, project: &str, row: &UsageRow) -> Option<f64> {
    let mut cost = 0.0;
    for (model, input, output) in &row.tokens_by_model {
        let usage = rollout_domain::Usage {
            input_tokens: u64::try_from(*input).unwrap_or(0),
            output_tokens: u64::try_from(*output).unwrap_or(0),
            ..rollout_domain::Usage::default()
        };
        cost += state.catalog.price(project, model)?.cost(&usage);
    }
    Some((cost * 1e6).round() / 1e6)
}

/// `GET /v1/usage?from&to&group_by=day|model|environment`.
pub(crate) async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiQuery(query): ApiQuery<UsageQuery>,
) -> Result<Json<Usage>, ApiError> {
    let request = validate(&query)?;
    let rows = state
        .store
        .usage(
            &caller.project_id,
            request.from_ms,
            request.to_ms,
            request.group,
        )
        .await?;
    // Per key, each group also gets the key's name (a revoked key keeps its id only).
    let names: std::collections::HashMap<String, String> = match request.group {
        UsageGroup::Key => state
            .store
            .list_api_keys(&caller.project_id)
            .await?
            .into_iter()
            .map(|key| (key.id, key.name))
            .collect(),
        UsageGroup::Day | UsageGroup::Model | UsageGroup::Environment => Default::default(),
    };
    let groups = rows
        .iter()
        .map(|row| {
            let mut value = usage_row(&state, &caller.project_id, row);
            value.key_name = names.get(&row.group).cloned();
            value
        })
        .collect();
    let mut total = UsageRow::empty("total");
    for row in &rows {
        total.add(row);
    }
    Ok(Json(Usage {
        from: rfc3339_from_ms(request.from_ms),
        to: rfc3339_from_ms(request.to_ms),
        group_by: match request.group {
            UsageGroup::Day => "day",
            UsageGroup::Model => "model",
            UsageGroup::Environment => "environment",
            UsageGroup::Key => "key",
        }
        .to_string(),
        groups,
        total: usage_row(&state, &caller.project_id, &total),
    }))
}

/// Parses unix milliseconds, a date `YYYY-MM-DD` (UTC midnight) or an RFC 3339 time
/// `YYYY-MM-DDTHH:MM[:SS[.fff]](Z|±HH:MM)`.
pub(crate) fn parse_time(text: &str) -> Option<i64> {
    let text = text.trim();
    if !text.is_empty() && text.chars().all(|c| c.is_ascii_digit()) {
        return text.parse().ok();
    }
    let number = |s: &str| -> Option<i64> {
        if s.is_empty() || !s.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    let date = text.get(..10)?;
    let mut parts = date.split('-');
    let year = number(parts.next()?)?;
    let month = number(parts.next()?)?;
    let day = number(parts.next()?)?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let mut ms = days_from_civil(year, month, day) * DAY_MS;
    let rest = &text[10..];
    if rest.is_empty() {
        return Some(ms);
    }
    let rest = rest.strip_prefix(['T', 't', ' '])?;
    let (clock, offset_ms) = if let Some(clock) = rest.strip_suffix(['Z', 'z']) {
        (clock, 0)
    } else {
        let sign_at = rest.rfind(['+', '-'])?;
        let (clock, offset) = rest.split_at(sign_at);
        let sign = if offset.starts_with('-') { -1 } else { 1 };
        let (hours, minutes) = offset[1..].split_once(':')?;
        (
            clock,
            sign * (number(hours)? * 3_600_000 + number(minutes)? * 60_000),
        )
    };
    let (clock, fraction) = clock.split_once('.').unwrap_or((clock, ""));
    let mut fields = clock.split(':');
    let hours = number(fields.next()?)?;
    let minutes = number(fields.next()?)?;
    let seconds = fields.next().map_or(Some(0), number)?;
    if hours > 23 || minutes > 59 || seconds > 60 || fields.next().is_some() {
        return None;
    }
    let millis = if fraction.is_empty() {
        0
    } else {
        let digits: String = fraction.chars().chain("000".chars()).take(3).collect();
        number(&digits)?
    };
    ms += hours * 3_600_000 + minutes * 60_000 + seconds * 1000 + millis;
    Some(ms - offset_ms)
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_in_every_accepted_form() {
        assert_eq!(parse_time("0"), Some(0));
        assert_eq!(parse_time("1970-01-02"), Some(DAY_MS));
        assert_eq!(
            parse_time("2026-11-28T16:09:13.123Z").map(rfc3339_from_ms),
            Some("2026-11-28T16:09:13.123Z".into())
        );
        assert_eq!(
            parse_time("2026-11-28T18:09:13+02:00").map(rfc3339_from_ms),
            Some("2026-11-28T16:09:13.000Z".into())
        );
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(parse_time("2026-13-01"), None);
    }
}
