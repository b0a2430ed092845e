//! `/usage`: runs, steps, tokens and compute time per day (bar charts in inline SVG) and
//! per model, from the views of `GET /v1/usage` (`routes::usage::usage_row`).

use super::Page;
use super::html::render;
use crate::auth::Caller;
use crate::routes::usage::usage_row;
use crate::state::AppState;
use askama::Template;
use axum::Extension;
use axum::extract::{Query, State};
use rollout_api::usage::UsageGroup as GroupView;
use rollout_domain::time::now_ms;
use rollout_store::{UsageGroup, UsageRow};
use serde::Deserialize;

const DAY_MS: i64 = 86_400_000;

/// Query of the usage page.
#[derive(Debug, Deserialize)]
pub(crate) struct UsagePageQuery {
    /// How many days back, 1 to 366 (default 30).
    days: Option<i64>,
}

/// `usage.html`.
#[derive(Template)]
#[template(path = "usage.html")]
struct UsagePage<'a> {
    section: &'a str,
    days: i64,
    charts: Vec<Chart>,
    per_model: &'a [GroupView],
    per_day: &'a [GroupView],
}

/// A bar chart of one measure per day; coordinates are SVG user units, formatted.
struct Chart {
    title: &'static str,
    width: f64,
    height: f64,
    pad_left: f64,
    grid: Vec<GridLine>,
    bars: Vec<Bar>,
    /// No bar has a height: the chart says so.
    empty: bool,
}

struct GridLine {
    y: String,
    label_x: String,
    label_y: String,
    label: String,
}

struct Bar {
    x: String,
    y: String,
    width: String,
    height: String,
    group: String,
    value: String,
    /// The day under the bar (every bar up to 12, else about 6 of them).
    tick: Option<Tick>,
}

struct Tick {
    x: String,
    y: String,
    text: String,
}

fn chart(title: &'static str, rows: &[GroupView], measure: impl Fn(&GroupView) -> f64) -> Chart {
    let (width, height, pad_left, pad_bottom) = (720.0, 200.0, 48.0, 28.0);
    let max = rows.iter().map(&measure).fold(0.0_f64, f64::max).max(1.0);
    let n = rows.len().max(1) as f64;
    let slot = (width - pad_left - 8.0) / n;
    let bar = (slot * 0.7).max(2.0);
    let plot = height - pad_bottom - 10.0;
    let grid = [0.0, 0.5, 1.0]
        .into_iter()
        .map(|fraction| {
            let y = 10.0 + plot * (1.0 - fraction);
            GridLine {
                y: format!("{y:.1}"),
                label_x: format!("{:.1}", pad_left - 6.0),
                label_y: format!("{:.1}", y + 4.0),
                label: compact(max * fraction),
            }
        })
        .collect();
    let bars = rows
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let value = measure(row);
            let h = plot * value / max;
            let x = pad_left + slot * i as f64 + (slot - bar) / 2.0;
            let labelled = rows.len() <= 12 || i % (rows.len() / 6).max(1) == 0;
            Bar {
                x: format!("{x:.1}"),
                y: format!("{:.1}", 10.0 + plot - h),
                width: format!("{bar:.1}"),
                height: format!("{h:.1}"),
                group: row.group.clone(),
                value: compact(value),
                tick: labelled.then(|| Tick {
                    x: format!("{:.1}", x + bar / 2.0),
                    y: format!("{:.1}", height - 10.0),
                    text: row.group.get(5..).unwrap_or(&row.group).to_string(),
                }),
            }
        })
        .collect();
    Chart {
        title,
        width,
        height,
        pad_left,
        grid,
        bars,
        empty: rows.iter().all(|row| measure(row) == 0.0),
    }
}

fn compact(value: f64) -> String {
    if value >= 1e6 {
        format!("{:.1}M", value / 1e6)
    } else if value >= 1e4 {
        format!("{:.0}k", value / 1e3)
    } else if value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

/// The usage page.
pub(crate) async fn page(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<UsagePageQuery>,
) -> Page {
    let days = query.days.unwrap_or(30).clamp(1, 366);
    let to_ms = now_ms() + 1;
    let from_ms = (to_ms / DAY_MS - days + 1) * DAY_MS;
    let project = caller.project_id.as_str();
    let view = |rows: Vec<UsageRow>| -> Vec<GroupView> {
        rows.iter()
            .map(|row| usage_row(&state, project, row))
            .collect()
    };
    let per_day = view(
        state
            .store
            .usage(project, from_ms, to_ms, UsageGroup::Day)
            .await?,
    );
    let per_model = view(
        state
            .store
            .usage(project, from_ms, to_ms, UsageGroup::Model)
            .await?,
    );
    // Every day of the period gets a bar, empty days too, so the axis is time.
    let day_rows: Vec<GroupView> = (0..days)
        .map(|offset| {
            let day = rollout_domain::time::rfc3339_from_ms(from_ms + offset * DAY_MS)
                .chars()
                .take(10)
                .collect::<String>();
            per_day
                .iter()
                .find(|row| row.group == day)
                .cloned()
                .unwrap_or_else(|| usage_row(&state, project, &UsageRow::empty(day)))
        })
        .collect();
    render(&UsagePage {
        section: "/usage",
        days,
        charts: vec![
            chart("Runs per day", &day_rows, |r| r.runs as f64),
            chart("Tokens per day (input + output)", &day_rows, |r| {
                (r.input_tokens + r.output_tokens) as f64
            }),
        ],
        per_model: &per_model,
        per_day: &per_day,
    })
}
