-- Export files live in the database, in chunks of about 1 MiB: any API node serves any
-- export's download, and no node's disk holds state. Chunks go with their export.
CREATE TABLE export_chunks (
    org_id    uuid NOT NULL,
    export_id uuid NOT NULL,
    seq       integer NOT NULL,
    data      bytea NOT NULL,
    PRIMARY KEY (org_id, export_id, seq),
    FOREIGN KEY (org_id, export_id) REFERENCES exports (org_id, id) ON DELETE CASCADE
);

ALTER TABLE exports
    ADD COLUMN filename     text,
    ADD COLUMN content_type text,
    ADD COLUMN ttl_seconds  integer NOT NULL DEFAULT 86400 CHECK (ttl_seconds > 0),
    ADD COLUMN started_at   timestamptz,
    ADD COLUMN attempts     integer NOT NULL DEFAULT 0;
ALTER TABLE exports DROP CONSTRAINT IF EXISTS exports_status_check;
ALTER TABLE exports ADD CONSTRAINT exports_status_check
    CHECK (status IN ('pending', 'running', 'completed', 'failed', 'expired'));
CREATE INDEX exports_open_idx ON exports (created_at) WHERE status IN ('pending', 'running');
CREATE INDEX exports_expiry_idx ON exports (expires_at) WHERE status = 'completed';
