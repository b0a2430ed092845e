//! A real `rollout worker` process for end-to-end tests: started like a [`TestServer`]
//! (temp data directory, the test environment, stderr to a log), ready once it says so.
//!
//! [`TestServer`]: crate::TestServer

use crate::server::{ServerOptions, kill, read_log, spawn};
use anyhow::Context;
use std::path::PathBuf;
use std::time::Duration;
use tokio::process::Child;

/// A running worker. Killed on drop.
pub struct TestWorker {
    pub data_dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
    child: Child,
}

impl TestWorker {
    /// Starts `binary worker` with `options.args` and waits until it has started.
    pub async fn start(binary: &str, options: ServerOptions) -> anyhow::Result<Self> {
        let started = spawn(
            binary,
            "worker",
            &options.args,
            &options,
            "rollout worker started",
        )
        .await?;
        Ok(Self {
            data_dir: started.data_dir,
            _temp: started.temp,
            child: started.child,
        })
    }

    /// The worker's log so far.
    pub fn log(&self) -> String {
        read_log(&self.data_dir)
    }

    /// Asks the worker to stop (SIGTERM) and waits up to `timeout` for it to exit.
    pub async fn terminate(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let pid = self.child.id().context("the worker already exited")?;
        kill("TERM", pid).await?;
        tokio::time::timeout(timeout, self.child.wait())
            .await
            .context("the worker did not exit")??;
        Ok(())
    }
}
