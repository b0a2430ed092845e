//! Test modules, one per topic.

mod common;
mod hud_python;
mod recovery;
mod runs;
mod validation;
