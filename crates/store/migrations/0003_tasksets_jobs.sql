-- Tasksets (named, ordered lists of tasks) and jobs (a taskset × models × repeats, as
-- ordinary runs linked to the job). Same portable column types as 0001.

CREATE TABLE tasksets (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects (id),
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (project_id, name)
);

CREATE TABLE taskset_tasks (
    taskset_id TEXT NOT NULL REFERENCES tasksets (id) ON DELETE CASCADE,
    task_id TEXT NOT NULL,
    position BIGINT NOT NULL,
    task TEXT NOT NULL,
    PRIMARY KEY (taskset_id, task_id)
);

CREATE INDEX taskset_tasks_position ON taskset_tasks (taskset_id, position);

CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects (id),
    taskset_name TEXT NOT NULL,
    -- NULL: no limit of its own.
    max_concurrency BIGINT,
    -- JSON: models, repeats, max_steps, system_prompt, metadata, task ids.
    spec TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    cancelled_at BIGINT
);

CREATE INDEX jobs_project_id ON jobs (project_id, id);

ALTER TABLE runs ADD COLUMN job_id TEXT;
ALTER TABLE runs ADD COLUMN task_index BIGINT;
ALTER TABLE runs ADD COLUMN repeat_index BIGINT;

CREATE INDEX runs_job_status ON runs (job_id, status);
