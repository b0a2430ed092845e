//! Test topics.

mod sdk;
mod sdk_http;
