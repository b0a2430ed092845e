//! The records the store reads and writes. Plain data: the SQL lives in `store/`.

use rollout_domain::{EnvDescription, Evaluation, RunEvent, RunId, RunSpec, RunStatus, Usage};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use std::str::FromStr;

/// Which database a [`crate::Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A local file; one process should own it.
    Sqlite,
    /// A server shared by many processes and machines.
    Postgres,
}

impl Backend {
    /// A stable name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyRole {
    /// Manages keys and the project's settings, and everything a member can do.
    Admin,
    /// Runs agents and reads traces.
    Member,
}

impl KeyRole {
    /// The stable string used on the API and in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyRole::Admin => "admin",
            KeyRole::Member => "member",
        }
    }
}

impl fmt::Display for KeyRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyRole {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(KeyRole::Admin),
            "member" => Ok(KeyRole::Member),
            other => Err(format!("unknown key role '{other}'")),
        }
    }
}

/// An API key as stored: never the secret itself, only its first characters for display.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub role: KeyRole,
    /// The first 8 characters of the secret, so that a user can tell keys apart.
    pub prefix: String,
    pub created_at_ms: i64,
}

/// Whether an environment version can be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EnvStatus {
    /// Built and introspected: runs may use it.
    Ready,
    /// The build or the introspection failed; `error` says why.
    Failed,
}

impl EnvStatus {
    /// The stable string used on the API and in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            EnvStatus::Ready => "ready",
            EnvStatus::Failed => "failed",
        }
    }
}

impl fmt::Display for EnvStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EnvStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ready" => Ok(EnvStatus::Ready),
            "failed" => Ok(EnvStatus::Failed),
            other => Err(format!("unknown environment status '{other}'")),
        }
    }
}

/// A version of an environment to register.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEnvVersion {
    pub project_id: String,
    pub name: String,
    /// Where the version comes from (command, url, bundle, git), as the deployer describes it.
    pub source: Value,
    /// A hash of the source, so that re-registering the same source is a no-op.
    pub source_hash: String,
    pub status: EnvStatus,
    /// What introspection found; `None` when it failed.
    pub description: Option<EnvDescription>,
    /// Why the version failed (the build log's tail).
    pub error: Option<String>,
}

/// A registered environment version. Versions are numbered 1, 2, 3.. per environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvVersion {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub version: i64,
    pub source: Value,
    pub source_hash: String,
    pub status: EnvStatus,
    pub description: Option<EnvDescription>,
    pub error: Option<String>,
    pub created_at_ms: i64,
}

/// A run as stored: its spec, where it stands, and its results once finished.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub id: RunId,
    pub project_id: String,
    pub spec: RunSpec,
    pub status: RunStatus,
    /// How the agent phase ended (`RunOutcome::as_str`), once known.
    pub outcome: Option<String>,
    pub reward: Option<f64>,
    pub evaluation: Option<Evaluation>,
    pub final_response: Option<String>,
    pub error: Option<String>,
    pub steps: i64,
    /// Tokens summed over the run's model calls.
    pub usage: Usage,
    /// How many times a worker claimed the run; it only ever increases (a claim released
    /// at shutdown counts too, so that every attempt's events keep their own number).
    pub attempts: i64,
    pub created_at_ms: i64,
    pub started_at_ms: Option<i64>,
    pub finished_at_ms: Option<i64>,
}

impl RunRecord {
    /// A run as its insert stores it in the queue: the row's defaults (no attempt, no
    /// result, nothing used), so that an insert need not read its row back.
    pub(crate) fn queued(id: &RunId, project_id: &str, spec: &RunSpec, created_at_ms: i64) -> Self {
        RunRecord {
            id: id.clone(),
            project_id: project_id.to_string(),
            spec: spec.clone(),
            status: RunStatus::Queued,
            outcome: None,
            reward: None,
            evaluation: None,
            final_response: None,
            error: None,
            steps: 0,
            usage: Usage::default(),
            attempts: 0,
            created_at_ms,
            started_at_ms: None,
            finished_at_ms: None,
        }
    }
}

/// A run a worker just claimed, with the lease that lets it write.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedRun {
    pub run: RunRecord,
    pub lease: Lease,
    /// Whether other runs were queued when this one was claimed: a worker claims again at
    /// once only then, and otherwise waits for news of a queued run (or its poll), which
    /// saves an empty claim per run when runs arrive one at a time.
    pub more_queued: bool,
    /// The id of the run's environment version, read with the claim: `None` when it was
    /// deleted (or for a run the MCP gateway inserted running, which has no use for it).
    pub env_version_id: Option<String>,
    /// The attempt's `attempt_started` event, stored with the claim (`None` for a run the
    /// MCP gateway inserted running: its recorder writes its own).
    pub started: Option<RunEvent>,
}

/// One claim on a running run. Every write of the claim's execution (heartbeat, progress,
/// events, release, finish) presents `token` and is refused once another claim replaced it,
/// even one made by the same process (fencing by claim, not by process).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub run_id: RunId,
    /// Unique per claim.
    pub token: String,
    /// The attempt this claim started (1 for the first); its events carry it.
    pub attempt: i64,
}

/// Steps taken and tokens used so far by a claim's execution: totals, not increments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RunProgress {
    pub steps: i64,
    pub usage: rollout_domain::Usage,
}

/// What a cancel request did to a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelOutcome {
    /// The run was queued: this request cancelled it (status and `finished` event in one
    /// transaction). Exactly one of concurrent requests gets this.
    Cancelled,
    /// The run is running: it is flagged, and its worker stops it and writes `cancelled`.
    Requested,
    /// The run had already ended with this status (perhaps cancelled by another request).
    Ended(RunStatus),
}

/// The final state of a run, written once by the worker that owns it.
#[derive(Debug, Clone, PartialEq)]
pub struct FinishRun {
    /// A terminal status.
    pub status: RunStatus,
    pub outcome: Option<String>,
    pub reward: Option<f64>,
    pub evaluation: Option<Evaluation>,
    pub final_response: Option<String>,
    pub steps: i64,
    pub usage: Usage,
    pub error: Option<String>,
}

/// Which runs to list. Every field narrows the list; `None` means no constraint.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunFilter {
    pub status: Option<RunStatus>,
    pub env_name: Option<String>,
    /// The bare scenario name.
    pub scenario: Option<String>,
    pub model: Option<String>,
    /// How many runs to return: 50 by default, at most 500.
    pub limit: Option<i64>,
    /// A cursor: only runs with an id smaller than this one (older runs).
    pub before: Option<String>,
}

impl RunFilter {
    /// The default page size.
    pub const DEFAULT_LIMIT: i64 = 50;
    /// The largest page size.
    pub const MAX_LIMIT: i64 = 500;

    /// The page size to use: the default when unset, clamped to `1..=MAX_LIMIT`.
    pub fn effective_limit(&self) -> i64 {
        self.limit
            .unwrap_or(Self::DEFAULT_LIMIT)
            .clamp(1, Self::MAX_LIMIT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_and_statuses_round_trip_through_their_strings() {
        for role in [KeyRole::Admin, KeyRole::Member] {
            assert_eq!(role.as_str().parse::<KeyRole>().unwrap(), role);
        }
        for status in [EnvStatus::Ready, EnvStatus::Failed] {
            assert_eq!(status.as_str().parse::<EnvStatus>().unwrap(), status);
        }
        assert!("owner".parse::<KeyRole>().is_err());
    }

    #[test]
    fn list_limit_defaults_to_50_and_is_clamped() {
        assert_eq!(RunFilter::default().effective_limit(), 50);
        assert_eq!(
            RunFilter {
                limit: Some(10_000),
                ..RunFilter::default()
            }
            .effective_limit(),
            500
        );
        assert_eq!(
            RunFilter {
                limit: Some(0),
                ..RunFilter::default()
            }
            .effective_limit(),
            1
        );
    }
}
