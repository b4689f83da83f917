-- One group-commit transaction of the ingestion API as one call: client ids claimed in
-- event_ids (a retry is stored once), the events inserted, then the organization row
-- locked (exact quota on every node), requests admitted in order while they fit (all or
-- nothing each) and usage counted. Run server-side, the statements cost one round trip.
--
-- The row lock is taken after the insert so that several transactions of one
-- organization insert in parallel and hold the lock only to count. Should the quota
-- turn out to be exceeded, the refused requests' rows are deleted again before commit;
-- when it is visibly close already, the lock is taken first and nothing is wasted.
-- Ids are claimed in sorted order so concurrent claims cannot deadlock, and the row is
-- locked FOR NO KEY UPDATE, which the foreign keys' KEY SHARE locks do not conflict with.
--
-- Events arrive as parallel arrays; p_request gives each event's request (1-based).
-- Arrays cannot carry NULLs from the client driver, so user and session ids come with
-- presence flags; an empty ip or user agent means none. The caller guarantees that no
-- client id appears in two requests of one call.
-- Inserts the events whose p_store flag is set.
CREATE FUNCTION ingest_insert_events(
    p_org uuid, p_request int[], p_ids uuid[], p_names text[], p_properties text[], p_users text[],
    p_has_user bool[], p_sessions text[], p_has_session bool[], p_times timestamptz[], p_ips text[],
    p_agents text[], p_store bool[])
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO events (org_id, id, event_name, properties, user_id, session_id, "timestamp", ip_address, user_agent)
    SELECT p_org, e.id, e.name, e.props::jsonb,
           CASE WHEN e.has_uid THEN e.uid END, CASE WHEN e.has_sid THEN e.sid END, e.ts,
           nullif(p_ips[e.r], '')::inet, nullif(p_agents[e.r], '')
    FROM unnest(p_request, p_ids, p_names, p_properties, p_users, p_has_user, p_sessions, p_has_session,
                p_times, p_store)
         AS e(r, id, name, props, uid, has_uid, sid, has_sid, ts, store)
    WHERE e.store;
END
$$;

CREATE FUNCTION ingest_events(
    p_org uuid, p_requests int, p_request int[], p_ids uuid[], p_client bool[], p_names text[],
    p_properties text[], p_users text[], p_has_user bool[], p_sessions text[], p_has_session bool[],
    p_times timestamptz[], p_ips text[], p_agents text[])
RETURNS TABLE (request int, accepted int, duplicates int, admitted bool, monthly_limit bigint,
               used_before bigint, cycle_start date)
LANGUAGE plpgsql AS $$
DECLARE
    v_limit bigint;
    v_used bigint;
    v_cycle date;
    v_fresh bool[];
    v_new int[];
    v_dup int[];
    v_ok bool[] := array_fill(false, ARRAY[p_requests]);
    v_before bigint[] := array_fill(0::bigint, ARRAY[p_requests]);
    v_counted bigint;
    v_total_new bigint := 0;
    v_locked bool := false;
BEGIN
    SELECT o.monthly_event_limit, o.events_used_this_month INTO v_limit, v_used
    FROM organizations o WHERE o.id = p_org;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF v_used + cardinality(p_ids) > v_limit THEN
        -- Close to the limit: lock first (the values read under the lock are final),
        -- decide, and insert only what is admitted.
        SELECT o.monthly_event_limit, o.events_used_this_month, o.billing_cycle_start INTO v_limit, v_used, v_cycle
        FROM organizations o WHERE o.id = p_org FOR NO KEY UPDATE;
        v_locked := true;
    END IF;

    -- An event is new unless it carries a client id already stored, or repeats an id
    -- earlier in its own request.
    IF true = ANY (p_client) THEN
        WITH claimed AS (
            INSERT INTO event_ids (org_id, id, "timestamp")
            SELECT p_org, u.id, min(u.ts) FROM unnest(p_ids, p_times, p_client) AS u(id, ts, client)
            WHERE u.client GROUP BY u.id ORDER BY u.id
            ON CONFLICT DO NOTHING
            RETURNING event_ids.id
        ), firsts AS (
            SELECT u.id, min(u.ord) AS ord
            FROM unnest(p_ids, p_client) WITH ORDINALITY AS u(id, client, ord) WHERE u.client GROUP BY u.id
        )
        SELECT array_agg(NOT u.client OR (c.id IS NOT NULL AND f.ord = u.ord) ORDER BY u.ord) INTO v_fresh
        FROM unnest(p_ids, p_client) WITH ORDINALITY AS u(id, client, ord)
        LEFT JOIN claimed c ON u.client AND c.id = u.id
        LEFT JOIN firsts f ON u.client AND f.id = u.id;
    ELSE
        v_fresh := array_fill(true, ARRAY[cardinality(p_ids)]);
    END IF;

    SELECT array_agg(coalesce(n.new, 0) ORDER BY r.r), array_agg(coalesce(n.dup, 0) ORDER BY r.r)
    INTO v_new, v_dup
    FROM generate_series(1, p_requests) AS r(r)
    LEFT JOIN (
        SELECT e.r, (count(*) FILTER (WHERE e.fresh))::int AS new, (count(*) FILTER (WHERE NOT e.fresh))::int AS dup
        FROM unnest(p_request, v_fresh) AS e(r, fresh) GROUP BY e.r
    ) n ON n.r = r.r;

    IF NOT v_locked THEN
        PERFORM ingest_insert_events(p_org, p_request, p_ids, p_names, p_properties, p_users, p_has_user,
                                     p_sessions, p_has_session, p_times, p_ips, p_agents, v_fresh);

        SELECT o.monthly_event_limit, o.events_used_this_month, o.billing_cycle_start INTO v_limit, v_used, v_cycle
        FROM organizations o WHERE o.id = p_org FOR NO KEY UPDATE;
    END IF;

    -- Arrival order, each request whole or not at all.
    v_counted := v_used;
    FOR i IN 1 .. p_requests LOOP
        v_before[i] := v_counted;
        v_total_new := v_total_new + v_new[i];
        IF v_counted + v_new[i] <= v_limit THEN
            v_ok[i] := true;
            v_counted := v_counted + v_new[i];
        END IF;
    END LOOP;

    IF v_counted - v_used < v_total_new THEN
        -- Refused requests give their ids back (a later retry must be stored) and, on
        -- the optimistic path, their rows.
        DELETE FROM event_ids d
        USING unnest(p_ids, p_client, p_request, v_fresh) AS u(id, client, r, fresh)
        WHERE d.org_id = p_org AND d.id = u.id AND u.client AND u.fresh AND NOT v_ok[u.r];
        IF NOT v_locked THEN
            DELETE FROM events d
            USING unnest(p_ids, p_times, p_request, v_fresh) AS u(id, ts, r, fresh)
            WHERE d.org_id = p_org AND d."timestamp" = u.ts AND d.id = u.id AND u.fresh AND NOT v_ok[u.r];
        END IF;
    END IF;

    IF v_locked AND v_counted > v_used THEN
        SELECT array_agg(u.fresh AND v_ok[u.r] ORDER BY u.ord) INTO v_fresh
        FROM unnest(v_fresh, p_request) WITH ORDINALITY AS u(fresh, r, ord);
        PERFORM ingest_insert_events(p_org, p_request, p_ids, p_names, p_properties, p_users, p_has_user,
                                     p_sessions, p_has_session, p_times, p_ips, p_agents, v_fresh);
    END IF;

    IF v_counted > v_used THEN
        UPDATE organizations SET events_used_this_month = v_counted WHERE id = p_org;
        UPDATE usage_periods SET events_count = events_count + (v_counted - v_used)
        WHERE org_id = p_org AND period_start = v_cycle;
    END IF;

    RETURN QUERY
    SELECT r.r, v_new[r.r], v_dup[r.r], v_ok[r.r], v_limit, v_before[r.r], v_cycle
    FROM generate_series(1, p_requests) AS r(r);
END
$$;
