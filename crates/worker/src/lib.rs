#![doc = include_str!("../README.md")]

mod config;
mod error;
mod execute;
mod notifier;
mod register;
mod sink;
mod worker;

pub use config::WorkerConfig;
pub use error::RunError;
pub use notifier::{RunNotifier, RunUpdate};
pub use register::{RegisterError, register_environment};
pub use worker::Worker;
