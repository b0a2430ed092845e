#![doc = include_str!("../README.md")]

pub mod callback;
pub mod checkpoint;
pub mod error;
pub mod evaluation;
pub mod event;
pub mod ids;
pub mod message;
pub mod metrics;
pub mod ports;
pub mod run;
pub mod scenario;
pub mod task;
#[cfg(feature = "testing")]
pub mod testing;
pub mod time;

pub use callback::CallbackSpec;
pub use checkpoint::{Checkpoint, CheckpointTarget, Demonstration};
pub use error::{ModelError, ModelErrorKind, RecordError, ToolError};
pub use evaluation::{Evaluation, SubScore};
pub use event::{EventKind, RunEvent};
pub use ids::{RunId, new_id};
pub use message::{Message, Role, ToolCall, ToolResult, ToolSpec, Usage};
pub use ports::{EventSink, ModelClient, ModelRequest, ModelResponse, StopReason, ToolHost};
pub use run::{RunOutcome, RunSpec, RunStatus, ValidationItem};
pub use scenario::{EnvDescription, ScenarioArg, ScenarioSpec};
pub use task::{AgentConfig, Task};
