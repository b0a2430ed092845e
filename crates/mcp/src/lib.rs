#![doc = include_str!("../README.md")]

pub mod client;
pub mod error;
pub mod gateway;
pub mod sdk;
mod wire;

pub use client::{EnvSession, EnvTarget, ProcessGuard, ProcessLimits};
pub use error::EnvError;
