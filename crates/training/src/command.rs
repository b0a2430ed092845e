//! The `command` backend: runs a local trainer (a TRL, Unsloth or axolotl script) and reads
//! the checkpoint manifest it writes.
//!
//! Placeholders in the configured arguments: `{dataset}` (chat JSONL), `{trajectories}`
//! (trajectory JSONL), `{params}` (a JSON file of the job's params), `{base_model}`,
//! `{name}`, `{output_dir}` and `{manifest}` (`{output_dir}/checkpoint.json`). The trainer
//! writes the manifest: `{"base_url": "http://host:8000/v1", "model": "my-lora"}` (an
//! OpenAI-compatible server that serves the result, e.g. vLLM with the adapter) and exits 0.
//! Its stdout and stderr are streamed, line by line, to the job's log.

use crate::error::TrainingError;
use rollout_domain::CheckpointTarget;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::mpsc::UnboundedSender;

/// The files and names of one command job.
#[derive(Debug, Clone)]
pub struct CommandJob {
    /// The job's directory; the dataset files are written here.
    pub dir: PathBuf,
    pub base_model: String,
    pub name: String,
    pub params: serde_json::Value,
    /// The dataset in both formats (JSONL text).
    pub chat_jsonl: String,
    pub trajectory_jsonl: String,
}

/// What the trainer writes.
#[derive(Debug, Deserialize)]
struct Manifest {
    base_url: String,
    model: String,
    #[serde(default)]
    key_provider: Option<String>,
}

/// Writes the inputs, runs the trainer under `timeout`, streams its output to `log`, and
/// reads the manifest. Dropping the future kills the trainer.
pub async fn run(
    template: &[String],
    job: &CommandJob,
    timeout: Duration,
    log: UnboundedSender<String>,
) -> Result<CheckpointTarget, TrainingError> {
    let Some((program, args)) = template.split_first() else {
        return Err(TrainingError::Config(
            "the training command is empty".into(),
        ));
    };
    let output_dir = job.dir.join("output");
    tokio::fs::create_dir_all(&output_dir)
        .await
        .map_err(|e| io("creating the job directory", &job.dir, e))?;
    let dataset = job.dir.join("dataset.chat.jsonl");
    let trajectories = job.dir.join("dataset.trajectory.jsonl");
    let params = job.dir.join("params.json");
    let manifest = output_dir.join("checkpoint.json");
    write(&dataset, &job.chat_jsonl).await?;
    write(&trajectories, &job.trajectory_jsonl).await?;
    write(&params, &job.params.to_string()).await?;
    let fill = |arg: &str| {
        arg.replace("{dataset}", &dataset.display().to_string())
            .replace("{trajectories}", &trajectories.display().to_string())
            .replace("{params}", &params.display().to_string())
            .replace("{base_model}", &job.base_model)
            .replace("{name}", &job.name)
            .replace("{output_dir}", &output_dir.display().to_string())
            .replace("{manifest}", &manifest.display().to_string())
    };
    let program = fill(program);
    let args: Vec<String> = args.iter().map(|arg| fill(arg)).collect();
    let _ = log.send(format!("$ {program} {}\n", args.join(" ")));
    let mut child = tokio::process::Command::new(&program)
        .args(&args)
        .current_dir(&job.dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| TrainingError::Failed(format!("could not start '{program}': {e}")))?;
    let stdout = child
        .stdout
        .take()
        .map(|out| tokio::spawn(pump(out, log.clone())));
    let stderr = child
        .stderr
        .take()
        .map(|err| tokio::spawn(pump(err, log.clone())));
    let status = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(status) => {
            status.map_err(|e| TrainingError::Failed(format!("waiting for the trainer: {e}")))?
        }
        Err(_) => {
            let _ = child.kill().await;
            return Err(TrainingError::Failed(format!(
                "the trainer did not finish within {}s",
                timeout.as_secs()
            )));
        }
    };
    for pump in [stdout, stderr].into_iter().flatten() {
        let _ = pump.await;
    }
    if !status.success() {
        return Err(TrainingError::Failed(format!(
            "the trainer exited with {status}; see the log"
        )));
    }
    let text = tokio::fs::read_to_string(&manifest).await.map_err(|e| {
        TrainingError::Failed(format!(
            "the trainer did not write its manifest {}: {e}",
            manifest.display()
        ))
    })?;
    let manifest: Manifest = serde_json::from_str(&text).map_err(|e| {
        TrainingError::Failed(format!(
            "the manifest is not {{\"base_url\", \"model\"}}: {e}"
        ))
    })?;
    if !(manifest.base_url.starts_with("http://") || manifest.base_url.starts_with("https://"))
        || manifest.model.trim().is_empty()
    {
        return Err(TrainingError::Failed(
            "the manifest needs an http(s) base_url and a model".into(),
        ));
    }
    let _ = log.send(format!(
        "manifest: model '{}' at {}\n",
        manifest.model, manifest.base_url
    ));
    Ok(CheckpointTarget::Endpoint {
        base_url: manifest.base_url.trim_end_matches('/').to_string(),
        model: manifest.model,
        key_provider: manifest.key_provider,
    })
}

async fn pump(stream: impl AsyncRead + Unpin, log: UnboundedSender<String>) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if log.send(format!("{line}\n")).is_err() {
            break;
        }
    }
}

async fn write(path: &Path, text: &str) -> Result<(), TrainingError> {
    tokio::fs::write(path, text)
        .await
        .map_err(|e| io("writing", path, e))
}

fn io(what: &str, path: &Path, error: std::io::Error) -> TrainingError {
    TrainingError::Failed(format!("{what} {}: {error}", path.display()))
}
