//! Trace search (every filter, cursor), usage aggregation and web UI sessions.

use super::common::{PROJECT, TestDb, spec, with_project};
use rollout_domain::{RunId, RunStatus};
use rollout_store::{KeyRole, RunRecord, TraceQuery, UsageGroup};
use serde_json::json;

fn ids(runs: &[RunRecord]) -> Vec<String> {
    runs.iter().map(|run| run.id.0.clone()).collect()
}

pub(crate) async fn traces_are_searched_by_every_filter_and_usage_is_summed(db: &TestDb) {
    let store = &db.store;
    with_project(store).await;
    let mut raw = db.raw().await;
    let mut inserted = Vec::new();
    for (i, (env, model, team, reward)) in [
        ("alpha", "claude-x", "red", 1.0),
        ("alpha", "gpt-y", "blue", 0.0),
        ("beta", "gpt-y", "red", 0.5),
    ]
    .into_iter()
    .enumerate()
    {
        let mut run_spec = spec(env, "answer", model);
        run_spec.metadata = json!({"team": team, "n": i}).as_object().unwrap().clone();
        let id = RunId::generate();
        store.insert_run(&id, PROJECT, &run_spec).await.unwrap();
        sqlx::query(
            "UPDATE runs SET status = 'completed', reward = $2, steps = 2, input_tokens = 100, \
             output_tokens = 10, started_at = created_at, finished_at = created_at + 1500 \
             WHERE id = $1",
        )
        .bind(id.0.clone())
        .bind(reward)
        .execute(&mut raw)
        .await
        .unwrap();
        inserted.push(id.0);
    }
    let (a, b, c) = (
        inserted[0].clone(),
        inserted[1].clone(),
        inserted[2].clone(),
    );
    let search = |query: TraceQuery| async move {
        ids(&store
            .search_runs(PROJECT, &TraceQuery { limit: 50, ..query })
            .await
            .unwrap())
    };
    assert_eq!(
        search(TraceQuery::default()).await,
        [c.clone(), b.clone(), a.clone()]
    );
    let q = |f: fn(&mut TraceQuery)| {
        let mut query = TraceQuery::default();
        f(&mut query);
        query
    };
    assert_eq!(
        search(q(|q| q.model = Some("gpt-y".into()))).await,
        [c.clone(), b.clone()]
    );
    assert_eq!(
        search(q(|q| q.env_name = Some("alpha".into()))).await,
        [b.clone(), a.clone()]
    );
    assert_eq!(
        search(q(|q| q.scenario = Some("count".into()))).await.len(),
        0
    );
    assert_eq!(
        search(q(|q| q.status = Some(RunStatus::Completed)))
            .await
            .len(),
        3
    );
    assert_eq!(
        search(q(|q| q.status = Some(RunStatus::Queued)))
            .await
            .len(),
        0
    );
    assert_eq!(
        search(q(|q| q.reward_min = Some(0.5))).await,
        [c.clone(), a.clone()]
    );
    assert_eq!(
        search(q(|q| {
            q.reward_min = Some(0.1);
            q.reward_max = Some(0.9);
        }))
        .await,
        [c.as_str()]
    );
    assert_eq!(
        search(q(|q| q.metadata_key = Some("team".into())))
            .await
            .len(),
        3
    );
    assert_eq!(
        search(q(|q| q.metadata_key = Some("other".into())))
            .await
            .len(),
        0
    );
    assert_eq!(
        search(q(|q| {
            q.metadata_key = Some("team".into());
            q.metadata_value = Some("red".into());
        }))
        .await,
        [c.clone(), a.clone()]
    );
    assert_eq!(
        search(q(|q| {
            q.metadata_key = Some("n".into());
            q.metadata_value = Some("1".into());
        }))
        .await,
        [b.as_str()]
    );
    assert_eq!(search(q(|q| q.tokens_min = Some(110))).await.len(), 3);
    assert_eq!(search(q(|q| q.tokens_min = Some(111))).await.len(), 0);
    assert_eq!(search(q(|q| q.tokens_max = Some(109))).await.len(), 0);
    assert_eq!(search(q(|q| q.duration_min_ms = Some(1500))).await.len(), 3);
    assert_eq!(search(q(|q| q.duration_max_ms = Some(1499))).await.len(), 0);
    let now = rollout_domain::time::now_ms();
    assert_eq!(search(q(|q| q.to_ms = Some(0))).await.len(), 0);
    let range = TraceQuery {
        from_ms: Some(now - 3_600_000),
        to_ms: Some(now + 3_600_000),
        ..TraceQuery::default()
    };
    assert_eq!(search(range).await.len(), 3);
    let future = TraceQuery {
        from_ms: Some(now + 3_600_000),
        ..TraceQuery::default()
    };
    assert_eq!(search(future).await.len(), 0);
    // Cursor pages.
    let page = store
        .search_runs(
            PROJECT,
            &TraceQuery {
                limit: 2,
                ..TraceQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(ids(&page), [c.clone(), b.clone()]);
    let rest = store
        .search_runs(
            PROJECT,
            &TraceQuery {
                limit: 2,
                before: Some(b.clone()),
                ..TraceQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(ids(&rest), [a.as_str()]);
    // Another project sees nothing.
    assert!(
        store
            .search_runs(
                "p2",
                &TraceQuery {
                    limit: 10,
                    ..TraceQuery::default()
                }
            )
            .await
            .unwrap()
            .is_empty()
    );

    let by_model = store
        .usage(PROJECT, now - 3_600_000, now + 3_600_000, UsageGroup::Model)
        .await
        .unwrap();
    assert_eq!(by_model.len(), 2);
    assert_eq!(by_model[0].group, "claude-x");
    assert_eq!(by_model[1].group, "gpt-y");
    assert_eq!(by_model[1].runs, 2);
    assert_eq!(by_model[1].steps, 4);
    assert_eq!(by_model[1].input_tokens, 200);
    assert_eq!(by_model[1].output_tokens, 20);
    assert!((by_model[1].compute_seconds - 3.0).abs() < 1e-9);
    assert_eq!(
        by_model[1].tokens_by_model,
        vec![("gpt-y".to_string(), 200, 20)]
    );
    let by_day = store
        .usage(PROJECT, now - 3_600_000, now + 3_600_000, UsageGroup::Day)
        .await
        .unwrap();
    assert!(!by_day.is_empty() && by_day.len() <= 2);
    assert_eq!(by_day.iter().map(|d| d.runs).sum::<i64>(), 3);
    assert_eq!(by_day[0].group.len(), 10);
    let by_env = store
        .usage(
            PROJECT,
            now - 3_600_000,
            now + 3_600_000,
            UsageGroup::Environment,
        )
        .await
        .unwrap();
    assert_eq!(
        by_env
            .iter()
            .map(|r| (r.group.as_str(), r.runs))
            .collect::<Vec<_>>(),
        [("alpha", 2), ("beta", 1)]
    );
    assert!(
        store
            .usage(PROJECT, 0, 1, UsageGroup::Day)
            .await
            .unwrap()
            .is_empty()
    );
}

pub(crate) async fn ui_sessions_follow_their_key_and_expire(db: &TestDb) {
    let store = &db.store;
    with_project(store).await;
    let key = store
        .create_api_key(PROJECT, "ui", KeyRole::Member, "ro_session_test_secret")
        .await
        .unwrap();
    let token = store.create_ui_session(&key.id, 60_000).await.unwrap();
    assert_eq!(token.len(), 64);
    assert_eq!(
        store.ui_session_key(&token).await.unwrap(),
        Some(key.clone())
    );
    assert_eq!(store.ui_session_key("not-a-token").await.unwrap(), None);
    let expired = store.create_ui_session(&key.id, -1).await.unwrap();
    assert_eq!(store.ui_session_key(&expired).await.unwrap(), None);
    store.delete_ui_session(&token).await.unwrap();
    assert_eq!(store.ui_session_key(&token).await.unwrap(), None);
    let again = store.create_ui_session(&key.id, 60_000).await.unwrap();
    assert!(store.revoke_api_key(PROJECT, &key.id).await.unwrap());
    assert_eq!(store.ui_session_key(&again).await.unwrap(), None);
}

/// The metadata filter means the same on SQLite and PostgreSQL, for every JSON type.
pub(crate) async fn the_metadata_filter_matches_every_json_type_alike(db: &TestDb) {
    let store = &db.store;
    with_project(store).await;
    let values = [
        ("string", json!("red")),
        ("true", json!(true)),
        ("false", json!(false)),
        ("null", json!(null)),
        ("int", json!(1)),
        ("float", json!(1.5)),
        ("whole float", json!(2.0)),
        ("numeric string", json!("1")),
        ("object", json!({"a": 1})),
        ("array", json!([1])),
    ];
    let mut ids = std::collections::BTreeMap::new();
    for (name, value) in &values {
        let id = RunId::generate();
        let mut run_spec = spec("alpha", "answer", "m");
        run_spec.metadata = json!({"v": value, "k.with dots": name})
            .as_object()
            .unwrap()
            .clone();
        store.insert_run(&id, PROJECT, &run_spec).await.unwrap();
        ids.insert(id.0.clone(), *name);
    }
    let matching = |value: Option<&str>| {
        let query = TraceQuery {
            metadata_key: Some("v".into()),
            metadata_value: value.map(String::from),
            limit: 100,
            ..TraceQuery::default()
        };
        let store = store.clone();
        let ids = ids.clone();
        async move {
            let mut names: Vec<&str> = store
                .search_runs(PROJECT, &query)
                .await
                .unwrap()
                .iter()
                .map(|run| ids[run.id.as_str()])
                .collect();
            names.sort_unstable();
            names
        }
    };
    assert_eq!(matching(None).await.len(), values.len());
    assert_eq!(matching(Some("red")).await, ["string"]);
    assert_eq!(matching(Some("true")).await, ["true"]);
    assert_eq!(matching(Some("false")).await, ["false"]);
    assert_eq!(matching(Some("null")).await, ["null"]);
    assert_eq!(matching(Some("1")).await, ["int", "numeric string"]);
    assert_eq!(matching(Some("1.5")).await, ["float"]);
    assert_eq!(matching(Some("2")).await, ["whole float"]);
    assert_eq!(matching(Some("{\"a\":1}")).await, Vec::<&str>::new());
    assert_eq!(matching(Some("blue")).await, Vec::<&str>::new());
    // Keys with dots and spaces are keys, not paths.
    let query = TraceQuery {
        metadata_key: Some("k.with dots".into()),
        metadata_value: Some("true".into()),
        ..TraceQuery::default()
    };
    let found = store.search_runs(PROJECT, &query).await.unwrap();
    assert_eq!(found.len(), 1);
}
