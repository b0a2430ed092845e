//! Per-session state shared by an environment's tools and scenarios.
//!
//! Each MCP session (one run, for rollout) gets its own empty state. Tools and scenarios
//! ask for a value by type with `state::<T>()`; the first request creates it with
//! `T::default()`, later ones get the same `Arc<T>`. Put interior mutability (a `Mutex`)
//! inside `T` for data that tools change, e.g. an inbox that a scenario grades.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// The state of one MCP session.
#[derive(Clone, Default)]
pub struct SessionState {
    values: Arc<Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>>,
}

impl SessionState {
    /// The session's value of type `T`, created with `T::default()` on first use.
    pub fn get<T: Default + Send + Sync + 'static>(&self) -> Arc<T> {
        let mut values = self.values.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = values
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Arc::new(T::default()) as Arc<dyn Any + Send + Sync>)
            .clone();
        drop(values);
        match entry.downcast::<T>() {
            Ok(value) => value,
            // The map is keyed by TypeId, so the entry always has type T.
            Err(_) => Arc::new(T::default()),
        }
    }
}

impl std::fmt::Debug for SessionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionState").finish_non_exhaustive()
    }
}

/// What a tool sees of its MCP session.
#[derive(Debug, Clone)]
pub struct ToolContext {
    pub(crate) state: SessionState,
}

impl ToolContext {
    /// The session's value of type `T` (see [`SessionState::get`]).
    pub fn state<T: Default + Send + Sync + 'static>(&self) -> Arc<T> {
        self.state.get::<T>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Counter(Mutex<u32>);

    #[test]
    fn the_same_type_gives_the_same_value_within_a_session_only() {
        let session = SessionState::default();
        *session.get::<Counter>().0.lock().unwrap() += 1;
        *session.get::<Counter>().0.lock().unwrap() += 1;
        assert_eq!(*session.get::<Counter>().0.lock().unwrap(), 2);
        let other = SessionState::default();
        assert_eq!(*other.get::<Counter>().0.lock().unwrap(), 0);
    }
}
