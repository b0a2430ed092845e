//! End-to-end tests: a real `rollout serve` process, real environments, real HTTP, and a
//! fake model provider speaking the providers' wire formats on loopback.

// Helpers outside #[test] functions are test code too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod suite;
