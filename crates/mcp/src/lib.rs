#![doc = include_str!("../README.md")]

pub mod client;
pub mod error;
pub mod gateway;
pub mod sandbox;
pub mod sdk;
mod wire;

pub use client::{EnvSession, EnvTarget};
pub use error::EnvError;
pub use sandbox::{
    EnvPolicy, EnvSandbox, LimitPolicy, Network, ProcessLimits, ProcessRole, ProcessSpec, Sandbox,
    SandboxConfig, SandboxedCommand, Secret, UidRange, WorkDir,
};
