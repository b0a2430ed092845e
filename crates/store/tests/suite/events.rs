//! Trace events: numbering and listing.

use super::common::{PROJECT, TestDb, spec, with_project};
use rollout_domain::{EventKind, RunId};
use rollout_store::{Store, StoreNotification};
use std::collections::BTreeSet;

fn error_event(n: usize) -> EventKind {
    EventKind::Error {
        phase: "model".into(),
        message: format!("retry {n}"),
    }
}

async fn new_run(store: &Store) -> RunId {
    let id = RunId::generate();
    store
        .insert_run(&id, PROJECT, &spec("alpha", "answer", "m"))
        .await
        .unwrap();
    id
}

/// A new run, claimed by `w1`: its lease.
async fn claimed_run(store: &Store) -> rollout_store::Lease {
    new_run(store).await;
    store
        .claim_next_run("w1", std::time::Duration::from_secs(600))
        .await
        .unwrap()
        .expect("a queued run to claim")
        .lease
}

pub(crate) async fn events_are_numbered_from_one_and_listed_after_a_seq(db: &TestDb) {
    let store = &db.store;
    with_project(store).await;
    let run = new_run(store).await;
    let other = new_run(store).await;

    let kinds = vec![
        EventKind::AttemptStarted {
            attempt: 1,
            worker: "w1".into(),
        },
        EventKind::EnvConnected {
            server_name: "alpha".into(),
            version: 1,
            duration_ms: 12,
        },
        error_event(1),
        EventKind::Answer {
            text: "Paris".into(),
            outcome: "answered".into(),
        },
        EventKind::Finished {
            status: "completed".into(),
            error: None,
        },
    ];
    let mut appended = Vec::new();
    for kind in &kinds {
        let event = store.append_event(&run, 1, kind).await.unwrap();
        assert_eq!(&event.kind, kind);
        assert_eq!(event.attempt, 1);
        assert!(event.at_ms > 0);
        appended.push(event);
    }
    let seqs: Vec<i64> = appended.iter().map(|event| event.seq).collect();
    assert_eq!(seqs, vec![1, 2, 3, 4, 5]);

    // Numbering is per run.
    let first_of_other = store
        .append_event(&other, 1, &error_event(9))
        .await
        .unwrap();
    assert_eq!(first_of_other.seq, 1);

    assert_eq!(
        store.list_events(run.as_str(), 0, 100).await.unwrap(),
        appended
    );
    assert_eq!(
        store.list_events(run.as_str(), 3, 100).await.unwrap(),
        appended[3..].to_vec()
    );
    assert_eq!(
        store.list_events(run.as_str(), 0, 2).await.unwrap(),
        appended[..2].to_vec()
    );
    assert!(
        store
            .list_events(run.as_str(), 5, 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .list_events("no-such-run", 0, 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.list_events(other.as_str(), 0, 100).await.unwrap(),
        vec![first_of_other]
    );
}

pub(crate) async fn concurrent_appends_get_distinct_consecutive_seqs(db: &TestDb) {
    let store = &db.store;
    with_project(store).await;
    let run = new_run(store).await;

    let mut tasks = tokio::task::JoinSet::new();
    for writer in 0..4 {
        let store = store.clone();
        let run = run.clone();
        tasks.spawn(async move {
            let mut seqs = Vec::new();
            for n in 0..10 {
                let event = store
                    .append_event(&run, 1, &error_event(writer * 100 + n))
                    .await
                    .unwrap();
                seqs.push(event.seq);
            }
            seqs
        });
    }
    let mut all = Vec::new();
    while let Some(seqs) = tasks.join_next().await {
        all.extend(seqs.unwrap());
    }
    let unique: BTreeSet<i64> = all.iter().copied().collect();
    assert_eq!(all.len(), 40);
    assert_eq!(unique, (1..=40).collect());
    let listed = store.list_events(run.as_str(), 0, 1000).await.unwrap();
    assert_eq!(
        listed.iter().map(|event| event.seq).collect::<Vec<_>>(),
        (1..=40).collect::<Vec<_>>()
    );
}

/// The claim's appends (one statement each) racing plain appends (a cancel request's, say) on
/// one run: every event gets its own seq, with no gap, and none is lost.
pub(crate) async fn concurrent_leased_and_plain_appends_get_consecutive_seqs(db: &TestDb) {
    let store = &db.store;
    with_project(store).await;
    let run = new_run(store).await;
    let claimed = store
        .claim_next_run("w1", std::time::Duration::from_secs(600))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.run.id, run);
    let mut tasks = tokio::task::JoinSet::new();
    for writer in 0..6 {
        let store = store.clone();
        let run = run.clone();
        let lease = claimed.lease.clone();
        tasks.spawn(async move {
            let mut seqs = Vec::new();
            for n in 0..10 {
                let event = error_event(writer * 100 + n);
                let seq = if writer < 4 {
                    store
                        .append_leased_event(&lease, &event)
                        .await
                        .unwrap()
                        .unwrap()
                        .seq
                } else {
                    store.append_event(&run, 1, &event).await.unwrap().seq
                };
                seqs.push(seq);
            }
            seqs
        });
    }
    let mut all = Vec::new();
    while let Some(seqs) = tasks.join_next().await {
        all.extend(seqs.unwrap());
    }
    let unique: BTreeSet<i64> = all.iter().copied().collect();
    // Seq 1 is the claim's `attempt_started`.
    assert_eq!(all.len(), 60);
    assert_eq!(unique, (2..=61).collect());
    let listed = store.list_events(run.as_str(), 0, 1000).await.unwrap();
    assert_eq!(listed.len(), 61);
}

pub(crate) async fn pages_of_events_end_at_their_byte_budget(db: &TestDb) {
    let store = &db.store;
    with_project(store).await;
    let id = RunId::generate();
    store
        .insert_run(&id, PROJECT, &spec("alpha", "answer", "m"))
        .await
        .unwrap();
    for index in 0..10 {
        let error = EventKind::Error {
            phase: "model".into(),
            message: format!("{index}{}", "x".repeat(999)),
        };
        store.append_event(&id, 1, &error).await.unwrap();
    }
    let size = store.list_events(id.as_str(), 0, 1).await.unwrap();
    let one = serde_json::to_string(&size[0].kind).unwrap().len();
    let page = store
        .list_events_page(id.as_str(), 0, 100, 3 * one)
        .await
        .unwrap();
    assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3]);
    let next = store
        .list_events_page(id.as_str(), 3, 100, 3 * one)
        .await
        .unwrap();
    assert_eq!(next.first().map(|e| e.seq), Some(4));
    // A page holds at least one event, however small the budget.
    let tiny = store
        .list_events_page(id.as_str(), 9, 100, 1)
        .await
        .unwrap();
    assert_eq!(tiny.iter().map(|e| e.seq).collect::<Vec<_>>(), [10]);
    // The count limit still applies.
    let counted = store
        .list_events_page(id.as_str(), 0, 2, usize::MAX)
        .await
        .unwrap();
    assert_eq!(counted.len(), 2);
}

/// On PostgreSQL a process hears of the events and the end of a run written by another
/// (LISTEN/NOTIFY); SQLite offers no such channel.
pub(crate) async fn other_processes_hear_of_appended_events_and_finished_runs(db: &TestDb) {
    let store = &db.store;
    with_project(store).await;
    let Some(mut heard) = store.listen().await.unwrap() else {
        assert_eq!(store.backend(), rollout_store::Backend::Sqlite);
        return;
    };
    // Another process: a store of its own on the same database.
    let other = Store::connect(&db.url).await.unwrap();
    let id = RunId::generate();
    other
        .insert_run(&id, PROJECT, &spec("alpha", "answer", "m"))
        .await
        .unwrap();
    let lease = other
        .claim_next_run("w", std::time::Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap()
        .lease;
    other
        .append_leased_event(&lease, &error_event(1))
        .await
        .unwrap();
    let finish = rollout_store::FinishRun {
        status: rollout_domain::RunStatus::Failed,
        outcome: None,
        reward: None,
        evaluation: None,
        final_response: None,
        steps: 0,
        usage: Default::default(),
        error: Some("boom".into()),
    };
    assert!(other.finish_run(&lease, &finish).await.unwrap());
    // Other tests share the database (and its channels): keep this run's notifications.
    let mut mine = Vec::new();
    while mine.len() < 3 {
        let notification = heard.recv().await.unwrap();
        let run = match &notification {
            StoreNotification::EventAppended(run) | StoreNotification::RunFinished(run, _) => run,
        };
        if run == &id {
            mine.push(notification);
        }
    }
    assert_eq!(
        mine,
        [
            // The claim's `attempt_started`, then the appended event.
            StoreNotification::EventAppended(id.clone()),
            StoreNotification::EventAppended(id.clone()),
            StoreNotification::RunFinished(id, rollout_domain::RunStatus::Failed),
        ]
    );
    other.close().await;
}

/// Many runs' appends at once (written in batches, one transaction each): every caller gets
/// its own answer. A stale claim's appends are refused one by one, the others are numbered
/// in order with their progress written, and an append that fails (a trigger refuses it)
/// takes only itself down: its batch is rolled back and written again one append at a time.
/// Each run then ends while others append (on SQLite in their batches): its end and its
/// `finished` event are written after its events, and nothing of the run after them.
pub(crate) async fn many_runs_appending_at_once_each_get_their_own_answer(db: &TestDb) {
    use rollout_domain::Usage;
    use rollout_store::RunProgress;
    use sqlx::Executor;
    let store = &db.store;
    with_project(store).await;
    let mut leases = Vec::new();
    for _ in 0..8 {
        leases.push(claimed_run(store).await);
    }
    // Two claims that no longer hold: another token.
    for lease in &mut leases[6..] {
        lease.token = "stale".into();
    }
    // An append that fails: a trigger refuses events that say "boom".
    let boom = match store.backend() {
        rollout_store::Backend::Sqlite => {
            let mut raw = db.raw().await;
            raw.execute(
                "CREATE TRIGGER refuse_boom BEFORE INSERT ON run_events \
                     WHEN NEW.data LIKE '%boom%' BEGIN SELECT RAISE(ABORT, 'boom refused'); END",
            )
            .await
            .unwrap();
            true
        }
        rollout_store::Backend::Postgres => {
            let mut raw = db.raw().await;
            raw.execute(
                "CREATE FUNCTION refuse_boom() RETURNS trigger AS $$ BEGIN \
                     IF NEW.data LIKE '%boom%' THEN RAISE EXCEPTION 'boom refused'; END IF; \
                     RETURN NEW; END $$ LANGUAGE plpgsql",
            )
            .await
            .unwrap();
            raw.execute(
                "CREATE TRIGGER refuse_boom BEFORE INSERT ON run_events \
                     FOR EACH ROW EXECUTE FUNCTION refuse_boom()",
            )
            .await
            .unwrap();
            true
        }
    };
    let mut tasks = tokio::task::JoinSet::new();
    for (writer, lease) in leases.iter().cloned().enumerate() {
        let store = store.clone();
        tasks.spawn(async move {
            let mut answers = Vec::new();
            for n in 0..12u32 {
                let event = if boom && writer == 0 && n == 5 {
                    EventKind::Error {
                        phase: "model".into(),
                        message: "boom".into(),
                    }
                } else {
                    error_event(writer * 100 + n as usize)
                };
                let progress = RunProgress {
                    steps: i64::from(n),
                    usage: Usage {
                        input_tokens: u64::from(n) * 10,
                        ..Usage::default()
                    },
                };
                let answer = store
                    .append_leased_event_and_progress(
                        &lease,
                        &event,
                        (n % 2 == 0).then_some(&progress),
                    )
                    .await
                    .map(|appended| appended.map(|event| event.seq));
                answers.push(answer.map_err(|error| error.to_string()));
            }
            // Each run then ends while the others still append (on SQLite its end rides in
            // their batch), and an event after the end is refused: the lease is gone.
            let finish = rollout_store::FinishRun {
                status: rollout_domain::RunStatus::Completed,
                outcome: Some("answered".into()),
                reward: Some(0.5),
                evaluation: None,
                final_response: Some(format!("done {writer}")),
                steps: 12,
                usage: Usage {
                    input_tokens: 1000 + writer as u64,
                    ..Usage::default()
                },
                error: None,
            };
            let ended = store.finish_run(&lease, &finish).await.unwrap();
            let after = store
                .append_leased_event_and_progress(&lease, &error_event(999), None)
                .await
                .unwrap();
            assert!(
                after.is_none(),
                "an event after the end was stored: {after:?}"
            );
            (writer, lease, answers, ended)
        });
    }
    while let Some(done) = tasks.join_next().await {
        let (writer, lease, answers, ended) = done.unwrap();
        let run = store
            .get_run(PROJECT, lease.run_id.as_str())
            .await
            .unwrap()
            .unwrap();
        if writer >= 6 {
            assert!(
                answers.iter().all(|a| a == &Ok(None)),
                "stale claim: {answers:?}"
            );
            assert_eq!(run.steps, 0, "a stale claim wrote progress");
            assert!(!ended, "a stale claim ended its run");
            assert_eq!(run.status, rollout_domain::RunStatus::Running);
            continue;
        }
        // Seq 1 is the claim's `attempt_started`.
        let mut expected = 2;
        for (n, answer) in answers.iter().enumerate() {
            if boom && writer == 0 && n == 5 {
                let error = answer.as_ref().unwrap_err();
                assert!(error.contains("boom refused"), "{error}");
                continue;
            }
            assert_eq!(answer, &Ok(Some(expected)), "writer {writer}, append {n}");
            expected += 1;
        }
        // The end wrote its own totals over the appends' progress, and its `finished` event
        // is the last of the trace.
        assert!(ended, "writer {writer}: the end was not written");
        assert_eq!(run.status, rollout_domain::RunStatus::Completed);
        assert_eq!(
            run.final_response.as_deref(),
            Some(format!("done {writer}").as_str())
        );
        assert_eq!(
            (run.steps, run.usage.input_tokens, run.reward),
            (12, 1000 + writer as u64, Some(0.5))
        );
        let listed = store
            .list_events(lease.run_id.as_str(), 0, 100)
            .await
            .unwrap();
        assert_eq!(listed.len() as i64, expected);
        let last = listed.last().unwrap();
        assert_eq!(last.seq, expected);
        assert!(
            matches!(&last.kind, EventKind::Finished { status, .. } if status == "completed"),
            "{last:?}"
        );
    }
}

/// Events handed to the store before any is waited for (a run's writer catching up) are
/// stored in the order they were handed over, with the time they happened and the progress
/// of the last that carried one; a stale claim's are refused, each with its own answer.
pub(crate) async fn events_handed_over_together_are_stored_in_order(db: &TestDb) {
    use rollout_domain::Usage;
    use rollout_store::RunProgress;
    let store = &db.store;
    with_project(store).await;
    let lease = claimed_run(store).await;
    // Another run's events, handed over between them: each run's are numbered on their own.
    let other = claimed_run(store).await;
    let mut pending = Vec::new();
    let mut others = Vec::new();
    for n in 0..40i64 {
        let progress = RunProgress {
            steps: n,
            usage: Usage::default(),
        };
        let handed = store
            .submit_leased_event(
                &lease,
                error_event(n as usize),
                (n % 3 == 0).then_some(&progress),
                1_000 + n,
            )
            .unwrap();
        pending.push(handed);
        let handed = store
            .submit_leased_event(&other, error_event(500 + n as usize), None, 1_000 + n)
            .unwrap();
        others.push(handed);
    }
    for (n, handed) in pending.into_iter().enumerate() {
        let event = handed.stored().await.unwrap().expect("the lease holds");
        // Seq 1 is the claim's `attempt_started`.
        assert_eq!((event.seq, event.at_ms), (n as i64 + 2, 1_000 + n as i64));
        assert_eq!(event.kind, error_event(n));
    }
    for (n, handed) in others.into_iter().enumerate() {
        let event = handed.stored().await.unwrap().expect("the lease holds");
        assert_eq!(event.seq, n as i64 + 2);
        assert_eq!(event.kind, error_event(500 + n));
    }
    let listed = store
        .list_events(lease.run_id.as_str(), 0, 100)
        .await
        .unwrap();
    let seqs: Vec<i64> = listed.iter().map(|event| event.seq).collect();
    assert_eq!(seqs, (1..=41).collect::<Vec<_>>());
    assert!(
        listed
            .iter()
            .skip(1)
            .enumerate()
            .all(|(n, e)| e.kind == error_event(n))
    );
    let run = store
        .get_run(PROJECT, lease.run_id.as_str())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(run.steps, 39, "the last progress handed over (n = 39)");

    let mut stale = lease.clone();
    stale.token = "stale".into();
    let refused: Vec<_> = (0..3)
        .map(|n| {
            store
                .submit_leased_event(&stale, error_event(100 + n), None, 2_000)
                .unwrap()
        })
        .collect();
    for handed in refused {
        assert_eq!(handed.stored().await.unwrap(), None);
    }
    assert_eq!(
        store
            .list_events(lease.run_id.as_str(), 0, 100)
            .await
            .unwrap()
            .len(),
        41
    );
}

/// A finish that has to wait for another writer of its run (here a transaction that locked
/// the run and appended an event, as a cancel does) numbers its `finished` event after that
/// writer's. On PostgreSQL the finish is one statement, whose seq was read before it waited
/// for the lock: the insert fails on the run's seq key and the finish is tried again.
pub(crate) async fn a_finish_waiting_for_another_writer_numbers_its_event_after_it(db: &TestDb) {
    use rollout_store::{Backend, FinishRun};
    use sqlx::{Connection, Row};
    let store = &db.store;
    with_project(store).await;
    let lease = claimed_run(store).await;
    let run_id = lease.run_id.to_string();
    store
        .append_leased_event(&lease, &error_event(0))
        .await
        .unwrap()
        .unwrap();
    let mut writer = db.raw().await;
    let mut tx = writer.begin().await.unwrap();
    sqlx::query("UPDATE runs SET id = id WHERE id = $1")
        .bind(run_id.clone())
        .execute(&mut *tx)
        .await
        .unwrap();
    let data = serde_json::to_string(&error_event(1)).unwrap();
    sqlx::query(
        "INSERT INTO run_events (run_id, seq, attempt, kind, at_ms, data) \
         VALUES ($1, 3, 1, 'error', 0, $2)",
    )
    .bind(run_id.clone())
    .bind(data)
    .execute(&mut *tx)
    .await
    .unwrap();

    let finishing = tokio::spawn({
        let (store, lease) = (store.clone(), lease.clone());
        async move {
            let finish = FinishRun {
                status: rollout_domain::RunStatus::Completed,
                outcome: Some("answered".into()),
                reward: Some(1.0),
                evaluation: None,
                final_response: Some("done".into()),
                steps: 1,
                usage: Default::default(),
                error: None,
            };
            store.finish_run(&lease, &finish).await
        }
    });
    // The writer commits only once the finish waits for it.
    match store.backend() {
        Backend::Postgres => {
            let pid: i32 = sqlx::query("SELECT pg_backend_pid()")
                .fetch_one(&mut *tx)
                .await
                .unwrap()
                .get(0);
            let mut watcher = db.raw().await;
            loop {
                let waiting: i64 = sqlx::query(
                    "SELECT COUNT(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))",
                )
                .bind(pid)
                .fetch_one(&mut watcher)
                .await
                .unwrap()
                .get(0);
                if waiting > 0 {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        }
        // SQLite: the finish waits for the write lock (its busy timeout) whenever it comes.
        Backend::Sqlite => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
    }
    tx.commit().await.unwrap();
    assert!(finishing.await.unwrap().unwrap(), "the claim held");
    let kinds: Vec<(i64, String)> = store
        .list_events(&run_id, 0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|event| (event.seq, event.kind.name().to_string()))
        .collect();
    assert_eq!(
        kinds,
        [
            (1, "attempt_started".into()),
            (2, "error".into()),
            (3, "error".into()),
            (4, "finished".into())
        ]
    );
}

/// On SQLite new runs are inserted in the batches of the runs in flight: each insert and
/// append still gets its own answer, and an insert that fails (a project that does not
/// exist) fails alone, with nothing of its batch lost. Every run reads back as its insert
/// answered it.
pub(crate) async fn inserts_and_appends_handed_over_together_each_get_their_own_answer(
    db: &TestDb,
) {
    let store = &db.store;
    with_project(store).await;
    let mut leases = Vec::new();
    for _ in 0..4 {
        leases.push(claimed_run(store).await);
    }
    let mut appends = tokio::task::JoinSet::new();
    for (writer, lease) in leases.iter().cloned().enumerate() {
        let store = store.clone();
        appends.spawn(async move {
            let mut seqs = Vec::new();
            for n in 0..10 {
                let event = error_event(writer * 100 + n);
                let appended = store.append_leased_event(&lease, &event).await.unwrap();
                seqs.push(appended.map(|event| event.seq));
            }
            (lease, seqs)
        });
    }
    let mut inserts = tokio::task::JoinSet::new();
    for n in 0..24 {
        let store = store.clone();
        inserts.spawn(async move {
            let project = if n == 7 { "no-such-project" } else { PROJECT };
            let id = RunId::generate();
            let answer = store
                .insert_run(&id, project, &spec("alpha", "answer", &format!("m{n}")))
                .await;
            (id, project, answer)
        });
    }
    while let Some(done) = appends.join_next().await {
        let (lease, seqs) = done.unwrap();
        // Seq 1 is the claim's `attempt_started`.
        assert_eq!(seqs, (2..12).map(Some).collect::<Vec<_>>());
        let stored = store
            .list_events(lease.run_id.as_str(), 0, 100)
            .await
            .unwrap();
        assert_eq!(stored.len(), 11);
    }
    let mut inserted = 0;
    while let Some(done) = inserts.join_next().await {
        let (id, project, answer) = done.unwrap();
        let read = store.get_run(project, id.as_str()).await.unwrap();
        if project == PROJECT {
            let run = answer.unwrap();
            assert_eq!(read.as_ref(), Some(&run), "the run as stored");
            inserted += 1;
        } else {
            assert!(answer.is_err(), "a run of no project was inserted");
            assert_eq!(read, None);
        }
    }
    assert_eq!(inserted, 23);
    let listed = store
        .list_runs(PROJECT, &rollout_store::RunFilter::default())
        .await
        .unwrap();
    assert_eq!(listed.len(), 4 + 23);
}
