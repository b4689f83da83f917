-- The job queue (replaces Celery + Redis). See DESIGN §4.
--
-- Hot path: claim = index scan of jobs_fetch_idx + UPDATE to 'running'; complete =
-- one UPDATE ... FROM unnest(...) per batch. The partial index only holds runnable
-- rows, so it stays small however many finished jobs wait for pruning; fillfactor
-- leaves room on each page for HOT updates of the state columns.

CREATE TABLE jobs (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind             text NOT NULL,
    queue            text NOT NULL DEFAULT 'default',
    args             jsonb NOT NULL DEFAULT '{}'::jsonb,
    priority         smallint NOT NULL DEFAULT 0 CHECK (priority BETWEEN 0 AND 9),
    state            text NOT NULL DEFAULT 'available'
                     CHECK (state IN ('available', 'scheduled', 'running', 'retryable', 'completed', 'discarded', 'cancelled')),
    attempt          integer NOT NULL DEFAULT 0,
    max_attempts     integer NOT NULL DEFAULT 20 CHECK (max_attempts > 0),
    run_at           timestamptz NOT NULL DEFAULT now(),
    timeout_ms       integer CHECK (timeout_ms > 0),
    unique_key       text,
    -- One entry per failed attempt: {"attempt": n, "at": "...", "error": "..."}.
    errors           jsonb NOT NULL DEFAULT '[]'::jsonb,
    org_id           uuid,
    created_at       timestamptz NOT NULL DEFAULT now(),
    attempted_at     timestamptz,
    attempted_by     text,
    lease_expires_at timestamptz,
    finished_at      timestamptz
) WITH (
    fillfactor = 70,
    autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_vacuum_insert_scale_factor = 0.05,
    autovacuum_analyze_scale_factor = 0.05
);

-- Runnable jobs, in claim order.
CREATE INDEX jobs_fetch_idx ON jobs (queue, priority, run_at, id)
    WHERE state IN ('available', 'scheduled', 'retryable');

-- Leases to rescue when a worker dies.
CREATE INDEX jobs_running_idx ON jobs (lease_expires_at) WHERE state = 'running';

-- Pruning of finished jobs.
CREATE INDEX jobs_finished_idx ON jobs (finished_at) WHERE state IN ('completed', 'discarded', 'cancelled');

-- A unique key is held while its job is pending or running.
CREATE UNIQUE INDEX jobs_unique_key_idx ON jobs (unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('available', 'scheduled', 'running', 'retryable');

