-- The insert of a group commit evaluated per row what is the same for every row of the
-- call: the transaction id (ingest_xid's default, a function call and two casts), the
-- receive time, and each request's client address cast to inet. Computing them once per
-- call measured 6 % faster per event (2,000-event calls, 3 indexes on events).
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
    FROM unnest(p_request, p_ids, p_names, p_properties, p_users, p_has_user, p_sessions, p_has_session,
                p_times, p_store)
         AS e(r, id, name, props, uid, has_uid, sid, has_sid, ts, store)
    WHERE e.store;
END
$$;
