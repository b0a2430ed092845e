#![doc = include_str!("../README.md")]

pub mod client;
pub mod error;
pub mod gateway;
pub mod hud06;
pub mod sandbox;
pub mod sdk;
mod session;
mod wire;

pub use client::{EnvSession, EnvTarget};
pub use error::EnvError;
pub use hud06::{ControlSniffer, Hud06Process, Hud06Protocol, Hud06Session};
pub use sandbox::{
    EnvPolicy, EnvSandbox, LimitPolicy, Network, ProcessLimits, ProcessRole, ProcessSpec, Sandbox,
    SandboxConfig, SandboxedCommand, Secret, UidRange, WorkDir,
};
pub use session::{ScenarioSession, connect_session};
