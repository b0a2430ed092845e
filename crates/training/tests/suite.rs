//! Test modules, one per topic.

mod dataset;
mod fewshot;
