//! `rollout eval TASKSET.jsonl --model A --model B`: import a taskset, run a job on it, show
//! live progress, then the metrics. Against a server (`--url`, `--key`) or, with none, an
//! in-process store and worker (`--embedded`). And `rollout job show|compare ID`.

use crate::api::Api;
use crate::embedded::Embedded;
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

/// Where the commands send their requests.
#[derive(Debug, Args)]
pub(crate) struct Target {
    /// URL of a running rollout server. Without it the command runs in-process (embedded).
    #[arg(long, env = "ROLLOUT_URL")]
    url: Option<String>,
    /// API key of that server.
    #[arg(long, env = "ROLLOUT_KEY", hide_env_values = true)]
    key: Option<String>,
    /// Run in-process even if a URL is set: a store in --data-dir and a worker.
    #[arg(long)]
    embedded: bool,
    /// Data directory of the embedded store (default: a temp directory, removed at the end).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Log filter of the embedded server (stderr).
    #[arg(long, env = "ROLLOUT_LOG", default_value = "warn")]
    log: String,
}

/// Flags of `rollout eval`.
#[derive(Debug, Args)]
pub(crate) struct EvalArgs {
    /// A JSONL (or JSON array) file of tasks in hud's format.
    file: PathBuf,
    /// A model to evaluate; repeat the flag for several.
    #[arg(long = "model", required = true)]
    models: Vec<String>,
    /// Runs of each task per model.
    #[arg(long, default_value_t = 1)]
    repeats: i64,
    /// Most runs of this job at once.
    #[arg(long, default_value_t = 8)]
    concurrency: i64,
    /// Step budget of each run.
    #[arg(long)]
    max_steps: Option<i64>,
    /// A system prompt for every run (overrides the tasks' own).
    #[arg(long)]
    system_prompt: Option<String>,
    /// Reward at or above which a run counts as a success.
    #[arg(long, default_value_t = 1.0)]
    threshold: f64,
    /// Taskset name (default: the file's stem and a hash of its content).
    #[arg(long)]
    name: Option<String>,
    /// Print the results as JSON on stdout (progress stays on stderr).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    target: Target,
}

/// `rollout job ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum JobCommand {
    /// A job's progress and metrics.
    Show {
        id: String,
        #[arg(long, default_value_t = 1.0)]
        threshold: f64,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: Target,
    },
    /// Two models of a job side by side, paired by task.
    Compare {
        id: String,
        /// First model (default: the job's first of two).
        #[arg(long)]
        a: Option<String>,
        /// Second model (default: the job's second of two).
        #[arg(long)]
        b: Option<String>,
        #[arg(long, default_value_t = 1.0)]
        threshold: f64,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: Target,
    },
}

/// A connection to a server, possibly one started in-process.
struct Session {
    api: Api,
    embedded: Option<Embedded>,
}

impl Session {
    async fn open(target: &Target, concurrency: usize) -> anyhow::Result<Self> {
        match (&target.url, target.embedded) {
            (Some(url), false) => {
                let Some(key) = target.key.as_deref() else {
                    bail!("--key (or ROLLOUT_KEY) is required with --url");
                };
                Ok(Self {
                    api: Api::new(url, key)?,
                    embedded: None,
                })
            }
            _ => {
                let embedded =
                    Embedded::start(target.data_dir.clone(), concurrency, &target.log).await?;
                Ok(Self {
                    api: Api::new(&embedded.url, &embedded.key)?,
                    embedded: Some(embedded),
                })
            }
        }
    }

    async fn close(self) {
        if let Some(embedded) = self.embedded {
            embedded.stop().await;
        }
    }
}

/// Runs `rollout eval`.
pub(crate) async fn run(args: EvalArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let concurrency = usize::try_from(args.concurrency.max(1)).unwrap_or(1);
    let session = Session::open(&args.target, concurrency).await?;
    let result = eval(&session, &args, text).await;
    session.close().await;
    result
}

async fn eval(session: &Session, args: &EvalArgs, text: String) -> anyhow::Result<()> {
    let api = &session.api;
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| default_name(args, &text));
    if api
        .get_optional(&format!("/v1/tasksets/{name}"))
        .await?
        .is_none()
    {
        api.post_text(&format!("/v1/tasksets/{name}/import"), text)
            .await
            .with_context(|| format!("importing {}", args.file.display()))?;
    }
    let mut body = json!({
        "taskset": name,
        "models": args.models,
        "repeats": args.repeats,
        "max_concurrency": args.concurrency,
    });
    if let Some(max_steps) = args.max_steps {
        body["max_steps"] = json!(max_steps);
    }
    if let Some(prompt) = &args.system_prompt {
        body["system_prompt"] = json!(prompt);
    }
    let job = api
        .post("/v1/jobs", &body)
        .await
        .context("starting the job")?;
    let id = job["id"].as_str().unwrap_or_default().to_string();
    note(&format!(
        "job {id}: {} tasks x {} models x {} repeats = {} runs{}",
        job["task_count"],
        args.models.len(),
        args.repeats,
        job["counts"]["total"],
        session
            .embedded
            .as_ref()
            .map(|e| format!(" (embedded, data in {})", e.data_dir.display()))
            .unwrap_or_default()
    ));
    let finished = tokio::select! {
        job = follow(api, &id) => job?,
        _ = tokio::signal::ctrl_c() => {
            note("interrupted: cancelling the job's queued runs");
            api.post(&format!("/v1/jobs/{id}/cancel"), &json!({})).await?
        }
    };
    let _ = finished;
    report(api, &id, args.threshold, args.json, &args.models).await
}

/// The taskset name for a file: its stem and the first 8 hex digits of its SHA-256, so that
/// the same file maps to the same taskset and an edited file to a new one.
fn default_name(args: &EvalArgs, text: &str) -> String {
    let stem = args
        .file
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "tasks".into());
    let stem: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .take(80)
        .collect();
    let hash = Sha256::digest(text.as_bytes());
    let hex: String = hash.iter().take(4).map(|b| format!("{b:02x}")).collect();
    format!("{stem}-{hex}")
}

/// Polls the job until no run is queued or running, showing progress on stderr: bars per
/// model on a terminal, a line per change otherwise.
async fn follow(api: &Api, id: &str) -> anyhow::Result<Value> {
    let terminal = std::io::stderr().is_terminal();
    let multi = MultiProgress::with_draw_target(if terminal {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    });
    let style = ProgressStyle::with_template("{prefix:>24} [{bar:30}] {pos}/{len} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    let mut bars: BTreeMap<String, ProgressBar> = BTreeMap::new();
    let mut last_line = String::new();
    loop {
        let job = api.get(&format!("/v1/jobs/{id}")).await?;
        let mut line = Vec::new();
        for model in job["progress"].as_array().cloned().unwrap_or_default() {
            let name = model["model"].as_str().unwrap_or_default().to_string();
            let total = model["total"].as_u64().unwrap_or(0);
            let finished = model["done"].as_u64().unwrap_or(0)
                + model["failed"].as_u64().unwrap_or(0)
                + model["cancelled"].as_u64().unwrap_or(0);
            let message = format!(
                "mean reward {}, {} failed",
                model["mean_reward"]
                    .as_f64()
                    .map_or("-".into(), |r| format!("{r:.3}")),
                model["failed"]
            );
            let bar = bars.entry(name.clone()).or_insert_with(|| {
                let bar = multi.add(ProgressBar::new(total));
                bar.set_style(style.clone());
                bar.set_prefix(name.clone());
                bar
            });
            bar.set_length(total);
            bar.set_position(finished);
            bar.set_message(message.clone());
            line.push(format!("{name}: {finished}/{total}, {message}"));
        }
        let line = line.join(" | ");
        if !terminal && line != last_line {
            note(&line);
            last_line = line;
        }
        let status = job["status"].as_str().unwrap_or_default();
        if matches!(status, "finished" | "cancelled") {
            for bar in bars.values() {
                bar.finish();
            }
            return Ok(job);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Prints a job's metrics (and a comparison of its first two models): a table, or JSON.
async fn report(
    api: &Api,
    id: &str,
    threshold: f64,
    as_json: bool,
    models: &[String],
) -> anyhow::Result<()> {
    let metrics = api
        .get(&format!("/v1/jobs/{id}/metrics?threshold={threshold}"))
        .await?;
    let comparison = if models.len() >= 2 {
        let path = format!(
            "/v1/jobs/{id}/compare?a={}&b={}&threshold={threshold}",
            encode(&models[0]),
            encode(&models[1])
        );
        Some(api.get(&path).await?)
    } else {
        None
    };
    if as_json {
        let output = json!({
            "job": metrics,
            "comparison": comparison.as_ref().map(|c| c["comparison"].clone()),
        });
        out(&serde_json::to_string_pretty(&output)?);
        return Ok(());
    }
    out(&metrics_table(&metrics));
    if let Some(comparison) = comparison {
        out(&comparison_text(&comparison["comparison"]));
    }
    Ok(())
}

/// Runs `rollout job ...`.
pub(crate) async fn job(command: JobCommand) -> anyhow::Result<()> {
    match command {
        JobCommand::Show {
            id,
            threshold,
            json,
            target,
        } => {
            let session = Session::open(&target, 1).await?;
            let job = session.api.get(&format!("/v1/jobs/{id}")).await;
            let result = match job {
                Ok(job) => {
                    let models: Vec<String> = job["models"]
                        .as_array()
                        .map(|m| {
                            m.iter()
                                .filter_map(|v| v.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default();
                    if !json {
                        out(&format!(
                            "job {id} on taskset {}: {}, {}",
                            job["taskset"], job["status"], job["counts"]
                        ));
                    }
                    report(&session.api, &id, threshold, json, &models).await
                }
                Err(error) => Err(error),
            };
            session.close().await;
            result
        }
        JobCommand::Compare {
            id,
            a,
            b,
            threshold,
            json,
            target,
        } => {
            let session = Session::open(&target, 1).await?;
            let mut path = format!("/v1/jobs/{id}/compare?threshold={threshold}");
            if let Some(a) = &a {
                path.push_str(&format!("&a={}", encode(a)));
            }
            if let Some(b) = &b {
                path.push_str(&format!("&b={}", encode(b)));
            }
            let result = session.api.get(&path).await;
            session.close().await;
            let comparison = result?;
            if json {
                out(&serde_json::to_string_pretty(&comparison)?);
            } else {
                out(&comparison_text(&comparison["comparison"]));
            }
            Ok(())
        }
    }
}

/// The metrics as a table: one row per model.
fn metrics_table(job: &Value) -> String {
    let metrics = &job["metrics"];
    let mut rows = vec![vec![
        "model".to_string(),
        "scored".into(),
        "failed".into(),
        "mean reward".into(),
        "success".into(),
        "pass@1".into(),
        "pass@k".into(),
        "p50 s".into(),
        "p95 s".into(),
        "steps".into(),
        "tokens".into(),
    ]];
    for model in metrics["models"].as_array().cloned().unwrap_or_default() {
        let pass = model["pass_at_k"].as_object().cloned().unwrap_or_default();
        let largest = pass
            .iter()
            .filter_map(|(k, v)| Some((k.parse::<usize>().ok()?, v.as_f64()?)))
            .max_by_key(|(k, _)| *k);
        rows.push(vec![
            model["model"].as_str().unwrap_or_default().to_string(),
            model["scored"].to_string(),
            model["failed"].to_string(),
            match (
                model["mean_reward"].as_f64(),
                model["reward_stderr"].as_f64(),
            ) {
                (Some(mean), Some(se)) => format!("{mean:.3} ± {se:.3}"),
                (Some(mean), None) => format!("{mean:.3}"),
                _ => "-".into(),
            },
            number(&model["success_rate"], 3),
            number(&pass.get("1").cloned().unwrap_or(Value::Null), 3),
            largest.map_or("-".into(), |(k, v)| format!("{v:.3} (k={k})")),
            number(&model["duration_seconds"]["p50"], 2),
            number(&model["duration_seconds"]["p95"], 2),
            number(&model["steps"]["mean"], 1),
            number(&model["tokens"]["mean"], 0),
        ]);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut text = format!(
        "job {} on taskset {}: {} (threshold {})\n",
        job["id"].as_str().unwrap_or_default(),
        job["taskset"].as_str().unwrap_or_default(),
        job["status"].as_str().unwrap_or_default(),
        metrics["threshold"]
    );
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        text.push_str(cells.join("  ").trim_end());
        text.push('\n');
    }
    text
}

fn comparison_text(comparison: &Value) -> String {
    let a = comparison["a"].as_str().unwrap_or_default();
    let b = comparison["b"].as_str().unwrap_or_default();
    match comparison["difference"].as_f64() {
        Some(difference) => format!(
            "{a} - {b}: {difference:+.3}{} over {} paired tasks ({a} {}, {b} {})",
            comparison["difference_stderr"]
                .as_f64()
                .map_or(String::new(), |se| format!(" ± {se:.3}")),
            comparison["paired_tasks"],
            number(&comparison["mean_a"], 3),
            number(&comparison["mean_b"], 3),
        ),
        None => format!("{a} - {b}: no task was scored for both models"),
    }
}

fn number(value: &Value, decimals: usize) -> String {
    value
        .as_f64()
        .map_or("-".into(), |v| format!("{v:.decimals$}"))
}

/// Percent-encodes a model name for a query string.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A line of results on stdout.
fn out(text: &str) {
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "{}", text.trim_end());
    let _ = stdout.flush();
}

/// A progress line on stderr.
fn note(text: &str) {
    let _ = writeln!(std::io::stderr(), "{text}");
}
