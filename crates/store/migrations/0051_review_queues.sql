-- Review queues: a named selection of traces (frozen when the queue is made) that
-- reviewers work through. An item is leased to one reviewer at a time (`leased_by` until
-- `lease_expires_at`), so that two reviewers never get the same trace at once; a lease
-- that runs out puts the item back. Completing records who and when.
CREATE TABLE review_queues (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects (id),
    name TEXT NOT NULL,
    description TEXT,
    -- JSON: the filter or the trace ids the queue was made from.
    selection TEXT NOT NULL,
    lease_seconds BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (project_id, name)
);

CREATE TABLE review_queue_items (
    queue_id TEXT NOT NULL REFERENCES review_queues (id) ON DELETE CASCADE,
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    position BIGINT NOT NULL,
    leased_by TEXT,
    lease_expires_at BIGINT,
    completed_by TEXT,
    completed_at BIGINT,
    PRIMARY KEY (queue_id, run_id)
);

CREATE INDEX review_queue_items_open ON review_queue_items (queue_id, completed_at, position);
