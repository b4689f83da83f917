-- Metrics that read nothing of an event but its organization, name, time and user — a
-- count or a distinct count of users, unfiltered, by name or not grouped — are folded
-- from the events counted per (organization, name, minute) instead of one row per
-- (event, metric) pair. Every organization has two such metrics over all its events (the
-- built-in events by name and unique users), so the fresh run's delta query paired each
-- event with all of its organization's metrics, kept two pairs, and aggregated them.
-- Measured over 40,000 stored events, one organization with the 8 built-ins: 62 ms →
-- 20 ms (14 ms counting per minute, 5 ms finding that no other metric wants the events).
-- At 200,000 events/s that was a quarter of a core for the rollup's backend.
--
-- `minute_counts` says which metrics qualify; the view exposes it so the fresh run can
-- leave them to `rollup_minute_deltas` (the backfill still folds every metric per event,
-- and the test `minuteCountsAndPerEventFoldsAgree` compares the two byte for byte).
ALTER TABLE metrics ADD COLUMN minute_counts boolean NOT NULL GENERATED ALWAYS AS (
    filters = '[]'::jsonb AND property IS NULL AND aggregation IN ('count', 'unique_users')
    AND (group_by IS NULL OR group_by = '$event_name')) STORED;

-- Migration 0013's view with `minute_counts` added at the end (CREATE OR REPLACE VIEW
-- can only add columns there).
CREATE OR REPLACE VIEW rollup_matches AS
SELECT e.org_id, m.id AS metric_id, m.aggregation, m.horizon_xid, e.ingest_xid, e."timestamp",
       date_bin('1 minute', e."timestamp", timestamptz '2000-01-01 00:00:00+00') AS minute,
       CASE WHEN m.group_by IS NULL THEN NULL
            WHEN m.group_by = '$event_name' THEN e.event_name
            ELSE coalesce(left(e.properties ->> m.group_by, 200), '(none)') END AS group_value,
       CASE WHEN m.aggregation IN ('error_rate_4xx', 'error_rate_5xx') THEN
                CASE WHEN (e.properties ->> m.property) ~ '^[1-5][0-9][0-9]$' THEN
                    CASE WHEN left(e.properties ->> m.property, 1) = CASE m.aggregation WHEN 'error_rate_4xx' THEN '4' ELSE '5' END
                         THEN 1.0::float8 ELSE 0.0::float8 END
                END
            WHEN m.property IS NOT NULL AND jsonb_typeof(e.properties -> m.property) = 'number'
                 AND length(e.properties ->> m.property) <= 300 THEN
                (e.properties ->> m.property)::float8
       END AS v,
       CASE WHEN m.aggregation = 'unique_users' AND e.user_id IS NOT NULL THEN hashtextextended(e.user_id, 0) END AS h,
       event_name_key(e.org_id, e.event_name) AS name_key,
       m.minute_counts
FROM events e
JOIN metrics m ON m.org_id = e.org_id AND (m.event_name = e.event_name OR m.event_name = '*')
WHERE (m.filters = '[]'::jsonb OR NOT EXISTS (
        SELECT 1 FROM jsonb_array_elements(m.filters) f
        WHERE NOT coalesce(CASE f ->> 'op'
            WHEN 'eq' THEN e.properties -> (f ->> 'property') = f -> 'value'
            WHEN 'in' THEN (f -> 'value') @> jsonb_build_array(e.properties -> (f ->> 'property'))
            WHEN 'exists' THEN e.properties ? (f ->> 'property')
        END, false)));

-- The deltas of the `minute_counts` metrics for the events of transactions [from_xid,
-- to_xid), in the columns of the fresh run's delta query (RollupFolder.deltaColumns), for
-- metrics whose horizon is at or below from_xid (every event in the span counts for them).
-- A row per (metric, minute, name): for a metric not grouped by name the fold merges a
-- minute's rows. The minute and the user hash are the view's expressions.
CREATE FUNCTION rollup_minute_deltas(from_xid bigint, to_xid bigint)
RETURNS TABLE (org_id uuid, metric_id uuid, aggregation text, minute timestamptz, group_value text, count int8,
               sum float8, min float8, max float8, hashes int8[], "values" float8[])
LANGUAGE sql STABLE AS $$
SELECT e.org_id, m.id, m.aggregation::text, e.minute,
       CASE WHEN m.group_by IS NULL THEN NULL ELSE e.event_name::text END,
       e.events, NULL::float8, NULL::float8, NULL::float8,
       CASE WHEN m.aggregation = 'unique_users' THEN e.users END, NULL::float8[]
FROM (SELECT ev.org_id, ev.event_name,
             date_bin('1 minute', ev."timestamp", timestamptz '2000-01-01 00:00:00+00') AS minute,
             count(*)::int8 AS events,
             array_agg(hashtextextended(ev.user_id, 0)) FILTER (WHERE ev.user_id IS NOT NULL) AS users
      FROM events ev WHERE ev.ingest_xid >= from_xid AND ev.ingest_xid < to_xid
      GROUP BY 1, 2, 3) e
JOIN metrics m ON m.org_id = e.org_id AND (m.event_name = e.event_name OR m.event_name = '*')
WHERE m.minute_counts AND m.horizon_xid <= from_xid
$$;
