-- Pages of the streams of one entity type that are not deleted (their last
-- event is not named Deleted: the CRUD store's tombstone) cost their size,
-- however many deleted streams lie between them.
CREATE INDEX es_streams_entity_live ON es_streams (entity_type, created_log_id)
    WHERE last_event_type NOT LIKE '%.Deleted';
