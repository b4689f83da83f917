-- AnalyticsPro foundation schema.
-- Every tenant table carries org_id and every key and index on it starts with org_id,
-- so the tables can be distributed by org_id (Citus) without changing a query.

CREATE TABLE organizations (
    id                      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name                    varchar(255) NOT NULL CHECK (length(btrim(name)) > 0),
    domain                  varchar(255) UNIQUE,
    subscription_tier       varchar(50) NOT NULL DEFAULT 'starter'
                            CHECK (subscription_tier IN ('starter', 'professional', 'enterprise', 'custom')),
    monthly_event_limit     bigint NOT NULL DEFAULT 100000 CHECK (monthly_event_limit >= 0),
    events_used_this_month  bigint NOT NULL DEFAULT 0 CHECK (events_used_this_month >= 0),
    billing_cycle_start     date NOT NULL DEFAULT (date_trunc('month', now() AT TIME ZONE 'UTC'))::date,
    stripe_customer_id      varchar(255),
    stripe_subscription_id  varchar(255),
    custom_branding         jsonb,
    sso_config              jsonb,
    retention_days          integer NOT NULL DEFAULT 395 CHECK (retention_days > 0),
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now()
);

-- People; one person may belong to several organizations (memberships).
CREATE TABLE users (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email         varchar(320) NOT NULL,
    name          varchar(255),
    oidc_issuer   text,
    oidc_subject  text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_login_at timestamptz,
    UNIQUE (oidc_issuer, oidc_subject)
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

CREATE TABLE memberships (
    org_id     uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       varchar(20) NOT NULL CHECK (role IN ('owner', 'admin', 'analyst', 'viewer')),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, user_id)
);
CREATE INDEX memberships_user_idx ON memberships (user_id);

-- Only a SHA-256 of each key is stored. The lookup by hash happens before the
-- organization is known, hence the global unique index (a reference table in Citus).
CREATE TABLE api_keys (
    org_id       uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    id           uuid NOT NULL DEFAULT gen_random_uuid(),
    key_hash     varchar(255) NOT NULL UNIQUE,
    key_prefix   varchar(16) NOT NULL,
    name         varchar(255) NOT NULL,
    permissions  varchar(100)[] NOT NULL
                 CHECK (permissions <@ ARRAY['read', 'write', 'admin']::varchar(100)[] AND cardinality(permissions) > 0),
    last_used_at timestamptz,
    expires_at   timestamptz,
    revoked_at   timestamptz,
    created_by   uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, id)
);

-- Raw events, partitioned by time. The primary key includes the partition key, as
-- PostgreSQL requires; a default partition catches any time no partition covers yet,
-- so an event is never refused for want of a partition.
CREATE TABLE events (
    org_id      uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    id          uuid NOT NULL DEFAULT gen_random_uuid(),
    event_name  varchar(255) NOT NULL,
    properties  jsonb NOT NULL DEFAULT '{}'::jsonb,
    user_id     varchar(255),
    session_id  varchar(255),
    "timestamp" timestamptz NOT NULL DEFAULT now(),
    received_at timestamptz NOT NULL DEFAULT now(),
    ip_address  inet,
    user_agent  text,
    PRIMARY KEY (org_id, "timestamp", id)
) PARTITION BY RANGE ("timestamp");
CREATE TABLE events_default PARTITION OF events DEFAULT;
CREATE INDEX events_org_name_time_idx ON events (org_id, event_name, "timestamp");

-- Custom metric definitions.
CREATE TABLE metrics (
    org_id      uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    id          uuid NOT NULL DEFAULT gen_random_uuid(),
    name        varchar(255) NOT NULL,
    event_name  varchar(255) NOT NULL,
    aggregation varchar(20) NOT NULL
                CHECK (aggregation IN ('count', 'unique_users', 'sum', 'avg', 'min', 'max', 'p50', 'p90', 'p95', 'p99')),
    property    varchar(255),
    filters     jsonb NOT NULL DEFAULT '[]'::jsonb,
    group_by    varchar(255),
    created_by  uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, id)
);

-- Precomputed, mergeable values per metric and bucket.
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
    hll          bytea,
    sketch       bytea,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, metric_id, granularity, bucket_start, group_value),
    FOREIGN KEY (org_id, metric_id) REFERENCES metrics (org_id, id) ON DELETE CASCADE
);

CREATE TABLE dashboards (
    org_id      uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    id          uuid NOT NULL DEFAULT gen_random_uuid(),
    name        varchar(255) NOT NULL,
    description text,
    config      jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_by  uuid REFERENCES users (id) ON DELETE SET NULL,
    is_public   boolean NOT NULL DEFAULT false,
    tags        varchar(100)[] NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, id)
);

CREATE TABLE alerts (
    org_id                uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    id                    uuid NOT NULL DEFAULT gen_random_uuid(),
    name                  varchar(255) NOT NULL,
    metric_id             uuid,
    metric_query          text NOT NULL DEFAULT '',
    condition_type        varchar(50) NOT NULL CHECK (condition_type IN ('above', 'below', 'equals')),
    threshold_value       numeric NOT NULL,
    window_seconds        integer NOT NULL DEFAULT 300 CHECK (window_seconds > 0),
    notification_channels jsonb NOT NULL DEFAULT '[]'::jsonb,
    is_active             boolean NOT NULL DEFAULT true,
    last_triggered_at     timestamptz,
    created_by            uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at            timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, id),
    FOREIGN KEY (org_id, metric_id) REFERENCES metrics (org_id, id) ON DELETE CASCADE
);

CREATE TABLE alert_events (
    org_id       uuid NOT NULL,
    id           uuid NOT NULL DEFAULT gen_random_uuid(),
    alert_id     uuid NOT NULL,
    triggered_at timestamptz NOT NULL DEFAULT now(),
    value        double precision NOT NULL,
    threshold    numeric NOT NULL,
    state        varchar(20) NOT NULL DEFAULT 'triggered' CHECK (state IN ('triggered', 'resolved')),
    notified     jsonb NOT NULL DEFAULT '[]'::jsonb,
    PRIMARY KEY (org_id, id),
    FOREIGN KEY (org_id, alert_id) REFERENCES alerts (org_id, id) ON DELETE CASCADE
);
CREATE INDEX alert_events_alert_idx ON alert_events (org_id, alert_id, triggered_at DESC);

CREATE TABLE report_schedules (
    org_id          uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    id              uuid NOT NULL DEFAULT gen_random_uuid(),
    name            varchar(255) NOT NULL,
    dashboard_id    uuid,
    template        varchar(255) NOT NULL DEFAULT 'dashboard',
    cron_expression varchar(255) NOT NULL,
    timezone        varchar(64) NOT NULL DEFAULT 'UTC',
    recipients      text[] NOT NULL DEFAULT '{}',
    format          varchar(10) NOT NULL DEFAULT 'pdf' CHECK (format IN ('pdf', 'csv')),
    enabled         boolean NOT NULL DEFAULT true,
    last_run_at     timestamptz,
    created_by      uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, id),
    FOREIGN KEY (org_id, dashboard_id) REFERENCES dashboards (org_id, id) ON DELETE CASCADE
);

CREATE TABLE exports (
    org_id       uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    id           uuid NOT NULL DEFAULT gen_random_uuid(),
    kind         varchar(20) NOT NULL CHECK (kind IN ('events', 'metric', 'dashboard')),
    format       varchar(10) NOT NULL CHECK (format IN ('csv', 'pdf', 'json')),
    status       varchar(20) NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'running', 'completed', 'failed')),
    parameters   jsonb NOT NULL DEFAULT '{}'::jsonb,
    row_count    bigint,
    size_bytes   bigint,
    error        text,
    created_by   uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    expires_at   timestamptz,
    PRIMARY KEY (org_id, id)
);

-- Counted usage per billing period: the source for quota resets and Stripe reports.
CREATE TABLE usage_periods (
    org_id                uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    period_start          date NOT NULL,
    period_end            date NOT NULL CHECK (period_end > period_start),
    events_count          bigint NOT NULL DEFAULT 0,
    event_limit           bigint NOT NULL,
    reported_to_stripe_at timestamptz,
    PRIMARY KEY (org_id, period_start)
);

CREATE TABLE audit_log (
    org_id      uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    id          bigint GENERATED ALWAYS AS IDENTITY,
    actor_type  varchar(20) NOT NULL CHECK (actor_type IN ('user', 'api_key', 'system')),
    actor_id    text,
    action      varchar(100) NOT NULL,
    target_type varchar(50),
    target_id   text,
    details     jsonb NOT NULL DEFAULT '{}'::jsonb,
    ip_address  inet,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, id)
);
CREATE INDEX audit_log_time_idx ON audit_log (org_id, created_at DESC);
