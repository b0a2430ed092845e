-- The run API for automations: idempotency keys of POST /v1/agent/run, and the delivery log
-- of run callbacks. Same portable column types as 0001.

-- One row per (project, Idempotency-Key): the run it created and a hash of the request, so
-- that a retry gets the same run and a different request under the same key is refused.
-- An expired row is replaced when its key is used again.
CREATE TABLE idempotency_keys (
    project_id TEXT NOT NULL,
    idem_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    run_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (project_id, idem_key)
);

CREATE INDEX idempotency_keys_expires ON idempotency_keys (expires_at);

-- Every attempt to deliver a run's callback: automatic (after the run ended, with retries)
-- or manual (redelivery through the API).
CREATE TABLE callback_deliveries (
    id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    project_id TEXT NOT NULL,
    attempt BIGINT NOT NULL,
    kind TEXT NOT NULL,
    url TEXT NOT NULL,
    status_code BIGINT,
    latency_ms BIGINT NOT NULL,
    error TEXT,
    created_at BIGINT NOT NULL
);

CREATE INDEX callback_deliveries_run ON callback_deliveries (run_id, created_at);

-- Schedules: a cron expression in a time zone and the run to start at each tick. A tick is
-- fired by moving next_run_at forward with a compare-and-set, in the same transaction as the
-- run's insert, so that each tick starts exactly one run however many servers poll.
CREATE TABLE schedules (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects (id),
    name TEXT NOT NULL,
    cron TEXT NOT NULL,
    timezone TEXT NOT NULL,
    -- The run to start (a RunSpec as JSON); its environment version is re-resolved at each
    -- tick unless pinned_version is set.
    spec TEXT NOT NULL,
    pinned_version BIGINT,
    paused BIGINT NOT NULL DEFAULT 0,
    next_run_at BIGINT,
    last_run_at BIGINT,
    created_at BIGINT NOT NULL
);

CREATE INDEX schedules_due ON schedules (paused, next_run_at);
CREATE INDEX schedules_project ON schedules (project_id, id);

CREATE TABLE schedule_runs (
    schedule_id TEXT NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
    tick_at BIGINT NOT NULL,
    run_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (schedule_id, tick_at)
);
