//! Test modules, one per topic.

mod browser;
mod cancel;
mod chaos;
mod chat_recipe;
mod common;
mod cost;
mod deploy;
mod fencing;
mod gateway;
mod hud_python;
mod inbox;
mod jobs;
mod keys;
mod panics;
mod projects;
mod recipes;
mod recovery;
mod run_api;
mod runs;
mod scale;
mod schedules;
mod sdk_interop;
mod traces_api;
mod training;
mod validation;
