-- A scheduled tick that starts no run (the environment is unusable, the model does not
-- resolve in the project, the project's quota or in-flight limit is reached) records why,
-- so `GET /v1/schedules/{id}` can say it.
ALTER TABLE schedules ADD COLUMN last_skipped_at BIGINT;
ALTER TABLE schedules ADD COLUMN last_skip_reason TEXT;
