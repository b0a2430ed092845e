//! `rollout dataset export|show`: turn traces into a dataset on a server and download it
//! (JSONL, `chat` or `trajectory`). The dataset's counts, tokens and reward distribution
//! are printed before the records (to stderr when the records go to stdout).

use crate::api::Api;
use anyhow::Context;
use clap::{Args, Subcommand};
use rollout_api::datasets::{CreateDataset, Dataset};
use rollout_training::dataset::DatasetStats;
use serde_json::Value;
use std::io::Write;
use std::path::PathBuf;

/// The server and key.
#[derive(Debug, Args)]
pub(crate) struct DatasetTarget {
    /// URL of the rollout server.
    #[arg(long, env = "ROLLOUT_URL", default_value = "http://127.0.0.1:8300")]
    url: String,
    /// An API key of that server.
    #[arg(long, env = "ROLLOUT_KEY", hide_env_values = true)]
    key: String,
}

/// `rollout dataset ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum DatasetCommand {
    /// Select traces into a new dataset (or take `--dataset`), then write its records.
    Export(Box<ExportArgs>),
    /// A dataset's lineage and statistics.
    Show {
        id: String,
        #[command(flatten)]
        target: DatasetTarget,
    },
}

/// The selection and where the records go.
#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// Export this existing dataset instead of creating one.
    #[arg(long, conflicts_with_all = ["job", "taskset", "env", "scenario", "model", "from", "to", "trace_id", "reward_min"])]
    dataset: Option<String>,
    /// A name for the new dataset.
    #[arg(long)]
    name: Option<String>,
    /// Runs of this job.
    #[arg(long)]
    job: Option<String>,
    /// Runs of every job over this taskset.
    #[arg(long)]
    taskset: Option<String>,
    #[arg(long)]
    env: Option<String>,
    #[arg(long)]
    scenario: Option<String>,
    #[arg(long)]
    model: Option<String>,
    /// Runs created at or after (RFC 3339, date, or unix ms).
    #[arg(long)]
    from: Option<String>,
    /// Runs created before (RFC 3339, date, or unix ms).
    #[arg(long)]
    to: Option<String>,
    /// Explicit traces (repeatable).
    #[arg(long = "trace-id")]
    trace_id: Vec<String>,
    /// Only runs with at least this reward.
    #[arg(long)]
    reward_min: Option<f64>,
    /// chat (fine-tuning with tools) or trajectory (RL).
    #[arg(long, default_value = "chat")]
    format: String,
    /// Write the records here instead of stdout.
    #[arg(long, short)]
    output: Option<PathBuf>,
    #[command(flatten)]
    target: DatasetTarget,
}

/// Runs a `dataset` subcommand.
pub(crate) async fn run(command: DatasetCommand) -> anyhow::Result<()> {
    match command {
        DatasetCommand::Show { id, target } => {
            let api = Api::new(&target.url, &target.key)?;
            let dataset: Dataset = api.get(&format!("/v1/datasets/{id}")).await?;
            write_out(&mut std::io::stdout(), &summary(&dataset))
        }
        DatasetCommand::Export(args) => export(*args).await,
    }
}

async fn export(args: ExportArgs) -> anyhow::Result<()> {
    let api = Api::new(&args.target.url, &args.target.key)?;
    let dataset: Dataset = match &args.dataset {
        Some(id) => api.get(&format!("/v1/datasets/{id}")).await?,
        None => {
            let body = CreateDataset {
                name: args.name.clone(),
                job: args.job.clone(),
                taskset: args.taskset.clone(),
                env: args.env.clone(),
                scenario: args.scenario.clone(),
                model: args.model.clone(),
                from: args.from.clone().map(Value::from),
                to: args.to.clone().map(Value::from),
                reward_min: args.reward_min,
                trace_ids: (!args.trace_id.is_empty()).then(|| args.trace_id.clone()),
                ..CreateDataset::default()
            };
            api.post("/v1/datasets", &body).await?
        }
    };
    let id = dataset.id.clone();
    let records = api
        .get_text(&format!(
            "/v1/datasets/{id}/download?format={}",
            args.format
        ))
        .await?;
    match &args.output {
        Some(path) => {
            std::fs::write(path, &records)
                .with_context(|| format!("writing {}", path.display()))?;
            write_out(&mut std::io::stdout(), &summary(&dataset))?;
            write_out(
                &mut std::io::stdout(),
                &format!("wrote {} ({} format)\n", path.display(), args.format),
            )
        }
        None => {
            write_out(&mut std::io::stderr(), &summary(&dataset))?;
            write_out(&mut std::io::stdout(), &records)
        }
    }
}

/// Counts, tokens and the reward distribution, for people.
fn summary(dataset: &Dataset) -> String {
    // The statistics are the training crate's own type, stored with the dataset.
    let Ok(stats) = serde_json::from_value::<DatasetStats>(dataset.stats.clone()) else {
        return format!("dataset {} ({})\n", dataset.id, dataset.name);
    };
    let reward = &stats.reward;
    // As JSON shows them: `null` when there is no reward.
    let number = |value: Option<f64>| serde_json::to_string(&value).unwrap_or_default();
    let mut text = format!(
        "dataset {} ({}): {} traces, {} tasks, {} model calls\ntokens: {} input, {} output, {} total\nreward: min {} mean {} max {}\n",
        dataset.id,
        dataset.name,
        stats.count,
        stats.groups,
        stats.steps,
        stats.input_tokens,
        stats.output_tokens,
        stats.total_tokens,
        number(reward.min),
        number(reward.mean),
        number(reward.max),
    );
    for bucket in &reward.histogram {
        if bucket.count > 0 {
            text.push_str(&format!(
                "  [{:.1}, {:.1}{} {}\n",
                bucket.from,
                bucket.to,
                if bucket.to == 1.0 { "]" } else { ")" },
                bucket.count,
            ));
        }
    }
    text
}

fn write_out(stream: &mut dyn Write, text: &str) -> anyhow::Result<()> {
    stream
        .write_all(text.as_bytes())
        .context("writing output")?;
    stream.flush().context("writing output")
}
