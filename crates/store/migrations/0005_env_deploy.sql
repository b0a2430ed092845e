-- Deployed environments (bundles and git): the build log of a version (its tail).
ALTER TABLE env_versions ADD COLUMN build_log TEXT;
