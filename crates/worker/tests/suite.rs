//! Test modules, one per topic.

mod callback;
