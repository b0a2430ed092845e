#![doc = include_str!("../README.md")]

mod error;
mod run;

pub use error::AgentError;
pub use run::{AgentConfig, AgentResult, run_agent};
