//! Event streams (SSE) are long requests: each key may hold a bounded number open at once
//! (`max_event_streams_per_key`; beyond: 429 `too_many_streams`), and a stream ends soon
//! after its key is revoked, in whichever server process holds it (the key is looked up
//! every [`REVOCATION_POLL`]).

use crate::error::ApiError;
use futures::{Stream, StreamExt};
use rollout_store::Store;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// How often an open stream checks that its key is still active.
const REVOCATION_POLL: Duration = Duration::from_secs(1);

/// The open event streams of every key in this process.
#[derive(Debug)]
pub(crate) struct EventStreams {
    max_per_key: usize,
    open: Mutex<HashMap<String, usize>>,
}

/// One open stream of a key; dropping it frees the place.
#[derive(Debug)]
pub(crate) struct StreamSlot {
    streams: Arc<EventStreams>,
    key_id: String,
}

impl EventStreams {
    pub(crate) fn new(max_per_key: usize) -> Self {
        Self {
            max_per_key: max_per_key.max(1),
            open: Mutex::new(HashMap::new()),
        }
    }

    /// A place for one more stream of `key_id`, or 429 when it holds the most already.
    pub(crate) fn open(self: &Arc<Self>, key_id: &str) -> Result<StreamSlot, ApiError> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(key_id.to_string()).or_default();
        if *count >= self.max_per_key {
            return Err(ApiError::new(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                "too_many_streams",
                format!(
                    "this API key has {} event streams open, the most it may; close one first",
                    self.max_per_key
                ),
            ));
        }
        *count += 1;
        Ok(StreamSlot {
            streams: self.clone(),
            key_id: key_id.to_string(),
        })
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self
            .streams
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.key_id) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.key_id);
            }
        }
    }
}

/// `events`, ended once the slot's key is revoked; the slot is held until the stream ends.
pub(crate) fn guard<S: Stream + Send + 'static>(
    events: S,
    slot: StreamSlot,
    store: Store,
) -> impl Stream<Item = S::Item> + Send {
    let key_id = slot.key_id.clone();
    let revoked = async move {
        loop {
            tokio::time::sleep(REVOCATION_POLL).await;
            match store.api_key_is_active(&key_id).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::info!(key = %key_id, "event stream closed: its API key was revoked");
                    return;
                }
                // A store error does not end a stream; the next poll looks again.
                Err(error) => tracing::warn!(%error, "event stream: checking its key failed"),
            }
        }
    };
    events.take_until(revoked).map(move |item| {
        let _held = &slot;
        item
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_holds_at_most_its_streams_and_dropping_one_frees_a_place() {
        let streams = Arc::new(EventStreams::new(2));
        let first = streams.open("a").unwrap();
        let _second = streams.open("a").unwrap();
        let refused = streams.open("a").unwrap_err();
        assert_eq!(refused.status, axum::http::StatusCode::TOO_MANY_REQUESTS);
        assert!(streams.open("b").is_ok(), "keys count on their own");
        drop(first);
        assert!(streams.open("a").is_ok());
    }
}
