//! A measurement, not a test (no threshold): what a claim, an event append and a page of the
//! run list (first, by cursor, filtered) and of the trace search cost with 0, 100,000 and
//! 1,000,000 finished runs stored. See `measure_stored_runs` in `suite.rs`.

use super::common::{PROJECT, TestDb, spec, with_project};
use rollout_domain::{EventKind, RunId, RunStatus, Usage};
use rollout_store::{Backend, FinishRun, RunFilter, TraceQuery};
use sqlx::{AssertSqlSafe, Executor};
use std::time::{Duration, Instant};

const LEASE: Duration = Duration::from_secs(600);
/// Operations timed per figure.
const ROUNDS: u32 = 200;

fn succeeded() -> FinishRun {
    FinishRun {
        status: RunStatus::Completed,
        outcome: None,
        reward: Some(1.0),
        evaluation: None,
        final_response: Some("done".into()),
        steps: 4,
        usage: Usage::default(),
        error: None,
    }
}

/// Adds finished runs `from..to` as one statement, copies of `template`'s row with ids
/// (`seed-00000001`…) that sort after the generated ones, so they fill the first pages.
async fn seed(db: &TestDb, template: &RunId, from: i64, to: i64) {
    let numbers = match db.store.backend() {
        Backend::Sqlite => format!(
            "WITH RECURSIVE n(i) AS (SELECT {from} UNION ALL SELECT i + 1 FROM n WHERE i + 1 < {to}) "
        ),
        Backend::Postgres => {
            format!("WITH n(i) AS (SELECT generate_series({from}::bigint, {to}::bigint - 1)) ")
        }
    };
    let id = match db.store.backend() {
        Backend::Sqlite => "printf('seed-%08d', n.i)",
        Backend::Postgres => "'seed-' || lpad(n.i::text, 8, '0')",
    };
    let sql = format!(
        "{numbers}INSERT INTO runs (id, project_id, spec, env_name, env_version, scenario, model, \
         status, reward, steps, attempts, created_at, started_at, finished_at) \
         SELECT {id}, r.project_id, r.spec, r.env_name, r.env_version, r.scenario, r.model, \
         'completed', 1.0, 4, 1, r.created_at - 10000000 + n.i, r.created_at, r.created_at \
         FROM n, runs r WHERE r.id = '{}'",
        template.0
    );
    let mut raw = db.raw().await;
    raw.execute(AssertSqlSafe(sql)).await.unwrap();
    if db.store.backend() == Backend::Postgres {
        raw.execute("ANALYZE runs").await.unwrap();
    }
}

fn per_op(started: Instant, rounds: u32) -> Duration {
    started.elapsed() / rounds
}

#[allow(clippy::print_stdout)]
pub(crate) async fn measure_stored_runs(db: &TestDb) {
    let store = &db.store;
    with_project(store).await;
    let template = RunId::generate();
    store
        .insert_run(&template, PROJECT, &spec("alpha", "answer", "m"))
        .await
        .unwrap();
    let claimed = store.claim_next_run("w", LEASE).await.unwrap().unwrap();
    store
        .finish_run(&claimed.lease, &succeeded())
        .await
        .unwrap();
    let mut stored = 0;
    for target in [0i64, 100_000, 1_000_000] {
        if target > stored {
            let started = Instant::now();
            seed(db, &template, stored, target).await;
            println!("seeded {} runs in {:?}", target - stored, started.elapsed());
            stored = target;
        }
        // A claim that finds a run, then the empty claim a worker makes after it.
        let (mut claim, mut empty, mut append) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
        for _ in 0..ROUNDS {
            let id = RunId::generate();
            store
                .insert_run(&id, PROJECT, &spec("alpha", "answer", "m"))
                .await
                .unwrap();
            let started = Instant::now();
            let run = store.claim_next_run("w", LEASE).await.unwrap().unwrap();
            claim += started.elapsed();
            let started = Instant::now();
            assert!(store.claim_next_run("w", LEASE).await.unwrap().is_none());
            empty += started.elapsed();
            let started = Instant::now();
            store
                .append_leased_event(
                    &run.lease,
                    &EventKind::Finished {
                        status: "completed".into(),
                        error: None,
                    },
                )
                .await
                .unwrap();
            append += started.elapsed();
            store.finish_run(&run.lease, &succeeded()).await.unwrap();
        }
        let started = Instant::now();
        for _ in 0..ROUNDS {
            let page = store
                .list_runs(PROJECT, &RunFilter::default())
                .await
                .unwrap();
            assert_eq!(page.len(), 50);
        }
        let list = per_op(started, ROUNDS);
        let deep = RunFilter {
            before: Some(format!("seed-{:08}", stored / 2)),
            ..RunFilter::default()
        };
        let started = Instant::now();
        for _ in 0..ROUNDS {
            store.list_runs(PROJECT, &deep).await.unwrap();
        }
        let list_deep = per_op(started, ROUNDS);
        // A status no stored run has: the page must not read the others to find none.
        let rare = RunFilter {
            status: Some(RunStatus::Cancelled),
            ..RunFilter::default()
        };
        let started = Instant::now();
        for _ in 0..ROUNDS {
            assert!(store.list_runs(PROJECT, &rare).await.unwrap().is_empty());
        }
        let list_rare = per_op(started, ROUNDS);
        let query = TraceQuery {
            status: Some(RunStatus::Completed),
            limit: 50,
            ..TraceQuery::default()
        };
        let started = Instant::now();
        for _ in 0..ROUNDS {
            store.search_runs(PROJECT, &query).await.unwrap();
        }
        let search = per_op(started, ROUNDS);
        println!(
            "{:?}, {stored} runs stored: claim {:?}, empty claim {:?}, event append {:?}, \
             run list page {list:?} (from the middle {list_deep:?}, of a status none has \
             {list_rare:?}), trace search page {search:?}",
            store.backend(),
            claim / ROUNDS,
            empty / ROUNDS,
            append / ROUNDS,
        );
    }
}
