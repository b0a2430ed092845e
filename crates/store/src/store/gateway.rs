//! Runs recorded by the MCP gateway: the client is the agent, so the run never waits in the
//! queue; it is inserted `running`, leased to the gateway, and finished through the usual
//! fenced `finish_run`.

use crate::Result;
use crate::error::{db, encode};
use crate::store::queue::{claimed, new_token};
use crate::store::{RunRow, Store, duration_ms, now_ms};
use crate::types::ClaimedRun;
use rollout_domain::{RunId, RunSpec};
use std::time::Duration;

const INSERT_RUNNING_RUN: &str = concat!(
    "INSERT INTO runs (id, project_id, spec, env_name, env_version, scenario, model, status, \
     attempts, lease_owner, lease_expires_at, created_at, started_at, key_id, lease_token) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, 'running', 1, $8, $9, $10, $10, $11, $12) RETURNING ",
    run_columns!()
);

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
        let spec_json = serde_json::to_string(spec).map_err(encode("run spec"))?;
        let now = now_ms();
        let token = new_token();
        let row = sqlx::query_as::<_, RunRow>(INSERT_RUNNING_RUN)
            .bind(id.0.clone())
            .bind(project_id.to_string())
            .bind(spec_json)
            .bind(spec.env_name.clone())
            .bind(spec.env_version)
            .bind(spec.scenario_name.clone())
            .bind(spec.model.clone())
            .bind(owner.to_string())
            .bind(now.saturating_add(duration_ms(lease)))
            .bind(now)
            .bind(spec.key_id.clone())
            .bind(token.clone())
            .fetch_one(self.pool())
            .await
            .map_err(db("inserting a gateway run"))?;
        claimed(row, token)
    }
}
