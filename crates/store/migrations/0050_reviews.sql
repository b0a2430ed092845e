-- Human review of traces: scores (validated against the project's score configs), labels,
-- notes, a reward override with its reason, and the history of every change to them.
-- A person's word never replaces the grader's: `runs.reward` stays as graded, and
-- metrics and datasets read the override where there is one.

-- What a score of a given name may be: a number in a range, or one of some categories.
CREATE TABLE score_configs (
    project_id TEXT NOT NULL REFERENCES projects (id),
    name TEXT NOT NULL,
    -- 'numeric' or 'categorical'.
    kind TEXT NOT NULL,
    min_value DOUBLE PRECISION,
    max_value DOUBLE PRECISION,
    -- JSON array of category names (categorical only).
    categories TEXT,
    description TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (project_id, name)
);

-- One score per trace, name and author: scoring again edits it (the history keeps the old).
CREATE TABLE trace_scores (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    -- A numeric score's value; NULL for a categorical one.
    value DOUBLE PRECISION,
    -- A categorical score's category; NULL for a numeric one.
    category TEXT,
    comment TEXT,
    author TEXT NOT NULL,
    key_id TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (run_id, name, author)
);

CREATE INDEX trace_scores_project_name ON trace_scores (project_id, name, run_id);

CREATE TABLE trace_labels (
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    label TEXT NOT NULL,
    project_id TEXT NOT NULL,
    author TEXT NOT NULL,
    key_id TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (run_id, label)
);

CREATE INDEX trace_labels_project_label ON trace_labels (project_id, label, run_id);

CREATE TABLE trace_notes (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    body TEXT NOT NULL,
    author TEXT NOT NULL,
    key_id TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT
);

CREATE INDEX trace_notes_run ON trace_notes (run_id, id);

CREATE TABLE reward_overrides (
    run_id TEXT PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
    project_id TEXT NOT NULL,
    reward DOUBLE PRECISION NOT NULL,
    reason TEXT NOT NULL,
    author TEXT NOT NULL,
    key_id TEXT,
    created_at BIGINT NOT NULL
);

-- Append-only: every create, update and delete of the above, with the value before and
-- after (JSON), who and when.
CREATE TABLE review_history (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    -- 'score', 'label', 'note', 'reward_override' or 'review'.
    subject TEXT NOT NULL,
    item_id TEXT NOT NULL,
    -- 'created', 'updated', 'deleted' or 'completed'.
    action TEXT NOT NULL,
    previous TEXT,
    value TEXT,
    author TEXT NOT NULL,
    key_id TEXT,
    at BIGINT NOT NULL
);

CREATE INDEX review_history_run ON review_history (run_id, id);

-- A trace is reviewed once a person recorded anything on it or completed it in a review
-- queue; the row stays when the items are deleted (someone looked at the trace).
CREATE TABLE trace_reviews (
    run_id TEXT PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
    project_id TEXT NOT NULL,
    first_reviewed_at BIGINT NOT NULL,
    last_reviewed_at BIGINT NOT NULL,
    last_reviewer TEXT NOT NULL
);
