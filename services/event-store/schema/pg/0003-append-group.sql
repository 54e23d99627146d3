-- One group of appends in one statement (one round trip). The committer
-- (es_group.c) sends it when it believes it knows the version of every
-- stream the group touches; p_expect lists those versions (0: no such
-- stream). Under the log lock the function checks them: when some are wrong
-- it writes nothing and returns one row (-1, id, true version) for each, so
-- that the committer can decide again and retry. Otherwise it writes the
-- events with log ids head + the "log_id" each carries (1, 2, ...), upserts
-- the streams (their log ids are offsets from the head too), wakes the log's
-- listeners and returns one row (the head it numbered from, NULL, NULL).
-- 4242001 is the key of ES_LOCK and
-- 'eskit_log' is ES_NOTIFY_CHANNEL (es_store.c/h): keep them the same.
CREATE FUNCTION es_append_group(p_expect json, p_events json, p_streams json)
RETURNS TABLE (r_head bigint, r_id text, r_version bigint) LANGUAGE plpgsql
-- Plans are made once per connection, not once per call (the sessions of the
-- event store plan every statement afresh: db_pg.c says why). Each query below has one plan
-- whatever the tables' sizes: an index probe per stream (the check is a
-- subquery, not a join, for that reason), the index's end for the head, and
-- inserts that scan nothing. A generic plan made while es_streams looked
-- empty (just analyzed) would scan it whole once per stream, for as long as
-- the connection lives: sequential scans are off here, and every query
-- below has an index to use instead.
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS $$
DECLARE
    h bigint;
    n bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(4242001);
    RETURN QUERY
        SELECT -1::bigint, y.id, y.actual
        FROM (SELECT x.id, x.version AS expected,
                     COALESCE((SELECT s.version FROM es_streams AS s WHERE s.id = x.id), 0)
                         AS actual
              FROM json_to_recordset(p_expect) AS x(id text, version bigint)) AS y
        WHERE y.actual <> y.expected;
    IF FOUND THEN
        RETURN;
    END IF;
    SELECT COALESCE(MAX(log_id), 0) INTO h FROM es_events;
    INSERT INTO es_events (log_id, originator_id, version, event_type, entity_type,
                           event_name, payload, occurred_on)
        SELECT h + x.log_id, x.originator_id, x.version, x.event_type, x.entity_type,
               x.event_name, COALESCE(x.payload, 'null'::jsonb), x.occurred_on
        FROM json_to_recordset(p_events) AS x(log_id bigint, originator_id text,
             version bigint, event_type text, entity_type text, event_name text,
             payload jsonb, occurred_on bigint);
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n > 0 THEN
        INSERT INTO es_streams AS s (id, entity_type, version, last_event_type,
                                     created_log_id, updated_log_id)
            SELECT x.id, x.entity_type, x.version, x.last_event_type,
                   h + x.created_log_id, h + x.updated_log_id
            FROM json_to_recordset(p_streams) AS x(id text, entity_type text,
                 version bigint, last_event_type text, created_log_id bigint,
                 updated_log_id bigint)
        ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version,
            last_event_type = EXCLUDED.last_event_type,
            updated_log_id = EXCLUDED.updated_log_id;
        PERFORM pg_notify('eskit_log', (h + n)::text);
    END IF;
    RETURN QUERY SELECT h, NULL::text, NULL::bigint;
END
$$;
