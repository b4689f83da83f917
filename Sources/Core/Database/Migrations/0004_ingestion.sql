-- Idempotent ingestion: every client-supplied event id is remembered for the whole
-- retention window (not a short cache), so a retry after a timeout is stored once.
-- `events` cannot enforce this itself: its primary key must include the partition key.
CREATE TABLE event_ids (
    org_id      uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    id          uuid NOT NULL,
    "timestamp" timestamptz NOT NULL,
    PRIMARY KEY (org_id, id)
);
CREATE INDEX event_ids_time_idx ON event_ids (org_id, "timestamp");
