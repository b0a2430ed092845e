-- The claim looks at the head of each lane of the queue (runs of no job, and the runs of
-- each job) rather than at every queued run: this index finds each lane's head, and the
-- next lane after a given job, in one index probe, so that a claim costs the same whatever
-- the backlog of a job whose max_concurrency is reached.
CREATE INDEX runs_queue_lanes ON runs (status, job_id, created_at, id);
