-- Cron schedules (replaces Celery beat). See DESIGN §5.
--
-- Schedulers claim due rows with FOR UPDATE SKIP LOCKED and record every tick in
-- cron_ticks under a primary key (schedule, tick time): however many schedulers run,
-- and however late one of them is, a tick is enqueued once. There is no leader.

CREATE TABLE cron_schedules (
    id                         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name                       text NOT NULL UNIQUE,
    expression                 text NOT NULL,
    timezone                   text NOT NULL DEFAULT 'UTC',
    job_kind                   text NOT NULL,
    args                       jsonb NOT NULL DEFAULT '{}'::jsonb,
    queue                      text NOT NULL DEFAULT 'default',
    enabled                    boolean NOT NULL DEFAULT true,
    missed_policy              text NOT NULL DEFAULT 'skip' CHECK (missed_policy IN ('skip', 'catch_up')),
    catch_up_deadline_seconds  integer NOT NULL DEFAULT 3600 CHECK (catch_up_deadline_seconds > 0),
    overlap_policy             text NOT NULL DEFAULT 'allow' CHECK (overlap_policy IN ('allow', 'skip')),
    source                     text NOT NULL DEFAULT 'user' CHECK (source IN ('code', 'user')),
    org_id                     uuid,
    -- NULL: a scheduler computes it (new or changed schedule).
    next_run_at                timestamptz,
    last_tick_at               timestamptz,
    last_job_id                bigint,
    last_error                 text,
    created_at                 timestamptz NOT NULL DEFAULT now(),
    updated_at                 timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX cron_schedules_due_idx ON cron_schedules (next_run_at) WHERE enabled;

CREATE TABLE cron_ticks (
    schedule_id bigint NOT NULL REFERENCES cron_schedules (id) ON DELETE CASCADE,
    tick_at     timestamptz NOT NULL,
    job_id      bigint,
    outcome     text NOT NULL CHECK (outcome IN ('enqueued', 'skipped_overlap')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (schedule_id, tick_at)
);
CREATE INDEX cron_ticks_created_idx ON cron_ticks (created_at);

-- Whoever edits a schedule (API, code, psql), its next run is recomputed and the
-- schedulers are told at once.
CREATE FUNCTION cron_schedules_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.expression IS DISTINCT FROM OLD.expression
        OR NEW.timezone IS DISTINCT FROM OLD.timezone
        OR (NEW.enabled AND NOT OLD.enabled) THEN
        NEW.next_run_at := NULL;
        NEW.last_error := NULL;
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER cron_schedules_changed BEFORE INSERT OR UPDATE ON cron_schedules
    FOR EACH ROW EXECUTE FUNCTION cron_schedules_changed();

CREATE FUNCTION cron_schedules_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('analyticspro_schedules', '');
    RETURN NULL;
END $$;

CREATE TRIGGER cron_schedules_notify
    AFTER INSERT OR DELETE OR UPDATE OF expression, timezone, enabled ON cron_schedules
    FOR EACH STATEMENT EXECUTE FUNCTION cron_schedules_notify();
