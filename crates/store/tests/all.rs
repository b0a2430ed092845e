//! Integration tests of the store, on SQLite always and on PostgreSQL when
//! `TEST_DATABASE_URL` is set.

// The stories are plain async functions called from `#[tokio::test]`s, which clippy does not
// see as test code; panicking on an unexpected error is what a test should do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod suite;
