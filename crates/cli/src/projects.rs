//! `rollout projects show|set`: a project's defaults, limits and quotas on a running server
//! (admin key; changing them needs an admin key of the `default` project).

use crate::api::Api;
use anyhow::Context;
use clap::{Args, Subcommand};
use rollout_api::projects::Project;
use serde_json::{Map, Value};
use std::io::Write;

/// The server and the admin key to use.
#[derive(Debug, Args)]
pub(crate) struct ProjectsTarget {
    /// URL of the rollout server.
    #[arg(long, env = "ROLLOUT_URL", default_value = "http://127.0.0.1:8300")]
    url: String,
    /// An admin API key of that server.
    #[arg(long, env = "ROLLOUT_KEY", hide_env_values = true)]
    key: String,
}

/// A setting's new value: a number, or `none` to unset it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Setting(Option<i64>);

fn parse_setting(text: &str) -> Result<Setting, String> {
    match text {
        "none" | "unset" => Ok(Setting(None)),
        number => number
            .parse()
            .map(|value| Setting(Some(value)))
            .map_err(|_| format!("expected an integer or 'none', got '{number}'")),
    }
}

/// The settings `set` changes; the ones not given stay as they are.
#[derive(Debug, Args)]
pub(crate) struct SettingsArgs {
    /// Most runs queued or running at once (a number, or `none`).
    #[arg(long, value_parser = parse_setting)]
    max_runs_in_flight: Option<Setting>,
    /// `timeout_seconds` of runs that do not give one.
    #[arg(long, value_parser = parse_setting)]
    default_timeout_seconds: Option<Setting>,
    /// The largest `timeout_seconds` a run may ask for.
    #[arg(long, value_parser = parse_setting)]
    max_timeout_seconds: Option<Setting>,
    /// `max_steps` of runs that do not give one.
    #[arg(long, value_parser = parse_setting)]
    default_max_steps: Option<Setting>,
    /// Most runs created in any 24 hours.
    #[arg(long, value_parser = parse_setting)]
    max_runs_per_day: Option<Setting>,
    /// Most tokens used by the runs created in any 24 hours.
    #[arg(long, value_parser = parse_setting)]
    max_tokens_per_day: Option<Setting>,
}

impl SettingsArgs {
    fn body(&self) -> Map<String, Value> {
        let fields = [
            ("max_runs_in_flight", self.max_runs_in_flight),
            ("default_timeout_seconds", self.default_timeout_seconds),
            ("max_timeout_seconds", self.max_timeout_seconds),
            ("default_max_steps", self.default_max_steps),
            ("max_runs_per_day", self.max_runs_per_day),
            ("max_tokens_per_day", self.max_tokens_per_day),
        ];
        fields
            .into_iter()
            .filter_map(|(name, setting)| {
                setting.map(|Setting(value)| {
                    (name.to_string(), value.map_or(Value::Null, Value::from))
                })
            })
            .collect()
    }
}

/// `rollout projects ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum ProjectsCommand {
    /// Show a project's settings and its usage (runs in flight, runs and tokens in 24 h).
    Show {
        /// The project's id, e.g. default or team-a.
        id: String,
        /// Print the JSON answer.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: ProjectsTarget,
    },
    /// Change a project's settings (`none` unsets one).
    Set {
        /// The project's id.
        id: String,
        #[command(flatten)]
        settings: SettingsArgs,
        #[command(flatten)]
        target: ProjectsTarget,
    },
}

/// Runs a `projects` subcommand.
pub(crate) async fn run(command: ProjectsCommand) -> anyhow::Result<()> {
    match command {
        ProjectsCommand::Show { id, json, target } => {
            let api = Api::new(&target.url, &target.key)?;
            let project: Project = api.get(&format!("/v1/projects/{id}")).await?;
            if json {
                let text =
                    serde_json::to_string_pretty(&project).context("formatting the answer")?;
                return out(&format!("{text}\n"));
            }
            out(&describe(&project))
        }
        ProjectsCommand::Set {
            id,
            settings,
            target,
        } => {
            let body = settings.body();
            if body.is_empty() {
                anyhow::bail!("give at least one setting to change, e.g. --max-runs-in-flight 10");
            }
            let api = Api::new(&target.url, &target.key)?;
            let project: Project = api
                .patch(&format!("/v1/projects/{id}"), &Value::Object(body))
                .await?;
            out(&describe(&project))
        }
    }
}

fn describe(project: &Project) -> String {
    let mut lines = format!("project '{}'\n", project.id);
    let s = &project.settings;
    for (name, value) in [
        ("default_max_steps", s.default_max_steps),
        ("default_timeout_seconds", s.default_timeout_seconds),
        ("max_runs_in_flight", s.max_runs_in_flight),
        ("max_runs_per_day", s.max_runs_per_day),
        ("max_timeout_seconds", s.max_timeout_seconds),
        ("max_tokens_per_day", s.max_tokens_per_day),
    ] {
        let value = value.map_or_else(|| "-".to_string(), |v| v.to_string());
        lines.push_str(&format!("  {name:<24} {value}\n"));
    }
    let usage = &project.usage;
    lines.push_str(&format!(
        "usage: {} run(s) in flight, {} run(s) and {} token(s) in the last 24 hours\n",
        usage.runs_in_flight, usage.runs_last_24h, usage.tokens_last_24h,
    ));
    lines
}

fn out(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout();
    stdout
        .write_all(text.as_bytes())
        .context("writing to stdout")?;
    stdout.flush().context("writing to stdout")
}
