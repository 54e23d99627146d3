-- Event ids, metadata and recorded_at (SPEC §3).
-- event_id: optional, unique across the store, the key of idempotent
-- appends (es_group.c looks the ids of a group up under the log lock).
-- metadata: the writer's own JSON object, or NULL when not given.
-- recorded_at: ms since the epoch, set under the log lock from the database
-- server's clock and never below the previous entry's, so it does not
-- decrease along log ids. Events written before this migration get the
-- running maximum of their occurred_on (capped at the migration's time)
-- along log ids: the best "recorded no later than" the store can tell.
ALTER TABLE es_events
    ADD COLUMN event_id uuid,
    ADD COLUMN metadata jsonb,
    ADD COLUMN recorded_at bigint NOT NULL DEFAULT 0;
UPDATE es_events AS e SET recorded_at = m.r
    FROM (SELECT log_id,
                 MAX(LEAST(occurred_on,
                           CAST(extract(epoch FROM clock_timestamp()) * 1000 AS bigint)))
                     OVER (ORDER BY log_id) AS r
          FROM es_events) AS m
    WHERE e.log_id = m.log_id;
ALTER TABLE es_events ALTER COLUMN recorded_at DROP DEFAULT;
CREATE UNIQUE INDEX es_events_event_id ON es_events (event_id) WHERE event_id IS NOT NULL;

-- es_append_group (see 0003-append-group.sql) with the new columns. Before
-- it writes, it also checks that none of the group's event ids (p_ids, a
-- JSON array of every id its jobs carry, those of jobs the committer refused
-- included) is stored yet: when one is, it writes nothing and returns one
-- row (-3, NULL, NULL, NULL), and the committer decides the group on the
-- general path, which reads the stored events (a retry gets their original
-- answer). The row of success carries the recorded_at of every event.
DROP FUNCTION es_append_group(json, json, json);
CREATE FUNCTION es_append_group(p_expect json, p_events json, p_streams json, p_ids json)
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
                     COALESCE((SELECT s.version FROM es_streams AS s WHERE s.id = x.id), 0)
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
