//! Test modules, one per topic.

mod boundaries;
mod browser;
mod bundles;
mod cancel;
mod chat_recipe;
mod common;
mod cost;
mod deploy;
mod gateway;
mod http_callers;
mod hud_python;
mod inbox;
mod jobs;
mod keys;
mod projects;
mod recipes;
mod recovery;
mod run_api;
mod runs;
mod sandbox;
mod schedules;
mod sdk_interop;
mod traces_api;
mod training;
mod validation;
mod web_edges;
