//! `/usage`: runs, steps, tokens and compute time per day (bar charts in inline SVG) and
//! per model.

use super::Page;
use super::html::{esc, layout};
use crate::auth::Caller;
use crate::state::AppState;
use axum::Extension;
use axum::extract::{Query, State};
use rollout_domain::time::now_ms;
use rollout_store::{UsageGroup, UsageRow};
use serde::Deserialize;
use std::fmt::Write as _;

const DAY_MS: i64 = 86_400_000;

/// Query of the usage page.
#[derive(Debug, Deserialize)]
pub(crate) struct UsagePageQuery {
    /// How many days back, 1 to 366 (default 30).
    days: Option<i64>,
}

/// A bar chart of one measure per day, as inline SVG.
fn bar_chart(title: &str, rows: &[UsageRow], measure: impl Fn(&UsageRow) -> f64) -> String {
    let (width, height, pad_left, pad_bottom) = (720.0, 200.0, 48.0, 28.0);
    let max = rows.iter().map(&measure).fold(0.0_f64, f64::max).max(1.0);
    let n = rows.len().max(1) as f64;
    let slot = (width - pad_left - 8.0) / n;
    let bar = (slot * 0.7).max(2.0);
    let mut svg = format!(
        "<figure class=\"card\"><figcaption><strong>{}</strong></figcaption><svg class=\"chart\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"{}\">",
        esc(title),
        esc(title)
    );
    let plot = height - pad_bottom - 10.0;
    for fraction in [0.0, 0.5, 1.0] {
        let y = 10.0 + plot * (1.0 - fraction);
        let _ = write!(
            svg,
            "<line x1=\"{pad_left}\" x2=\"{width}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#e4e7ec\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\" fill=\"#667085\">{}</text>",
            pad_left - 6.0,
            y + 4.0,
            compact(max * fraction)
        );
    }
    for (i, row) in rows.iter().enumerate() {
        let value = measure(row);
        let h = plot * value / max;
        let x = pad_left + slot * i as f64 + (slot - bar) / 2.0;
        let y = 10.0 + plot - h;
        let _ = write!(
            svg,
            "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bar:.1}\" height=\"{h:.1}\" rx=\"2\" fill=\"#2f5bea\"><title>{}: {}</title></rect>",
            esc(&row.group),
            compact(value)
        );
        if rows.len() <= 12 || i % (rows.len() / 6).max(1) == 0 {
            let _ = write!(
                svg,
                "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"middle\" fill=\"#667085\">{}</text>",
                x + bar / 2.0,
                height - 10.0,
                esc(row.group.get(5..).unwrap_or(&row.group))
            );
        }
    }
    if rows.iter().all(|row| measure(row) == 0.0) {
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#667085\">no runs in this period</text>",
            width / 2.0,
            height / 2.0
        );
    }
    svg.push_str("</svg></figure>");
    svg
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

fn table(id: &str, first: &str, rows: &[UsageRow]) -> String {
    let mut out = format!(
        "<div class=\"card table-wrap\"><table id=\"{id}\"><thead><tr><th>{first}</th><th class=\"num\">Runs</th><th class=\"num\">Steps</th><th class=\"num\">Input tokens</th><th class=\"num\">Output tokens</th><th class=\"num\">Compute (s)</th></tr></thead><tbody>"
    );
    for row in rows {
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{:.1}</td></tr>",
            esc(&row.group),
            row.runs,
            row.steps,
            row.input_tokens,
            row.output_tokens,
            row.compute_seconds
        );
    }
    if rows.is_empty() {
        out.push_str("<tr><td colspan=\"6\" class=\"muted\">No runs in this period.</td></tr>");
    }
    out.push_str("</tbody></table></div>");
    out
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
    let per_day = state
        .store
        .usage(&caller.project_id, from_ms, to_ms, UsageGroup::Day)
        .await?;
    let per_model = state
        .store
        .usage(&caller.project_id, from_ms, to_ms, UsageGroup::Model)
        .await?;
    // Every day of the period gets a bar, empty days too, so the axis is time.
    let day_rows: Vec<UsageRow> = (0..days)
        .map(|offset| {
            let day = rollout_domain::time::rfc3339_from_ms(from_ms + offset * DAY_MS)
                .chars()
                .take(10)
                .collect::<String>();
            per_day
                .iter()
                .find(|row| row.group == day)
                .cloned()
                .unwrap_or_else(|| UsageRow::empty(day))
        })
        .collect();
    let choices: String = [7, 30, 90]
        .iter()
        .map(|d| {
            if *d == days {
                format!("<strong>{d} days</strong>")
            } else {
                format!("<a href=\"/usage?days={d}\">{d} days</a>")
            }
        })
        .collect::<Vec<_>>()
        .join(" · ");
    let mut body = format!(
        "<h1>Usage</h1><p class=\"muted\">Last {choices}. Per UTC day; compute is the time from start to end of each run.</p>"
    );
    body.push_str("<div class=\"charts\">");
    body.push_str(&bar_chart("Runs per day", &day_rows, |r| r.runs as f64));
    body.push_str(&bar_chart(
        "Tokens per day (input + output)",
        &day_rows,
        |r| (r.input_tokens + r.output_tokens) as f64,
    ));
    body.push_str("</div><h2>Per model</h2>");
    body.push_str(&table("usage-models", "Model", &per_model));
    body.push_str("<h2>Per day</h2>");
    body.push_str(&table("usage-days", "Day", &per_day));
    Ok(layout("Usage", "/usage", &body))
}
