-- Per-project defaults, limits and quotas. NULL means "no project setting": the server's
-- default applies, or there is no limit. Quotas count over a rolling 24-hour window from
-- `runs` (indexes runs_project_status and runs_project_created, migration 0004).

ALTER TABLE projects ADD COLUMN max_runs_in_flight BIGINT;
ALTER TABLE projects ADD COLUMN default_timeout_seconds BIGINT;
ALTER TABLE projects ADD COLUMN max_timeout_seconds BIGINT;
ALTER TABLE projects ADD COLUMN default_max_steps BIGINT;
ALTER TABLE projects ADD COLUMN max_runs_per_day BIGINT;
ALTER TABLE projects ADD COLUMN max_tokens_per_day BIGINT;
ALTER TABLE projects ADD COLUMN settings_updated_at BIGINT;
