//! Datasets, training jobs and checkpoints: written once, read back in order; a job's
//! success registers its checkpoint atomically, and never after a cancel.

use super::common::{PROJECT, TestDb, with_project};
use rollout_domain::{Checkpoint, CheckpointTarget};
use rollout_store::{DatasetLine, DatasetRecord, TrainingJobRecord};
use serde_json::json;

fn dataset(id: &str) -> DatasetRecord {
    DatasetRecord {
        id: id.into(),
        project_id: PROJECT.into(),
        name: "good runs".into(),
        selection: json!({"reward_min": 1.0}),
        stats: json!({"count": 2}),
        trace_ids: vec!["t1".into(), "t2".into()],
        created_at_ms: 1,
    }
}

fn job(id: &str, dataset: &str, name: &str) -> TrainingJobRecord {
    TrainingJobRecord {
        id: id.into(),
        project_id: PROJECT.into(),
        name: name.into(),
        dataset_id: dataset.into(),
        base_model: "gpt-5".into(),
        backend: "fewshot".into(),
        params: json!({"k": 2}),
        status: "queued".into(),
        error: None,
        log: String::new(),
        created_at_ms: 2,
        started_at_ms: None,
        finished_at_ms: None,
    }
}

fn checkpoint(name: &str, job: &str) -> Checkpoint {
    Checkpoint {
        name: name.into(),
        project_id: PROJECT.into(),
        base_model: "gpt-5".into(),
        backend: "fewshot".into(),
        dataset_id: "d1".into(),
        training_job_id: job.into(),
        created_at_ms: 3,
        target: CheckpointTarget::Endpoint {
            base_url: "http://127.0.0.1:1/v1".into(),
            model: "ft:1".into(),
            key_provider: None,
        },
    }
}

pub(crate) async fn datasets_jobs_and_checkpoints(db: &TestDb) {
    let store = &db.store;
    with_project(store).await;
    let lines = vec![
        DatasetLine {
            trace_id: "t1".into(),
            chat: "{\"messages\":[1]}".into(),
            trajectory: "{\"reward\":1}".into(),
        },
        DatasetLine {
            trace_id: "t2".into(),
            chat: "{\"messages\":[2]}".into(),
            trajectory: "{\"reward\":0.5}".into(),
        },
    ];
    store.insert_dataset(&dataset("d1"), &lines).await.unwrap();
    assert_eq!(
        store.get_dataset(PROJECT, "d1").await.unwrap(),
        Some(dataset("d1"))
    );
    assert_eq!(store.get_dataset("other", "d1").await.unwrap(), None);
    assert_eq!(store.list_datasets(PROJECT, 10).await.unwrap().len(), 1);
    assert_eq!(store.dataset_lines("d1").await.unwrap(), lines);

    // A dataset being written in batches is not visible until complete; a discarded one
    // leaves nothing.
    store.begin_dataset(&dataset("d2")).await.unwrap();
    store
        .append_dataset_records("d2", 0, &lines[..1])
        .await
        .unwrap();
    store
        .append_dataset_records("d2", 1, &lines[1..])
        .await
        .unwrap();
    assert_eq!(store.get_dataset(PROJECT, "d2").await.unwrap(), None);
    assert_eq!(store.list_datasets(PROJECT, 10).await.unwrap().len(), 1);
    store.complete_dataset(&dataset("d2")).await.unwrap();
    assert_eq!(
        store.get_dataset(PROJECT, "d2").await.unwrap(),
        Some(dataset("d2"))
    );
    assert_eq!(store.dataset_lines("d2").await.unwrap(), lines);
    store.begin_dataset(&dataset("d3")).await.unwrap();
    store.append_dataset_records("d3", 0, &lines).await.unwrap();
    store.discard_dataset("d3").await.unwrap();
    assert!(store.dataset_lines("d3").await.unwrap().is_empty());
    assert_eq!(store.list_datasets(PROJECT, 10).await.unwrap().len(), 2);

    // A job that succeeds registers its checkpoint.
    store
        .insert_training_job(&job("j1", "d1", "ck-1"))
        .await
        .unwrap();
    assert!(store.checkpoint_name_taken(PROJECT, "ck-1").await.unwrap());
    assert!(!store.checkpoint_name_taken(PROJECT, "ck-2").await.unwrap());
    assert!(
        !store.checkpoint_name_taken("other", "ck-1").await.unwrap(),
        "names are per project"
    );
    assert!(store.start_training_job("j1").await.unwrap());
    store.append_training_log("j1", "step 1\n").await.unwrap();
    store.append_training_log("j1", "step 2\n").await.unwrap();
    assert!(
        store
            .succeed_training_job("j1", &checkpoint("ck-1", "j1"))
            .await
            .unwrap()
    );
    let done = store
        .get_training_job(PROJECT, "j1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.status, "succeeded");
    assert_eq!(done.log, "step 1\nstep 2\n");
    assert!(done.is_finished());
    assert_eq!(
        store.list_checkpoints().await.unwrap(),
        vec![checkpoint("ck-1", "j1")]
    );

    // A cancelled job registers nothing.
    store
        .insert_training_job(&job("j2", "d1", "ck-2"))
        .await
        .unwrap();
    assert!(store.start_training_job("j2").await.unwrap());
    assert!(store.cancel_training_job(PROJECT, "j2").await.unwrap());
    assert!(!store.cancel_training_job(PROJECT, "j2").await.unwrap());
    assert!(
        !store
            .succeed_training_job("j2", &checkpoint("ck-2", "j2"))
            .await
            .unwrap()
    );
    assert!(!store.checkpoint_name_taken(PROJECT, "ck-2").await.unwrap());
    assert_eq!(store.list_checkpoints().await.unwrap().len(), 1);

    // A job whose process stopped renewing its heartbeat is failed by anyone; a live one
    // is not.
    store
        .insert_training_job(&job("j4", "d1", "ck-4"))
        .await
        .unwrap();
    assert!(store.start_training_job("j4").await.unwrap());
    assert!(store.heartbeat_training_job("j4").await.unwrap());
    assert_eq!(store.fail_stale_training_jobs(0).await.unwrap(), 0);
    let far_future = i64::MAX / 2;
    assert_eq!(store.fail_stale_training_jobs(far_future).await.unwrap(), 1);
    let stale = store
        .get_training_job(PROJECT, "j4")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stale.status, "failed");
    assert!(!store.heartbeat_training_job("j4").await.unwrap());

    // Unfinished jobs fail at start-up.
    store
        .insert_training_job(&job("j3", "d1", "ck-3"))
        .await
        .unwrap();
    assert_eq!(store.fail_interrupted_training_jobs().await.unwrap(), 1);
    let failed = store
        .get_training_job(PROJECT, "j3")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(failed.status, "failed");
    assert!(!store.start_training_job("j3").await.unwrap());
    assert!(
        !store
            .end_training_job("j3", "failed", Some("x"))
            .await
            .unwrap()
    );
    assert_eq!(
        store.list_training_jobs(PROJECT, 10).await.unwrap().len(),
        4
    );
}
