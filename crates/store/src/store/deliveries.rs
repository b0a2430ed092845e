//! The delivery log of run callbacks: one row per attempt to POST a run's summary to its
//! callback URL.

use crate::Result;
use crate::error::db;
use crate::store::{Store, now_ms};
use serde::{Deserialize, Serialize};

const INSERT_DELIVERY: &str = "INSERT INTO callback_deliveries \
     (id, run_id, project_id, attempt, kind, url, status_code, latency_ms, error, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
const RUN_PROJECT: &str = "SELECT project_id FROM runs WHERE id = $1";
const LIST_DELIVERIES: &str = "SELECT id, attempt, kind, url, status_code, latency_ms, error, \
     created_at FROM callback_deliveries WHERE project_id = $1 AND run_id = $2 \
     ORDER BY created_at, id";

/// One attempt to deliver a callback, to record.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDelivery {
    pub run_id: String,
    pub project_id: String,
    /// 1 for the first attempt of a delivery, then 2, 3.. for its retries.
    pub attempt: i64,
    /// `auto` (after the run ended) or `manual` (redelivery through the API).
    pub kind: String,
    pub url: String,
    /// The receiver's HTTP status, if it answered.
    pub status_code: Option<i64>,
    pub latency_ms: i64,
    /// Why the attempt failed (no answer, or a non-2xx status).
    pub error: Option<String>,
}

/// A recorded delivery attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct DeliveryRecord {
    pub id: String,
    pub attempt: i64,
    pub kind: String,
    pub url: String,
    pub status_code: Option<i64>,
    pub latency_ms: i64,
    pub error: Option<String>,
    #[sqlx(rename = "created_at")]
    pub created_at_ms: i64,
}

impl Store {
    /// Records one delivery attempt.
    pub async fn record_delivery(&self, delivery: &NewDelivery) -> Result<()> {
        sqlx::query(INSERT_DELIVERY)
            .bind(rollout_domain::new_id())
            .bind(delivery.run_id.clone())
            .bind(delivery.project_id.clone())
            .bind(delivery.attempt)
            .bind(delivery.kind.clone())
            .bind(delivery.url.clone())
            .bind(delivery.status_code)
            .bind(delivery.latency_ms)
            .bind(delivery.error.clone())
            .bind(now_ms())
            .execute(self.pool())
            .await
            .map_err(db("recording a callback delivery"))?;
        Ok(())
    }

    /// The project a run belongs to, for work that starts from a bare run id (a run
    /// failed by lease recovery, whose callback is then delivered).
    pub async fn run_project(&self, run_id: &str) -> Result<Option<String>> {
        sqlx::query_scalar(RUN_PROJECT)
            .bind(run_id.to_string())
            .fetch_optional(self.pool())
            .await
            .map_err(db("reading a run's project"))
    }

    /// Every delivery attempt of a run of the project, oldest first.
    pub async fn list_deliveries(
        &self,
        project_id: &str,
        run_id: &str,
    ) -> Result<Vec<DeliveryRecord>> {
        sqlx::query_as::<_, DeliveryRecord>(LIST_DELIVERIES)
            .bind(project_id.to_string())
            .bind(run_id.to_string())
            .fetch_all(self.pool())
            .await
            .map_err(db("listing callback deliveries"))
    }
}
