//! The run benchmark: N runs of K tool steps each through the HTTP API of a real
//! `rollout serve` process, against the fake model provider and the bundled `my-assistant`
//! environment. Prints runs/s, p50/p99 seconds per run, CPU seconds per step of the
//! server process and its peak RSS.
//!
//! Usage: rollout-bench --rollout PATH [--runs N] [--steps K] [--concurrency C] [--workers W]
//!        [--warm-pool N] [--hud-python PATH] [--otlp-endpoint URL]
//!
//! With `--otlp-endpoint` the server exports every run as OpenTelemetry spans to that OTLP
//! receiver (e.g. a local Phoenix), to compare the server's CPU per run with export on and off.
//!
//! With `--hud-python` (a python with hud-python 0.5.41) the runs use the hud-python fixture
//! environment (`fixtures/hud_env.py`, scenario `sum_numbers`, tool `add`) instead of the
//! bundled Rust one; `--warm-pool N` starts the server with `--warm-pool-size N`.

use anyhow::{Context, bail};
use rollout_testkit::{FakeModelServer, Policy, ServerOptions, TestServer};
use serde_json::{Value, json};
use std::io::Write;
use std::time::{Duration, Instant};

struct Args {
    rollout: String,
    runs: usize,
    steps: usize,
    concurrency: usize,
    workers: usize,
    warm_pool: usize,
    hud_python: Option<String>,
    otlp_endpoint: Option<String>,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        rollout: String::new(),
        runs: 200,
        steps: 5,
        concurrency: 32,
        workers: 16,
        warm_pool: 0,
        hud_python: None,
        otlp_endpoint: None,
    };
    let mut iter = std::env::args().skip(1);
    while let Some(flag) = iter.next() {
        let mut value = || iter.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--rollout" => args.rollout = value()?,
            "--runs" => args.runs = value()?.parse()?,
            "--steps" => args.steps = value()?.parse()?,
            "--concurrency" => args.concurrency = value()?.parse()?,
            "--workers" => args.workers = value()?.parse()?,
            "--warm-pool" => args.warm_pool = value()?.parse()?,
            "--hud-python" => args.hud_python = Some(value()?),
            "--otlp-endpoint" => args.otlp_endpoint = Some(value()?),
            other => bail!("unknown flag {other}; see the file's doc comment"),
        }
    }
    if args.rollout.is_empty() {
        bail!("--rollout PATH (the rollout binary to measure) is required");
    }
    Ok(args)
}

/// User and system CPU seconds of a process, from /proc.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    // After the command name: state is field 0; utime and stime are fields 11 and 12.
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i)?.parse::<f64>().ok())
        .sum();
    ticks / 100.0
}

/// Peak resident set size of a process, in MiB.
fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
        .map(|kib| kib / 1024.0)
        .unwrap_or(0.0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let (tool, arguments) = match args.hud_python {
        Some(_) => ("add", json!({"a": 2, "b": 3})),
        None => ("calculator", json!({"expression": "17 * 23"})),
    };
    let policy = Policy::ToolStepsThenAnswer {
        tool: tool.into(),
        arguments,
        steps: args.steps,
    };
    let fake = FakeModelServer::start_with_policy(policy).await?;
    let mut options = ServerOptions {
        env: vec![
            ("ANTHROPIC_BASE_URL".into(), fake.base_url()),
            ("ANTHROPIC_API_KEY".into(), "sk-bench".into()),
            ("ROLLOUT_LOG".into(), "warn".into()),
        ],
        args: vec![
            "--max-concurrent-runs".into(),
            args.workers.to_string(),
            "--warm-pool-size".into(),
            args.warm_pool.to_string(),
        ],
        ..ServerOptions::default()
    };
    if let Some(endpoint) = &args.otlp_endpoint {
        options
            .env
            .push(("OTEL_EXPORTER_OTLP_ENDPOINT".into(), endpoint.clone()));
    }
    let server = TestServer::start(&args.rollout, options).await?;
    let pid = server.pid().context("server pid")?;
    let (env_name, scenario, scenario_args) = match &args.hud_python {
        Some(python) => {
            let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/hud_env.py");
            let register = json!({"name": "hud-bench", "command": [python, fixture]});
            let (status, env) = server.post("/v1/environments", &register).await;
            if status != 201 {
                bail!("registering the hud environment failed: {env}");
            }
            ("hud-bench", "sum_numbers", json!({"numbers": [2, 3]}))
        }
        None => (
            "my-assistant",
            "answer_question",
            json!({"query": "What is 17 * 23?"}),
        ),
    };
    let body = json!({
        "env_name": env_name,
        "scenario_name": scenario,
        "scenario_args": scenario_args,
        "model": "claude-sonnet-4-5",
        "max_steps": args.steps + 1,
        "sync": true,
        "timeout": 600
    });
    // Warm-up run (not measured).
    let (status, warm) = server.post("/v1/agent/run", &body).await;
    if status != 200 || warm["reward"] != json!(1.0) {
        bail!("warm-up run failed: {warm}\n{}", server.log());
    }

    let cpu_before = cpu_seconds(pid);
    let started = Instant::now();
    let semaphore = std::sync::Arc::new(tokio::sync::Semaphore::new(args.concurrency));
    let server = std::sync::Arc::new(server);
    let mut handles = Vec::with_capacity(args.runs);
    for _ in 0..args.runs {
        let permit = semaphore.clone().acquire_owned().await?;
        let server = server.clone();
        let body = body.clone();
        handles.push(tokio::spawn(async move {
            let begun = Instant::now();
            let (status, summary) = server.post("/v1/agent/run", &body).await;
            drop(permit);
            (status, summary, begun.elapsed())
        }));
    }
    let mut latencies = Vec::with_capacity(args.runs);
    let mut failures = 0;
    for handle in handles {
        let (status, summary, elapsed): (u16, Value, Duration) = handle.await?;
        if status != 200 || summary["status"] != "completed" || summary["reward"] != json!(1.0) {
            failures += 1;
        }
        latencies.push(elapsed.as_secs_f64());
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds(pid) - cpu_before;
    latencies.sort_by(f64::total_cmp);
    let steps_total = (args.runs * (args.steps + 1)) as f64;
    let mut out = std::io::stdout();
    writeln!(
        out,
        "rollout-bench: {} runs x {} tool steps (+1 answer step) on {env_name}, {} clients, {} worker slots, warm pool {}, OTLP export {}",
        args.runs,
        args.steps,
        args.concurrency,
        args.workers,
        args.warm_pool,
        args.otlp_endpoint.as_deref().unwrap_or("off")
    )?;
    writeln!(out, "runs/s              {:.1}", args.runs as f64 / wall)?;
    writeln!(
        out,
        "p50 s/run           {:.3}",
        percentile(&latencies, 50.0)
    )?;
    writeln!(
        out,
        "p99 s/run           {:.3}",
        percentile(&latencies, 99.0)
    )?;
    writeln!(
        out,
        "server CPU s/step   {:.5}  (server process only; {:.2} s over {} steps)",
        cpu / steps_total,
        cpu,
        steps_total
    )?;
    writeln!(out, "server CPU s/run    {:.5}", cpu / args.runs as f64)?;
    writeln!(out, "server peak RSS     {:.1} MiB", peak_rss_mib(pid))?;
    writeln!(out, "failed runs         {failures}")?;
    if failures > 0 {
        bail!("{failures} runs did not complete with reward 1.0");
    }
    Ok(())
}
