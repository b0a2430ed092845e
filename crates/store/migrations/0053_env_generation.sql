-- A count of the changes to the project's environment versions (one registered, an
-- environment deleted), bumped in the transaction of each change. Read with a request's key,
-- it tells a server whether the versions it kept in memory for the project are still the
-- ones stored, whichever process changed them.
ALTER TABLE projects ADD COLUMN env_generation BIGINT NOT NULL DEFAULT 0;
