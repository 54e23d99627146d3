-- See ../pg/0002-live-streams.sql.
CREATE INDEX es_streams_entity_live ON es_streams (entity_type, created_log_id)
    WHERE last_event_type NOT LIKE '%.Deleted';
