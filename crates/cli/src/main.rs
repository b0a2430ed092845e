//! `rollout`: turn any agent scenario into a callable API endpoint.

mod api;
mod config;
mod dataset;
mod embedded;
mod env_guard;
mod environments;
mod eval;
mod example_env;
mod keys;
mod logging;
mod projects;
mod sandbox_config;
mod schedule;
mod serve;
mod telemetry_config;
mod training;
mod worker;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// jemalloc keeps freed memory in per-thread caches: a run allocates and frees many small
/// values across the runtime's threads, where glibc malloc was the largest item of the
/// server's profile (bench/RESULTS.md item 7: about 10 % less server CPU per run at C=64,
/// +16 MiB RSS at a queue of 11,000).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// rollout runs LLM agents on scenarios of MCP environments behind one HTTP call
/// (`POST /v1/agent/run`) and records a full trace of every run.
#[derive(Debug, Parser)]
#[command(
    name = "rollout",
    version,
    about = "Turn any agent scenario into a callable API endpoint: run LLM agents on MCP environments (hud 0.5 scenario protocol) and record every trace.",
    after_help = "Start with `rollout serve` (SQLite in ./data, 127.0.0.1:8300); it prints an admin API key on first start. Then POST /v1/agent/run; see README.md."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the API server and a worker (SQLite in --data-dir unless --database-url is set).
    Serve(Box<config::ServeArgs>),
    /// Claim and execute runs, with no HTTP API: scale execution apart from the API
    /// servers (on PostgreSQL, any number of machines).
    Worker(Box<config::WorkerArgs>),
    /// Evaluate models on a taskset file (JSONL, hud task format): against a server with
    /// --url, or in-process without one.
    Eval(Box<eval::EvalArgs>),
    /// Create, list or revoke API keys of a running server (needs an admin key).
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Show or change a project's defaults, limits and quotas (needs an admin key).
    #[command(subcommand)]
    Projects(projects::ProjectsCommand),
    /// Create, list, pause, resume or delete schedules of a running server.
    #[command(subcommand)]
    Schedule(schedule::ScheduleCommand),
    /// Show or compare the results of an evaluation job.
    #[command(subcommand)]
    Job(eval::JobCommand),
    /// Deploy, list or delete environments of a running server.
    #[command(subcommand)]
    Env(environments::EnvCommand),
    /// Turn traces into a dataset and export it (JSONL: chat fine-tuning or trajectories).
    #[command(subcommand)]
    Dataset(dataset::DatasetCommand),
    /// Run an environment command under resource limits, killing it when the server dies
    /// (used by the server itself for every environment process).
    #[command(hide = true)]
    EnvGuard(env_guard::GuardArgs),
    /// Drop to a sandbox's own user and run the environment (inside bubblewrap).
    #[command(hide = true)]
    SandboxExec(env_guard::ExecArgs),
    /// Serve a bundled example environment over stdio (used by the server itself).
    ExampleEnv {
        /// The environment's name, e.g. my-assistant.
        name: String,
        /// Serve streamable HTTP at http://ADDR/mcp instead of stdio.
        #[arg(long, value_name = "ADDR")]
        http: Option<std::net::SocketAddr>,
    },
}

fn main() -> ExitCode {
    // Built with the `failpoints` feature (tests only), FAILPOINTS configures fault injection.
    #[cfg(feature = "failpoints")]
    let _failpoints = fail::FailScenario::setup();
    let cli = Cli::parse();
    // The guard is a plain synchronous supervisor: no async runtime.
    let cli = match cli.command {
        Command::EnvGuard(args) => {
            return env_guard::run(args).unwrap_or_else(|error| {
                eprintln_safe(&format!("rollout env-guard: {error:#}"));
                ExitCode::FAILURE
            });
        }
        Command::SandboxExec(args) => {
            return env_guard::exec(args).unwrap_or_else(|error| {
                eprintln_safe(&format!("rollout sandbox-exec: {error:#}"));
                ExitCode::FAILURE
            });
        }
        command => Cli { command },
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln_safe(&format!(
                "rollout: could not start the async runtime: {error}"
            ));
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve::run(*args).await,
            Command::Worker(args) => worker::run(*args).await,
            Command::Eval(args) => eval::run(*args).await,
            Command::Job(command) => eval::job(command).await,
            Command::Keys(command) => keys::run(command).await,
            Command::Projects(command) => projects::run(command).await,
            Command::Schedule(command) => schedule::run(command).await,
            Command::Env(command) => environments::run(command).await,
            Command::Dataset(command) => dataset::run(command).await,
            Command::ExampleEnv { name, http } => example_env::run(&name, http).await,
            Command::EnvGuard(_) | Command::SandboxExec(_) => Ok(()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln_safe(&format!("rollout: {error:#}"));
            ExitCode::FAILURE
        }
    }
}

/// Writes a line to stderr; the lints keep `eprintln!` out of library-style code.
fn eprintln_safe(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}
