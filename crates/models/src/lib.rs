#![doc = include_str!("../README.md")]

mod anthropic;
mod catalog;
mod config;
mod error;
mod fewshot;
mod http;
mod openai;
mod price;
mod replay;
mod retry;

pub use anthropic::AnthropicClient;
pub use catalog::{CheckpointLineage, ModelCatalog, ModelInfo, ResolvedModel};
pub use config::{
    ApiKey, CatalogConfig, ClientConfig, DEFAULT_MAX_TOKENS, DEFAULT_REQUEST_TIMEOUT, ModelEntry,
    ProviderConfig, RetryPolicy, WireFormat,
};
pub use error::ResolveError;
pub use fewshot::FewshotClient;
pub use openai::OpenAiChatClient;
pub use price::Price;
pub use replay::{REPLAY_MODEL, ReplayModel};
