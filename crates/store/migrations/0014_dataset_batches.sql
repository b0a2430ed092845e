-- Datasets are written in batches (short write transactions, so that a large dataset never
-- holds SQLite's write lock for long): the row is inserted first with complete = 0, its
-- records appended batch by batch, then its stats written with complete = 1. Readers only
-- see complete datasets; a failed creation deletes its row (and records, by cascade).
ALTER TABLE datasets ADD COLUMN complete BIGINT NOT NULL DEFAULT 1;
