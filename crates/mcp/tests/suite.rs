//! Test topics.

mod sdk;
mod sdk_http;
mod sdk_returns;
mod sdk_scenario;
mod session_http;
