//! Group commit for the events of claims and, on SQLite, the inserts of new runs: one task
//! writes every append and insert waiting for it in one transaction, so a batch pays one
//! commit for all of its writes (on PostgreSQL the
//! commit waits for the WAL's flush; on SQLite each commit writes the pages it changed to the
//! WAL). On SQLite the batch is also one query: each statement sent to SQLite is a hand-off to
//! the connection's own thread and back (two thread wake-ups). On PostgreSQL it is two
//! statements whatever its size ([`postgres`]): each is a round trip to the database. A lone
//! append is a batch of one, so a single run waits for nothing.
//!
//! Every append keeps its own checks (lease, next seq, progress). A batch that fails is
//! rolled back and its appends and inserts are written one by one, so each caller gets its
//! own answer, error included (on PostgreSQL a deadlock with another transaction locking several runs,
//! which PostgreSQL breaks by failing one side, ends the same way).

mod postgres;

use crate::Result;
use crate::error::db;
use crate::store::runs::{INSERT_RUN_ONLY, INSERT_RUNS_SQLITE, NewRun};
use crate::store::{end_failed_transaction, progress_columns};
use crate::types::{Backend, Lease, RunProgress};
use sqlx::AnyPool;
use std::collections::VecDeque;
use std::fmt::Write;
use std::sync::{Arc, OnceLock};
use tokio::sync::{mpsc, oneshot};

/// The most appends one batch holds: each gives three results (the progress update's, the
/// appended row, the insert's), and sqlx's SQLite driver buffers 50 before its thread waits
/// for the reader (a full batch gives 51 with `BEGIN`, the inserts' statement and `COMMIT`:
/// the thread may wait once, for a reader that drains the results as they come).
const MAX_BATCH: usize = 16;
/// The most inserts of runs one batch holds (one statement whatever their number).
const MAX_INSERTS: usize = 16;
const OP: &str = "appending an event";
const INSERT_OP: &str = "inserting a run";

/// An append of a claim's execution: the lease it is made under, the event as stored, and
/// a model call's progress, or the run's end.
#[derive(Debug)]
pub(crate) struct Append {
    pub(crate) lease: Lease,
    pub(crate) kind: &'static str,
    pub(crate) at_ms: i64,
    pub(crate) data: String,
    pub(crate) progress: Option<RunProgress>,
    /// The notification (channel, payload) sent on commit to other processes (PostgreSQL).
    pub(crate) notification: (&'static str, String),
    /// The run's end, written with its `finished` event (the append's): on SQLite only,
    /// where an end rides in the batch of other runs' events instead of a transaction of its
    /// own (PostgreSQL writes ends on their own, `Store::finish_run`).
    pub(crate) end: Option<Box<EndColumns>>,
}

/// A run's end as its row stores it (`finish_update!`'s `$3`..`$14`): texts already cut.
#[derive(Debug, Clone)]
pub(crate) struct EndColumns {
    pub(crate) status: &'static str,
    pub(crate) outcome: Option<String>,
    pub(crate) reward: Option<f64>,
    pub(crate) evaluation: Option<String>,
    pub(crate) final_response: Option<String>,
    pub(crate) steps: i64,
    /// Input, output, cache read and cache write tokens.
    pub(crate) tokens: [i64; 4],
    pub(crate) error: Option<String>,
    pub(crate) finished_at_ms: i64,
}

/// SQLite: one append's statements, numbered from `$1` (renumbered by [`push_item`]);
/// `{item}` is its place in the batch. The update writes the progress only when there is
/// some (its arguments are NULL otherwise), and both check the lease.
const ITEM: &str = "UPDATE runs SET steps = $7, input_tokens = $8, output_tokens = $9, \
     cache_read_tokens = $10, cache_write_tokens = $11 \
     WHERE $7 IS NOT NULL AND id = $1 AND status = 'running' AND lease_token = $2; \
     INSERT INTO run_events (run_id, seq, attempt, kind, at_ms, data) \
     SELECT $1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM run_events WHERE run_id = $1), \
     $3, $4, $5, $6 FROM runs WHERE id = $1 AND status = 'running' AND lease_token = $2 \
     RETURNING seq, {item} AS item; ";
/// Arguments per append.
const ARGS: usize = 11;
/// SQLite: one end's statements, the finish's update and its event.
const END_ITEM: &str = crate::store::queue::FINISH_ITEM_SQLITE;
/// Arguments per end.
const END_ARGS: usize = 18;
/// SQLite: the batch's inserts of runs, after its appends and ends, in every batch (an empty
/// array inserts nothing). No rows: the batch's success is their answer.
const INSERTS_ITEM: &str = INSERT_RUNS_SQLITE;

/// SQLite: the batch query of `appends` appends, then `ends` ends, then the inserts of runs,
/// in a transaction of its own. The same text for every batch of a shape, so that the
/// connection's statement cache keeps it prepared: the inserts are one statement whatever
/// their number, or each number would make a shape of its own and the shapes in use would
/// outgrow the cache (sqlx keeps 100 statements a connection), which then prepared the
/// evicted ones again (4.5 % of the server's CPU when each insert was a statement).
fn batch_sql(appends: usize, ends: usize) -> String {
    let mut sql = String::from("BEGIN IMMEDIATE; ");
    for item in 0..appends {
        push_item(&mut sql, ITEM, item, item * ARGS);
    }
    for end in 0..ends {
        push_item(
            &mut sql,
            END_ITEM,
            appends + end,
            appends * ARGS + end * END_ARGS,
        );
    }
    push_item(
        &mut sql,
        INSERTS_ITEM,
        appends + ends,
        appends * ARGS + ends * END_ARGS,
    );
    sql.push_str("; COMMIT;");
    sql
}

/// Appends `statements` to `sql` with `{item}` replaced by `item` and each argument `$n`
/// by `$(n + offset)`.
fn push_item(sql: &mut String, statements: &str, item: usize, offset: usize) {
    let statements = statements.replace("{item}", &item.to_string());
    let mut rest = statements.as_str();
    while let Some(at) = rest.find('$') {
        let (before, after) = rest.split_at(at + 1);
        sql.push_str(before);
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        let (number, after) = after.split_at(digits);
        if let Ok(number) = number.parse::<usize>() {
            let _ = write!(sql, "{}", number + offset);
        }
        rest = after;
    }
    sql.push_str(rest);
}

/// The query of a batch of `appends` appends and `ends` ends, built once per shape. A
/// `&'static str`, which sqlx uses as it is (it copies any other `&str` for each query).
fn batch_query(appends: usize, ends: usize) -> &'static str {
    static SQLS: [[OnceLock<String>; MAX_BATCH + 1]; MAX_BATCH + 1] =
        [const { [const { OnceLock::new() }; MAX_BATCH + 1] }; MAX_BATCH + 1];
    SQLS[appends][ends].get_or_init(|| batch_sql(appends, ends))
}

type Reply = oneshot::Sender<Result<Option<i64>>>;
type InsertReply = oneshot::Sender<Result<()>>;

/// The handle to the writing task, shared by a store's clones; the task starts with the
/// first write and ends when the last clone is dropped.
#[derive(Debug, Clone, Default)]
pub(crate) struct Appender {
    senders: Arc<OnceLock<Senders>>,
}

/// The writing task's two queues.
#[derive(Debug)]
struct Senders {
    appends: mpsc::UnboundedSender<(Append, Reply)>,
    inserts: mpsc::UnboundedSender<(NewRun, InsertReply)>,
}

impl Appender {
    fn senders(&self, pool: &AnyPool, backend: Backend) -> &Senders {
        self.senders.get_or_init(|| {
            let (appends, append_receiver) = mpsc::unbounded_channel();
            let (inserts, insert_receiver) = mpsc::unbounded_channel();
            tokio::spawn(write_batches(
                pool.clone(),
                backend,
                append_receiver,
                insert_receiver,
            ));
            Senders { appends, inserts }
        })
    }

    /// Hands `append` to the writing task and returns at once: the task writes appends in
    /// the order they were handed over.
    pub(crate) fn submit(&self, pool: &AnyPool, backend: Backend, append: Append) -> Submitted {
        let (reply, answer) = oneshot::channel();
        match self.senders(pool, backend).appends.send((append, reply)) {
            Ok(()) => Submitted::Queued(answer),
            // The task is gone (its runtime ended): the append is written by its caller.
            Err(mpsc::error::SendError((append, _))) => Submitted::Alone {
                pool: pool.clone(),
                backend,
                append: Box::new(append),
            },
        }
    }

    /// SQLite: inserts `run` in the writing task's next batch and waits for its commit. (On
    /// PostgreSQL an insert is one statement and commit of its own: `Store::insert_run`.)
    pub(crate) async fn insert(&self, pool: &AnyPool, run: NewRun) -> Result<()> {
        let (reply, answer) = oneshot::channel();
        match self
            .senders(pool, Backend::Sqlite)
            .inserts
            .send((run, reply))
        {
            Ok(()) => answer
                .await
                .unwrap_or_else(|_| Err(db(INSERT_OP)(sqlx::Error::WorkerCrashed))),
            // The task is gone (its runtime ended): the insert is written by its caller.
            Err(mpsc::error::SendError((run, _))) => {
                write_batch_sqlite(pool, &[], std::slice::from_ref(&run))
                    .await
                    .map(|_| ())
            }
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
                let seqs = write_batch(&pool, backend, std::slice::from_ref(&append), &[]).await?;
                Ok(seqs.into_iter().next().flatten())
            }
        }
    }
}

/// The writing task: takes whatever appends and inserts are waiting (up to [`MAX_BATCH`]
/// and [`MAX_INSERTS`]), writes them, answers each. It writes through the store's writer
/// ([`crate::Store::writer`]): on SQLite the one connection every run's writes go through,
/// whose caches keep the batches' prepared statements and the pages of recent events; it
/// takes it for each batch and gives it back after, so that claims take their turns between
/// batches.
async fn write_batches(
    pool: AnyPool,
    backend: Backend,
    mut appends: mpsc::UnboundedReceiver<(Append, Reply)>,
    mut inserts: mpsc::UnboundedReceiver<(NewRun, InsertReply)>,
) {
    let mut waiting = VecDeque::with_capacity(MAX_BATCH);
    let mut waiting_inserts = VecDeque::with_capacity(MAX_INSERTS);
    let (mut appends_open, mut inserts_open) = (true, true);
    loop {
        if waiting.is_empty() && waiting_inserts.is_empty() {
            if !appends_open && !inserts_open {
                break;
            }
            // Wait for either queue; a closed one waits forever (the other still ends).
            tokio::select! {
                append = appends.recv(), if appends_open => match append {
                    Some(append) => waiting.push_back(append),
                    None => appends_open = false,
                },
                insert = inserts.recv(), if inserts_open => match insert {
                    Some(insert) => waiting_inserts.push_back(insert),
                    None => inserts_open = false,
                },
            }
        }
        // Whatever else is waiting joins the batch.
        while waiting.len() < MAX_BATCH
            && let Ok(append) = appends.try_recv()
        {
            waiting.push_back(append);
        }
        while waiting_inserts.len() < MAX_INSERTS
            && let Ok(insert) = inserts.try_recv()
        {
            waiting_inserts.push_back(insert);
        }
        let (new_runs, insert_replies): (Vec<NewRun>, Vec<InsertReply>) = waiting_inserts
            .drain(..waiting_inserts.len().min(MAX_INSERTS))
            .unzip();
        let (batch, replies): (Vec<Append>, Vec<Reply>) =
            next_batch(&mut waiting).into_iter().unzip();
        if batch.is_empty() && new_runs.is_empty() {
            continue;
        }
        match write_batch(&pool, backend, &batch, &new_runs).await {
            Ok(seqs) => {
                for (reply, seq) in replies.into_iter().zip(seqs) {
                    let _ = reply.send(Ok(seq));
                }
                for reply in insert_replies {
                    let _ = reply.send(Ok(()));
                }
            }
            Err(error) => {
                tracing::debug!(%error, appends = batch.len(), inserts = new_runs.len(), "a batch failed; writing its appends and inserts one by one");
                for (reply, append) in replies.into_iter().zip(&batch) {
                    let answer = write_batch(&pool, backend, std::slice::from_ref(append), &[])
                        .await
                        .map(|seqs| seqs.into_iter().next().flatten());
                    let _ = reply.send(answer);
                }
                for (reply, run) in insert_replies.into_iter().zip(&new_runs) {
                    let answer = write_batch(&pool, backend, &[], std::slice::from_ref(run))
                        .await
                        .map(|_| ());
                    let _ = reply.send(answer);
                }
            }
        }
    }
}

/// The next batch from the front of `waiting`: its events first, then its ends (the shape of
/// [`batch_sql`]), each part in the order it was handed over. An end goes after the events
/// of other runs it was handed over before, never after an event of its own run: the batch
/// stops before an append of a run whose end it holds (that append is written next, after
/// the end, and finds the lease gone).
fn next_batch(waiting: &mut VecDeque<(Append, Reply)>) -> Vec<(Append, Reply)> {
    let mut events = Vec::with_capacity(waiting.len().min(MAX_BATCH));
    let mut ends: Vec<(Append, Reply)> = Vec::new();
    while events.len() + ends.len() < MAX_BATCH {
        let Some((append, _)) = waiting.front() else {
            break;
        };
        let ended = ends
            .iter()
            .any(|(end, _)| end.lease.run_id == append.lease.run_id);
        if ended {
            break;
        }
        let Some(item) = waiting.pop_front() else {
            break;
        };
        if item.0.end.is_some() {
            ends.push(item);
        } else {
            events.push(item);
        }
    }
    events.append(&mut ends);
    events
}

/// Writes a batch in one transaction: each append's seq, or `None` for a lost lease. The
/// inserts of runs are committed with it, or none is.
async fn write_batch(
    pool: &AnyPool,
    backend: Backend,
    appends: &[Append],
    inserts: &[NewRun],
) -> Result<Vec<Option<i64>>> {
    match backend {
        Backend::Sqlite => write_batch_sqlite(pool, appends, inserts).await,
        Backend::Postgres => {
            // Only SQLite hands inserts over (`Appender::insert`); were one here, it is
            // written on its own rather than lost.
            for run in inserts {
                run.bind(sqlx::query_as::<_, (i64, i64)>(INSERT_RUN_ONLY))
                    .fetch_all(pool)
                    .await
                    .map_err(db(INSERT_OP))?;
            }
            if appends.is_empty() {
                return Ok(Vec::new());
            }
            postgres::write_batch(pool, appends).await
        }
    }
}

/// SQLite: the batch as one query (its events, then its ends, then its inserts).
async fn write_batch_sqlite(
    pool: &AnyPool,
    appends: &[Append],
    inserts: &[NewRun],
) -> Result<Vec<Option<i64>>> {
    // Each item's place in `appends`, in the query's order: the events, then the ends.
    let places: Vec<usize> = (0..appends.len())
        .filter(|&i| appends[i].end.is_none())
        .chain((0..appends.len()).filter(|&i| appends[i].end.is_some()))
        .collect();
    let ends = appends.iter().filter(|append| append.end.is_some()).count();
    let mut query = sqlx::query_as::<_, (i64, i64)>(batch_query(appends.len() - ends, ends));
    for append in appends.iter().filter(|append| append.end.is_none()) {
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
    for append in appends {
        if let Some(end) = &append.end {
            query = bind_end!(query, &append.lease, end)
                .bind(append.lease.attempt)
                .bind(append.kind)
                .bind(append.at_ms)
                .bind(append.data.as_str());
        }
    }
    query = query.bind(NewRun::json_array(inserts)?);
    let op = if appends.is_empty() { INSERT_OP } else { OP };
    let mut conn = pool.acquire().await.map_err(db(op))?;
    match query.fetch_all(&mut *conn).await {
        Ok(rows) => {
            let mut seqs = vec![None; appends.len()];
            for (seq, item) in rows {
                let place = usize::try_from(item).ok().and_then(|i| places.get(i));
                if let Some(slot) = place.and_then(|&i| seqs.get_mut(i)) {
                    *slot = Some(seq);
                }
            }
            Ok(seqs)
        }
        Err(error) => {
            end_failed_transaction(conn).await;
            Err(db(op)(error))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rollout_domain::RunId;

    fn item(run: &str, end: bool) -> (Append, Reply) {
        let append = Append {
            lease: Lease {
                run_id: RunId(run.into()),
                token: "t".into(),
                attempt: 1,
            },
            kind: if end { "finished" } else { "error" },
            at_ms: 0,
            data: String::new(),
            progress: None,
            notification: ("events", String::new()),
            end: end.then(|| {
                Box::new(EndColumns {
                    status: "completed",
                    outcome: None,
                    reward: None,
                    evaluation: None,
                    final_response: None,
                    steps: 0,
                    tokens: [0; 4],
                    error: None,
                    finished_at_ms: 0,
                })
            }),
        };
        (append, oneshot::channel().0)
    }

    fn shape(batch: &[(Append, Reply)]) -> Vec<(String, bool)> {
        batch
            .iter()
            .map(|(a, _)| (a.lease.run_id.to_string(), a.end.is_some()))
            .collect()
    }

    /// An end goes after the other runs' events of its batch, never after an event of its
    /// own run handed over after it: the batch stops there.
    #[test]
    fn a_batch_puts_its_ends_last_and_stops_before_an_events_own_end() {
        let mut waiting: VecDeque<_> = [
            item("a", false),
            item("b", true),
            item("c", false),
            item("b", false),
            item("c", true),
        ]
        .into();
        let first = next_batch(&mut waiting);
        assert_eq!(
            shape(&first),
            [("a".into(), false), ("c".into(), false), ("b".into(), true)]
        );
        let second = next_batch(&mut waiting);
        assert_eq!(shape(&second), [("b".into(), false), ("c".into(), true)]);
        assert!(waiting.is_empty());
        // At most MAX_BATCH, in the order handed over.
        let mut many: VecDeque<_> = (0..MAX_BATCH + 3)
            .map(|n| item(&n.to_string(), false))
            .collect();
        assert_eq!(next_batch(&mut many).len(), MAX_BATCH);
        assert_eq!(many.len(), 3);
    }

    /// A batch of inserts that fails (one run of a project that does not exist) is written
    /// insert by insert: the others are stored and answered `Ok`, the bad one alone gets the
    /// error. The inserts are all waiting before the task starts, so they are one batch.
    #[tokio::test]
    async fn a_failed_batch_of_inserts_answers_each_insert_alone() {
        use crate::store::runs::Placement;
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
        let store = crate::Store::connect(&url).await.unwrap();
        store.ensure_project("p", "P").await.unwrap();
        let spec: rollout_domain::RunSpec = serde_json::from_value(serde_json::json!({
            "env_name": "e", "env_version": 1, "scenario_name": "s", "model": "m",
            "max_steps": 1, "agent_timeout_seconds": 1, "grading_timeout_seconds": 1
        }))
        .unwrap();
        let (appends, append_receiver) = mpsc::unbounded_channel();
        let (inserts, insert_receiver) = mpsc::unbounded_channel();
        let mut answers = Vec::new();
        for project in ["p", "p", "no-such-project", "p", "p"] {
            let id = RunId::generate();
            let run = NewRun::new(&id, project, &spec, 1, &Placement::Queued).unwrap();
            let (reply, answer) = oneshot::channel();
            inserts.send((run, reply)).unwrap();
            answers.push((id, project, answer));
        }
        drop(inserts);
        // Both queues must close for the task to end: the appends' sender goes now too.
        drop(appends);
        write_batches(
            store.writer().clone(),
            Backend::Sqlite,
            append_receiver,
            insert_receiver,
        )
        .await;
        for (id, project, answer) in answers {
            let answer = answer.await.unwrap();
            let stored = store.get_run(project, id.as_str()).await.unwrap();
            if project == "p" {
                assert!(answer.is_ok(), "{answer:?}");
                assert!(stored.is_some());
            } else {
                assert!(answer.is_err());
                assert_eq!(stored, None);
            }
        }
    }

    /// Each item's arguments are numbered after the previous items', events first.
    #[test]
    fn a_batch_numbers_the_arguments_of_its_items_in_turn() {
        let sql = batch_sql(2, 1);
        let highest = sql
            .split('$')
            .skip(1)
            .filter_map(|rest| {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                digits.parse::<usize>().ok()
            })
            .max();
        assert_eq!(highest, Some(2 * ARGS + END_ARGS + 1));
        assert!(sql.contains("lease_token = $13"), "{sql}");
        assert!(sql.contains("lease_token = $24"), "{sql}");
        assert!(sql.contains("finished_at = $36"), "{sql}");
        assert!(sql.contains("2 AS item"), "{sql}");
        // The inserts come last, as one statement of one argument.
        assert!(sql.contains("json_each($41)); COMMIT;"), "{sql}");
        assert!(sql.starts_with("BEGIN IMMEDIATE; ") && sql.ends_with("COMMIT;"));
        // A batch of inserts alone.
        assert!(batch_sql(0, 0).contains("json_each($1)"));
    }
}
