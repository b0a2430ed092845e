-- Why a schedule's last tick could not fire (NULL once a tick fires again). A schedule that
-- no longer parses is also taken off the due list (next_run_at NULL) until it is resumed.
ALTER TABLE schedules ADD COLUMN last_error TEXT;
