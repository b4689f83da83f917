-- The insert of a group commit read its rows from `unnest(a, b, …)` in FROM, which
-- PostgreSQL runs as ROWS FROM (unnest(a), unnest(b), …): each array is first copied
-- into its own tuplestore, then the rows are zipped. Set-returning functions in the
-- select list (a ProjectSet node) yield the same rows in the same lockstep — arrays of
-- equal length, element by element — with no copy. Measured on the 2-core machine,
-- 150 calls of 2,000 events into a table without indexes: 492–545 ms → 402–412 ms
-- (0.3 µs less per event, about a twentieth of PostgreSQL's time per stored event).
--
-- The rows go in in primary-key order ("timestamp", id). A call's events interleave in
-- time with the calls running beside it; unsorted (a request's events share a time and
-- their ids are random below the millisecond) they landed mid-page and split leaves in
-- half. Sorted, PostgreSQL sees a local ascending run and splits after it: measured,
-- leaf density 59.7 % → 66.4 % and 11 % fewer primary-key pages per event, and 5 of 6
-- paired 20-second runs faster (up to +14 %).
-- Same signature and result as migration 0009's version, so every node can call it.
CREATE OR REPLACE FUNCTION ingest_insert_events(
    p_org uuid, p_request int[], p_ids uuid[], p_names text[], p_properties text[], p_users text[],
    p_has_user bool[], p_sessions text[], p_has_session bool[], p_times timestamptz[], p_ips text[],
    p_agents text[], p_store bool[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_xid bigint := (pg_current_xact_id()::text)::bigint;
    v_now timestamptz := now();
    v_ips inet[] := ARRAY(SELECT nullif(i.ip, '')::inet FROM unnest(p_ips) WITH ORDINALITY AS i(ip, n) ORDER BY i.n);
    v_agents text[] := ARRAY(SELECT nullif(a.agent, '') FROM unnest(p_agents) WITH ORDINALITY AS a(agent, n) ORDER BY a.n);
BEGIN
    INSERT INTO events (org_id, id, event_name, properties, user_id, session_id, "timestamp", received_at,
                        ip_address, user_agent, ingest_xid)
    SELECT p_org, e.id, e.name, e.props::jsonb,
           CASE WHEN e.has_uid THEN e.uid END, CASE WHEN e.has_sid THEN e.sid END, e.ts, v_now,
           v_ips[e.r], v_agents[e.r], v_xid
    FROM (SELECT unnest(p_request) AS r, unnest(p_ids) AS id, unnest(p_names) AS name,
                 unnest(p_properties) AS props, unnest(p_users) AS uid, unnest(p_has_user) AS has_uid,
                 unnest(p_sessions) AS sid, unnest(p_has_session) AS has_sid, unnest(p_times) AS ts,
                 unnest(p_store) AS store) AS e
    WHERE e.store
    ORDER BY e.ts, e.id;
END
$$;
