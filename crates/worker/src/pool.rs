//! The warm pool: environment sessions started ahead of time, so that a run does not wait
//! for an environment to boot (a hud-python environment takes about a second to
//! initialize). Every session still serves exactly one run: a run takes a fresh session
//! from the pool and the pool starts a replacement in the background.
//!
//! Only stdio (`command`) environments are pooled; an HTTP environment is already running,
//! and a hud 0.6 environment gets a fresh process per run, started on demand.
//! A pool for a version is created on its first run and kept at `size` ready sessions; once
//! a run uses a newer version of the same environment, the older versions' pools are
//! drained (their processes killed), so that superseded versions do not keep processes
//! for ever. A session that does not come up within the connect budget is given up.

use rollout_mcp::{EnvError, EnvSandbox, EnvSession, EnvTarget, ScenarioSession, connect_session};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Which environment version a pool serves.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct PoolKey {
    /// The environment: project and name.
    pub(crate) env: (String, String),
    /// The version's number (newer versions have larger ones).
    pub(crate) version: i64,
}

/// Ready sessions and the number being started, per environment version.
#[derive(Default)]
struct Slot {
    ready: Vec<EnvSession>,
    starting: usize,
}

/// Pre-started environment sessions, per environment version.
#[derive(Clone)]
pub(crate) struct WarmPool {
    size: usize,
    /// Budget of one background start (spawn and MCP handshake).
    connect_timeout: Duration,
    slots: Arc<Mutex<HashMap<PoolKey, Slot>>>,
}

impl WarmPool {
    /// A pool keeping `size` sessions ready per version (0 turns pooling off).
    pub(crate) fn new(size: usize, connect_timeout: Duration) -> Self {
        Self {
            size,
            connect_timeout,
            slots: Arc::default(),
        }
    }

    /// A session for one run: a ready one from the pool when there is one, else a new one
    /// (in `sandbox`, the environment's). `key` identifies the environment version.
    pub(crate) async fn session(
        &self,
        key: &PoolKey,
        target: &EnvTarget,
        label: &str,
        sandbox: &EnvSandbox,
    ) -> Result<Box<dyn ScenarioSession>, EnvError> {
        if self.size == 0 || !matches!(target, EnvTarget::Command { .. }) {
            return connect_session(target, label, sandbox).await;
        }
        self.drain_older(key);
        let ready = self.take_ready(key);
        self.refill(key, target, sandbox);
        match ready {
            Some(session) => Ok(Box::new(session)),
            None => connect_session(target, label, sandbox).await,
        }
    }

    /// Drops the pools of the environment's versions older than `key`'s.
    fn drain_older(&self, key: &PoolKey) {
        let drained: Vec<Slot> = {
            let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
            let older: Vec<PoolKey> = slots
                .keys()
                .filter(|other| other.env == key.env && other.version < key.version)
                .cloned()
                .collect();
            older
                .iter()
                .filter_map(|other| slots.remove(other))
                .collect()
        };
        if !drained.is_empty() {
            tracing::info!(env = %key.env.1, version = key.version, "drained the warm pools of older versions");
        }
        drop(drained);
    }

    /// Pops a ready session that is still alive; dead ones are dropped (which reaps them).
    fn take_ready(&self, key: &PoolKey) -> Option<EnvSession> {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        let slot = slots.entry(key.clone()).or_default();
        while let Some(session) = slot.ready.pop() {
            if !session.is_closed() {
                return Some(session);
            }
        }
        None
    }

    /// Starts sessions in the background until the version has `size` ready or starting.
    fn refill(&self, key: &PoolKey, target: &EnvTarget, sandbox: &EnvSandbox) {
        let missing = {
            let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
            let slot = slots.entry(key.clone()).or_default();
            let missing = self.size.saturating_sub(slot.ready.len() + slot.starting);
            slot.starting += missing;
            missing
        };
        for _ in 0..missing {
            let pool = self.clone();
            let key = key.clone();
            let target = target.clone();
            let sandbox = sandbox.clone();
            tokio::spawn(async move {
                let label = format!("{}@v{} (warm)", key.env.1, key.version);
                let connect = EnvSession::connect(&target, &label, &sandbox);
                let started = tokio::time::timeout(pool.connect_timeout, connect).await;
                let mut slots = pool.slots.lock().unwrap_or_else(PoisonError::into_inner);
                // A pool drained meanwhile (a newer version is in use) takes nothing back.
                let Some(slot) = slots.get_mut(&key) else {
                    return;
                };
                slot.starting = slot.starting.saturating_sub(1);
                match started {
                    Ok(Ok(session)) => slot.ready.push(session),
                    Ok(Err(error)) => {
                        tracing::warn!(env = %label, %error, "could not pre-start an environment session")
                    }
                    Err(_) => {
                        tracing::warn!(env = %label, seconds = pool.connect_timeout.as_secs(), "a pre-started environment session did not come up in time")
                    }
                }
            });
        }
    }

    /// Drops every ready session (killing their processes).
    pub(crate) fn clear(&self) {
        let drained: Vec<Slot> = {
            let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
            slots.drain().map(|(_, slot)| slot).collect()
        };
        drop(drained);
    }

    /// Sessions being started for `key` (for tests).
    #[cfg(test)]
    fn starting(&self, key: &PoolKey) -> usize {
        let slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        slots.get(key).map_or(0, |slot| slot.starting)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn processes_with(needle: &str) -> usize {
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter(|entry| {
                std::fs::read(entry.path().join("cmdline"))
                    .map(|cmdline| String::from_utf8_lossy(&cmdline).contains(needle))
                    .unwrap_or(false)
            })
            .count()
    }

    #[tokio::test]
    async fn a_refill_that_never_completes_its_handshake_is_given_up() {
        let pool = WarmPool::new(1, Duration::from_millis(300));
        // A process that never speaks MCP: its handshake would wait for ever.
        let seconds = format!("600.{}", std::process::id());
        let target = EnvTarget::Command {
            command: vec!["sleep".into(), seconds.clone()],
            cwd: None,
            env: Default::default(),
            limits: None,
        };
        let key = PoolKey {
            env: ("p".into(), "mute".into()),
            version: 1,
        };
        let sandbox = rollout_mcp::Sandbox::unconfined().for_env("p", "mute");
        pool.refill(&key, &target, &sandbox);
        assert_eq!(pool.starting(&key), 1);
        let given_up = tokio::time::timeout(Duration::from_secs(30), async {
            while pool.starting(&key) > 0 || processes_with(&seconds) > 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(given_up.is_ok(), "the start was never given up");
    }
}
