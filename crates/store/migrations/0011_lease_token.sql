-- Fencing by claim: every claim of a run writes a fresh token, and every lease write
-- (heartbeat, progress, events, release, finish) must present it. A lease owner names a
-- process; a process whose lease expired and which claimed the run again must not be able
-- to write as the newer claim.
ALTER TABLE runs ADD COLUMN lease_token TEXT;
-- Attempts lost to dead or hung workers. Attempts only ever increase (a release at shutdown
-- does not give one back), so the bound on re-queues counts lost attempts apart.
ALTER TABLE runs ADD COLUMN lost_attempts BIGINT NOT NULL DEFAULT 0;
