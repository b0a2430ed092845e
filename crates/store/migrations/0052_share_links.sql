-- Share links: a read-only URL of one trace, reachable signed out. The URL's token is
-- random; only its SHA-256 is stored. A link may expire and may be revoked; a project may
-- turn sharing off, which also hides its existing links until it is turned on again.
CREATE TABLE share_links (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects (id),
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    created_by TEXT NOT NULL,
    key_id TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT
);

CREATE INDEX share_links_run ON share_links (run_id, id);

-- 1: the project's traces cannot be shared, and its links show nothing.
ALTER TABLE projects ADD COLUMN sharing_disabled BIGINT NOT NULL DEFAULT 0;
