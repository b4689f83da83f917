-- Exactly-once rollups (DESIGN §6).
--
-- Every event row records the id of the transaction that stored it (`ingest_xid`, the
-- 64-bit xid8, which never wraps). A rollup run takes the oldest transaction still
-- running (the snapshot's xmin): every transaction below it has finished, and every
-- one that committed is visible, so the rows with ingest_xid in [watermark, xmin) are
-- final — none can still appear. The run folds exactly those rows and moves the
-- watermark to xmin in the same transaction as the rollup writes. Rows whose
-- transaction commits late (or out of timestamp order) simply have an xid at or above
-- the new watermark and are folded by a later run; a re-run folds nothing twice.
--
-- Added without a default first (no rewrite of existing rows), then defaulted for new
-- rows: ingest_events inserts without naming the column.
ALTER TABLE events ADD COLUMN ingest_xid bigint;
ALTER TABLE events ALTER COLUMN ingest_xid SET DEFAULT (pg_current_xact_id()::text)::bigint;
-- A btree, not BRIN: BRIN assumes rows land in xid order on disk, which free space
-- reused after deletions breaks (measured: a run's 25,000 rows cost a scan of 20,000
-- pages). All rows of one ingest transaction share an xid, so deduplicated posting lists
-- keep this index small, and it only ever grows at its right edge.
CREATE INDEX events_ingest_xid_idx ON events (ingest_xid);

-- The fresh-rollup position.
CREATE TABLE rollup_state (
    shard       int PRIMARY KEY,
    watermark   bigint NOT NULL,
    last_run_at timestamptz,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO rollup_state (shard, watermark) VALUES (0, 0);

-- A metric's rows with ingest_xid below horizon_xid (or no xid: stored before this
-- migration) are folded by its backfill; rows at or above it by the fresh runs, so
-- the two sets partition the events and neither counts a row the other does. The horizon is the
-- writing transaction's own xid: a fresh run whose xmin is past it started after the
-- definition committed and sees it; one whose xmin is not reads only rows below it.
ALTER TABLE metrics DROP CONSTRAINT IF EXISTS metrics_aggregation_check;
ALTER TABLE metrics ADD CONSTRAINT metrics_aggregation_check CHECK (aggregation IN (
    'count', 'unique_users', 'sum', 'avg', 'min', 'max', 'p50', 'p90', 'p95', 'p99',
    'error_rate_4xx', 'error_rate_5xx'));
ALTER TABLE metrics
    ADD COLUMN builtin         varchar(50),
    ADD COLUMN horizon_xid     bigint NOT NULL DEFAULT 0,
    ADD COLUMN backfill_cursor timestamptz,
    ADD COLUMN backfill_done   boolean NOT NULL DEFAULT false,
    ADD COLUMN version         integer NOT NULL DEFAULT 1;
CREATE UNIQUE INDEX metrics_builtin_idx ON metrics (org_id, builtin) WHERE builtin IS NOT NULL;
CREATE INDEX metrics_event_idx ON metrics (org_id, event_name);
CREATE INDEX metrics_backfill_idx ON metrics (org_id) WHERE NOT backfill_done;

-- Rollup rows: `group_value` '' is the metric over all groups; a grouped metric also
-- has one row per group value, prefixed with '=' so that no value can collide with
-- the total. `value` is the bucket's final number (so a series reads no sketch);
-- `sketch` holds the mergeable state: a HyperLogLog for unique users, a DDSketch for
-- percentiles.
--
-- Partitioned by granularity: minute rows outnumber hour rows sixty to one, and a
-- dashboard reading 30 days of hours should not find them scattered among minutes.
-- The primary key carries the numbers a series reads (INCLUDE), so once vacuum has
-- marked settled buckets all-visible, a series is an index-only scan over adjacent
-- entries instead of one heap page per bucket (measured: 3,600 buffers for one widget).
-- Rows are rewritten by every run that touches their bucket: room for HOT updates.
DROP TABLE rollups;
CREATE TABLE rollups (
    org_id       uuid NOT NULL,
    metric_id    uuid NOT NULL,
    granularity  varchar(10) NOT NULL CHECK (granularity IN ('minute', 'hour', 'day')),
    bucket_start timestamptz NOT NULL,
    group_value  text NOT NULL DEFAULT '',
    count        bigint NOT NULL DEFAULT 0,
    sum          double precision NOT NULL DEFAULT 0,
    min          double precision,
    max          double precision,
    value        double precision,
    sketch       bytea,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, metric_id, granularity, bucket_start, group_value) INCLUDE (count, sum, min, max, value),
    FOREIGN KEY (org_id, metric_id) REFERENCES metrics (org_id, id) ON DELETE CASCADE
) PARTITION BY LIST (granularity);
CREATE TABLE rollups_minute PARTITION OF rollups FOR VALUES IN ('minute')
    WITH (fillfactor = 80, autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_insert_scale_factor = 0.02);
CREATE TABLE rollups_hour PARTITION OF rollups FOR VALUES IN ('hour')
    WITH (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_insert_scale_factor = 0.02);
CREATE TABLE rollups_day PARTITION OF rollups FOR VALUES IN ('day')
    WITH (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_insert_scale_factor = 0.02);
-- Sketches are stored uncompressed: a dense HyperLogLog is 16 KiB of small numbers
-- that pglz shrinks little, and decompressing dozens per dashboard widget showed in
-- profiles.
-- (On the parent, after the partitions: the setting recurses to them.)
ALTER TABLE rollups ALTER COLUMN sketch SET STORAGE EXTERNAL;

-- The built-in metrics of an organization. New organizations have no events, so their
-- built-ins start complete; existing ones are backfilled.
CREATE FUNCTION create_builtin_metrics(p_org uuid, p_done boolean) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO metrics (org_id, name, event_name, aggregation, property, filters, group_by, builtin,
                         horizon_xid, backfill_done)
    SELECT p_org, b.name, b.event_name, b.aggregation, b.property, '[]'::jsonb, b.group_by, b.builtin,
           pg_current_xact_id()::text::bigint, p_done
    FROM (VALUES
        ('events_by_name', 'Events by name', '*', 'count', NULL, '$event_name'),
        ('unique_users', 'Unique users', '*', 'unique_users', NULL, NULL),
        ('api_requests', 'API requests', 'api_request', 'count', NULL, 'endpoint'),
        ('api_error_rate_4xx', 'API 4xx error rate', 'api_request', 'error_rate_4xx', 'status', 'endpoint'),
        ('api_error_rate_5xx', 'API 5xx error rate', 'api_request', 'error_rate_5xx', 'status', 'endpoint'),
        ('api_latency_p50', 'API latency p50', 'api_request', 'p50', 'duration_ms', 'endpoint'),
        ('api_latency_p95', 'API latency p95', 'api_request', 'p95', 'duration_ms', 'endpoint'),
        ('api_latency_p99', 'API latency p99', 'api_request', 'p99', 'duration_ms', 'endpoint')
    ) AS b(builtin, name, event_name, aggregation, property, group_by)
    ON CONFLICT DO NOTHING
$$;

CREATE FUNCTION organizations_builtin_metrics() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM create_builtin_metrics(NEW.id, true);
    RETURN NULL;
END
$$;
CREATE TRIGGER organizations_builtin_metrics AFTER INSERT ON organizations
    FOR EACH ROW EXECUTE FUNCTION organizations_builtin_metrics();

SELECT create_builtin_metrics(id, false) FROM organizations;

-- One row per (event, metric it counts for), with what the rollup needs from it. The
-- fresh run and the backfill filter this view differently; the matching is one place.
-- Numbers outside float8's range are skipped rather than failing the cast (a rollup
-- that errors on one event would stop all of them): jsonb prints numbers in plain
-- decimal, so 300 characters or fewer means a magnitude between 1e-298 and 1e300.
CREATE VIEW rollup_matches AS
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
       CASE WHEN m.aggregation = 'unique_users' AND e.user_id IS NOT NULL THEN hashtextextended(e.user_id, 0) END AS h
FROM events e
JOIN metrics m ON m.org_id = e.org_id AND (m.event_name = e.event_name OR m.event_name = '*')
WHERE (m.filters = '[]'::jsonb OR NOT EXISTS (
        SELECT 1 FROM jsonb_array_elements(m.filters) f
        WHERE NOT coalesce(CASE f ->> 'op'
            WHEN 'eq' THEN e.properties -> (f ->> 'property') = f -> 'value'
            WHEN 'in' THEN (f -> 'value') @> jsonb_build_array(e.properties -> (f ->> 'property'))
            WHEN 'exists' THEN e.properties ? (f ->> 'property')
        END, false)));

-- Exact microsecond round trips for the backfill's slice bounds: a client's Double
-- date can move a bound by a microsecond, and an event on it would be folded twice.
CREATE FUNCTION epoch_us(timestamptz) RETURNS bigint IMMUTABLE LANGUAGE sql AS
$$ SELECT (extract(epoch FROM $1) * 1000000)::bigint $$;
CREATE FUNCTION from_epoch_us(bigint) RETURNS timestamptz STABLE LANGUAGE sql AS
$$ SELECT timestamptz 'epoch' + $1 * interval '1 microsecond' $$;
