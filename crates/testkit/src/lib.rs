#![doc = include_str!("../README.md")]

pub mod fake_finetune;
pub mod fake_model;
pub mod postgres;
pub mod server;
pub mod worker;

pub use fake_finetune::{FakeFineTuneServer, FineTuneOutcome, UploadedFile};
pub use fake_model::{CapturedRequest, FakeModelServer, FakeReply, Policy};
pub use postgres::TestSchema;
pub use server::{ServerOptions, TEST_ADMIN_KEY, TestServer};
pub use worker::TestWorker;
