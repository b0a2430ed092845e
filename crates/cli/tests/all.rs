//! End-to-end tests: a real `rollout serve` process, real environments, real HTTP, and a
//! fake model provider speaking the providers' wire formats on loopback.

mod suite;
