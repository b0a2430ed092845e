//! `rollout dataset export|show`: turn traces into a dataset on a server and download it
//! (JSONL, `chat` or `trajectory`). The dataset's counts, tokens and reward distribution
//! are printed before the records (to stderr when the records go to stdout).

use crate::api::Api;
use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};
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
            let dataset = api.get(&format!("/v1/datasets/{id}")).await?;
            write_out(&mut std::io::stdout(), &summary(&dataset))
        }
        DatasetCommand::Export(args) => export(*args).await,
    }
}

async fn export(args: ExportArgs) -> anyhow::Result<()> {
    let api = Api::new(&args.target.url, &args.target.key)?;
    let dataset = match &args.dataset {
        Some(id) => api.get(&format!("/v1/datasets/{id}")).await?,
        None => {
            let mut body = Map::new();
            let mut put = |key: &str, value: Option<Value>| {
                if let Some(value) = value {
                    body.insert(key.into(), value);
                }
            };
            put("name", args.name.clone().map(Value::from));
            put("job", args.job.clone().map(Value::from));
            put("taskset", args.taskset.clone().map(Value::from));
            put("env", args.env.clone().map(Value::from));
            put("scenario", args.scenario.clone().map(Value::from));
            put("model", args.model.clone().map(Value::from));
            put("from", args.from.clone().map(Value::from));
            put("to", args.to.clone().map(Value::from));
            put("reward_min", args.reward_min.map(|r| json!(r)));
            put(
                "trace_ids",
                (!args.trace_id.is_empty()).then(|| json!(args.trace_id)),
            );
            api.post("/v1/datasets", &Value::Object(body)).await?
        }
    };
    let id = dataset["id"].as_str().unwrap_or_default().to_string();
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
fn summary(dataset: &Value) -> String {
    let stats = &dataset["stats"];
    let reward = &stats["reward"];
    let mut text = format!(
        "dataset {} ({}): {} traces, {} tasks, {} model calls\ntokens: {} input, {} output, {} total\nreward: min {} mean {} max {}\n",
        dataset["id"].as_str().unwrap_or_default(),
        dataset["name"].as_str().unwrap_or_default(),
        stats["count"],
        stats["groups"],
        stats["steps"],
        stats["input_tokens"],
        stats["output_tokens"],
        stats["total_tokens"],
        reward["min"],
        reward["mean"],
        reward["max"],
    );
    for bucket in reward["histogram"].as_array().into_iter().flatten() {
        let count = bucket["count"].as_u64().unwrap_or(0);
        if count > 0 {
            text.push_str(&format!(
                "  [{:.1}, {:.1}{} {count}\n",
                bucket["from"].as_f64().unwrap_or(0.0),
                bucket["to"].as_f64().unwrap_or(0.0),
                if bucket["to"].as_f64() == Some(1.0) {
                    "]"
                } else {
                    ")"
                },
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
