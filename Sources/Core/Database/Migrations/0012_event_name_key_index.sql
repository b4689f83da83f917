-- Events by name: the index on (org_id, event_name, "timestamp") is replaced by one on
-- a 64-bit key of (organization, name) and the time.
--
-- Every stored event is inserted into this index, where each event name is its own
-- insertion point: no right-edge fast path, a descent from the root per row, and at
-- every level comparisons of a uuid and a string. Fixed-width int8 keys compare in a
-- fraction of that and make the index half as wide. Measured on the 2-core machine,
-- 300,000 rows over 20 event names: the index's share of the insert 440 → 240 ms
-- (one name: 210 → 170 ms); the whole insert into events with its three indexes
-- gets about a fifth cheaper for 20 names.
--
-- A key is a hash, so two (organization, name) pairs may share one: every query that
-- looks events up by key also states org_id and event_name, which PostgreSQL rechecks
-- on the row. Same functions as hash partitioning uses, stable across versions.
CREATE FUNCTION event_name_key(p_org uuid, p_name text) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS 'SELECT hashtextextended(p_name, uuid_hash_extended(p_org, 0))';

-- The keys of several names, folded to a constant when the query is planned.
CREATE FUNCTION event_name_keys(p_org uuid, p_names text[]) RETURNS bigint[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS 'SELECT coalesce(array_agg(event_name_key(p_org, n)), ''{}'') FROM unnest(p_names) AS n';

-- Building it takes a share lock on events (ingestion waits) for as long as the build:
-- 53 s for 137 million events on the 2-core machine.
DROP INDEX events_org_name_time_idx;
CREATE INDEX events_name_key_time_idx ON events (event_name_key(org_id, event_name), "timestamp");
