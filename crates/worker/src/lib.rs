#![doc = include_str!("../README.md")]

mod callback;
mod cancel;
mod checkpoints;
mod config;
pub mod deploy;
mod error;
mod execute;
mod failpoints;
mod finish;
mod lease;
mod notifier;
mod pool;
mod register;
mod replicas;
pub use replicas::ReplicaManager;
mod sink;
mod versions;
mod worker;

pub use callback::{
    CallbackConfig, CallbackDeliverer, HostLookup, Refused, SystemLookup, check_destination,
    payload, sign,
};
pub use checkpoints::load_checkpoints_if_unknown;
pub use config::WorkerConfig;
pub use deploy::{BundleSource, DeployConfig, DeployError, Deployment, deploy_environment};
pub use error::RunError;
pub use finish::{HeldRun, RunFinisher};
pub use notifier::{FinishWatch, RunNotifier, appended_to, follow_store};
pub use register::{RegisterError, register_environment};
pub use worker::Worker;
