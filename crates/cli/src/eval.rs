//! `rollout eval TASKSET.jsonl --model A --model B`: import a taskset, run a job on it, show
//! live progress, then the metrics. Against a server (`--url`, `--key`) or, with none, an
//! in-process store and worker (`--embedded`). And `rollout job show|compare ID`.

use crate::api::Api;
use crate::embedded::Embedded;
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use rollout_api::jobs::{CreateJob, Job, JobComparison, JobWithMetrics};
use rollout_api::tasksets::{Imported, Taskset};
use rollout_domain::metrics::Comparison;
use serde_json::json;
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
        .get_optional::<Taskset>(&format!("/v1/tasksets/{name}"))
        .await?
        .is_none()
    {
        api.post_text::<Imported>(&format!("/v1/tasksets/{name}/import"), text)
            .await
            .with_context(|| format!("importing {}", args.file.display()))?;
    }
    let body = CreateJob {
        taskset: name,
        models: args.models.clone(),
        repeats: args.repeats,
        max_concurrency: Some(args.concurrency),
        max_steps: args.max_steps,
        system_prompt: args.system_prompt.clone(),
        ..CreateJob::default()
    };
    let job: Job = api
        .post("/v1/jobs", &body)
        .await
        .context("starting the job")?;
    let id = job.line.header.id.clone();
    note(&format!(
        "job {id}: {} tasks x {} models x {} repeats = {} runs{}",
        job.line.header.task_count,
        args.models.len(),
        args.repeats,
        job.line.counts.total,
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
            api.post::<Job>(&format!("/v1/jobs/{id}/cancel"), &json!({})).await?
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
async fn follow(api: &Api, id: &str) -> anyhow::Result<Job> {
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
        let job: Job = api.get(&format!("/v1/jobs/{id}")).await?;
        let mut line = Vec::new();
        for model in &job.progress {
            let name = model.model.clone();
            let counts = &model.counts;
            let total = u64::try_from(counts.total).unwrap_or(0);
            let finished =
                u64::try_from(counts.done + counts.failed + counts.cancelled).unwrap_or(0);
            let message = format!(
                "mean reward {}, {} failed",
                model.mean_reward.map_or("-".into(), |r| format!("{r:.3}")),
                counts.failed
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
        if matches!(job.line.status.as_str(), "finished" | "cancelled") {
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
    let metrics: JobWithMetrics = api
        .get(&format!("/v1/jobs/{id}/metrics?threshold={threshold}"))
        .await?;
    let comparison = if models.len() >= 2 {
        let path = format!(
            "/v1/jobs/{id}/compare?a={}&b={}&threshold={threshold}",
            encode(&models[0]),
            encode(&models[1])
        );
        Some(api.get::<JobComparison>(&path).await?)
    } else {
        None
    };
    if as_json {
        let output = json!({
            "job": metrics,
            "comparison": comparison.as_ref().map(|c| &c.comparison),
        });
        out(&serde_json::to_string_pretty(&output)?);
        return Ok(());
    }
    out(&metrics_table(&metrics));
    if let Some(comparison) = comparison {
        out(&comparison_text(&comparison.comparison));
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
            let job = session.api.get::<Job>(&format!("/v1/jobs/{id}")).await;
            let result = match job {
                Ok(job) => {
                    let models = job.line.header.models.clone();
                    if !json {
                        let c = &job.line.counts;
                        out(&format!(
                            "job {id} on taskset {}: {}, {} runs ({} queued, {} running, {} done, {} failed, {} cancelled)",
                            job.line.header.taskset,
                            job.line.status,
                            c.total,
                            c.queued,
                            c.running,
                            c.done,
                            c.failed,
                            c.cancelled
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
            let result = session.api.get::<JobComparison>(&path).await;
            session.close().await;
            let comparison = result?;
            if json {
                out(&serde_json::to_string_pretty(&comparison)?);
            } else {
                out(&comparison_text(&comparison.comparison));
            }
            Ok(())
        }
    }
}

/// The metrics as a table: one row per model.
fn metrics_table(job: &JobWithMetrics) -> String {
    let metrics = &job.metrics;
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
    for model in &metrics.models {
        let summary = &model.summary;
        let largest = summary.pass_at_k.iter().next_back();
        rows.push(vec![
            model.model.clone(),
            summary.scored.to_string(),
            summary.failed.to_string(),
            match (summary.mean_reward, summary.reward_stderr) {
                (Some(mean), Some(se)) => format!("{mean:.3} ± {se:.3}"),
                (Some(mean), None) => format!("{mean:.3}"),
                _ => "-".into(),
            },
            number(summary.success_rate, 3),
            number(summary.pass_at_k.get(&1).copied(), 3),
            largest.map_or("-".into(), |(k, v)| format!("{v:.3} (k={k})")),
            number(summary.duration_seconds.p50, 2),
            number(summary.duration_seconds.p95, 2),
            number(summary.steps.mean, 1),
            number(summary.tokens.mean, 0),
        ]);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut text = format!(
        "job {} on taskset {}: {} (threshold {})\n",
        job.job.line.header.id,
        job.job.line.header.taskset,
        job.job.line.status,
        serde_json::to_string(&metrics.threshold).unwrap_or_default()
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

fn comparison_text(comparison: &Comparison) -> String {
    let (a, b) = (&comparison.a, &comparison.b);
    match comparison.difference {
        Some(difference) => format!(
            "{a} - {b}: {difference:+.3}{} over {} paired tasks ({a} {}, {b} {})",
            comparison
                .difference_stderr
                .map_or(String::new(), |se| format!(" ± {se:.3}")),
            comparison.paired_tasks,
            number(comparison.mean_a, 3),
            number(comparison.mean_b, 3),
        ),
        None => format!("{a} - {b}: no task was scored for both models"),
    }
}

fn number(value: Option<f64>, decimals: usize) -> String {
    value.map_or("-".into(), |v| format!("{v:.decimals$}"))
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
