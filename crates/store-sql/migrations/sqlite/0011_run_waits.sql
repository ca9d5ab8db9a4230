-- Runs that outlast outages and can be retried. Mirrors
-- migrations/postgres/0011_run_waits.sql.
--
-- `waiting`: JSON of the provider wait a running run is in (when it began,
-- the next attempt, when its patience ends), so a restart resumes the wait
-- without resetting the clock. `queue_key`: a retried run's place at the
-- back of its session's queue; runs without one are ordered by id.
ALTER TABLE runs ADD COLUMN waiting TEXT;
ALTER TABLE runs ADD COLUMN queue_key TEXT;
