-- The foreign keys from events and event_ids to organizations checked every inserted
-- row against the organization row with a KEY SHARE lock: at 100,000 events/s that is
-- 100,000 row locks per second on one row, turned into multixacts once the ingestion
-- transaction also locks it for the quota — measured as the largest cost inside
-- PostgreSQL on the ingestion path. Events are only written by ingest_events, which
-- checks the organization first, so the check is redundant; removing an organization
-- deletes its events explicitly (its raw rows also age out with retention).
ALTER TABLE events DROP CONSTRAINT IF EXISTS events_org_id_fkey;
ALTER TABLE event_ids DROP CONSTRAINT IF EXISTS event_ids_org_id_fkey;
