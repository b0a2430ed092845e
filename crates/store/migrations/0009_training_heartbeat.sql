-- Training jobs run in the server process that accepted them. It renews heartbeat_at while a
-- job runs, so that a job whose process died is failed by any other process (on PostgreSQL
-- several servers share the table) instead of staying `running` forever.
ALTER TABLE training_jobs ADD COLUMN heartbeat_at BIGINT;
