-- The API key that started a run, for usage per key (NULL for runs started otherwise,
-- e.g. by a schedule, and for runs made before this migration).
ALTER TABLE runs ADD COLUMN key_id TEXT;
CREATE INDEX runs_project_key ON runs (project_id, key_id, created_at);
