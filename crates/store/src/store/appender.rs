//! Group commit for the events of claims: one task writes every append waiting for it in
//! one transaction, so a batch pays one commit for all of its appends (on PostgreSQL the
//! commit waits for the WAL's flush; on SQLite each commit writes the pages it changed to the
//! WAL). On SQLite the batch is also one query: each statement sent to SQLite is a hand-off to
//! the connection's own thread and back (two thread wake-ups). On PostgreSQL it is two
//! statements whatever its size ([`postgres`]): each is a round trip to the database. A lone
//! append is a batch of one, so a single run waits for nothing.
//!
//! Every append keeps its own checks (lease, next seq, progress). A batch that fails is
//! rolled back and its appends are written one by one, so each caller gets its own answer,
//! error included (on PostgreSQL a deadlock with another transaction locking several runs,
//! which PostgreSQL breaks by failing one side, ends the same way).

mod postgres;

use crate::Result;
use crate::error::db;
use crate::store::{end_failed_transaction, progress_columns};
use crate::types::{Backend, Lease, RunProgress};
use sqlx::AnyPool;
use std::fmt::Write;
use std::sync::{Arc, OnceLock};
use tokio::sync::{mpsc, oneshot};

/// The most appends one batch writes: each gives three results (the progress update's,
/// the appended row, the insert's), and sqlx's SQLite driver buffers 50 before its thread
/// waits for the reader.
const MAX_BATCH: usize = 16;
const OP: &str = "appending an event";

/// An append of a claim's execution: the lease it is made under, the event as stored, and
/// a model call's progress.
#[derive(Debug)]
pub(crate) struct Append {
    pub(crate) lease: Lease,
    pub(crate) kind: &'static str,
    pub(crate) at_ms: i64,
    pub(crate) data: String,
    pub(crate) progress: Option<RunProgress>,
    /// The notification (channel, payload) sent on commit to other processes (PostgreSQL).
    pub(crate) notification: (&'static str, String),
}

/// SQLite: one append's statements; `{n}` is replaced by the number of its first argument and
/// `{item}` by its place in the batch. The update writes the progress only when there is
/// some (its arguments are NULL otherwise), and both check the lease.
const ITEM: &str = "UPDATE runs SET steps = ${7}, input_tokens = ${8}, output_tokens = ${9}, \
     cache_read_tokens = ${10}, cache_write_tokens = ${11} \
     WHERE ${7} IS NOT NULL AND id = ${1} AND status = 'running' AND lease_token = ${2}; \
     INSERT INTO run_events (run_id, seq, attempt, kind, at_ms, data) \
     SELECT ${1}, (SELECT COALESCE(MAX(seq), 0) + 1 FROM run_events WHERE run_id = ${1}), \
     ${3}, ${4}, ${5}, ${6} FROM runs WHERE id = ${1} AND status = 'running' AND lease_token = ${2} \
     RETURNING seq, {item} AS item; ";
/// Arguments per append.
const ARGS: usize = 11;

/// SQLite: the batch query of `size` appends, in a transaction of its own. The same text for every
/// batch of a size, so that the connection's statement cache keeps it prepared.
fn batch_sql(size: usize) -> String {
    let mut sql = String::from("BEGIN IMMEDIATE; ");
    for item in 0..size {
        let mut statements = ITEM.replace("{item}", &item.to_string());
        // From the highest number down, so that `${1}` does not rewrite `${10}`.
        for n in (1..=ARGS).rev() {
            statements = statements.replace(&format!("${{{n}}}"), &format!("${}", item * ARGS + n));
        }
        sql.push_str(&statements);
    }
    let _ = write!(sql, "COMMIT;");
    sql
}

/// The queries of every batch size, built once.
fn batch_sqls() -> &'static [String] {
    static SQLS: OnceLock<Vec<String>> = OnceLock::new();
    SQLS.get_or_init(|| (0..=MAX_BATCH).map(batch_sql).collect())
}

type Reply = oneshot::Sender<Result<Option<i64>>>;

/// The handle to the writing task, shared by a store's clones; the task starts with the
/// first append and ends when the last clone is dropped.
#[derive(Debug, Clone, Default)]
pub(crate) struct Appender {
    sender: Arc<OnceLock<mpsc::UnboundedSender<(Append, Reply)>>>,
}

impl Appender {
    /// Hands `append` to the writing task and returns at once: the task writes appends in
    /// the order they were handed over.
    pub(crate) fn submit(&self, pool: &AnyPool, backend: Backend, append: Append) -> Submitted {
        let sender = self.sender.get_or_init(|| {
            let (sender, receiver) = mpsc::unbounded_channel();
            tokio::spawn(write_batches(pool.clone(), backend, receiver));
            sender
        });
        let (reply, answer) = oneshot::channel();
        match sender.send((append, reply)) {
            Ok(()) => Submitted::Queued(answer),
            // The task is gone (its runtime ended): the append is written by its caller.
            Err(mpsc::error::SendError((append, _))) => Submitted::Alone {
                pool: pool.clone(),
                backend,
                append: Box::new(append),
            },
        }
    }
}

/// An append handed to the writing task.
#[derive(Debug)]
pub(crate) enum Submitted {
    /// Waiting for the task's answer.
    Queued(oneshot::Receiver<Result<Option<i64>>>),
    /// The task is gone: [`Submitted::seq`] writes it.
    Alone {
        pool: AnyPool,
        backend: Backend,
        append: Box<Append>,
    },
}

impl Submitted {
    /// The seq of the appended event, `None` when the lease was lost (nothing written then).
    pub(crate) async fn seq(self) -> Result<Option<i64>> {
        match self {
            Submitted::Queued(answer) => answer
                .await
                .unwrap_or_else(|_| Err(db(OP)(sqlx::Error::WorkerCrashed))),
            Submitted::Alone {
                pool,
                backend,
                append,
            } => {
                let seqs = write_batch(&pool, backend, std::slice::from_ref(&append)).await?;
                Ok(seqs.into_iter().next().flatten())
            }
        }
    }
}

/// The writing task: takes whatever appends are waiting (up to [`MAX_BATCH`]), writes them,
/// answers each. It writes through the store's writer ([`crate::Store::writer`]): on SQLite
/// the one connection every run's writes go through, whose caches keep the batches' prepared
/// statements and the pages of recent events; it takes it for each batch and gives it back
/// after, so that claims and ends take their turns between batches.
async fn write_batches(
    pool: AnyPool,
    backend: Backend,
    mut receiver: mpsc::UnboundedReceiver<(Append, Reply)>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while receiver.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (appends, replies): (Vec<Append>, Vec<Reply>) = batch.drain(..).unzip();
        match write_batch(&pool, backend, &appends).await {
            Ok(seqs) => {
                for (reply, seq) in replies.into_iter().zip(seqs) {
                    let _ = reply.send(Ok(seq));
                }
            }
            Err(error) => {
                tracing::debug!(%error, appends = appends.len(), "a batch of appends failed; writing them one by one");
                for (reply, append) in replies.into_iter().zip(&appends) {
                    let answer = write_batch(&pool, backend, std::slice::from_ref(append))
                        .await
                        .map(|seqs| seqs.into_iter().next().flatten());
                    let _ = reply.send(answer);
                }
            }
        }
    }
}

/// Writes a batch in one transaction: each append's seq, or `None` for a lost lease.
async fn write_batch(
    pool: &AnyPool,
    backend: Backend,
    appends: &[Append],
) -> Result<Vec<Option<i64>>> {
    match backend {
        Backend::Sqlite => write_batch_sqlite(pool, appends).await,
        Backend::Postgres => postgres::write_batch(pool, appends).await,
    }
}

/// SQLite: the batch as one query.
async fn write_batch_sqlite(pool: &AnyPool, appends: &[Append]) -> Result<Vec<Option<i64>>> {
    let mut query =
        sqlx::query_as::<_, (i64, i64)>(sqlx::AssertSqlSafe(batch_sqls()[appends.len()].as_str()));
    for append in appends {
        // NULL for every column when there is no progress: the update then writes nothing.
        let [steps, input, output, cache_read, cache_write] = match &append.progress {
            Some(progress) => progress_columns(progress).map(Some),
            None => [None; 5],
        };
        query = query
            .bind(append.lease.run_id.as_str())
            .bind(append.lease.token.as_str())
            .bind(append.lease.attempt)
            .bind(append.kind)
            .bind(append.at_ms)
            .bind(append.data.as_str())
            .bind(steps)
            .bind(input)
            .bind(output)
            .bind(cache_read)
            .bind(cache_write);
    }
    let mut conn = pool.acquire().await.map_err(db(OP))?;
    match query.fetch_all(&mut *conn).await {
        Ok(rows) => {
            let mut seqs = vec![None; appends.len()];
            for (seq, item) in rows {
                if let Some(slot) = usize::try_from(item).ok().and_then(|i| seqs.get_mut(i)) {
                    *slot = Some(seq);
                }
            }
            Ok(seqs)
        }
        Err(error) => {
            end_failed_transaction(conn).await;
            Err(db(OP)(error))
        }
    }
}
