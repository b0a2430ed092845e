//! Human review: scores edited in place with their history, labels, notes, overrides, the
//! review filters of trace search, and the project boundary of every read.

use super::common::{PROJECT, TestDb, spec, with_project};
use rollout_domain::RunId;
use rollout_store::{
    NewScore, Reviewer, RewardSource, ScoreConfig, ScoreFilter, ScoreKind, ScoreValue, TraceQuery,
};

fn reviewer(author: &str) -> Reviewer {
    Reviewer {
        author: author.into(),
        key_id: "k1".into(),
    }
}

pub(crate) async fn reviews_keep_history_and_filter_traces(db: &TestDb) {
    let store = &db.store;
    with_project(store).await;
    store.ensure_project("p2", "Project two").await.unwrap();
    let mut runs = Vec::new();
    for reward in [1.0, 0.0, 1.0] {
        let id = RunId::generate();
        store
            .insert_run(&id, PROJECT, &spec("env", "answer", "m"))
            .await
            .unwrap();
        let mut raw = db.raw().await;
        sqlx::query("UPDATE runs SET status = 'completed', reward = $2 WHERE id = $1")
            .bind(id.0.clone())
            .bind(reward)
            .execute(&mut raw)
            .await
            .unwrap();
        runs.push(id.0);
    }
    let (a, b, c) = (runs[0].clone(), runs[1].clone(), runs[2].clone());

    let config = ScoreConfig {
        name: "verdict".into(),
        kind: ScoreKind::Categorical {
            categories: vec!["good".into(), "bad".into()],
        },
        description: None,
        created_at_ms: 0,
        updated_at_ms: 0,
    };
    assert!(store.put_score_config(PROJECT, &config).await.unwrap());
    assert!(!store.put_score_config(PROJECT, &config).await.unwrap());
    assert_eq!(
        store.score_configs(PROJECT).await.unwrap()[0].kind,
        config.kind
    );
    assert!(store.score_config("p2", "verdict").await.unwrap().is_none());

    let score = |value: f64| NewScore {
        name: "quality".into(),
        value: ScoreValue::Number(value),
        comment: None,
    };
    let (first, created) = store
        .record_score(PROJECT, &a, &reviewer("bob"), &score(0.2))
        .await
        .unwrap();
    assert!(created);
    let (second, created) = store
        .record_score(PROJECT, &a, &reviewer("bob"), &score(0.6))
        .await
        .unwrap();
    assert!(!created, "the same author's score is edited");
    assert_eq!(second.id, first.id);
    store
        .record_score(PROJECT, &a, &reviewer("alice"), &score(1.0))
        .await
        .unwrap();
    store
        .record_score(
            PROJECT,
            &b,
            &reviewer("bob"),
            &NewScore {
                name: "verdict".into(),
                value: ScoreValue::Category("bad".into()),
                comment: Some("wrong tool".into()),
            },
        )
        .await
        .unwrap();
    let scores = store.trace_scores(PROJECT, &a).await.unwrap();
    assert_eq!(scores.len(), 2);
    assert_eq!(scores[0].value, ScoreValue::Number(0.6));
    assert!(store.trace_scores("p2", &a).await.unwrap().is_empty());

    let (_, added) = store
        .add_label(PROJECT, &b, "grader-wrong", &reviewer("bob"))
        .await
        .unwrap();
    assert!(added);
    let (_, added) = store
        .add_label(PROJECT, &b, "grader-wrong", &reviewer("alice"))
        .await
        .unwrap();
    assert!(!added);
    store
        .add_label(PROJECT, &a, "golden", &reviewer("bob"))
        .await
        .unwrap();
    let note = store
        .add_note(PROJECT, &b, "first", &reviewer("bob"))
        .await
        .unwrap();
    assert!(
        store
            .edit_note("p2", &b, &note.id, "hijack", &reviewer("eve"))
            .await
            .unwrap()
            .is_none()
    );
    let edited = store
        .edit_note(PROJECT, &b, &note.id, "second", &reviewer("alice"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(edited.updated_by.as_deref(), Some("alice"));
    store
        .set_reward_override(PROJECT, &b, 1.0, "right answer", &reviewer("bob"))
        .await
        .unwrap();
    store
        .set_reward_override(PROJECT, &b, 0.75, "mostly right", &reviewer("alice"))
        .await
        .unwrap();
    assert!(
        !store
            .clear_reward_override("p2", &b, &reviewer("eve"))
            .await
            .unwrap()
    );

    let history = store.review_history(PROJECT, &b).await.unwrap();
    let steps: Vec<(String, String, String)> = history
        .iter()
        .map(|h| (h.subject.clone(), h.action.clone(), h.author.clone()))
        .collect();
    let step = |s: &str, a: &str, who: &str| (s.to_string(), a.to_string(), who.to_string());
    assert_eq!(
        steps,
        [
            step("score", "created", "bob"),
            step("label", "created", "bob"),
            step("note", "created", "bob"),
            step("note", "updated", "alice"),
            step("reward_override", "created", "bob"),
            step("reward_override", "updated", "alice"),
        ]
    );
    assert_eq!(history[5].previous.as_ref().unwrap()["reward"], 1.0);
    assert!(store.review_history("p2", &b).await.unwrap().is_empty());
    let review = store.trace_review(PROJECT, &b).await.unwrap();
    assert_eq!(review.notes[0].body, "second");
    assert_eq!(review.reward_override.unwrap().reward, 0.75);
    assert!(review.reviewed_at_ms.is_some());

    let search = |query: TraceQuery| async move {
        store
            .search_runs(PROJECT, &TraceQuery { limit: 50, ..query })
            .await
            .unwrap()
            .into_iter()
            .map(|run| run.id.0)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        search(TraceQuery {
            reviewed: Some(false),
            ..TraceQuery::default()
        })
        .await,
        [c.as_str()]
    );
    assert_eq!(
        search(TraceQuery {
            overridden: Some(true),
            ..TraceQuery::default()
        })
        .await,
        [b.as_str()]
    );
    assert_eq!(
        search(TraceQuery {
            labels_any: vec!["golden".into(), "grader-wrong".into()],
            labels_none: vec!["golden".into()],
            ..TraceQuery::default()
        })
        .await,
        [b.as_str()]
    );
    // Mean of 0.6 and 1.0 is 0.8.
    let quality = |min: f64| TraceQuery {
        scores: vec![ScoreFilter {
            name: "quality".into(),
            min: Some(min),
            max: None,
        }],
        ..TraceQuery::default()
    };
    assert_eq!(search(quality(0.8)).await, [a.as_str()]);
    assert!(search(quality(0.81)).await.is_empty());
    let reward_min = |source: RewardSource| TraceQuery {
        reward_min: Some(0.7),
        reward_source: source,
        ..TraceQuery::default()
    };
    assert_eq!(
        search(reward_min(RewardSource::Override)).await,
        [c.clone(), b.clone(), a.clone()]
    );
    assert_eq!(
        search(reward_min(RewardSource::Grader)).await,
        [c.clone(), a.clone()]
    );
    assert_eq!(
        search(TraceQuery {
            ids: vec![a.clone(), c.clone()],
            ..TraceQuery::default()
        })
        .await,
        [c.clone(), a.clone()]
    );
    let summaries = store
        .review_summaries(PROJECT, &[a.clone(), b.clone(), c.clone()])
        .await
        .unwrap();
    assert_eq!(summaries[&b].labels, ["grader-wrong"]);
    assert_eq!(summaries[&b].reward_override, Some(0.75));
    assert!(summaries[&a].reviewed);
    assert!(!summaries.contains_key(&c));
    assert!(
        store
            .review_summaries("p2", &[a.clone(), b.clone()])
            .await
            .unwrap()
            .is_empty()
    );

    assert!(
        store
            .remove_label(PROJECT, &b, "grader-wrong", &reviewer("bob"))
            .await
            .unwrap()
    );
    assert!(
        store
            .delete_note(PROJECT, &b, &note.id, &reviewer("bob"))
            .await
            .unwrap()
    );
    assert!(
        store
            .clear_reward_override(PROJECT, &b, &reviewer("bob"))
            .await
            .unwrap()
    );
    let review = store.trace_review(PROJECT, &b).await.unwrap();
    assert!(review.labels.is_empty() && review.notes.is_empty());
    assert!(review.reward_override.is_none());
    assert!(review.reviewed_at_ms.is_some(), "reviewed stays");
    assert_eq!(store.review_history(PROJECT, &b).await.unwrap().len(), 9);
}

/// Ten reviewers race through a queue of twenty traces, each completing what it gets: every
/// trace is handed out once and completed once. Then a lease that runs out hands the trace
/// to the next reviewer.
pub(crate) async fn racing_reviewers_never_share_a_queue_item(db: &TestDb) {
    let store = &db.store;
    with_project(store).await;
    let mut runs = Vec::new();
    for _ in 0..20 {
        let id = RunId::generate();
        store
            .insert_run(&id, PROJECT, &spec("env", "answer", "m"))
            .await
            .unwrap();
        runs.push(id.0);
    }
    let queue = store
        .create_review_queue(
            PROJECT,
            &rollout_store::NewReviewQueue {
                name: "race".into(),
                description: None,
                selection: serde_json::json!({"trace_ids": runs}),
                lease_seconds: 600,
                created_by: "admin".into(),
            },
            &runs,
        )
        .await
        .unwrap()
        .unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..10 {
        let store = store.clone();
        let queue_id = queue.id.clone();
        tasks.spawn(async move {
            let name = format!("reviewer-{i}");
            let mut got = Vec::new();
            while let Some(item) = store
                .next_review_item(&queue_id, &name, 600_000)
                .await
                .unwrap()
            {
                let outcome = store
                    .complete_review_item(PROJECT, &queue_id, &item.run_id, &reviewer(&name))
                    .await
                    .unwrap();
                assert_eq!(outcome, rollout_store::CompleteOutcome::Completed);
                got.push(item.run_id);
            }
            got
        });
    }
    let mut handed: Vec<String> = tasks.join_all().await.into_iter().flatten().collect();
    handed.sort();
    let mut expected = runs.clone();
    expected.sort();
    assert_eq!(handed, expected, "each trace exactly once");
    let progress = store.review_queue_progress(&queue.id).await.unwrap();
    assert_eq!((progress.total, progress.done), (20, 20));
    assert_eq!(progress.reviewers.iter().map(|r| r.done).sum::<i64>(), 20);

    // A lease of 1 ms runs out: the trace goes to whoever asks next.
    let short = store
        .create_review_queue(
            PROJECT,
            &rollout_store::NewReviewQueue {
                name: "short".into(),
                description: None,
                selection: serde_json::json!({}),
                lease_seconds: 10,
                created_by: "admin".into(),
            },
            &runs[..1],
        )
        .await
        .unwrap()
        .unwrap();
    let held = store
        .next_review_item(&short.id, "slow", 1)
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let taken = store
        .next_review_item(&short.id, "quick", 600_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(taken.run_id, held.run_id);
    assert!(
        store
            .next_review_item(&short.id, "third", 600_000)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store
            .complete_review_item(PROJECT, &short.id, &held.run_id, &reviewer("slow"))
            .await
            .unwrap(),
        rollout_store::CompleteOutcome::HeldByOther {
            reviewer: "quick".into()
        }
    );
    assert!(
        store
            .create_review_queue(
                PROJECT,
                &rollout_store::NewReviewQueue {
                    name: "short".into(),
                    description: None,
                    selection: serde_json::json!({}),
                    lease_seconds: 10,
                    created_by: "admin".into(),
                },
                &runs[..1],
            )
            .await
            .unwrap()
            .is_none(),
        "names are unique in a project"
    );
}

/// A share token resolves to its trace only while the link is live and its project shares.
pub(crate) async fn share_tokens_resolve_to_one_live_trace(db: &TestDb) {
    let store = &db.store;
    with_project(store).await;
    store.ensure_project("p2", "Project two").await.unwrap();
    let mine = RunId::generate();
    store
        .insert_run(&mine, PROJECT, &spec("env", "answer", "m"))
        .await
        .unwrap();
    let (link, token) = store
        .create_share_link(PROJECT, &mine.0, &reviewer("bob"), None)
        .await
        .unwrap();
    assert_eq!(
        store.shared_run(&token).await.unwrap().unwrap().id.0,
        mine.0
    );
    assert!(store.shared_run(&mine.0).await.unwrap().is_none());
    assert!(store.shared_run("").await.unwrap().is_none());
    let mut raw = db.raw().await;
    let stored: String = sqlx::query_scalar("SELECT token_hash FROM share_links WHERE id = $1")
        .bind(link.id.clone())
        .fetch_one(&mut raw)
        .await
        .unwrap();
    assert_ne!(stored, token, "only the hash is stored");
    assert!(store.shared_run(&stored).await.unwrap().is_none());
    assert!(
        !store
            .revoke_share_link("p2", &mine.0, &link.id)
            .await
            .unwrap()
    );
    assert!(store.share_links("p2", &mine.0).await.unwrap().is_empty());

    assert!(store.set_sharing(PROJECT, false).await.unwrap());
    assert!(!store.sharing_enabled(PROJECT).await.unwrap());
    assert!(store.sharing_enabled("p2").await.unwrap());
    assert!(store.shared_run(&token).await.unwrap().is_none());
    store.set_sharing(PROJECT, true).await.unwrap();
    assert!(store.shared_run(&token).await.unwrap().is_some());

    let (_, expired) = store
        .create_share_link(PROJECT, &mine.0, &reviewer("bob"), Some(1))
        .await
        .unwrap();
    assert!(store.shared_run(&expired).await.unwrap().is_none());
    assert!(
        store
            .revoke_share_link(PROJECT, &mine.0, &link.id)
            .await
            .unwrap()
    );
    assert!(
        !store
            .revoke_share_link(PROJECT, &mine.0, &link.id)
            .await
            .unwrap()
    );
    assert!(store.shared_run(&token).await.unwrap().is_none());
    assert_eq!(store.share_links(PROJECT, &mine.0).await.unwrap().len(), 2);
}

/// Reviewers writing side by side, each a transaction that reads before it writes (is there
/// a score of mine already?), all succeed. On SQLite such a transaction, begun deferred, is
/// failed at once with `SQLITE_BUSY` when another connection committed between its read and
/// its write (its snapshot is stale, so the busy handler cannot help); review writes take
/// the write lock when they begin instead.
pub(crate) async fn reviewers_writing_side_by_side_all_succeed(db: &TestDb) {
    const REVIEWERS: usize = 8;
    const EDITS: usize = 15;
    let store = &db.store;
    with_project(store).await;
    let run = RunId::generate();
    store
        .insert_run(&run, PROJECT, &spec("env", "answer", "m"))
        .await
        .unwrap();
    let reviews = (0..REVIEWERS).map(|n| {
        let store = store.clone();
        let run = run.0.clone();
        tokio::spawn(async move {
            let author = reviewer(&format!("reviewer-{n}"));
            for edit in 0..EDITS {
                let score = NewScore {
                    name: "quality".into(),
                    value: ScoreValue::Number(edit as f64 / EDITS as f64),
                    comment: None,
                };
                store
                    .record_score(PROJECT, &run, &author, &score)
                    .await
                    .unwrap();
                store
                    .add_label(PROJECT, &run, &format!("label-{n}-{edit}"), &author)
                    .await
                    .unwrap();
            }
        })
    });
    for review in futures::future::join_all(reviews).await {
        review.unwrap();
    }
    let scores = store.trace_scores(PROJECT, &run.0).await.unwrap();
    assert_eq!(scores.len(), REVIEWERS);
    let last = ScoreValue::Number((EDITS - 1) as f64 / EDITS as f64);
    assert!(scores.iter().all(|score| score.value == last));
    let labels = store.trace_labels(PROJECT, &run.0).await.unwrap();
    assert_eq!(labels.len(), REVIEWERS * EDITS);
}
