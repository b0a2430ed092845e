//! The run benchmark: N runs of K tool steps each through the HTTP API of a real
//! `rollout serve` process, against the fake model provider and the bundled `my-assistant`
//! environment. Prints runs/s, p50/p99 seconds per run, CPU seconds per step of the
//! server process and its peak RSS.
//!
//! Usage: `rollout-bench --help` (the flags are in [`USAGE`]).
//!
//! With `--env-http` the environment is one process serving streamable HTTP (the bundled one
//! by `rollout example-env my-assistant --http`, the hud-python one by `hud_env.py --http`),
//! registered by URL, instead of a fresh process per run; its CPU is reported too.
//!
//! With `--database-url` the server keeps its store there (PostgreSQL) instead of SQLite.
//!
//! `--show-trace` prints the last run's events with their times; `--server-log FILTER`
//! (e.g. `sqlx::query=debug`) keeps the server's log at that filter in the temp directory.
//!
//! With `--queue-depth N` the benchmark measures memory, not speed: the model answers after
//! `--model-delay-ms` (default 60000), N runs are submitted without `sync`, and once
//! `--workers` of them are in flight and the rest queued it prints the server's RSS.
//!
//! With `--backlog N` the benchmark measures a queue being worked off: N runs are submitted
//! without `sync` by `--concurrency` clients (faster than the workers take them, so most
//! wait in the queue), and it prints how long until the last one was answered, the runs/s,
//! the server's CPU per run (its submission included) and the most runs the queue held: a
//! claim that grew with the queue would show here.
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

/// What `--help` prints.
const USAGE: &str = "\
rollout-bench: runs through the HTTP API of a real `rollout serve`, against a fake model.

Usage: rollout-bench --rollout PATH [options]   (or scripts/bench [options])

  --rollout PATH         the rollout binary to measure (required)
  --runs N               runs to make (default 200)
  --steps K              tool steps per run, then an answer (default 5)
  --concurrency C        runs in flight at once, each a `sync` request (default 32)
  --workers W            the server's worker slots (default 16)
  --warm-pool N          the server's --warm-pool-size (default 0)
  --env-http             the environment is one process serving streamable HTTP,
                         registered by URL; its CPU per run is reported too
  --hud-python PATH      a python with hud-python 0.5.41: use its fixture environment
  --database-url URL     keep the store in PostgreSQL instead of SQLite
  --otlp-endpoint URL    export every run as OpenTelemetry spans to this receiver
  --queue-depth N        measure memory: N runs submitted, --workers in flight at once
  --model-delay-ms MS    the model's delay in --queue-depth mode (default 60000)
  --backlog N            measure a backlog: N runs submitted by --concurrency clients,
                         timed until the last one is answered (runs/s, CPU per run,
                         the queue's peak)
  --show-trace           print the last run's events with their times
  --server-log FILTER    keep the server's log at this filter (e.g. sqlx::query=debug)
  -h, --help             this text

Prints runs/s, p50/p99 seconds per run, the server's CPU seconds per step and per run,
and its peak RSS.
";

struct Args {
    rollout: String,
    runs: usize,
    steps: usize,
    concurrency: usize,
    workers: usize,
    warm_pool: usize,
    hud_python: Option<String>,
    otlp_endpoint: Option<String>,
    env_http: bool,
    database_url: Option<String>,
    queue_depth: Option<usize>,
    model_delay_ms: u64,
    backlog: Option<usize>,
    show_trace: bool,
    server_log: Option<String>,
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
        env_http: false,
        database_url: None,
        queue_depth: None,
        model_delay_ms: 60_000,
        backlog: None,
        show_trace: false,
        server_log: None,
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
            "--env-http" => args.env_http = true,
            "--database-url" => args.database_url = Some(value()?),
            "--queue-depth" => args.queue_depth = Some(value()?.parse()?),
            "--model-delay-ms" => args.model_delay_ms = value()?.parse()?,
            "--backlog" => args.backlog = Some(value()?.parse()?),
            "--show-trace" => args.show_trace = true,
            "--server-log" => args.server_log = Some(value()?),
            "-h" | "--help" => {
                std::io::stdout().write_all(USAGE.as_bytes())?;
                std::process::exit(0);
            }
            other => bail!("unknown flag {other}; rollout-bench --help lists them"),
        }
    }
    if args.rollout.is_empty() {
        bail!("--rollout PATH (the rollout binary to measure) is required");
    }
    // The server starts in its data directory: a relative path would not resolve there.
    args.rollout = std::fs::canonicalize(&args.rollout)
        .with_context(|| format!("no rollout binary at {}", args.rollout))?
        .display()
        .to_string();
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
    rss_mib(pid, "VmHWM:")
}

/// A memory line of `/proc/PID/status` (`VmRSS:`, `VmHWM:`), in MiB.
fn rss_mib(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
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
            (
                "ROLLOUT_LOG".into(),
                args.server_log.clone().unwrap_or_else(|| "warn".into()),
            ),
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
    if let Some(url) = &args.database_url {
        options.args.extend(["--database-url".into(), url.clone()]);
    }
    let server = TestServer::start(&args.rollout, options).await?;
    let pid = server.pid().context("server pid")?;
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/hud_env.py");
    // With --env-http: one environment process serving HTTP, kept until the end.
    let mut env_process = None;
    let register = match (&args.hud_python, args.env_http) {
        (Some(python), false) => Some(json!({"name": "hud-bench", "command": [python, fixture]})),
        (hud_python, true) => {
            let port = free_port()?;
            let mut command = match hud_python {
                Some(python) => {
                    let mut command = tokio::process::Command::new(python);
                    command.arg(fixture).arg("--http").arg(port.to_string());
                    command
                }
                None => {
                    let mut command = tokio::process::Command::new(&args.rollout);
                    command
                        .args(["example-env", "my-assistant", "--http"])
                        .arg(format!("127.0.0.1:{port}"));
                    command
                }
            };
            let child = command
                .kill_on_drop(true)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .context("starting the environment over HTTP")?;
            wait_for_port(port).await?;
            env_process = Some(child);
            let name = if hud_python.is_some() {
                "hud-bench"
            } else {
                "assistant-http"
            };
            Some(json!({"name": name, "url": format!("http://127.0.0.1:{port}/mcp")}))
        }
        (None, false) => None,
    };
    let env_pid = env_process.as_ref().and_then(tokio::process::Child::id);
    let env_name = match &register {
        Some(register) => {
            let (status, env) = server.post("/v1/environments", register).await;
            if status != 201 {
                bail!("registering the environment failed: {env}");
            }
            register["name"].as_str().unwrap_or_default().to_string()
        }
        None => "my-assistant".to_string(),
    };
    let env_name = env_name.as_str();
    let (scenario, scenario_args) = match &args.hud_python {
        Some(_) => ("sum_numbers", json!({"numbers": [2, 3]})),
        None => ("answer_question", json!({"query": "What is 17 * 23?"})),
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

    if let Some(depth) = args.queue_depth {
        return queue_depth(&server, &fake, &body, depth, &args, pid).await;
    }
    if let Some(runs) = args.backlog {
        return backlog(&server, &fake, &body, runs, &args, pid).await;
    }

    let env_cpu_before = env_pid.map(cpu_seconds);
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
    let mut last = Value::Null;
    for handle in handles {
        let (status, summary, elapsed): (u16, Value, Duration) = handle.await?;
        last = summary.clone();
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
        "rollout-bench: {} runs x {} tool steps (+1 answer step) on {env_name} ({}), {} clients, {} worker slots, warm pool {}, store {}, OTLP export {}",
        args.runs,
        args.steps,
        if args.env_http {
            "one process over HTTP"
        } else {
            "a process per run"
        },
        args.concurrency,
        args.workers,
        args.warm_pool,
        store_name(&args),
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
    if let (Some(env_pid), Some(before)) = (env_pid, env_cpu_before) {
        let env_cpu = cpu_seconds(env_pid) - before;
        writeln!(
            out,
            "env CPU s/run       {:.5}  (the environment process serving HTTP)",
            env_cpu / args.runs as f64
        )?;
    }
    writeln!(out, "server peak RSS     {:.1} MiB", peak_rss_mib(pid))?;
    writeln!(out, "failed runs         {failures}")?;
    if args.show_trace {
        show_trace(&server, &last).await?;
    }
    if args.server_log.is_some() {
        let path = std::env::temp_dir().join("rollout-bench-server.log");
        std::fs::write(&path, server.log())?;
        writeln!(out, "server log          {}", path.display())?;
    }
    if failures > 0 {
        bail!("{failures} runs did not complete with reward 1.0");
    }
    Ok(())
}

/// Memory with a deep queue: `depth` runs submitted against a model that answers only after
/// `--model-delay-ms`, measured once `--workers` of them are in flight.
async fn queue_depth(
    server: &TestServer,
    fake: &FakeModelServer,
    body: &Value,
    depth: usize,
    args: &Args,
    pid: u32,
) -> anyhow::Result<()> {
    fake.set_delay(Duration::from_millis(args.model_delay_ms));
    let mut body = body.clone();
    body["sync"] = json!(false);
    let rss_before = rss_mib(pid, "VmRSS:");
    let submitted = Instant::now();
    for index in 0..depth {
        let (status, answer) = server.post("/v1/agent/run", &body).await;
        if status != 202 {
            bail!("run {index} was refused ({status}): {answer}");
        }
    }
    let submit_seconds = submitted.elapsed().as_secs_f64();
    let in_flight = args.workers.min(depth);
    let deadline = Instant::now() + Duration::from_secs(300);
    let received = || fake.requests().len().saturating_sub(1);
    while received() < in_flight {
        if Instant::now() > deadline {
            bail!("only {} of {in_flight} runs reached the model", received());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let queued = queued_runs(server).await?;
    let mut out = std::io::stdout();
    writeln!(
        out,
        "rollout-bench: queue depth {depth} ({in_flight} in flight at the model, the rest queued), store {}",
        store_name(args)
    )?;
    writeln!(
        out,
        "submit runs/s       {:.1}",
        depth as f64 / submit_seconds
    )?;
    writeln!(out, "server RSS before   {rss_before:.1} MiB")?;
    writeln!(out, "server RSS now      {:.1} MiB", rss_mib(pid, "VmRSS:"))?;
    writeln!(out, "server peak RSS     {:.1} MiB", peak_rss_mib(pid))?;
    writeln!(out, "runs queued         {queued}")?;
    Ok(())
}

/// `runs` runs submitted at once, timed until the model has answered the last one's last
/// step (its end follows within a millisecond; the model's requests are counted, so no
/// polling of the server's own figures stands between).
async fn backlog(
    server: &TestServer,
    fake: &FakeModelServer,
    body: &Value,
    runs: usize,
    args: &Args,
    pid: u32,
) -> anyhow::Result<()> {
    let mut body = body.clone();
    body["sync"] = json!(false);
    // The warm-up run's requests are already there.
    let expected = fake.requests().len() + runs * (args.steps + 1);
    let cpu_before = cpu_seconds(pid);
    let started = Instant::now();
    // `--concurrency` submitters, so that the runs arrive faster than they are worked off.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let submitter = || async {
        while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < runs {
            let (status, answer) = server.post("/v1/agent/run", &body).await;
            if status != 202 {
                bail!("a run was refused ({status}): {answer}");
            }
        }
        anyhow::Ok(())
    };
    futures::future::try_join_all((0..args.concurrency.max(1)).map(|_| submitter())).await?;
    let submit_seconds = started.elapsed().as_secs_f64();
    let deadline = Instant::now() + Duration::from_secs(1800);
    let mut peak_queued = 0u64;
    while fake.requests().len() < expected {
        if Instant::now() > deadline {
            bail!(
                "{} of {expected} model requests after 30 minutes",
                fake.requests().len()
            );
        }
        if let Ok(queued) = queued_runs(server).await?.parse::<u64>() {
            peak_queued = peak_queued.max(queued);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds(pid) - cpu_before;
    let mut out = std::io::stdout();
    writeln!(
        out,
        "rollout-bench: backlog of {runs} runs, {} worker slots, store {}",
        args.workers,
        store_name(args)
    )?;
    writeln!(
        out,
        "submit runs/s       {:.1}",
        runs as f64 / submit_seconds
    )?;
    writeln!(
        out,
        "queued at most      {peak_queued}  (sampled every 0.5 s)"
    )?;
    writeln!(out, "drained in s        {seconds:.2}")?;
    writeln!(out, "runs/s              {:.1}", runs as f64 / seconds)?;
    writeln!(out, "server CPU s/run    {:.5}", cpu / runs as f64)?;
    writeln!(out, "server peak RSS     {:.1} MiB", peak_rss_mib(pid))?;
    Ok(())
}

/// The store the server keeps its data in.
fn store_name(args: &Args) -> &'static str {
    if args.database_url.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    }
}

/// The queue's length as the server reports it (`rollout_runs_queued` of `GET /metrics`).
async fn queued_runs(server: &TestServer) -> anyhow::Result<String> {
    let metrics = server
        .client()
        .get(format!("{}/metrics", server.base_url))
        .bearer_auth(&server.admin_key)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("rollout_runs_queued "))
        .map(str::to_string)
        .context("no rollout_runs_queued in /metrics")
}

/// A port free at the time of asking, for a child process to listen on.
fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Waits until something listens on the loopback port.
async fn wait_for_port(port: u16) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        if Instant::now() > deadline {
            bail!("nothing listens on port {port} after 60 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Prints the events of a run with their times, to see where a run's latency goes.
async fn show_trace(server: &TestServer, summary: &Value) -> anyhow::Result<()> {
    let id = summary["trace_id"]
        .as_str()
        .context("no trace_id in the last answer")?;
    let (_, trace) = server.get(&format!("/v1/traces/{id}")).await;
    let mut out = std::io::stdout();
    writeln!(
        out,
        "trace {id}: created {} started {} finished {}",
        trace["created_at"], trace["started_at"], trace["finished_at"]
    )?;
    for event in trace["events"].as_array().into_iter().flatten() {
        writeln!(out, "  {} {} {}", event["seq"], event["at"], event["type"])?;
    }
    Ok(())
}
