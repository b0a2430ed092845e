//! The queue's size over every project and process, for the `/metrics` gauges: read from
//! the store so that every server process reports the same numbers.

use crate::Result;
use crate::error::db;
use crate::store::Store;

/// Queued and running runs in one pass over the rows of those two statuses.
const COUNT_IN_FLIGHT: &str = "SELECT \
     CAST(COALESCE(SUM(CASE WHEN status = 'queued' THEN 1 ELSE 0 END), 0) AS BIGINT), \
     CAST(COALESCE(SUM(CASE WHEN status = 'running' THEN 1 ELSE 0 END), 0) AS BIGINT) \
     FROM runs WHERE status IN ('queued', 'running')";

impl Store {
    /// How many runs are queued and how many running, over all projects.
    pub async fn count_runs_in_flight(&self) -> Result<(i64, i64)> {
        sqlx::query_as::<_, (i64, i64)>(COUNT_IN_FLIGHT)
            .fetch_one(self.pool())
            .await
            .map_err(db("counting runs in flight"))
    }
}
