-- Checkpoint names are per project: two projects may each train a checkpoint of the same
-- name, and neither sees the other's. The table is rebuilt with the key (project_id,
-- name), the only portable way to change a primary key on SQLite and PostgreSQL.
CREATE TABLE checkpoints_by_project (
    project_id TEXT NOT NULL REFERENCES projects (id),
    name TEXT NOT NULL,
    training_job_id TEXT NOT NULL REFERENCES training_jobs (id),
    dataset_id TEXT NOT NULL,
    base_model TEXT NOT NULL,
    backend TEXT NOT NULL,
    -- JSON: rollout_domain::CheckpointTarget.
    target TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (project_id, name)
);

INSERT INTO checkpoints_by_project (project_id, name, training_job_id, dataset_id,
    base_model, backend, target, created_at)
SELECT project_id, name, training_job_id, dataset_id, base_model, backend, target, created_at
FROM checkpoints;

DROP TABLE checkpoints;

ALTER TABLE checkpoints_by_project RENAME TO checkpoints;

CREATE INDEX training_jobs_project_name ON training_jobs (project_id, name);
