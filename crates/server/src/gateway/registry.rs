//! Who owns which session, and how many each API key holds: one registry type for the MCP
//! gateway's sessions (`T` = the environment's name) and the hud 0.6 runtime's sessions
//! (`T` = the session itself, `runtime.rs`). A session is found only from the project that
//! opened it, and a key's sessions are counted by [`Slot`]s, released when dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// Open sessions by id, and open slots by API key.
pub(crate) struct SessionRegistry<T> {
    inner: Arc<Inner<T>>,
}

impl<T> Default for SessionRegistry<T> {
    fn default() -> Self {
        Self {
            inner: Arc::new(Inner {
                sessions: Mutex::new(HashMap::new()),
                per_key: Mutex::new(HashMap::new()),
            }),
        }
    }
}

struct Inner<T> {
    /// Session id → its entry.
    sessions: Mutex<HashMap<String, Entry<T>>>,
    /// API key id → open slots.
    per_key: Mutex<HashMap<String, usize>>,
}

struct Entry<T> {
    project_id: String,
    value: T,
    /// The session's slot when the registry holds it ([`SessionRegistry::insert`]): released
    /// with the entry.
    _slot: Option<Slot<T>>,
}

impl<T> Inner<T> {
    /// Registers session `id`; an entry it replaces (and its slot) is dropped outside the lock.
    fn put(&self, id: &str, project_id: &str, value: T, slot: Option<Slot<T>>) {
        let entry = Entry {
            project_id: project_id.to_string(),
            value,
            _slot: slot,
        };
        let replaced = self
            .sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.to_string(), entry);
        drop(replaced);
    }

    /// Removes `id`'s entry; the caller drops it (and its slot) outside the lock.
    fn take(&self, id: &str) -> Option<Entry<T>> {
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id)
    }
}

impl<T> SessionRegistry<T> {
    /// Takes a session slot of `key`, or `None` when it has `max` open.
    pub(crate) fn take_slot(&self, key: &str, max: usize) -> Option<Slot<T>> {
        let mut per_key = self
            .inner
            .per_key
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let open = per_key.entry(key.to_string()).or_insert(0);
        if *open >= max {
            return None;
        }
        *open += 1;
        Some(Slot {
            inner: self.inner.clone(),
            key: key.to_string(),
            name: Arc::new(Mutex::new(SlotName::Unnamed)),
        })
    }

    /// Registers session `id` of `project_id`, holding its `slot` until it is removed.
    pub(crate) fn insert(&self, id: &str, project_id: &str, value: T, slot: Slot<T>) {
        self.inner.put(id, project_id, value, Some(slot));
    }

    /// Forgets session `id` (its slot is released if the registry held it); returns its value.
    pub(crate) fn remove(&self, id: &str) -> Option<T> {
        self.inner.take(id).map(|entry| entry.value)
    }

    /// Whether no slot is open (every session ended and released its slot).
    pub(crate) fn is_idle(&self) -> bool {
        self.inner
            .per_key
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty()
    }
}

impl<T: Clone> SessionRegistry<T> {
    /// Session `id`'s value, if `project_id` opened it: other projects do not see it.
    pub(crate) fn get(&self, id: &str, project_id: &str) -> Option<T> {
        self.inner
            .sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .filter(|entry| entry.project_id == project_id)
            .map(|entry| entry.value.clone())
    }
}

/// One open session's place in its key's count, released when dropped, together with the
/// session it named.
pub(crate) struct Slot<T> {
    inner: Arc<Inner<T>>,
    key: String,
    name: Arc<Mutex<SlotName>>,
}

/// Whether a slot's session has an id yet.
enum SlotName {
    Unnamed,
    Named(String),
    Released,
}

impl<T> Slot<T> {
    /// Names the slot's session later, once its id is known (an MCP `initialize` response
    /// names it after the slot went to the session's recorder).
    pub(crate) fn namer(&self) -> Namer<T> {
        Namer {
            inner: self.inner.clone(),
            name: self.name.clone(),
        }
    }
}

impl<T> Drop for Slot<T> {
    fn drop(&mut self) {
        {
            let mut per_key = self
                .inner
                .per_key
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(open) = per_key.get_mut(&self.key) {
                *open = open.saturating_sub(1);
                if *open == 0 {
                    per_key.remove(&self.key);
                }
            }
        }
        let name = std::mem::replace(
            &mut *self.name.lock().unwrap_or_else(PoisonError::into_inner),
            SlotName::Released,
        );
        if let SlotName::Named(id) = name {
            drop(self.inner.take(&id));
        }
    }
}

/// Registers the session of a [`Slot`] held elsewhere; the entry goes with the slot.
pub(crate) struct Namer<T> {
    inner: Arc<Inner<T>>,
    name: Arc<Mutex<SlotName>>,
}

impl<T> Namer<T> {
    /// Registers session `id` of `project_id`, unless its slot was already released.
    pub(crate) fn name(self, id: &str, project_id: &str, value: T) {
        let mut name = self.name.lock().unwrap_or_else(PoisonError::into_inner);
        if matches!(*name, SlotName::Released) {
            return;
        }
        *name = SlotName::Named(id.to_string());
        self.inner.put(id, project_id, value, None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_limited_per_key_and_released_on_drop() {
        let registry = SessionRegistry::<()>::default();
        let first = registry.take_slot("k", 2);
        let second = registry.take_slot("k", 2);
        assert!(first.is_some() && second.is_some());
        assert!(registry.take_slot("k", 2).is_none());
        assert!(registry.take_slot("other", 2).is_some());
        drop(first);
        assert!(registry.take_slot("k", 2).is_some());
    }

    #[test]
    fn a_named_session_is_seen_by_its_project_only_and_goes_with_its_slot() {
        let registry = SessionRegistry::<String>::default();
        let slot = registry.take_slot("k", 1).unwrap();
        slot.namer().name("s1", "p", "env".into());
        assert_eq!(registry.get("s1", "p").as_deref(), Some("env"));
        assert_eq!(registry.get("s1", "other"), None);
        drop(slot);
        assert_eq!(registry.get("s1", "p"), None);
        assert!(registry.is_idle());
    }

    #[test]
    fn a_session_named_after_its_slot_ended_is_not_registered() {
        let registry = SessionRegistry::<String>::default();
        let slot = registry.take_slot("k", 1).unwrap();
        let namer = slot.namer();
        drop(slot);
        namer.name("s1", "p", "env".into());
        assert_eq!(registry.get("s1", "p"), None);
    }

    #[test]
    fn a_held_slot_is_released_when_its_session_is_removed() {
        let registry = SessionRegistry::<u8>::default();
        let slot = registry.take_slot("k", 1).unwrap();
        registry.insert("s1", "p", 7, slot);
        assert!(registry.take_slot("k", 1).is_none());
        assert_eq!(registry.remove("s1"), Some(7));
        assert!(registry.is_idle());
        assert!(registry.take_slot("k", 1).is_some());
    }
}
