//! Integration tests of the agent loop with in-process doubles.

mod suite;
