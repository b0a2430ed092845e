//! The warm pool: environment sessions started ahead of time, so that a run does not wait
//! for an environment to boot (a hud-python environment takes about a second to
//! initialize). Every session still serves exactly one run: a run takes a fresh session
//! from the pool and the pool starts a replacement in the background.
//!
//! Only stdio (`command`) environments are pooled; an HTTP environment is already running.
//! A pool for a version is created on its first run and kept at `size` ready sessions.

use rollout_mcp::{EnvError, EnvSandbox, EnvSession, EnvTarget};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

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
    slots: Arc<Mutex<HashMap<String, Slot>>>,
}

impl WarmPool {
    /// A pool keeping `size` sessions ready per version (0 turns pooling off).
    pub(crate) fn new(size: usize) -> Self {
        Self {
            size,
            slots: Arc::default(),
        }
    }

    /// A session for one run: a ready one from the pool when there is one, else a new one
    /// (in `sandbox`, the environment's). `key` identifies the environment version.
    pub(crate) async fn session(
        &self,
        key: &str,
        target: &EnvTarget,
        label: &str,
        sandbox: &EnvSandbox,
    ) -> Result<EnvSession, EnvError> {
        if self.size == 0 || !matches!(target, EnvTarget::Command { .. }) {
            return EnvSession::connect(target, label, sandbox).await;
        }
        let ready = self.take_ready(key);
        self.refill(key, target, sandbox);
        match ready {
            Some(session) => Ok(session),
            None => EnvSession::connect(target, label, sandbox).await,
        }
    }

    /// Pops a ready session that is still alive; dead ones are dropped (which reaps them).
    fn take_ready(&self, key: &str) -> Option<EnvSession> {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        let slot = slots.entry(key.to_string()).or_default();
        while let Some(session) = slot.ready.pop() {
            if !session.is_closed() {
                return Some(session);
            }
        }
        None
    }

    /// Starts sessions in the background until the version has `size` ready or starting.
    fn refill(&self, key: &str, target: &EnvTarget, sandbox: &EnvSandbox) {
        let missing = {
            let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
            let slot = slots.entry(key.to_string()).or_default();
            let missing = self.size.saturating_sub(slot.ready.len() + slot.starting);
            slot.starting += missing;
            missing
        };
        for _ in 0..missing {
            let pool = self.clone();
            let key = key.to_string();
            let target = target.clone();
            let sandbox = sandbox.clone();
            tokio::spawn(async move {
                let label = format!("{key} (warm)");
                let started = EnvSession::connect(&target, &label, &sandbox).await;
                let mut slots = pool.slots.lock().unwrap_or_else(PoisonError::into_inner);
                let slot = slots.entry(key.clone()).or_default();
                slot.starting = slot.starting.saturating_sub(1);
                match started {
                    Ok(session) => slot.ready.push(session),
                    Err(error) => {
                        tracing::warn!(env = %key, %error, "could not pre-start an environment session")
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
}
