//! Runs recorded by the MCP gateway: the client is the agent, so the run never waits in the
//! queue; it is inserted `running`, leased to the gateway, and finished through the usual
//! fenced `finish_run`.

use crate::Result;
use crate::error::db;
use crate::store::queue::{claimed, new_token};
use crate::store::runs::{Placement, insert_run_query};
use crate::store::{Store, duration_ms, now_ms, written_row};
use crate::types::ClaimedRun;
use rollout_domain::{RunId, RunSpec};
use std::time::Duration;

impl Store {
    /// Stores a new run directly as `running` (attempt 1), leased to `owner` for `lease`.
    /// The owner renews the returned lease with `heartbeat` and ends the run with
    /// `finish_run`.
    pub async fn insert_running_run(
        &self,
        id: &RunId,
        project_id: &str,
        spec: &RunSpec,
        owner: &str,
        lease: Duration,
    ) -> Result<ClaimedRun> {
        let now = now_ms();
        let token = new_token();
        let placement = Placement::Running {
            owner,
            lease_expires_at_ms: now.saturating_add(duration_ms(lease)),
            token: &token,
        };
        const OP: &str = "inserting a gateway run";
        let rows = insert_run_query(id, project_id, spec, now, &placement)?
            .fetch_all(self.writer())
            .await
            .map_err(db(OP))?;
        let row = written_row(rows, OP)?;
        claimed(row, token)
    }
}
