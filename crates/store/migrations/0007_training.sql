-- Training: datasets (immutable, with their records rendered at creation), training jobs
-- and the checkpoints they register. Same portable column types as 0001.

CREATE TABLE datasets (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects (id),
    name TEXT NOT NULL,
    -- JSON: the selection as asked (filters).
    selection TEXT NOT NULL,
    -- JSON: counts, token totals, reward distribution.
    stats TEXT NOT NULL,
    -- JSON: the selected trace ids, in record order.
    trace_ids TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE INDEX datasets_project_id ON datasets (project_id, id);

CREATE TABLE dataset_records (
    dataset_id TEXT NOT NULL REFERENCES datasets (id) ON DELETE CASCADE,
    position BIGINT NOT NULL,
    trace_id TEXT NOT NULL,
    -- One JSONL line each, without the newline.
    chat TEXT NOT NULL,
    trajectory TEXT NOT NULL,
    PRIMARY KEY (dataset_id, position)
);

CREATE TABLE training_jobs (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects (id),
    name TEXT NOT NULL,
    dataset_id TEXT NOT NULL REFERENCES datasets (id),
    base_model TEXT NOT NULL,
    backend TEXT NOT NULL,
    -- JSON object.
    params TEXT NOT NULL,
    -- queued, running, succeeded, failed, cancelled.
    status TEXT NOT NULL,
    error TEXT,
    log TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT
);

CREATE INDEX training_jobs_project_id ON training_jobs (project_id, id);

-- Names are global: the model catalog is.
CREATE TABLE checkpoints (
    name TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects (id),
    training_job_id TEXT NOT NULL REFERENCES training_jobs (id),
    dataset_id TEXT NOT NULL,
    base_model TEXT NOT NULL,
    backend TEXT NOT NULL,
    -- JSON: rollout_domain::CheckpointTarget.
    target TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
