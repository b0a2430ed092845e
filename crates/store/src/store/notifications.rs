//! Cross-process wake-ups on PostgreSQL: every event appended and every run finished sends a
//! `NOTIFY` in its own transaction (delivered on commit), and [`Store::listen`] receives
//! them, so that a `sync` request or an event stream in one process follows a run executed
//! by another at once instead of polling. SQLite has no such channel: a process learns of
//! its own writes in-process, and of others' by polling.

use crate::Result;
use crate::error::{connect_error, db};
use crate::store::Store;
use crate::types::Backend;
use rollout_domain::{EventKind, RunId, RunStatus};
use sqlx::AnyConnection;
use sqlx::postgres::PgListener;

/// The channel of appended events; the payload is the run id.
pub(crate) const EVENTS: &str = "rollout_events";
/// The channel of finished runs; the payload is `"{run id} {status}"`.
const FINISHED: &str = "rollout_finished";
const NOTIFY: &str = "SELECT pg_notify($1, $2)";

/// The channel and payload that tell other processes about an appended event.
pub(crate) fn notification(run_id: &RunId, kind: &EventKind) -> (&'static str, String) {
    match kind {
        EventKind::Finished { status, .. } => (FINISHED, format!("{run_id} {status}")),
        _ => (EVENTS, run_id.to_string()),
    }
}

/// What another process wrote.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreNotification {
    /// An event was appended to the run's trace.
    EventAppended(RunId),
    /// The run reached a terminal status.
    RunFinished(RunId, RunStatus),
}

/// A subscription to the notifications of every process on the database.
pub struct Notifications {
    listener: PgListener,
}

impl std::fmt::Debug for Notifications {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Notifications")
    }
}

impl Notifications {
    /// The next notification. A lost connection is re-established transparently (what was
    /// sent meanwhile is lost: readers keep a slow poll as a safety net).
    pub async fn recv(&mut self) -> Result<StoreNotification> {
        loop {
            let notification = self
                .listener
                .recv()
                .await
                .map_err(db("receiving a notification"))?;
            let payload = notification.payload();
            let parsed = match notification.channel() {
                EVENTS => Some(StoreNotification::EventAppended(RunId(payload.to_string()))),
                FINISHED => payload.split_once(' ').and_then(|(run, status)| {
                    let status = status.parse().ok()?;
                    Some(StoreNotification::RunFinished(
                        RunId(run.to_string()),
                        status,
                    ))
                }),
                _ => None,
            };
            if let Some(parsed) = parsed {
                return Ok(parsed);
            }
        }
    }
}

impl Store {
    /// Subscribes to the notifications of every process on this database; `None` on SQLite.
    pub async fn listen(&self) -> Result<Option<Notifications>> {
        let Some(url) = self.postgres_url() else {
            return Ok(None);
        };
        let mut listener = PgListener::connect(url).await.map_err(connect_error)?;
        listener
            .listen_all([EVENTS, FINISHED])
            .await
            .map_err(db("listening for notifications"))?;
        Ok(Some(Notifications { listener }))
    }

    /// Sends the notification of an event appended on `conn` (PostgreSQL only; delivered
    /// when its transaction commits).
    pub(crate) async fn notify_event(
        &self,
        conn: &mut AnyConnection,
        run_id: &RunId,
        kind: &EventKind,
    ) -> Result<()> {
        if self.backend() != Backend::Postgres {
            return Ok(());
        }
        let (channel, payload) = notification(run_id, kind);
        sqlx::query(NOTIFY)
            .bind(channel)
            .bind(payload)
            .execute(conn)
            .await
            .map_err(db("sending a notification"))?;
        Ok(())
    }
}
