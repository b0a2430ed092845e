//! Test modules, one per topic.

mod browser;
mod cancel;
mod common;
mod deploy;
mod hud_python;
mod inbox;
mod jobs;
mod keys;
mod recovery;
mod run_api;
mod runs;
mod sdk_interop;
mod traces_api;
mod validation;
