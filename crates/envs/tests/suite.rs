//! Test topics.

mod my_assistant;
