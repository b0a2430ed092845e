-- Trace listing filters, usage aggregation and web UI sessions.

-- Filters by scenario and status, newest first within a project.
CREATE INDEX runs_project_scenario ON runs (project_id, scenario, id);
CREATE INDEX runs_project_status ON runs (project_id, status, id);
-- Usage over a time range.
CREATE INDEX runs_project_created ON runs (project_id, created_at);

-- Web UI sessions: the cookie holds a random token; only its SHA-256 is stored here.
CREATE TABLE ui_sessions (
    token_hash TEXT PRIMARY KEY,
    key_id TEXT NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE INDEX ui_sessions_key ON ui_sessions (key_id);
