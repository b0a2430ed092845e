//! Integration tests of the bundled environments, served in-process and driven over MCP.

// Helpers shared by the `#[tokio::test]`s are plain functions, which clippy does not see as
// test code; panicking on an unexpected error is what a test should do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod suite;
