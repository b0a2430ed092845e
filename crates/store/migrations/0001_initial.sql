-- The initial schema. Portable between SQLite and PostgreSQL: only BIGINT (integers, unix-ms
-- times, 0/1 flags), DOUBLE PRECISION (floats) and TEXT (ids, JSON) columns, so that sqlx's
-- `Any` driver decodes every column on both backends. Migrations are append-only.

CREATE TABLE projects (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects (id),
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    prefix TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

CREATE INDEX api_keys_project ON api_keys (project_id, id);

CREATE TABLE environments (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects (id),
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (project_id, name)
);

CREATE TABLE env_versions (
    id TEXT PRIMARY KEY,
    environment_id TEXT NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    project_id TEXT NOT NULL,
    name TEXT NOT NULL,
    version BIGINT NOT NULL,
    source TEXT NOT NULL,
    source_hash TEXT NOT NULL,
    status TEXT NOT NULL,
    description TEXT,
    error TEXT,
    created_at BIGINT NOT NULL,
    UNIQUE (environment_id, version)
);

CREATE INDEX env_versions_project_name ON env_versions (project_id, name, version);

CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects (id),
    spec TEXT NOT NULL,
    env_name TEXT NOT NULL,
    env_version BIGINT NOT NULL,
    scenario TEXT NOT NULL,
    model TEXT NOT NULL,
    status TEXT NOT NULL,
    outcome TEXT,
    reward DOUBLE PRECISION,
    evaluation TEXT,
    final_response TEXT,
    error TEXT,
    steps BIGINT NOT NULL DEFAULT 0,
    input_tokens BIGINT NOT NULL DEFAULT 0,
    output_tokens BIGINT NOT NULL DEFAULT 0,
    cache_read_tokens BIGINT NOT NULL DEFAULT 0,
    cache_write_tokens BIGINT NOT NULL DEFAULT 0,
    attempts BIGINT NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_expires_at BIGINT,
    cancel_requested BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT
);

-- The claim: oldest queued run first.
CREATE INDEX runs_status_created ON runs (status, created_at);
-- Listing: newest first within a project (ids are UUID v7, so they sort by time).
CREATE INDEX runs_project_id ON runs (project_id, id);
CREATE INDEX runs_project_env ON runs (project_id, env_name, id);
CREATE INDEX runs_project_model ON runs (project_id, model, id);

CREATE TABLE run_events (
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    attempt BIGINT NOT NULL,
    kind TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
