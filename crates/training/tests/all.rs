//! Integration tests of rollout-training: dataset records against golden files.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod suite;
