-- Stream lifecycle (SPEC §3): retention settings and the erased tombstone.
-- max_count, max_age_seconds, truncate_before: NULL means no limit. A
-- stream read returns only what they keep (es_store.c); the scavenger
-- (es_scavenge.c) deletes the rest, found through es_streams_retained.
-- erased: the stream was erased (DELETE /v1/streams/{id}); the row stays as
-- its tombstone, so that its id is never reused.
ALTER TABLE es_streams
    ADD COLUMN max_count bigint,
    ADD COLUMN max_age_seconds bigint,
    ADD COLUMN truncate_before bigint,
    ADD COLUMN erased boolean NOT NULL DEFAULT false;
CREATE INDEX es_streams_retained ON es_streams (id)
    WHERE max_count IS NOT NULL OR max_age_seconds IS NOT NULL OR truncate_before IS NOT NULL;

-- es_append_group (see 0005-event-ids.sql) with erased streams: the version
-- it checks for an erased stream is -1, the committer's mark for a
-- tombstone (es_group.c refuses every append to it with 410). Otherwise the
-- same function.
CREATE OR REPLACE FUNCTION es_append_group(p_expect json, p_events json, p_streams json,
                                           p_ids json)
RETURNS TABLE (r_head bigint, r_id text, r_version bigint, r_recorded_at bigint)
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS $$
DECLARE
    h bigint;
    n bigint;
    t bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(4242001);
    RETURN QUERY
        SELECT -1::bigint, y.id, y.actual, NULL::bigint
        FROM (SELECT x.id, x.version AS expected,
                     COALESCE((SELECT CASE WHEN s.erased THEN -1 ELSE s.version END
                               FROM es_streams AS s WHERE s.id = x.id), 0)
                         AS actual
              FROM json_to_recordset(p_expect) AS x(id text, version bigint)) AS y
        WHERE y.actual <> y.expected;
    IF FOUND THEN
        RETURN;
    END IF;
    IF json_array_length(p_ids) > 0 AND EXISTS (
           SELECT 1 FROM es_events AS e
           WHERE e.event_id = ANY (ARRAY(SELECT CAST(json_array_elements_text(p_ids) AS uuid))))
    THEN
        RETURN QUERY SELECT -3::bigint, NULL::text, NULL::bigint, NULL::bigint;
        RETURN;
    END IF;
    SELECT COALESCE(MAX(l.log_id), 0),
           GREATEST(CAST(extract(epoch FROM clock_timestamp()) * 1000 AS bigint),
                    COALESCE(MAX(l.recorded_at), 0))
        INTO h, t
        FROM (SELECT log_id, recorded_at FROM es_events ORDER BY log_id DESC LIMIT 1) AS l;
    INSERT INTO es_events (log_id, originator_id, version, event_type, entity_type,
                           event_name, payload, occurred_on, event_id, metadata, recorded_at)
        SELECT h + x.log_id, x.originator_id, x.version, x.event_type, x.entity_type,
               x.event_name, COALESCE(x.payload, 'null'::jsonb), x.occurred_on,
               x.event_id, x.metadata, t
        FROM json_to_recordset(p_events) AS x(log_id bigint, originator_id text,
             version bigint, event_type text, entity_type text, event_name text,
             payload jsonb, occurred_on bigint, event_id uuid, metadata jsonb);
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
    RETURN QUERY SELECT h, NULL::text, NULL::bigint, t;
END
$$;
