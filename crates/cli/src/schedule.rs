//! `rollout schedule ...`: manage the schedules of a running server.

use crate::api::Api;
use anyhow::Context;
use clap::{Args, Subcommand};
use rollout_api::schedules::{CreateSchedule, Schedule, ScheduleList, ScheduleRuns};
use serde_json::{Value, json};
use std::io::Write;
use std::path::PathBuf;

/// The server and the API key to use.
#[derive(Debug, Args)]
pub(crate) struct ScheduleTarget {
    /// URL of the rollout server.
    #[arg(long, env = "ROLLOUT_URL", default_value = "http://127.0.0.1:8300")]
    url: String,
    /// An API key of that server.
    #[arg(long, env = "ROLLOUT_KEY", hide_env_values = true)]
    key: String,
}

/// `rollout schedule ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum ScheduleCommand {
    /// Create a schedule: a cron expression, a time zone and a `POST /v1/agent/run` body.
    Create {
        /// 5 fields (minute hour day month weekday) or 6 (seconds first), e.g. "0 9 * * MON-FRI".
        #[arg(long)]
        cron: String,
        /// An IANA time zone, e.g. Europe/Paris.
        #[arg(long, default_value = "UTC")]
        timezone: String,
        #[arg(long)]
        name: Option<String>,
        /// The run body as JSON.
        #[arg(long, conflicts_with = "run_file")]
        run: Option<String>,
        /// A file holding the run body as JSON.
        #[arg(long)]
        run_file: Option<PathBuf>,
        #[command(flatten)]
        target: ScheduleTarget,
    },
    /// List the schedules.
    List {
        #[command(flatten)]
        target: ScheduleTarget,
    },
    /// Show one schedule.
    Get {
        id: String,
        #[command(flatten)]
        target: ScheduleTarget,
    },
    /// Stop firing a schedule.
    Pause {
        id: String,
        #[command(flatten)]
        target: ScheduleTarget,
    },
    /// Fire a paused schedule again, from its next tick.
    Resume {
        id: String,
        #[command(flatten)]
        target: ScheduleTarget,
    },
    /// Delete a schedule (its runs stay).
    Delete {
        id: String,
        #[command(flatten)]
        target: ScheduleTarget,
    },
    /// The runs a schedule started, newest first.
    Runs {
        id: String,
        #[command(flatten)]
        target: ScheduleTarget,
    },
}

/// Runs a `schedule` subcommand.
pub(crate) async fn run(command: ScheduleCommand) -> anyhow::Result<()> {
    match command {
        ScheduleCommand::Create {
            cron,
            timezone,
            name,
            run,
            run_file,
            target,
        } => {
            let text = match (run, run_file) {
                (Some(text), _) => text,
                (None, Some(path)) => std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?,
                (None, None) => {
                    anyhow::bail!("give the run body with --run JSON or --run-file PATH")
                }
            };
            let run: Value =
                serde_json::from_str(&text).context("the run body is not valid JSON")?;
            let body = CreateSchedule {
                name,
                cron,
                timezone: Some(timezone),
                run,
            };
            let api = Api::new(&target.url, &target.key)?;
            print_json(&api.post::<Schedule>("/v1/schedules", &body).await?)
        }
        ScheduleCommand::List { target } => {
            let api = Api::new(&target.url, &target.key)?;
            let list: ScheduleList = api.get("/v1/schedules").await?;
            let mut lines = String::new();
            for schedule in &list.schedules {
                lines.push_str(&format!(
                    "{}  {:<20} {:<16} {}  {}  next {}\n",
                    schedule.id,
                    schedule.cron,
                    schedule.timezone,
                    if schedule.paused { "paused" } else { "active" },
                    schedule.name,
                    schedule.next_run_at.as_deref().unwrap_or("-"),
                ));
            }
            out(&lines)
        }
        ScheduleCommand::Get { id, target } => {
            let api = Api::new(&target.url, &target.key)?;
            print_json(&api.get::<Schedule>(&format!("/v1/schedules/{id}")).await?)
        }
        ScheduleCommand::Pause { id, target } => {
            let api = Api::new(&target.url, &target.key)?;
            print_json(
                &api.post::<Schedule>(&format!("/v1/schedules/{id}/pause"), &json!({}))
                    .await?,
            )
        }
        ScheduleCommand::Resume { id, target } => {
            let api = Api::new(&target.url, &target.key)?;
            print_json(
                &api.post::<Schedule>(&format!("/v1/schedules/{id}/resume"), &json!({}))
                    .await?,
            )
        }
        ScheduleCommand::Delete { id, target } => {
            let api = Api::new(&target.url, &target.key)?;
            let _: Value = api.delete(&format!("/v1/schedules/{id}")).await?;
            out(&format!("Deleted schedule {id}.\n"))
        }
        ScheduleCommand::Runs { id, target } => {
            let api = Api::new(&target.url, &target.key)?;
            print_json(
                &api.get::<ScheduleRuns>(&format!("/v1/schedules/{id}/runs"))
                    .await?,
            )
        }
    }
}

fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value).context("formatting the answer")?;
    out(&format!("{text}\n"))
}

fn out(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout();
    stdout
        .write_all(text.as_bytes())
        .context("writing to stdout")?;
    stdout.flush().context("writing to stdout")
}
