-- ingest_events, cheaper per call (single events come ~30 to a call, so the fixed
-- cost is most of it): the per-request counts come from the caller instead of a
-- grouping statement when no event carries a client id, and the result is one row of
-- arrays instead of a row per request that the caller aggregated again. Measured with
-- pgbench on the 2-core machine: a 1-event call 0.40 → 0.26 ms, a 30-event call
-- 0.61 → 0.48 ms. Same transaction logic as migration 0005 otherwise (see its notes).
-- A new overload (one more argument): nodes not yet upgraded keep calling the old one.
CREATE FUNCTION ingest_events(
    p_org uuid, p_requests int, p_request int[], p_ids uuid[], p_client bool[], p_names text[],
    p_properties text[], p_users text[], p_has_user bool[], p_sessions text[], p_has_session bool[],
    p_times timestamptz[], p_ips text[], p_agents text[], p_counts int[],
    OUT accepted int[], OUT duplicates int[], OUT admitted bool[], OUT used_before bigint[],
    OUT monthly_limit bigint, OUT cycle_start date)
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

        SELECT array_agg(coalesce(n.new, 0) ORDER BY r.r), array_agg(coalesce(n.dup, 0) ORDER BY r.r)
        INTO v_new, v_dup
        FROM generate_series(1, p_requests) AS r(r)
        LEFT JOIN (
            SELECT e.r, (count(*) FILTER (WHERE e.fresh))::int AS new, (count(*) FILTER (WHERE NOT e.fresh))::int AS dup
            FROM unnest(p_request, v_fresh) AS e(r, fresh) GROUP BY e.r
        ) n ON n.r = r.r;
    ELSE
        -- Without client ids every event is new: the caller's per-request counts.
        v_fresh := array_fill(true, ARRAY[cardinality(p_ids)]);
        v_new := p_counts;
        v_dup := array_fill(0, ARRAY[p_requests]);
    END IF;

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

    accepted := v_new;
    duplicates := v_dup;
    admitted := v_ok;
    used_before := v_before;
    monthly_limit := v_limit;
    cycle_start := v_cycle;
END
$$;
