#![doc = include_str!("../README.md")]

pub mod error;
pub mod eval;
mod event_size;
pub mod reviews;
mod store;
pub mod training;
pub mod types;

pub use error::{DbError, StoreError};
pub use eval::{
    JobCounts, JobRecord, JobRun, JobSpec, ModelProgress, NewJobRun, StoredTask, TasksetRecord,
};
pub use event_size::DEFAULT_MAX_EVENT_BYTES;
pub use reviews::{
    CompleteOutcome, HistoryEntry, LabelRecord, NewReviewQueue, NewScore, NoteRecord, QueueItem,
    QueueProgress, ReviewQueueRecord, ReviewSummary, Reviewer, ReviewerProgress, RewardOverride,
    ScoreConfig, ScoreKind, ScoreRecord, ScoreValue, ShareLinkRecord, TraceReview,
};
pub use store::Store;
pub use store::deliveries::{DeliveryRecord, NewDelivery};
pub use store::events::PendingEvent;
pub use store::idempotency::IdempotentInsert;
pub use store::keys::{VerifiedKey, generate_api_key, hash_api_key};
pub use store::notifications::{Notifications, StoreNotification};
pub use store::projects::{ProjectRecord, ProjectSettings, ProjectUsage};
pub use store::queue::GATEWAY_OWNER;
pub use store::schedules::{BrokenSchedule, NewSchedule, ScheduleRecord, TickAction};
pub use store::traces::{RewardSource, ScoreFilter, TraceQuery, UsageGroup, UsageRow};
pub use training::{DatasetLine, DatasetRecord, TrainingJobRecord};
pub use types::{
    ApiKeyRecord, Backend, CancelOutcome, ClaimedRun, EnvStatus, EnvVersion, FinishRun, KeyRole,
    Lease, NewEnvVersion, RunFilter, RunProgress, RunRecord,
};

/// Shorthand for the store's results.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
