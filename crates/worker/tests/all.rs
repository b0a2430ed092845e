//! Integration tests of rollout-worker: real store, real sockets.

// Helpers outside `#[test]` functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod suite;
