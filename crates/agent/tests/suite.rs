//! Test modules.

mod agent_loop;
