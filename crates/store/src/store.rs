//! The [`Store`]: one `AnyPool` over SQLite or PostgreSQL, with the connect logic. The
//! operations live in the submodules, one per subject.

use crate::Result;
use crate::error::{StoreError, connect_error, corrupt, db};
use crate::types::{Backend, RunProgress, RunRecord};
use rollout_domain::{RunId, RunSpec, RunStatus, Usage};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyConnection, AnyPool, Connection, Transaction};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The columns of a run row, in the order [`RunRow`] reads them. A macro so that `concat!`
/// can build `&'static str` statements from it.
macro_rules! run_columns {
    () => {
        "id, project_id, spec, status, outcome, reward, evaluation, final_response, error, \
         steps, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, attempts, \
         created_at, started_at, finished_at"
    };
}

/// Binds a `RunProgress` as the next five arguments ([`progress_columns`]).
macro_rules! bind_progress {
    ($query:expr, $progress:expr) => {{
        let [steps, input, output, cache_read, cache_write] =
            $crate::store::progress_columns(&$progress);
        $query
            .bind(steps)
            .bind(input)
            .bind(output)
            .bind(cache_read)
            .bind(cache_write)
    }};
}

/// Binds a run's end (`appender::EndColumns`) as the arguments `$1`..`$14` of
/// `finish_update!`: the run, the claim's token, then the columns.
macro_rules! bind_end {
    ($query:expr, $lease:expr, $end:expr) => {{
        let end: &$crate::store::appender::EndColumns = $end;
        let [input, output, cache_read, cache_write] = end.tokens;
        $query
            .bind($lease.run_id.as_str())
            .bind($lease.token.as_str())
            .bind(end.status)
            .bind(end.outcome.as_deref())
            .bind(end.reward)
            .bind(end.evaluation.as_deref())
            .bind(end.final_response.as_deref())
            .bind(end.steps)
            .bind(input)
            .bind(output)
            .bind(cache_read)
            .bind(cache_write)
            .bind(end.error.as_deref())
            .bind(end.finished_at_ms)
    }};
}

mod appender;
pub(crate) mod deliveries;
mod deploys;
pub(crate) mod envs;
pub(crate) mod events;
mod gateway;
mod gauges;
pub(crate) mod idempotency;
mod jobs;
pub(crate) mod keys;
pub(crate) mod notifications;
pub(crate) mod projects;
pub(crate) mod queue;
mod review_queues;
mod reviews;
mod runs;
pub(crate) mod schedules;
mod serving;
mod shares;
mod tasksets;
pub(crate) mod traces;
mod training;
mod ui_sessions;

/// The embedded migrations, portable between both backends.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// How long an SQLite connection waits for the write lock before failing.
const SQLITE_BUSY_TIMEOUT_MS: u64 = 10_000;
const SQLITE_PRAGMAS: [&str; 5] = [
    // First, so that switching the journal mode below waits for other connections.
    "PRAGMA busy_timeout = 10000",
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA foreign_keys = ON",
    // SQLite reuses its WAL file from the start once checkpointed, but never shrinks it: one
    // large transaction (a job of many runs, a cancel of it) would leave its size on disk for
    // good. Cut back to 64 MiB whenever the WAL starts over.
    "PRAGMA journal_size_limit = 67108864",
];

/// Persistence and the run queue. Cheap to clone: clones share the connection pools.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    /// Where the writes of a run's path go ([`Store::writer`]): on SQLite a pool of one
    /// connection of its own, on PostgreSQL `pool` itself.
    writer: AnyPool,
    backend: Backend,
    /// The most a string (or free-form JSON value) inside an event may take; see
    /// `event_size`.
    max_event_bytes: usize,
    /// The URL, kept on PostgreSQL for the notification listener's own connection.
    postgres_url: Option<String>,
    /// The task that writes claims' appends in batches (see `appender`).
    appender: appender::Appender,
    /// The versions run requests were served with (see `serving`).
    serving: Arc<serving::ServingVersions>,
}

impl Store {
    /// Connects to `sqlite://path` (the file and its directory are created if missing) or
    /// `postgres://...`, and applies the migrations.
    ///
    /// A PostgreSQL URL may carry libpq's `options`, e.g.
    /// `?options=-c%20search_path%3Dmy_schema`, to keep the tables in a schema of one's own.
    pub async fn connect(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let (backend, url) = prepare_url(url).await?;
        let options = AnyConnectOptions::from_str(&url).map_err(connect_error)?;
        let pool = connect_pool(
            &options,
            backend,
            match backend {
                // Each SQLite connection is a thread of its own that every query is handed to
                // and back from, and it drops its page cache whenever another connection
                // wrote: writes take turns anyway, and past 4 the threads cost more than the
                // reads they run side by side (bench/RESULTS.md item 14: 8 took ~10 % more
                // CPU per run at C=64, 2 queued the runs).
                Backend::Sqlite => 4,
                Backend::Postgres => 10,
            },
        )
        .await?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|error| StoreError::Migrate {
                message: error.to_string(),
            })?;
        let writer = match backend {
            Backend::Sqlite => connect_pool(&options, backend, 1).await?,
            Backend::Postgres => pool.clone(),
        };
        tracing::debug!(backend = backend.as_str(), "store connected and migrated");
        Ok(Store {
            pool,
            writer,
            backend,
            max_event_bytes: crate::DEFAULT_MAX_EVENT_BYTES,
            postgres_url: (backend == Backend::Postgres).then_some(url),
            appender: appender::Appender::default(),
            serving: Arc::default(),
        })
    }

    /// Events appended through this store keep strings and free-form JSON values of at most
    /// `bytes` (the rest is cut, with its size and SHA-256).
    pub fn with_max_event_bytes(mut self, bytes: usize) -> Self {
        self.max_event_bytes = bytes.max(1024);
        self
    }

    /// Which database this store talks to.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Closes every connection; later operations fail. For orderly shutdown and tests.
    pub async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Begins a transaction that writes, on [`Store::pool`]. On SQLite it takes the write
    /// lock when it begins (`BEGIN IMMEDIATE`), waiting for it in the busy handler: a
    /// transaction begun deferred that reads before it writes is failed at once with
    /// `SQLITE_BUSY` ("database is locked") when another connection committed in between,
    /// its snapshot being stale, whatever the busy timeout
    /// (`suite::reviewers_writing_side_by_side_all_succeed`). PostgreSQL's plain `BEGIN`
    /// has no such failure.
    pub(crate) async fn begin_write(&self, op: &'static str) -> Result<Transaction<'static, Any>> {
        let begin = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        };
        begin.map_err(db(op))
    }

    /// The pool for the writes every run makes (its insert, claim, events, heartbeats and
    /// end). On SQLite it is one connection that does nothing else: SQLite writes take turns
    /// whatever the number of connections, and a connection drops its whole page cache
    /// whenever another one committed, so a writer of its own keeps the pages of the queue
    /// and of recent events cached from one write to the next, and writers wait for it in
    /// the pool rather than in SQLite's busy handler (bench/RESULTS.md item 15). Any write
    /// may still go through [`Store::pool`], a transaction begun with
    /// [`Store::begin_write`]: SQLite orders it with the others.
    pub(crate) fn writer(&self) -> &AnyPool {
        &self.writer
    }

    pub(crate) fn appender(&self) -> &appender::Appender {
        &self.appender
    }

    pub(crate) fn serving(&self) -> &serving::ServingVersions {
        &self.serving
    }

    pub(crate) fn postgres_url(&self) -> Option<&str> {
        self.postgres_url.as_deref()
    }

    pub(crate) fn max_event_bytes(&self) -> usize {
        self.max_event_bytes
    }
}

/// How long a PostgreSQL connection may sit idle in the pool before it is pinged when taken
/// out ([`connect_pool`]).
const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// A pool of at most `connections`, each configured by [`configure`].
///
/// sqlx pings a connection each time it is taken from the pool, unless told not to (and
/// again, always, when it is given back): a round trip to PostgreSQL, a hand-off to the
/// connection's thread and back on SQLite, for every statement run on the pool, which took
/// about 4 % of the server's CPU on PostgreSQL at C = 64 (bench/RESULTS.md item 21). A
/// SQLite connection is in this process and cannot be cut off, so it is never pinged when
/// taken; a PostgreSQL connection is pinged only after [`PING_AFTER_IDLE`] idle, the case the
/// ping is for (a database restarted, or a proxy that closed a quiet connection): a busy
/// connection that broke fails its statement and is dropped when given back.
async fn connect_pool(
    options: &AnyConnectOptions,
    backend: Backend,
    connections: u32,
) -> Result<AnyPool> {
    let pool = AnyPoolOptions::new()
        .max_connections(connections)
        .acquire_timeout(Duration::from_millis(SQLITE_BUSY_TIMEOUT_MS * 3))
        .after_connect(|conn, _meta| Box::pin(async move { configure(conn).await }))
        .test_before_acquire(false);
    // SQLite takes no hook at all: nothing to run (nor a future to allocate) per statement.
    let pool = match backend {
        Backend::Sqlite => pool,
        Backend::Postgres => pool.before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for > PING_AFTER_IDLE {
                    conn.ping().await?;
                }
                Ok(true)
            })
        }),
    };
    pool.connect_with(options.clone())
        .await
        .map_err(connect_error)
}

/// Checks the URL's scheme and, for SQLite, makes sure the file can be created.
async fn prepare_url(url: &str) -> Result<(Backend, String)> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok((Backend::Postgres, url.to_string()));
    }
    let Some(rest) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    else {
        return Err(StoreError::UnsupportedUrl {
            url: url.to_string(),
        });
    };
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path.starts_with(":memory:") {
        return Err(StoreError::UnsupportedUrl {
            url: url.to_string(),
        });
    }
    if let Some(parent) = std::path::Path::new(path).parent()
        && !parent.as_os_str().is_empty()
    {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|source| StoreError::CreateDir {
                path: parent.display().to_string(),
                source,
            })?;
    }
    let url = if query.split('&').any(|pair| pair.starts_with("mode=")) {
        url.to_string()
    } else if query.is_empty() {
        format!("sqlite://{path}?mode=rwc")
    } else {
        format!("sqlite://{path}?{query}&mode=rwc")
    };
    Ok((Backend::Sqlite, url))
}

/// Per-connection settings. SQLite: WAL, a busy timeout and foreign keys.
async fn configure(conn: &mut AnyConnection) -> std::result::Result<(), sqlx::Error> {
    if conn.backend_name() == "SQLite" {
        for pragma in SQLITE_PRAGMAS {
            sqlx::query(pragma).execute(&mut *conn).await?;
        }
    }
    Ok(())
}

/// Unix time now, in milliseconds.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A duration in milliseconds, saturating.
pub(crate) fn duration_ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// A token count as a BIGINT, saturating.
/// A run's progress as its columns: steps, then input, output, cache read and cache write
/// tokens.
pub(crate) fn progress_columns(progress: &RunProgress) -> [i64; 5] {
    let usage = &progress.usage;
    [
        progress.steps,
        tokens_to_db(usage.input_tokens),
        tokens_to_db(usage.output_tokens),
        tokens_to_db(usage.cache_read_tokens),
        tokens_to_db(usage.cache_write_tokens),
    ]
}

pub(crate) fn tokens_to_db(tokens: u64) -> i64 {
    i64::try_from(tokens).unwrap_or(i64::MAX)
}

pub(crate) fn tokens_from_db(tokens: i64) -> u64 {
    u64::try_from(tokens).unwrap_or(0)
}

/// A run row as selected with [`run_columns!`].
#[derive(sqlx::FromRow)]
pub(crate) struct RunRow {
    id: String,
    project_id: String,
    spec: String,
    status: String,
    outcome: Option<String>,
    reward: Option<f64>,
    evaluation: Option<String>,
    final_response: Option<String>,
    error: Option<String>,
    steps: i64,
    input_tokens: i64,
    output_tokens: i64,
    cache_read_tokens: i64,
    cache_write_tokens: i64,
    attempts: i64,
    created_at: i64,
    started_at: Option<i64>,
    finished_at: Option<i64>,
}

impl RunRow {
    pub(crate) fn into_record(self) -> Result<RunRecord> {
        let spec: RunSpec = serde_json::from_str(&self.spec).map_err(corrupt("run spec"))?;
        let status: RunStatus = self.status.parse().map_err(corrupt("run status"))?;
        let evaluation = self
            .evaluation
            .map(|text| serde_json::from_str(&text))
            .transpose()
            .map_err(corrupt("run evaluation"))?;
        Ok(RunRecord {
            id: RunId(self.id),
            project_id: self.project_id,
            spec,
            status,
            outcome: self.outcome,
            reward: self.reward,
            evaluation,
            final_response: self.final_response,
            error: self.error,
            steps: self.steps,
            usage: Usage {
                input_tokens: tokens_from_db(self.input_tokens),
                output_tokens: tokens_from_db(self.output_tokens),
                cache_read_tokens: tokens_from_db(self.cache_read_tokens),
                cache_write_tokens: tokens_from_db(self.cache_write_tokens),
            },
            attempts: self.attempts,
            created_at_ms: self.created_at,
            started_at_ms: self.started_at,
            finished_at_ms: self.finished_at,
        })
    }
}

/// Ends the transaction a failed multi-statement query (`BEGIN IMMEDIATE; ..; COMMIT;` on
/// SQLite) left open on `conn`. A connection that cannot roll back (nothing was open because
/// SQLite rolled back itself, or it is broken) leaves the pool rather than be reused in doubt.
/// Gives the connection back when it is still fit.
pub(crate) async fn end_failed_transaction(
    mut conn: sqlx::pool::PoolConnection<sqlx::Any>,
) -> Option<sqlx::pool::PoolConnection<sqlx::Any>> {
    match sqlx::query("ROLLBACK").execute(&mut *conn).await {
        Ok(_) => Some(conn),
        Err(_) => {
            drop(conn.detach());
            None
        }
    }
}

/// The one row a write's `RETURNING` gives, from the rows of a statement read to its end
/// (`fetch_all`). SQLite checkpoints its WAL automatically only when a statement outside a
/// transaction steps to its end, not when it is reset after its first row as `fetch_one`
/// leaves it: a writer whose only writes were read that way (a burst of submitted runs) let
/// the WAL grow by every page it wrote, and every read after it searched the longer WAL
/// (bench/RESULTS.md item 17).
pub(crate) fn written_row<T>(rows: Vec<T>, op: &'static str) -> Result<T> {
    rows.into_iter()
        .next()
        .ok_or_else(|| db(op)(sqlx::Error::RowNotFound))
}

/// Runs `attempt` again (a few times) when it lost a race on a unique key, as two concurrent
/// appends computing the same next sequence number do on PostgreSQL.
pub(crate) async fn retry_on_conflict<T, F, Fut>(mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut tries = 0;
    loop {
        match attempt().await {
            Err(error) if error.is_unique_violation() && tries < 5 => tries += 1,
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sqlite_urls_get_create_mode_and_others_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join("db.sqlite");
        let url = format!("sqlite://{}", path.display());
        let (backend, prepared) = prepare_url(&url).await.unwrap();
        assert_eq!(backend, Backend::Sqlite);
        assert_eq!(prepared, format!("{url}?mode=rwc"));
        assert!(path.parent().unwrap().is_dir());
        let (_, prepared) = prepare_url(&format!("{url}?cache=shared")).await.unwrap();
        assert_eq!(prepared, format!("{url}?cache=shared&mode=rwc"));
        let (_, prepared) = prepare_url(&format!("{url}?mode=ro")).await.unwrap();
        assert_eq!(prepared, format!("{url}?mode=ro"));
        let (backend, _) = prepare_url("postgres://u@localhost/db").await.unwrap();
        assert_eq!(backend, Backend::Postgres);
        assert!(prepare_url("mysql://localhost/db").await.is_err());
        assert!(prepare_url("sqlite::memory:").await.is_err());
    }
}
