//! `rollout`: turn any agent scenario into a callable API endpoint.

mod config;
mod example_env;
mod serve;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// rollout runs LLM agents on scenarios of MCP environments behind one HTTP call
/// (`POST /v1/agent/run`) and records a full trace of every run.
#[derive(Debug, Parser)]
#[command(name = "rollout", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the API server and a worker (SQLite in --data-dir unless --database-url is set).
    Serve(Box<config::ServeArgs>),
    /// Serve a bundled example environment over stdio (used by the server itself).
    ExampleEnv {
        /// The environment's name, e.g. my-assistant.
        name: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
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
            Command::ExampleEnv { name } => example_env::run(&name).await,
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
