-- Which job made the last fresh run. The job that ingestion wakes holds the rollup's
-- unique key and loops while events arrive; the cron safety net's job does not hold it,
-- so under steady ingest both ran at once, taking turns at the lock: twice the looks for
-- the same events. A job without the key now leaves the work to the keyed one while that
-- one is running and made the last run within 2 s (RollupJob.keyedRunIsFolding).
ALTER TABLE rollup_state ADD COLUMN looked_by bigint;
