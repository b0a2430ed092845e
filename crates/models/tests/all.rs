//! Integration tests of rollout-models: the real clients against the fake provider server.

mod suite;
